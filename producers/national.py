"""The national reference: England's 153 children's services authorities, ~24,500 schools, their organisations.

Synthetic and reproducible from a seed (default 2026), like the regional reference of `producers.simulator`:

- Authorities: the three seed authorities keep their real ONS codes and names (Shropshire E06000051, Dorset
  E06000059, Gloucestershire E10000013).  The other 150 are synthetic: England's real mix of types (63 unitary
  E06, 36 metropolitan E08, 33 London E09, 21 county E10, the seeds included) with codes in the ``9xxxxx``
  block, which ONS has not issued (e.g. ``E08900004``), named "Synthetic Authority 017".  They pass
  `schemas.codes.is_authority_code`, so the worker routes them with its defaults ('unconfigured', calendar
  unverified), as it would any authority it has no configuration for.
- Weights (the share of notifications about each authority's children): log-normal draws (sigma 0.6, clipped
  to 0.25-4 times the median) from the seed, normalised, seeds included: a skewed, population-like spread in
  which the largest authority has 16 times the smallest's share (England's real spread is wider).
- Households' postcodes: the seeds keep their real outward codes; the others get outward codes of the
  ``Q`` area (``QA1`` ... ``QZ42``), which no real postcode starts with.
- Schools: 24,500 shared over the authorities by weight (largest remainders), in the regional phase mix
  (70% primary, 17.5% secondary, 8.8% nursery, 3.5% all-through, at least one of each), 7-digit URNs of
  the unissued ``9xxxxxx`` range, ~4% closed, named "Synthetic Primary School 123".
- Organisations, so that every authority has one per agency: 43 police forces (the seeds' three with their
  regional codes and names), an acute and a community health trust per authority, 12 probation regions
  (West Midlands for Shropshire, South West for Dorset and Gloucestershire, as regionally) and a youth
  justice service per authority.  Synthetic ones are named "Synthetic Police Force 07" and so on.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

from producers.simulator import (
    AUTHORITY_NAMES,
    ORGANISATIONS,
    REFERENCE_SEED,
    REGIONAL_AUTHORITIES,
    SCHOOL_PHASE_NAMES,
    START_TIMES,
    Authority,
    Organisation,
    ReferenceData,
    School,
    SimulatorConfig,
    apportion,
    stream,
    write_reference,
)
from schemas.models import AgencyType, Record

__all__ = ["NATIONAL_SCHOOLS", "YEAR", "national_config", "national_reference", "write_national_reference", "year"]

#: England's children's services authorities by code type (2023): unitary, metropolitan, London, county.
AUTHORITY_TYPES = (("E06", 63), ("E08", 36), ("E09", 33), ("E10", 21))
NATIONAL_SCHOOLS = 24_500
#: Notifications a year in England (DESIGN.md "Scale": ~1.4M domestic abuse incidents, referrals, the rest).
NATIONAL_PER_YEAR = 2_000_000
YEAR = timedelta(hours=8760)
POLICE_FORCES = 43
PROBATION_REGIONS = 12
#: Households kept for reuse in a national run (a year would otherwise keep every household it drew).
HOUSEHOLD_POOL = 50_000
_PHASE_SHARES = (("SECONDARY", 0.175), ("NURSERY", 0.088), ("ALL_THROUGH", 0.035))  # the rest primary
_AREA_LETTERS = "ABCDEFGHJKLMNOPRSTUWXYZ"
_DISTRICTS_PER_AUTHORITY = 6


def _authorities() -> tuple[Authority, ...]:
    """The seeds first (real codes), then the synthetic authorities of each type in code order."""
    seeds = Counter(code[:3] for code in AUTHORITY_NAMES)  # seed authorities of each code type
    synthetic: list[Authority] = []
    for prefix, total in AUTHORITY_TYPES:
        for n in range(1, total - seeds[prefix] + 1):
            i = len(synthetic)
            area = f"Q{_AREA_LETTERS[i % len(_AREA_LETTERS)]}"
            first = i // len(_AREA_LETTERS) * _DISTRICTS_PER_AUTHORITY + 1
            synthetic.append(
                Authority(
                    code=f"{prefix}9{n:05d}",
                    name=f"Synthetic Authority {i + 1:03d}",
                    abbreviation=f"A{i + 1:03d}",
                    outward_codes=tuple(f"{area}{d}" for d in range(first, first + _DISTRICTS_PER_AUTHORITY)),
                )
            )
    return (*REGIONAL_AUTHORITIES, *synthetic)


def _weights(rng: random.Random, authorities: tuple[Authority, ...]) -> tuple[tuple[str, float], ...]:
    raw = [min(max(rng.lognormvariate(0.0, 0.6), 0.25), 4.0) for _ in authorities]
    total = sum(raw)
    return tuple((a.code, w / total) for a, w in zip(authorities, raw, strict=True))


def _phases(n: int) -> list[tuple[str, int]]:
    """`n` schools in the regional phase mix, at least one of each phase."""
    others = [(phase, max(1, round(n * share))) for phase, share in _PHASE_SHARES]
    return [("PRIMARY", max(1, n - sum(k for _, k in others))), *others]


def _schools(rng: random.Random, weights: tuple[tuple[str, float], ...]) -> tuple[School, ...]:
    sizes = apportion(NATIONAL_SCHOOLS, [w for _, w in weights])
    plan = [(code, phase) for (code, _), n in zip(weights, sizes, strict=True) for phase, k in _phases(n)
            for _ in range(k)]
    urns = rng.sample(range(9_000_000, 10_000_000), len(plan))
    numbers = dict.fromkeys(SCHOOL_PHASE_NAMES, 0)
    schools = []
    for (authority, phase), urn in zip(plan, urns, strict=True):
        numbers[phase] += 1
        start = rng.choices([t for t, _ in START_TIMES], [w for _, w in START_TIMES])[0]
        schools.append(School(str(urn), f"Synthetic {SCHOOL_PHASE_NAMES[phase]} {numbers[phase]}", authority,
                              phase, start, rng.random() >= 0.04))
    return tuple(sorted(schools, key=lambda s: s.urn))


def _grouped(codes: list[str], groups: int, fixed: dict[str, int]) -> list[tuple[str, ...]]:
    """`codes` dealt round-robin into `groups` groups, except those `fixed` to a group."""
    out: list[list[str]] = [[] for _ in range(groups)]
    free = [c for c in codes if c not in fixed]
    for code, group in fixed.items():
        out[group].append(code)
    first_free = len(set(fixed.values()))  # the free ones are dealt from the first group nobody is fixed to
    for i, code in enumerate(free):
        out[(first_free + i) % groups].append(code)
    return [tuple(g) for g in out]


def _regional(code: str) -> Organisation:
    return next(o for o in ORGANISATIONS if o.code == code)


def _police(codes: list[str]) -> list[Organisation]:
    seeds = ("POLICE-WEST-MERCIA", "POLICE-DORSET", "POLICE-GLOUCESTERSHIRE")  # one seed authority each
    forces = _grouped(codes, POLICE_FORCES, {a: i for i, a in enumerate(AUTHORITY_NAMES)})
    out = [replace(_regional(code), authorities=forces[i]) for i, code in enumerate(seeds)]
    for n, covered in enumerate(forces[len(seeds):], start=len(seeds) + 1):
        out.append(Organisation(f"POLICE-SYN-{n:02d}", f"Synthetic Police Force {n:02d}", AgencyType.POLICE,
                                covered, "Police records system (simulated)"))
    return out


def _probation(codes: list[str]) -> list[Organisation]:
    west_midlands, south_west = _regional("PROBATION-WEST-MIDLANDS"), _regional("PROBATION-SOUTH-WEST")
    fixed = {a: 0 if a in west_midlands.authorities else 1 for a in AUTHORITY_NAMES}
    regions = _grouped(codes, PROBATION_REGIONS, fixed)
    out = [replace(west_midlands, authorities=regions[0]), replace(south_west, authorities=regions[1])]
    for n, covered in enumerate(regions[2:], start=3):
        out.append(Organisation(f"PROBATION-SYN-{n:02d}", f"Probation Service (Synthetic region {n:02d})",
                                AgencyType.PROBATION, covered, "Probation case management (simulated)"))
    return out


def _local(authority: Authority) -> list[Organisation]:
    """The acute and community trusts and the youth justice service of one synthetic authority."""
    # the same systems (and health settings) as a seed authority's, under synthetic codes and names
    acute, community, yjs = (_regional(c) for c in ("HEALTH-SHR-ACUTE", "HEALTH-SHR-COMMUNITY", "YJS-SHROPSHIRE"))
    number = authority.abbreviation.removeprefix("A")
    return [
        replace(acute, code=f"HEALTH-{authority.abbreviation}-ACUTE", authorities=(authority.code,),
                name=f"Synthetic Acute Trust {number}"),
        replace(community, code=f"HEALTH-{authority.abbreviation}-COMMUNITY", authorities=(authority.code,),
                name=f"Synthetic Community Trust {number}"),
        replace(yjs, code=f"YJS-{authority.abbreviation}", authorities=(authority.code,),
                name=f"Youth Justice Service (Synthetic Authority {number})"),
    ]


def _organisations(authorities: tuple[Authority, ...]) -> tuple[Organisation, ...]:
    codes = [a.code for a in authorities]
    seeds_local = [o for o in ORGANISATIONS if o.agency_type in (AgencyType.HEALTH, AgencyType.YOUTH_JUSTICE)]
    synthetic = [o for a in authorities if a.code not in AUTHORITY_NAMES for o in _local(a)]
    return (*_police(codes), *seeds_local, *synthetic, *_probation(codes))


def national_reference(seed: int = REFERENCE_SEED) -> ReferenceData:
    """England's synthetic reference for `seed` (see the module docstring); no starting households."""
    authorities = _authorities()
    weights = _weights(random.Random(seed), authorities)
    return ReferenceData(seed=seed, schools=_schools(random.Random(seed + 1), weights),
                         organisations=_organisations(authorities), authorities=authorities)


def national_config(seed: int = REFERENCE_SEED) -> SimulatorConfig:
    """The simulator's defaults with the national authority weights and a bounded household pool."""
    return SimulatorConfig(authority_weights=_weights(random.Random(seed), _authorities()), reference_seed=seed,
                           household_pool_limit=HOUSEHOLD_POOL)


def write_national_reference(directory: Path | str, seed: int = REFERENCE_SEED) -> list[Path]:
    """Write the national `schools.json` (the worker's MASH_SCHOOLS_FILE) and `organisations.json` into
    `directory`."""
    return write_reference(directory, seed, national_reference(seed))


def year(
    start: datetime, *, seed: int, count: int, span: timedelta = YEAR, reference_seed: int = REFERENCE_SEED
) -> Iterator[Record]:
    """`count` notifications over `span` from `start` with the national mix, lazily (`simulator.stream`)."""
    return stream(start, seed=seed, count=count, span=span, config=national_config(reference_seed),
                  reference=national_reference(reference_seed))
