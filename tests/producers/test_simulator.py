"""The synthetic generator: reproducible, valid, in proportion, and its reference files are committed."""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from producers.simulator import (
    ADULT_NAMES,
    CHILD_NAMES,
    FAMILY_NAMES,
    REFERENCE_DIR,
    SimulatorConfig,
    generate,
    main,
    reference_data,
    simulate_night,
    to_jsonl,
    write_reference,
)
from schemas.models import (
    AdultRole,
    AdultSubject,
    ChildSubject,
    EducationStatus,
    Envelope,
    HealthSafeguardingNotification,
    PoliceChildConcern,
    PoliceDomesticAbuseIncident,
    ProbationRiskNotification,
    Record,
    RiskLevel,
    YouthJusticeNotification,
)

LONDON = ZoneInfo("Europe/London")
START = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)  # a Monday
SPAN = timedelta(days=28)
N = 5000
AUTHORITIES = {"E06000051": ("SY",), "E06000059": ("DT", "BH"), "E10000013": ("GL",)}


@pytest.fixture(scope="module")
def many() -> list[Record]:
    return list(generate(START, seed=11, count=N, span=SPAN))


def _children(record: Record) -> list[ChildSubject]:
    if isinstance(record, YouthJusticeNotification):
        return [record.child]
    return list(getattr(record, "children", []))


def _adults(record: Record) -> list[AdultSubject]:
    if isinstance(record, PoliceDomesticAbuseIncident):
        return [record.victim, record.suspect]
    if isinstance(record, ProbationRiskNotification):
        return [record.person]
    return list(getattr(record, "adults", []))


def _people(record: Record) -> list[ChildSubject | AdultSubject]:
    return [*_children(record), *_adults(record)]


def _env(record: Record) -> Envelope:
    envelope = getattr(record, "envelope", None)
    assert isinstance(envelope, Envelope)
    return envelope


