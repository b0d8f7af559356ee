"""The national reference (153 authorities, ~24,500 schools, organisations) and the streamed national year."""

from __future__ import annotations

import itertools
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from broker.reference import load_schools
from producers.national import (
    NATIONAL_SCHOOLS,
    national_config,
    national_reference,
    write_national_reference,
    year,
)
from producers.simulator import AUTHORITY_NAMES, ReferenceData, SimulatorConfig, to_jsonl
from schemas.codes import is_authority_code, is_urn
from schemas.models import AgencyType, Record

LONDON = ZoneInfo("Europe/London")
START = datetime.fromisoformat("2025-04-01T00:00:00+01:00")
SAMPLE = 5000


@pytest.fixture(scope="module")
def ref() -> ReferenceData:
    """The national reference of the default seed."""
    return national_reference()


@pytest.fixture(scope="module")
def sample() -> list[Record]:
    """5,000 notifications of a national year."""
    return list(year(START, seed=11, count=SAMPLE))


def test_153_distinct_valid_authority_codes(ref: ReferenceData) -> None:
    """153 distinct codes, each a well-formed children's services authority code, the three seeds' real ones
    among them and every other one in the unissued 9xxxxx block."""
    codes = [a.code for a in ref.authorities]
    assert len(codes) == len(set(codes)) == 153
    assert all(is_authority_code(c) for c in codes)
    assert set(AUTHORITY_NAMES) <= set(codes)
    assert all(c[3] == "9" for c in codes if c not in AUTHORITY_NAMES)
    assert Counter(c[:3] for c in codes) == {"E06": 63, "E08": 36, "E09": 33, "E10": 21}


def test_schools_are_national_unique_and_loadable(ref: ReferenceData, tmp_path: Path) -> None:
    """~24,500 schools with unique valid URNs in every authority, and the written file loads in the worker's
    loader (`broker.reference.load_schools`) with every one of them."""
    urns = [s.urn for s in ref.schools]
    assert abs(len(urns) - NATIONAL_SCHOOLS) <= 0.01 * NATIONAL_SCHOOLS
    assert len(set(urns)) == len(urns) and all(is_urn(u) for u in urns)
    assert {s.authority for s in ref.schools} == {a.code for a in ref.authorities}
    written = write_national_reference(tmp_path)
    assert set(load_schools(tmp_path / "schools.json")) == set(urns)
    assert [p.name for p in written] == ["schools.json", "organisations.json"]


def test_phase_mix_is_the_regional_one(ref: ReferenceData) -> None:
    """Schools are ~70% primary, ~17.5% secondary, ~9% nursery, ~3.5% all-through, every phase in every
    authority."""
    phases = Counter(s.phase for s in ref.schools)
    total = sum(phases.values())
    for phase, share in (("PRIMARY", 0.70), ("SECONDARY", 0.175), ("NURSERY", 0.088), ("ALL_THROUGH", 0.035)):
        assert abs(phases[phase] / total - share) < 0.02, phase
    per_authority = {(s.authority, s.phase) for s in ref.schools}
    assert len(per_authority) == 153 * 4


def test_every_authority_has_an_organisation_per_agency(ref: ReferenceData) -> None:
    """Each authority is covered by a police force, a probation region, a youth justice service and a health
    trust for every health setting the trusts send from; 43 forces and 12 probation regions in all."""
    settings = {s for o in ref.organisations for s in o.settings}
    assert len(settings) >= 7
    for authority in ref.authorities:
        for agency in (AgencyType.POLICE, AgencyType.PROBATION, AgencyType.YOUTH_JUSTICE):
            ref.organisation(agency, authority.code)
        for setting in settings:
            ref.organisation(AgencyType.HEALTH, authority.code, setting)
    kinds = Counter(o.agency_type for o in ref.organisations)
    assert kinds[AgencyType.POLICE] == 43 and kinds[AgencyType.PROBATION] == 12
    assert len({o.code for o in ref.organisations}) == len(ref.organisations)


def test_reference_is_reproducible_per_seed(ref: ReferenceData) -> None:
    """The same seed gives the same schools; another seed other URNs."""
    assert national_reference().schools == ref.schools
    assert national_reference(7).schools != ref.schools


def test_weights_are_skewed_and_cover_every_authority() -> None:
    """The authority weights sum to 1 over the 153 and are population-like: the largest several times the
    smallest."""
    weights = dict(national_config().authority_weights)
    assert len(weights) == 153 and abs(sum(weights.values()) - 1) < 1e-9
    assert max(weights.values()) > 4 * min(weights.values())


def test_year_is_deterministic_per_seed() -> None:
    """The same seed gives byte-identical notifications; another seed different ones."""
    first = to_jsonl(year(START, seed=3, count=300))
    assert to_jsonl(year(START, seed=3, count=300)) == first
    assert to_jsonl(year(START, seed=4, count=300)) != first


def test_kind_mix_within_tolerance(sample: list[Record]) -> None:
    """Each kind's share of the sample is within 2 points of its configured weight."""
    kinds = Counter(type(r).__name__ for r in sample)
    for kind, weight in SimulatorConfig().kind_weights:
        assert abs(kinds[kind] / SAMPLE - weight) < 0.02, kind


def test_notifications_spread_over_many_authorities(sample: list[Record]) -> None:
    """At least 100 of the 153 authorities appear among 5,000 notifications, the largest at most a few percent."""
    seen = Counter(r.envelope.home_local_authority for r in sample)  # type: ignore[attr-defined]
    assert len(seen) >= 100
    assert max(seen.values()) < 0.05 * SAMPLE


def test_year_is_in_produced_order_within_the_span(sample: list[Record]) -> None:
    """Notifications come in produced order and occur within the year from the start."""
    produced = [r.envelope.produced for r in sample]  # type: ignore[attr-defined]
    assert produced == sorted(produced)
    occurred = [r.envelope.occurred for r in sample]  # type: ignore[attr-defined]
    assert min(occurred) >= START and max(occurred) < START + timedelta(hours=8760)
    months = {o.astimezone(LONDON).strftime("%Y-%m") for o in occurred}
    assert len(months) == 12


def test_streaming_is_lazy() -> None:
    """Taking the first 10 notifications of a 2,000,000 year is quick: only its first hours are built."""
    began = time.perf_counter()
    first = list(itertools.islice(year(START, seed=5, count=2_000_000), 10))
    assert time.perf_counter() - began < 10
    assert max(r.envelope.produced for r in first) < START + timedelta(days=1)  # type: ignore[attr-defined]


def test_household_pool_is_bounded() -> None:
    """A national config keeps a bounded household pool; a pool limit below 1 is refused naming the field."""
    assert national_config().household_pool_limit is not None
    with pytest.raises(ValueError, match="household_pool_limit"):
        SimulatorConfig(household_pool_limit=0)