def _age(born: date, on: date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def _local_date(record: Record) -> date:
    return _env(record).occurred.astimezone(LONDON).date()


def _nhs_valid(number: str) -> bool:
    """Independent mod-11 check: weights 10..2 on the first nine digits; 11 -> 0; 10 -> invalid."""
    if not re.fullmatch(r"\d{10}", number):
        return False
    total = sum(int(number[i]) * (10 - i) for i in range(9))
    check = (11 - total % 11) % 11
    return check != 10 and check == int(number[9])


def test_same_seed_same_output_different_seed_different() -> None:
    """The same seed reproduces the output exactly; a different seed gives a different night."""
    a = to_jsonl(simulate_night(datetime(2026, 11, 20, 18, tzinfo=UTC), 7, 200))
    b = to_jsonl(simulate_night(datetime(2026, 11, 20, 18, tzinfo=UTC), 7, 200))
    c = to_jsonl(simulate_night(datetime(2026, 11, 20, 18, tzinfo=UTC), 8, 200))
    assert a == b
    assert a != c
    assert len(a.splitlines()) == 200


def test_agency_mix_within_tolerance(many: list[Record]) -> None:
    """On 5,000 notifications the kind mix is ~70/8/12/5/5 (within 2.5 points)."""
    counts = Counter(type(r).__name__ for r in many)
    expected = dict(SimulatorConfig().kind_weights)
    assert sum(counts.values()) == N
    for kind, share in expected.items():
        assert abs(counts[kind] / N - share) < 0.025, (kind, counts[kind] / N)


def test_children_per_incident_household_mean(many: list[Record]) -> None:
    """Domestic abuse incidents list 0-4 children, mean 1.3 +- 0.15."""
    sizes = [len(r.children) for r in many if isinstance(r, PoliceDomesticAbuseIncident)]
    assert min(sizes) == 0 and max(sizes) == 4
    assert abs(sum(sizes) / len(sizes) - 1.3) <= 0.15


def test_school_age_setting_split(many: list[Record]) -> None:
    """Of school-age (4-17) children ~88% have a school, ~4% are home-educated, ~8% unknown (+- 3 points)."""
    statuses: Counter[EducationStatus] = Counter()
    for r in many:
        for c in _children(r):
            if c.date_of_birth is not None and 4 <= _age(c.date_of_birth, _local_date(r)) <= 17:
                statuses[c.education.status] += 1
    total = sum(statuses.values())
    assert set(statuses) == {EducationStatus.SCHOOL, EducationStatus.HOME_EDUCATED, EducationStatus.UNKNOWN}
    assert abs(statuses[EducationStatus.SCHOOL] / total - 0.88) < 0.03
    assert abs(statuses[EducationStatus.HOME_EDUCATED] / total - 0.04) < 0.03
    assert abs(statuses[EducationStatus.UNKNOWN] / total - 0.08) < 0.03


def test_education_fits_age_and_reference_schools(many: list[Record]) -> None:
    """Under-4s: not school age or nursery; URNs: open reference schools of the authority and age's phase."""
    ref = reference_data()
    schools = {s.urn: s for s in ref.schools}
    for r in many:
        for c in _children(r):
            if c.unborn:
                continue
            assert c.date_of_birth is not None
            age = _age(c.date_of_birth, _local_date(r))
            status = c.education.status
            if age < 4:
                assert status in (EducationStatus.NOT_SCHOOL_AGE, EducationStatus.NURSERY)
            if status in (EducationStatus.SCHOOL, EducationStatus.NURSERY):
                assert c.education.urn is not None
                school = schools[c.education.urn]
                assert school.open and school.authority == _env(r).home_local_authority
                phases = {"NURSERY"} if status is EducationStatus.NURSERY else {"PRIMARY", "ALL_THROUGH"}
                if status is EducationStatus.SCHOOL and age >= 11:
                    phases = {"SECONDARY", "ALL_THROUGH"}
                assert school.phase in phases


def test_unborn_children_have_a_mother(many: list[Record]) -> None:
    """About 2% of health notifications are about an unborn child, with a MOTHER adult at mother_index."""
    health = [r for r in many if isinstance(r, HealthSafeguardingNotification)]
    unborn = [r for r in health if any(c.unborn for c in r.children)]
    assert 0 < len(unborn) / len(health) < 0.05
    for r in unborn:
        (child,) = r.children
        assert child.mother_index is not None and child.expected_due_date is not None
        assert r.adults[child.mother_index].role is AdultRole.MOTHER
        assert child.expected_due_date > _local_date(r)


def test_every_notification_validates(many: list[Record]) -> None:
    """Every notification survives model_validate(model_dump()) and the JSON Lines shape unchanged."""
    for r in many:
        assert type(r).model_validate(r.model_dump()) == r
    kinds = {t.__name__: t for t in (PoliceDomesticAbuseIncident, PoliceChildConcern,
                                     HealthSafeguardingNotification, ProbationRiskNotification,
                                     YouthJusticeNotification)}  # fmt: skip
    for line, r in zip(to_jsonl(many[:500]).splitlines(), many[:500], strict=True):
        obj = json.loads(line)
        assert set(obj) == {"kind", "payload"}
        assert kinds[obj["kind"]].model_validate(obj["payload"]) == r


def test_every_nhs_number_passes_the_check_digit(many: list[Record]) -> None:
    """Every child and adult NHS number is in the unissued 999 range and passes an independent check."""
    numbers = [p.nhs_number for r in many for p in _people(r) if p.nhs_number is not None]
    assert len(numbers) > 3000
    for number in numbers:
        assert number.startswith("999") and _nhs_valid(number), number
    assert _nhs_valid("9434765919") and not _nhs_valid("9434765918")


def test_children_share_nhs_numbers_about_seventy_percent(many: list[Record]) -> None:
    """About 70% of (born) child appearances carry an NHS number; the rest demographics only."""
    born = [c for r in many for c in _children(r) if not c.unborn]
    with_nhs = sum(c.nhs_number is not None for c in born) / len(born)
    assert abs(with_nhs - 0.70) < 0.05
    assert all(c.given_name and c.family_name and c.date_of_birth and c.postcode for c in born)


def test_committed_reference_files_equal_a_fresh_generation(tmp_path: Path) -> None:
    """The committed schools.json and organisations.json (broker/data/reference/) are what seed 2026 generates."""
    written = write_reference(tmp_path, seed=2026)
    assert [p.name for p in written] == ["schools.json", "organisations.json"]
    for path in written:
        assert path.read_bytes() == (REFERENCE_DIR / path.name).read_bytes(), path.name
    schools = json.loads((tmp_path / "schools.json").read_text())
    assert all(re.fullmatch(r"9\d{5}", s["urn"]) and s["authority"] in AUTHORITIES for s in schools)
    assert len({s["urn"] for s in schools}) == len(schools)


def test_no_two_notifications_share_an_id(many: list[Record]) -> None:
    """Notification ids (uuid4) and source references are unique within a run."""
    ids = [_env(r).notification_id for r in many]
    refs = [_env(r).source_reference for r in many]
    assert len(set(ids)) == len(ids) == len(set(refs))
    assert all(i.version == 4 for i in ids)


def test_incidents_peak_in_the_evening_and_others_on_weekday_mornings(many: list[Record]) -> None:
    """More incidents 18:00-02:00 than 06:00-12:00 local time; other notifications peak weekday mornings."""
    local = [(isinstance(r, PoliceDomesticAbuseIncident), _env(r).occurred.astimezone(LONDON)) for r in many]
    incidents = [t for incident, t in local if incident]
    evening = sum(t.hour >= 18 or t.hour < 2 for t in incidents)
    morning = sum(6 <= t.hour < 12 for t in incidents)
    assert evening > 2 * morning
    weekend_daily = sum(t.weekday() >= 5 for t in incidents) / 2
    weekday_daily = sum(t.weekday() < 5 for t in incidents) / 5
    assert weekend_daily > weekday_daily
    others = [t for incident, t in local if not incident]
    weekday_morning = sum(t.weekday() < 5 and 8 <= t.hour < 13 for t in others)
    evenings = sum(t.hour >= 18 or t.hour < 2 for t in others)
    assert weekday_morning > 2 * evenings


def test_envelopes_are_plausible(many: list[Record]) -> None:
    """NEW actions, known organisations, reference shape, instants in order and inside the span."""
    ref = reference_data()
    orgs = {o.code: o for o in ref.organisations}
    levels: Counter[RiskLevel] = Counter()
    for r in many:
        e = _env(r)
        assert e.action.value == "NEW" and e.supersedes is None
        org = orgs[e.source.organisation_code]
        assert org.agency_type is e.source.agency_type and e.home_local_authority in org.authorities
        assert re.fullmatch(r"(POL|HLT|PRB|YJS)-(SHR|DOR|GLO)-\d{6}", e.source_reference)
        assert START <= e.occurred < START + SPAN
        assert timedelta(minutes=2) <= e.reported - e.occurred <= timedelta(hours=12)
        assert timedelta(0) < e.produced - e.reported <= timedelta(minutes=5)
        assert e.occurred.microsecond % 1000 == 0 and e.reported.microsecond % 1000 == 0
        for person in _people(r):
            if person.postcode is not None:
                assert person.postcode.startswith(AUTHORITIES[e.home_local_authority])
        if isinstance(r, PoliceDomesticAbuseIncident):
            levels[r.risk.level] += 1
            if r.risk.ticks is not None and r.risk.ticks >= 14:
                assert r.risk.level is RiskLevel.HIGH
            if r.risk.level is RiskLevel.STANDARD:
                assert r.risk.ticks is None or r.risk.ticks <= 5
    assert 0.10 <= levels[RiskLevel.HIGH] / sum(levels.values()) <= 0.15
    priorities = Counter(_env(r).priority.value for r in many)
    assert 0 < priorities["IMMEDIATE"] < 0.06 * N


def test_people_are_synthetic(many: list[Record]) -> None:
    """Every name comes from the built-in synthetic lists."""
    for r in many:
        for c in _children(r):
            assert c.given_name is None or c.given_name in CHILD_NAMES
            assert c.family_name in FAMILY_NAMES
        for a in _adults(r):
            assert a.given_name in ADULT_NAMES and a.family_name in FAMILY_NAMES


def test_children_reappear_from_different_agencies(many: list[Record]) -> None:
    """Households persist: some children appear 3+ times from 2+ agency types (cumulative concern)."""
    seen: defaultdict[tuple[object, ...], set[str]] = defaultdict(set)
    appearances: Counter[tuple[object, ...]] = Counter()
    for r in many:
        for c in _children(r):
            if not c.unborn:
                key = (c.given_name, c.family_name, c.date_of_birth, c.postcode)
                seen[key].add(_env(r).source.agency_type.value)
                appearances[key] += 1
    assert sum(1 for k, n in appearances.items() if n >= 3 and len(seen[k]) >= 2) >= 20


def test_naive_start_is_refused() -> None:
    """A start without a UTC offset is an error, as is giving neither count nor span."""
    with pytest.raises(ValueError, match="offset"):
        list(generate(datetime(2026, 11, 20, 18), seed=1, count=1))
    with pytest.raises(ValueError):
        list(generate(START, seed=1))


def test_cli_writes_json_lines(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """The CLI prints simulate_night's JSON Lines (filterable by agency) and writes the reference files."""
    assert main(["--seed", "7", "--count", "50", "--start", "2026-11-20T18:00:00+00:00"]) == 0
    out = capsys.readouterr().out
    assert out == to_jsonl(simulate_night(datetime(2026, 11, 20, 18, tzinfo=UTC), 7, 50))
    main(["--seed", "7", "--count", "50", "--start", "2026-11-20T18:00:00+00:00", "--agency", "health"])
    kinds = {json.loads(line)["kind"] for line in capsys.readouterr().out.splitlines()}
    assert kinds == {"HealthSafeguardingNotification"}
    assert main(["--write-reference", str(tmp_path)]) == 0
    assert (tmp_path / "schools.json").read_bytes() == (REFERENCE_DIR / "schools.json").read_bytes()
