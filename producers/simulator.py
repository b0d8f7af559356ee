"""Seeded, reproducible synthetic notifications and reference data (synthetic people only).

Everything here is a pure function of its arguments: one `random.Random(seed)` per call, no global random
state, no clock reads.  `generate()` yields valid agency notifications (the models of `schemas.models`);
`reference_data()` builds the synthetic schools, organisations and a starting pool of households, and
`write_reference()` writes the committed `broker/data/reference/schools.json` and `organisations.json`
(seed 2026).  Children carry URNs of those committed schools whatever the notification seed.

People are obviously synthetic: names from small made-up lists, NHS numbers in the 999 range (never issued,
valid mod-11 check digit), postcodes with a real outward code of the authority and a synthetic inward part
(digit, `Z`, letter).  Households persist within a run (and the reference pool across runs), so the same
children reappear from different agencies.

CLI: ``python -m producers.simulator --seed 7 --count 200 --start 2026-11-20T18:00:00+00:00 > night.jsonl``
writes JSON Lines of ``{"kind": "<RecordName>", "payload": {...}}``; with ``--national`` (``producers.national``)
the mix is England's, over a year by default (``--national --count 2000000 --start 2025-04-01T00:00:00+01:00``),
streamed, and ``--national --write-reference DIR`` writes the national schools and organisations.
"""

from __future__ import annotations

import argparse
import bisect
import heapq
import itertools
import json
import math
import random
import sys
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TypeVar
from zoneinfo import ZoneInfo

from schemas.models import (
    Action,
    AdultRole,
    AdultSubject,
    AgencyType,
    CaveatType,
    ChildSubject,
    ConcernCategory,
    Consent,
    ConsentStatus,
    EducationSetting,
    EducationStatus,
    Envelope,
    HealthSafeguardingNotification,
    HealthSetting,
    LawfulBasis,
    Mappa,
    MappaCategory,
    MappaLevel,
    PoliceChildConcern,
    PoliceDomesticAbuseIncident,
    Priority,
    ProbationEvent,
    ProbationRiskNotification,
    Record,
    RiskAssessment,
    RiskLevel,
    RiskTool,
    SafetyCaveat,
    SecurityMarking,
    Source,
    YouthJusticeEvent,
    YouthJusticeNotification,
)

__all__ = [
    "Authority",
    "ReferenceData",
    "SimulatorConfig",
    "generate",
    "main",
    "nhs_check_digit",
    "reference_data",
    "simulate_night",
    "stream",
    "to_jsonl",
    "write_reference",
]

LONDON = ZoneInfo("Europe/London")
REFERENCE_SEED = 2026
#: Where the committed reference files live: package data of `broker` (a path only: producers import no broker).
REFERENCE_DIR = Path(__file__).resolve().parents[1] / "broker" / "data" / "reference"
REFERENCE_AS_OF = date(2026, 9, 1)  # ages of the reference households are drawn relative to this date
NIGHT = timedelta(hours=15)  # simulate_night: e.g. 18:00 to 09:00 the next morning

SHROPSHIRE, DORSET, GLOUCESTERSHIRE = "E06000051", "E06000059", "E10000013"
AUTHORITY_NAMES = {SHROPSHIRE: "Shropshire", DORSET: "Dorset", GLOUCESTERSHIRE: "Gloucestershire"}
_AUTHORITY_ABBR = {SHROPSHIRE: "SHR", DORSET: "DOR", GLOUCESTERSHIRE: "GLO"}
_OUTWARD = {
    SHROPSHIRE: tuple(f"SY{n}" for n in range(1, 14)),
    DORSET: (*(f"DT{n}" for n in range(1, 12)), "BH16", "BH19", "BH20", "BH21", "BH31"),
    GLOUCESTERSHIRE: (*(f"GL{n}" for n in range(1, 21)), *(f"GL{n}" for n in range(50, 57))),
}
_INWARD_LETTERS = "ABDEFGHJLNPQRSTUWXY"

# fmt: off
CHILD_NAMES = (
    "Alex", "Sam", "Charlie", "Robin", "Kit", "Morgan", "Riley", "Jordan", "Casey", "Avery",
    "Quinn", "Rowan", "Sky", "Drew", "Frankie", "Jamie", "Taylor", "Reese", "Ash", "Remy",
)
# fmt: on
ADULT_NAMES = ("Pat", "Chris", "Lee", "Jess", "Max", "Terry", "Dana", "Jules", "Kim", "Les", "Nic", "Ronnie")
# fmt: off
FAMILY_NAMES = (
    "Testington", "Synthwell", "Mockford", "Sampleby", "Fixturson", "Placeholt", "Dataworth", "Seedwell",
    "Randcombe", "Fictonby", "Simbury", "Pseudon", "Stubwick", "Exampleton", "Mockridge", "Dummersby",
)
# fmt: on

KINDS: tuple[type[Record], ...] = (
    PoliceDomesticAbuseIncident,
    PoliceChildConcern,
    HealthSafeguardingNotification,
    ProbationRiskNotification,
    YouthJusticeNotification,
)
_KIND_BY_NAME = {k.__name__: k for k in KINDS}
_INCIDENT = PoliceDomesticAbuseIncident.__name__  # the kind drawn on the incident clock (evenings, weekends)
_AGENCY_ABBR = {
    AgencyType.POLICE: "POL",
    AgencyType.HEALTH: "HLT",
    AgencyType.PROBATION: "PRB",
    AgencyType.YOUTH_JUSTICE: "YJS",
}

# Hour-of-day weights in local time.  Incidents: evening peak; ×`weekend_factor` Fri 18:00 - Mon 06:00.
_INCIDENT_HOURS = (7, 6, 4.5, 3, 2, 1.5, 1.5, 2, 2.5, 3, 3, 3.5, 4, 4, 4, 4.5, 5, 6, 7, 8, 9, 9.5, 9.5, 8.5)
# Other notifications: weekday-morning peak; ×`weekend_office_factor` on Saturdays and Sundays.
# fmt: off
_OFFICE_HOURS = (
    0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.5, 1, 3, 7, 9, 9, 7, 6, 6, 5, 4, 2.5, 1.5, 1, 0.6, 0.6, 0.6, 0.3,
)
# fmt: on


# --------------------------------------------------------------------------------------------- config
@dataclass(frozen=True)
class SimulatorConfig:
    """Proportions the simulator draws from (DESIGN.md "Reference data" defaults)."""

    kind_weights: tuple[tuple[str, float], ...] = (
        ("PoliceDomesticAbuseIncident", 0.70),
        ("PoliceChildConcern", 0.08),
        ("HealthSafeguardingNotification", 0.12),
        ("ProbationRiskNotification", 0.05),
        ("YouthJusticeNotification", 0.05),
    )
    authority_weights: tuple[tuple[str, float], ...] = (
        (SHROPSHIRE, 0.25),
        (DORSET, 0.28),
        (GLOUCESTERSHIRE, 0.47),
    )
    children_weights: tuple[float, ...] = (0.32, 0.30, 0.22, 0.11, 0.05)  # P(0..4 children), mean 1.27
    school_share: float = 0.88  # of school-age (4-17) children: with a school
    home_educated_share: float = 0.04  # ... home-educated; the rest (~8%) unknown
    nursery_share: float = 0.15  # of 2-3 year olds: at a nursery
    nhs_number_share: float = 0.70  # of children: NHS number known (always with demographics)
    adult_nhs_number_share: float = 0.30
    unborn_share_of_health: float = 0.02
    household_reuse: float = 0.25  # chance a notification concerns an existing household
    dash_levels: tuple[tuple[RiskLevel, float], ...] = (
        (RiskLevel.STANDARD, 0.55),
        (RiskLevel.MEDIUM, 0.33),
        (RiskLevel.HIGH, 0.12),
    )
    dara_share: float = 0.15  # incidents assessed with DARA (no tick count) rather than DASH
    child_present_share: float = 0.55
    caveat_share: float = 0.10
    official_sensitive_share: float = 0.90
    weekend_factor: float = 1.4
    weekend_office_factor: float = 0.35
    mean_delay_minutes: float = 40.0  # median delay from occurred to reported (log-normal, 2 min - 12 h)
    rate_per_hour: float = 6.0  # notifications per hour when only a count or only a span is given
    reference_seed: int = REFERENCE_SEED
    household_pool_limit: int | None = None  # most households kept for reuse (None: all; bounded for a year)

    def __post_init__(self) -> None:
        unknown = [name for name, _ in self.kind_weights if name not in _KIND_BY_NAME]
        if unknown:
            raise ValueError(f"kind_weights: unknown kinds {unknown}")
        if len(self.children_weights) == 0 or sum(self.children_weights) <= 0:
            raise ValueError("children_weights: need at least one positive weight")
        if not 0 <= self.school_share + self.home_educated_share <= 1:
            raise ValueError("school_share + home_educated_share must be within 0..1")
        if self.rate_per_hour <= 0:
            raise ValueError("rate_per_hour must be positive")
        if self.household_pool_limit is not None and self.household_pool_limit < 1:
            raise ValueError("household_pool_limit: must be at least 1 (or None for no limit)")


# ------------------------------------------------------------------------------------ reference data
@dataclass(frozen=True)
class Authority:
    """A children's services authority the simulator draws households in."""

    code: str  # ONS code
    name: str
    abbreviation: str  # in source references, e.g. POL-SHR-000123
    outward_codes: tuple[str, ...]  # postcode outward codes of its households


REGIONAL_AUTHORITIES: tuple[Authority, ...] = tuple(
    Authority(code, AUTHORITY_NAMES[code], _AUTHORITY_ABBR[code], _OUTWARD[code]) for code in AUTHORITY_NAMES
)


@dataclass(frozen=True)
class School:
    """A synthetic school (URN in the unissued 9xxxxx range)."""

    urn: str
    name: str
    authority: str
    phase: str  # PRIMARY, SECONDARY, NURSERY or ALL_THROUGH
    start_time: str  # local "HH:MM"
    open: bool


@dataclass(frozen=True)
class Organisation:
    """A sending organisation (codes are this project's own, not ODS or Home Office codes)."""

    code: str
    name: str
    agency_type: AgencyType
    authorities: tuple[str, ...]
    system: str
    settings: tuple[HealthSetting, ...] = ()  # health only: the settings it sends from


@dataclass(frozen=True)
class SimAdult:
    """A synthetic adult of a household."""

    given_name: str
    family_name: str
    date_of_birth: date
    nhs_number: str | None
    postcode: str


@dataclass(frozen=True)
class SimChild:
    """A synthetic child; the education setting follows from age on a date and a persistent draw."""

    given_name: str
    family_name: str
    date_of_birth: date
    nhs_number: str | None
    postcode: str
    education_draw: float
    primary_urn: str
    secondary_urn: str
    nursery_urn: str | None


@dataclass(frozen=True)
class Household:
    """A synthetic household: an adult victim (also the mother), an adult suspect, 0-4 children."""

    authority: str
    postcode: str
    victim: SimAdult
    suspect: SimAdult
    children: tuple[SimChild, ...]
    unborn_due: date | None = None


@dataclass(frozen=True)
class ReferenceData:
    """Synthetic schools, organisations and a starting pool of households."""

    seed: int
    schools: tuple[School, ...]
    organisations: tuple[Organisation, ...]
    households: tuple[Household, ...] = field(default=(), repr=False)
    authorities: tuple[Authority, ...] = REGIONAL_AUTHORITIES

    def schools_in(self, authority: str, *phases: str) -> tuple[School, ...]:
        """Open schools of `authority` in any of `phases`."""
        return tuple(s for s in self.schools if s.authority == authority and s.open and s.phase in phases)

    def organisation(
        self, agency: AgencyType, authority: str, setting: HealthSetting | None = None
    ) -> Organisation:
        """The organisation of `agency` covering `authority` (for health, the one sending from `setting`)."""
        for org in self.organisations:
            covers = org.agency_type is agency and authority in org.authorities
            if covers and (setting is None or not org.settings or setting in org.settings):
                return org
        raise LookupError(f"no {agency.value} organisation for {authority}")


_ACUTE = (HealthSetting.EMERGENCY_DEPARTMENT, HealthSetting.MIDWIFERY, HealthSetting.SEXUAL_HEALTH)
_COMMUNITY = (
    HealthSetting.GP,
    HealthSetting.HEALTH_VISITING,
    HealthSetting.SCHOOL_NURSING,
    HealthSetting.CAMHS,
)
ORGANISATIONS: tuple[Organisation, ...] = (
    Organisation(
        "POLICE-WEST-MERCIA",
        "West Mercia Police",
        AgencyType.POLICE,
        (SHROPSHIRE,),
        "Police records system (simulated)",
    ),
    Organisation(
        "POLICE-DORSET", "Dorset Police", AgencyType.POLICE, (DORSET,), "Police records system (simulated)"
    ),
    Organisation(
        "POLICE-GLOUCESTERSHIRE",
        "Gloucestershire Constabulary",
        AgencyType.POLICE,
        (GLOUCESTERSHIRE,),
        "Police records system (simulated)",
    ),
    Organisation(
        "HEALTH-SHR-ACUTE",
        "Shrewsbury and Telford Hospital NHS Trust",
        AgencyType.HEALTH,
        (SHROPSHIRE,),
        "Electronic patient record (simulated)",
        _ACUTE,
    ),
    Organisation(
        "HEALTH-SHR-COMMUNITY",
        "Shropshire Community Health NHS Trust",
        AgencyType.HEALTH,
        (SHROPSHIRE,),
        "Community health record (simulated)",
        _COMMUNITY,
    ),
    Organisation(
        "HEALTH-DOR-ACUTE",
        "Dorset County Hospital NHS Foundation Trust",
        AgencyType.HEALTH,
        (DORSET,),
        "Electronic patient record (simulated)",
        _ACUTE,
    ),
    Organisation(
        "HEALTH-DOR-COMMUNITY",
        "Dorset HealthCare University NHS Foundation Trust",
        AgencyType.HEALTH,
        (DORSET,),
        "Community health record (simulated)",
        _COMMUNITY,
    ),
    Organisation(
        "HEALTH-GLO-ACUTE",
        "Gloucestershire Hospitals NHS Foundation Trust",
        AgencyType.HEALTH,
        (GLOUCESTERSHIRE,),
        "Electronic patient record (simulated)",
        _ACUTE,
    ),
    Organisation(
        "HEALTH-GLO-COMMUNITY",
        "Gloucestershire Health and Care NHS Foundation Trust",
        AgencyType.HEALTH,
        (GLOUCESTERSHIRE,),
        "Community health record (simulated)",
        _COMMUNITY,
    ),
    Organisation(
        "PROBATION-WEST-MIDLANDS",
        "Probation Service (West Midlands region)",
        AgencyType.PROBATION,
        (SHROPSHIRE,),
        "Probation case management (simulated)",
    ),
    Organisation(
        "PROBATION-SOUTH-WEST",
        "Probation Service (South West region)",
        AgencyType.PROBATION,
        (DORSET, GLOUCESTERSHIRE),
        "Probation case management (simulated)",
    ),
    Organisation(
        "YJS-SHROPSHIRE",
        "Youth Justice Service (Shropshire)",
        AgencyType.YOUTH_JUSTICE,
        (SHROPSHIRE,),
        "Youth justice case management (simulated)",
    ),
    Organisation(
        "YJS-DORSET",
        "Youth Justice Service (Dorset)",
        AgencyType.YOUTH_JUSTICE,
        (DORSET,),
        "Youth justice case management (simulated)",
    ),
    Organisation(
        "YJS-GLOUCESTERSHIRE",
        "Youth Justice Service (Gloucestershire)",
        AgencyType.YOUTH_JUSTICE,
        (GLOUCESTERSHIRE,),
        "Youth justice case management (simulated)",
    ),
)

# schools per authority by phase
_SCHOOL_COUNTS = (("PRIMARY", 40), ("SECONDARY", 10), ("NURSERY", 5), ("ALL_THROUGH", 2))
SCHOOL_PHASE_NAMES = {
    "PRIMARY": "Primary School",
    "SECONDARY": "Secondary School",
    "NURSERY": "Nursery School",
    "ALL_THROUGH": "All-Through School",
}
START_TIMES = (("08:45", 0.35), ("08:50", 0.25), ("09:00", 0.30), ("08:30", 0.10))
_REFERENCE_HOUSEHOLDS_PER_AUTHORITY = 40
T = TypeVar("T")


def _weighted(rng: random.Random, pairs: Sequence[tuple[T, float]]) -> T:
    return rng.choices([v for v, _ in pairs], weights=[w for _, w in pairs])[0]


def _schools(rng: random.Random) -> tuple[School, ...]:
    total = len(AUTHORITY_NAMES) * sum(n for _, n in _SCHOOL_COUNTS)
    urns = sorted(rng.sample(range(900000, 1000000), total))
    schools: list[School] = []
    numbers = dict.fromkeys(SCHOOL_PHASE_NAMES, 0)
    i = 0
    for authority in AUTHORITY_NAMES:
        for phase, n in _SCHOOL_COUNTS:
            for _ in range(n):
                numbers[phase] += 1
                schools.append(
                    School(
                        urn=str(urns[i]),
                        name=f"Synthetic {SCHOOL_PHASE_NAMES[phase]} {numbers[phase]}",
                        authority=authority,
                        phase=phase,
                        start_time=_weighted(rng, START_TIMES),
                        open=rng.random() >= 0.04,
                    )
                )
                i += 1
    return tuple(sorted(schools, key=lambda s: s.urn))


def reference_data(seed: int = REFERENCE_SEED, config: SimulatorConfig | None = None) -> ReferenceData:
    """Synthetic schools, the organisations and a starting pool of households, reproducible for `seed`."""
    config = config or SimulatorConfig(reference_seed=seed)
    rng = random.Random(seed)
    ref = ReferenceData(seed=seed, schools=_schools(rng), organisations=ORGANISATIONS)
    people = _People(rng, config, ref, set())
    households = tuple(
        people.household(authority, REFERENCE_AS_OF)
        for authority in AUTHORITY_NAMES
        for _ in range(_REFERENCE_HOUSEHOLDS_PER_AUTHORITY)
    )
    return replace(ref, households=households)


def _schools_json(ref: ReferenceData) -> str:
    rows = [
        {
            "urn": s.urn,
            "name": s.name,
            "authority": s.authority,
            "phase": s.phase,
            "start_time": s.start_time,
            "open": s.open,
        }
        for s in ref.schools
    ]
    return json.dumps(rows, indent=2, ensure_ascii=False) + "\n"


def _organisations_json(ref: ReferenceData) -> str:
    rows = [
        {
            "code": o.code,
            "name": o.name,
            "agency_type": o.agency_type.value,
            "authorities": list(o.authorities),
            "system": o.system,
            "settings": [s.value for s in o.settings],
        }
        for o in ref.organisations
    ]
    return json.dumps(rows, indent=2, ensure_ascii=False) + "\n"


def write_reference(
    directory: Path | str = REFERENCE_DIR, seed: int = REFERENCE_SEED, reference: ReferenceData | None = None
) -> list[Path]:
    """Write `schools.json` and `organisations.json` of `reference` (default: the regional reference of `seed`)
    into `directory` (REFERENCE_DIR by default)."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    ref = reference or reference_data(seed)
    written = []
    for name, text in (
        ("schools.json", _schools_json(ref)),
        ("organisations.json", _organisations_json(ref)),
    ):
        path = out / name
        path.write_text(text, encoding="utf-8", newline="\n")
        written.append(path)
    return written


# --------------------------------------------------------------------------------------------- people
def nhs_check_digit(nine_digits: str) -> int | None:
    """The mod-11 check digit for the first nine digits of an NHS number; None when none is possible."""
    total = sum(int(d) * w for d, w in zip(nine_digits, range(10, 1, -1), strict=True))
    check = 11 - total % 11
    if check == 11:
        return 0
    return None if check == 10 else check


def _age(born: date, on: date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def _date_of_birth(rng: random.Random, on: date, min_age: int, max_age: int) -> date:
    """A date of birth making the person `min_age`..`max_age` years old on `on`."""
    latest = _years_before(on, min_age)
    earliest = _years_before(on, max_age + 1) + timedelta(days=1)
    return earliest + timedelta(days=rng.randrange((latest - earliest).days + 1))


def _years_before(on: date, years: int) -> date:
    try:
        return on.replace(year=on.year - years)
    except ValueError:  # 29 February
        return on.replace(year=on.year - years, day=28)


_SCHOOL_KEYS = (
    ("primary", ("PRIMARY", "ALL_THROUGH")),
    ("secondary", ("SECONDARY", "ALL_THROUGH")),
    ("nursery", ("NURSERY",)),
)


def _schools_by_key(ref: ReferenceData) -> dict[tuple[str, str], tuple[str, ...]]:
    """URNs of the open schools per (authority, primary | secondary | nursery), in the reference's order."""
    found: dict[tuple[str, str], list[str]] = {(a.code, k): [] for a in ref.authorities for k, _ in _SCHOOL_KEYS}
    for school in ref.schools:
        for key, phases in _SCHOOL_KEYS:
            if school.open and school.phase in phases and (school.authority, key) in found:
                found[school.authority, key].append(school.urn)
    return {k: tuple(v) for k, v in found.items()}


class _NhsSequence:
    """NHS numbers of the 999 range in a seeded order, none repeated until all ~909,000 valid ones are used.

    Constant memory, for a national year: it needs more people than the range holds, so after ~909,000 people
    the sequence starts again and a later synthetic person shares a number with an earlier one (months apart
    at national rates).  The regional runs keep their set of used numbers instead (`_People.used`).
    """

    def __init__(self, rng: random.Random):
        self.offset = rng.randrange(1_000_000)
        self.step = 1
        while self.step % 2 == 0 or self.step % 5 == 0:  # coprime with 10**6: a permutation of the range
            self.step = rng.randrange(1, 1_000_000)
        self.i = 0

    def __call__(self) -> str:
        while True:
            nine = f"999{(self.offset + self.i * self.step) % 1_000_000:06d}"
            self.i += 1
            check = nhs_check_digit(nine)
            if check is not None:
                return f"{nine}{check}"


class _People:
    """Draws synthetic households; keeps NHS numbers unique within a run (or takes them from `numbers`)."""

    def __init__(
        self,
        rng: random.Random,
        config: SimulatorConfig,
        ref: ReferenceData,
        used: set[str],
        numbers: Callable[[], str] | None = None,
    ):
        self.rng, self.config, self.ref, self.used, self.numbers = rng, config, ref, used, numbers
        self._schools = _schools_by_key(ref)
        self._outward = {a.code: a.outward_codes for a in ref.authorities}

    def nhs_number(self) -> str:
        if self.numbers is not None:
            return self.numbers()
        while True:
            nine = "999" + f"{self.rng.randrange(1_000_000):06d}"
            check = nhs_check_digit(nine)
            if check is not None and (number := f"{nine}{check}") not in self.used:
                self.used.add(number)
                return number

    def postcode(self, authority: str) -> str:
        outward = self.rng.choice(self._outward[authority])
        return f"{outward} {self.rng.randrange(10)}Z{self.rng.choice(_INWARD_LETTERS)}"

    def adult(self, family_name: str, postcode: str, on: date, min_age: int, max_age: int) -> SimAdult:
        rng = self.rng
        nhs = self.nhs_number() if rng.random() < self.config.adult_nhs_number_share else None
        born = _date_of_birth(rng, on, min_age, max_age)
        return SimAdult(rng.choice(ADULT_NAMES), family_name, born, nhs, postcode)

    def child(self, authority: str, family_name: str, postcode: str, on: date, min_age: int = 0) -> SimChild:
        rng = self.rng
        nhs = self.nhs_number() if rng.random() < self.config.nhs_number_share else None
        nursery = self._schools[authority, "nursery"]
        return SimChild(
            given_name=rng.choice(CHILD_NAMES),
            family_name=family_name,
            date_of_birth=_date_of_birth(rng, on, min_age, 17),
            nhs_number=nhs,
            postcode=postcode,
            education_draw=rng.random(),
            primary_urn=rng.choice(self._schools[authority, "primary"]),
            secondary_urn=rng.choice(self._schools[authority, "secondary"]),
            nursery_urn=rng.choice(nursery) if nursery and rng.random() < self.config.nursery_share else None,
        )

    def household(self, authority: str, on: date, min_children: int = 0, youth: bool = False) -> Household:
        rng = self.rng
        family = rng.choice(FAMILY_NAMES)
        postcode = self.postcode(authority)
        weights = list(self.config.children_weights)
        weights[:min_children] = [0.0] * min(min_children, len(weights))
        n = rng.choices(range(len(weights)), weights=weights)[0] if sum(weights) > 0 else min_children
        n = max(n, min_children)
        children = [self.child(authority, family, postcode, on) for _ in range(n)]
        if youth:  # a youth justice household: at least one child aged 10-17
            children[0] = self.child(authority, family, postcode, on, min_age=10)
        victim = self.adult(family, postcode, on, 18, 55)
        suspect_family = family if rng.random() < 0.5 else rng.choice(FAMILY_NAMES)
        suspect_postcode = postcode if rng.random() < 0.8 else self.postcode(authority)
        suspect = self.adult(suspect_family, suspect_postcode, on, 18, 60)
        return Household(authority, postcode, victim, suspect, tuple(children))


def _education(child: SimChild, on: date, config: SimulatorConfig) -> EducationSetting:
    age = _age(child.date_of_birth, on)
    if age < 4:
        if child.nursery_urn is not None and age >= 2:
            return EducationSetting(status=EducationStatus.NURSERY, urn=child.nursery_urn)
        return EducationSetting(status=EducationStatus.NOT_SCHOOL_AGE)
    u = child.education_draw
    if u < config.school_share:
        return EducationSetting(
            status=EducationStatus.SCHOOL, urn=child.primary_urn if age < 11 else child.secondary_urn
        )
    if u < config.school_share + config.home_educated_share:
        return EducationSetting(status=EducationStatus.HOME_EDUCATED)
    return EducationSetting(status=EducationStatus.UNKNOWN)


def _child_subject(child: SimChild, on: date, config: SimulatorConfig, present: bool | None) -> ChildSubject:
    return ChildSubject(
        given_name=child.given_name,
        family_name=child.family_name,
        date_of_birth=child.date_of_birth,
        nhs_number=child.nhs_number,
        postcode=child.postcode,
        present=present,
        education=_education(child, on, config),
    )


def _adult_subject(adult: SimAdult, role: AdultRole) -> AdultSubject:
    return AdultSubject(
        role=role,
        given_name=adult.given_name,
        family_name=adult.family_name,
        date_of_birth=adult.date_of_birth,
        nhs_number=adult.nhs_number,
        postcode=adult.postcode,
    )


# ---------------------------------------------------------------------------------------------- time
def _hour_weight(local: datetime, incident: bool, config: SimulatorConfig) -> float:
    weekday, hour = local.weekday(), local.hour
    if incident:
        weekend = weekday >= 5 or (weekday == 4 and hour >= 18) or (weekday == 0 and hour < 6)
        return _INCIDENT_HOURS[hour] * (config.weekend_factor if weekend else 1.0)
    return _OFFICE_HOURS[hour] * (config.weekend_office_factor if weekday >= 5 else 1.0)


class _Clock:
    """Draws instants in [start, start + span) with hour-of-week weights in Europe/London local time."""

    def __init__(self, start: datetime, span: timedelta, incident: bool, config: SimulatorConfig):
        self.starts: list[datetime] = []
        self.lengths: list[float] = []
        self.cumulative: list[float] = []
        start = start.replace(microsecond=start.microsecond // 1000 * 1000)
        end, t, total = start + span, start, 0.0
        while t < end:
            length = min(timedelta(hours=1), end - t).total_seconds()
            total += _hour_weight(t.astimezone(LONDON), incident, config) * length
            self.starts.append(t)
            self.lengths.append(length)
            self.cumulative.append(total)
            t += timedelta(hours=1)

    def draw(self, rng: random.Random) -> datetime:
        i = bisect.bisect_right(self.cumulative, rng.random() * self.cumulative[-1])
        return self.draw_in(rng, min(i, len(self.starts) - 1))

    def draw_in(self, rng: random.Random, i: int) -> datetime:
        """An instant within hour `i`."""
        # whole milliseconds: instants are Avro timestamp-millis, so they survive the round trip exactly
        return self.starts[i] + timedelta(milliseconds=math.floor(rng.random() * self.lengths[i] * 1000))

    def counts(self, total: int, offset: float) -> list[int]:
        """`total` instants shared over the hours by weight (systematic sampling from `offset` in [0, 1)): each
        hour gets its expected count rounded up or down, and the counts sum to `total`."""
        marks = [0, *(math.floor(total * c / self.cumulative[-1] + offset) for c in self.cumulative)]
        return [b - a for a, b in itertools.pairwise(marks)]


# ----------------------------------------------------------------------------------------- generator
_CONSENT = (
    (ConsentStatus.NOT_SOUGHT_RISK_OF_HARM, 0.35),
    (ConsentStatus.GIVEN, 0.30),
    (ConsentStatus.NOT_SOUGHT_URGENT, 0.10),
    (ConsentStatus.REFUSED_OVERRIDDEN, 0.10),
    (ConsentStatus.NOT_SOUGHT_WOULD_PREJUDICE_INVESTIGATION, 0.10),
    (ConsentStatus.NOT_SOUGHT_OTHER, 0.05),
)
_LAWFUL_BASIS = {
    AgencyType.POLICE: (
        (LawfulBasis.CHILDREN_ACT_2004_S11, 0.6),
        (LawfulBasis.CRIME_AND_DISORDER_ACT_1998_S115, 0.3),
        (LawfulBasis.CHILDREN_ACT_1989_S47, 0.1),
    ),
    AgencyType.HEALTH: (
        (LawfulBasis.CHILDREN_ACT_2004_S11, 0.4),
        (LawfulBasis.DPA_2018_SCH8_SAFEGUARDING, 0.3),
        (LawfulBasis.CHILDREN_ACT_1989_S17, 0.2),
        (LawfulBasis.UK_GDPR_ART6_1E_PUBLIC_TASK, 0.1),
    ),
    AgencyType.PROBATION: (
        (LawfulBasis.CRIME_AND_DISORDER_ACT_1998_S115, 0.6),
        (LawfulBasis.CHILDREN_ACT_2004_S11, 0.4),
    ),
    AgencyType.YOUTH_JUSTICE: (
        (LawfulBasis.CHILDREN_ACT_2004_S11, 0.7),
        (LawfulBasis.CHILDREN_ACT_1989_S17, 0.3),
    ),
}
_RECORDED_BY = {
    AgencyType.POLICE: "Attending officer",
    AgencyType.HEALTH: "Named nurse for safeguarding",
    AgencyType.PROBATION: "Probation practitioner",
    AgencyType.YOUTH_JUSTICE: "Youth justice case manager",
}
_CAVEATS = (
    (SafetyCaveat(type=CaveatType.DO_NOT_CONTACT_NAMED_PARENT, applies_to_role=AdultRole.SUSPECT), 0.30),
    (SafetyCaveat(type=CaveatType.CONFIDENTIAL_ADDRESS, applies_to_role=AdultRole.VICTIM), 0.25),
    (
        SafetyCaveat(type=CaveatType.SUSPECT_HAS_PARENTAL_RESPONSIBILITY, applies_to_role=AdultRole.SUSPECT),
        0.25,
    ),
    (SafetyCaveat(type=CaveatType.DO_NOT_DISCUSS_WITH_CHILD), 0.10),
    (SafetyCaveat(type=CaveatType.INTERPRETER_NEEDED, applies_to_role=AdultRole.VICTIM), 0.10),
)
_OTHER_CAVEATS = (
    (SafetyCaveat(type=CaveatType.DO_NOT_CONTACT_NAMED_PARENT, applies_to_role=AdultRole.PARENT_CARER), 0.4),
    (SafetyCaveat(type=CaveatType.CONFIDENTIAL_ADDRESS, applies_to_role=AdultRole.PARENT_CARER), 0.2),
    (SafetyCaveat(type=CaveatType.DO_NOT_DISCUSS_WITH_CHILD), 0.2),
    (SafetyCaveat(type=CaveatType.INTERPRETER_NEEDED, applies_to_role=AdultRole.PARENT_CARER), 0.2),
)
_CHILD_CONCERNS = (
    (ConcernCategory.NEGLECT, 0.25),
    (ConcernCategory.MISSING, 0.20),
    (ConcernCategory.EXPLOITATION, 0.15),
    (ConcernCategory.PHYSICAL_ABUSE, 0.15),
    (ConcernCategory.EMOTIONAL_ABUSE, 0.10),
    (ConcernCategory.SEXUAL_ABUSE, 0.05),
    (ConcernCategory.SUBSTANCE_MISUSE, 0.10),
)
_HEALTH_CONCERNS = (
    (ConcernCategory.DOMESTIC_ABUSE, 0.20),
    (ConcernCategory.PHYSICAL_ABUSE, 0.15),
    (ConcernCategory.NEGLECT, 0.20),
    (ConcernCategory.SELF_HARM, 0.15),
    (ConcernCategory.EMOTIONAL_ABUSE, 0.10),
    (ConcernCategory.SEXUAL_ABUSE, 0.05),
    (ConcernCategory.SUBSTANCE_MISUSE, 0.10),
    (ConcernCategory.OTHER, 0.05),
)
# health settings by weight and the ages they see
_HEALTH_SETTINGS = (
    (HealthSetting.EMERGENCY_DEPARTMENT, 0.30, 0, 17),
    (HealthSetting.GP, 0.15, 0, 17),
    (HealthSetting.HEALTH_VISITING, 0.15, 0, 4),
    (HealthSetting.SCHOOL_NURSING, 0.10, 5, 17),
    (HealthSetting.CAMHS, 0.15, 5, 17),
    (HealthSetting.SEXUAL_HEALTH, 0.07, 13, 17),
    (HealthSetting.MIDWIFERY, 0.08, 0, 0),
)
_PROBATION_EVENTS = (
    (ProbationEvent.RELEASE_FROM_CUSTODY, 0.25),
    (ProbationEvent.ADDRESS_CHANGE, 0.25),
    (ProbationEvent.LICENCE_CONDITION_CHANGE, 0.15),
    (ProbationEvent.BAIL_CONDITION_CHANGE, 0.10),
    (ProbationEvent.RISK_ESCALATION, 0.15),
    (ProbationEvent.SENTENCE_START, 0.10),
)
_YJ_EVENTS = (
    (YouthJusticeEvent.ARREST, 0.20),
    (YouthJusticeEvent.CHARGE, 0.15),
    (YouthJusticeEvent.COURT_OUTCOME, 0.15),
    (YouthJusticeEvent.ORDER_START, 0.15),
    (YouthJusticeEvent.CUSTODY, 0.05),
    (YouthJusticeEvent.RELEASE_FROM_CUSTODY, 0.05),
    (YouthJusticeEvent.BREACH, 0.10),
    (YouthJusticeEvent.MISSING_EPISODE, 0.15),
)
_GRADED = (
    (RiskLevel.LOW, 0.35),
    (RiskLevel.MEDIUM, 0.40),
    (RiskLevel.HIGH, 0.20),
    (RiskLevel.VERY_HIGH, 0.05),
)
_TICKS = {RiskLevel.STANDARD: (0, 5), RiskLevel.MEDIUM: (4, 13), RiskLevel.HIGH: (10, 27)}


class _Run:
    """One generation run: the seeded Random, the household pool, the reference counters.

    With `config.household_pool_limit` the pool keeps at most that many households (a new one replaces the
    oldest) and NHS numbers come from an `_NhsSequence`, so memory stays bounded however many are generated.
    """

    def __init__(self, seed: int, config: SimulatorConfig, ref: ReferenceData | None = None):
        self.config = config
        self.ref = ref or reference_data(config.reference_seed, config)
        known = {a.code for a in self.ref.authorities}
        missing = sorted(code for code, _ in config.authority_weights if code not in known)
        if missing:
            raise ValueError(f"authority_weights: authorities without reference data {missing}")
        self.rng = random.Random(seed)
        used = {c.nhs_number for h in self.ref.households for c in h.children if c.nhs_number}
        used |= {a.nhs_number for h in self.ref.households for a in (h.victim, h.suspect) if a.nhs_number}
        bounded = config.household_pool_limit is not None
        numbers = _NhsSequence(self.rng) if bounded else None
        self.people = _People(self.rng, config, self.ref, used, numbers)
        self.pool: list[Household] = list(self.ref.households)
        self.oldest = 0  # with a pool limit: the slot the next new household replaces
        self.sequences: dict[str, int] = {}
        self.abbreviations = {a.code: a.abbreviation for a in self.ref.authorities}
        self.organisations: dict[tuple[AgencyType, str, HealthSetting | None], Organisation] = {}

    # -- helpers
    def uuid4(self) -> uuid.UUID:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    def organisation(
        self, agency: AgencyType, authority: str, setting: HealthSetting | None = None
    ) -> Organisation:
        """`ReferenceData.organisation`, remembered (a national reference has hundreds of organisations)."""
        key = (agency, authority, setting)
        if key not in self.organisations:
            self.organisations[key] = self.ref.organisation(agency, authority, setting)
        return self.organisations[key]

    def reference(self, agency: AgencyType, authority: str) -> str:
        prefix = f"{_AGENCY_ABBR[agency]}-{self.abbreviations[authority]}"
        if prefix not in self.sequences:  # seeded start, so two runs rarely share a reference
            self.sequences[prefix] = self.rng.randrange(1, 900_000)
        self.sequences[prefix] += 1
        return f"{prefix}-{self.sequences[prefix]:06d}"

    def household(self, on: date, min_children: int = 0, youth: bool = False) -> tuple[int, Household]:
        """A household from the pool (with `household_reuse` probability) or a new one; its pool index."""
        rng = self.rng
        if self.pool and rng.random() < self.config.household_reuse:
            for _ in range(8):
                i = rng.randrange(len(self.pool))
                h = self.pool[i]
                kids = _children_on(h, on)
                if len(kids) >= min_children and (
                    not youth or any(_age(c.date_of_birth, on) >= 10 for c in kids)
                ):
                    return i, h
        authority = _weighted(rng, self.config.authority_weights)
        h = self.people.household(authority, on, min_children=min_children, youth=youth)
        limit = self.config.household_pool_limit
        if limit is not None and len(self.pool) >= limit:
            i, self.oldest = self.oldest, (self.oldest + 1) % limit
            self.pool[i] = h
            return i, h
        self.pool.append(h)
        return len(self.pool) - 1, h

    def caveats(self, rng: random.Random, domestic: bool) -> list[SafetyCaveat]:
        share = self.config.caveat_share * (1.2 if domestic else 0.6)
        if rng.random() >= share:
            return []
        table = _CAVEATS if domestic else _OTHER_CAVEATS
        first = _weighted(rng, table)
        second = _weighted(rng, table) if rng.random() < 0.25 else first
        return [first] if second == first else [first, second]

    def envelope(
        self,
        agency: AgencyType,
        org: Organisation,
        authority: str,
        occurred: datetime,
        priority: Priority,
        domestic: bool,
    ) -> Envelope:
        rng, config = self.rng, self.config
        delay = min(max(rng.lognormvariate(math.log(config.mean_delay_minutes), 1.0), 2.0), 720.0)
        reported = occurred + timedelta(milliseconds=round(delay * 60_000))
        produced = reported + timedelta(seconds=rng.randint(1, 300))
        return Envelope(
            notification_id=self.uuid4(),
            action=Action.NEW,
            source=Source(
                agency_type=agency, organisation_code=org.code, organisation_name=org.name, system=org.system
            ),
            source_reference=self.reference(agency, authority),
            occurred=occurred,
            reported=reported,
            produced=produced,
            home_local_authority=authority,
            security_marking=(
                SecurityMarking.OFFICIAL_SENSITIVE
                if rng.random() < config.official_sensitive_share
                else SecurityMarking.OFFICIAL
            ),
            lawful_basis=_weighted(rng, _LAWFUL_BASIS[agency]),
            consent=Consent(status=_weighted(rng, _CONSENT), recorded_by_role=_RECORDED_BY[agency]),
            priority=priority,
            safety_caveats=self.caveats(rng, domestic),
        )

    def priority(self, high: bool) -> Priority:
        u = self.rng.random()
        if high:
            return Priority.IMMEDIATE if u < 0.15 else Priority.URGENT if u < 0.75 else Priority.ROUTINE
        return Priority.IMMEDIATE if u < 0.015 else Priority.URGENT if u < 0.15 else Priority.ROUTINE

    # -- bodies
    def build(self, kind: str, occurred: datetime) -> Record:
        """A notification of `kind` (a record name of KINDS) occurring at `occurred`."""
        builders: dict[str, Callable[[datetime], Record]] = {
            "PoliceDomesticAbuseIncident": self.police_incident,
            "PoliceChildConcern": self.police_child_concern,
            "HealthSafeguardingNotification": self.health,
            "ProbationRiskNotification": self.probation,
            "YouthJusticeNotification": self.youth_justice,
        }
        return builders[kind](occurred)

    def police_incident(self, occurred: datetime) -> Record:
        rng, config = self.rng, self.config
        on = occurred.astimezone(LONDON).date()
        _, h = self.household(on)
        kids = _children_on(h, on)
        level = _weighted(rng, config.dash_levels)
        tool = RiskTool.DARA if rng.random() < config.dara_share else RiskTool.DASH
        ticks = rng.randint(*_TICKS[level]) if tool is RiskTool.DASH and level in _TICKS else None
        judgement = (level is RiskLevel.HIGH and (ticks is None or ticks < 14)) or rng.random() < 0.02
        children = [_child_subject(c, on, config, rng.random() < config.child_present_share) for c in kids]
        any_present = any(c.present for c in children)
        welfare = bool(children) and rng.random() < (0.9 if any_present else 0.6)
        org = self.organisation(AgencyType.POLICE, h.authority)
        envelope = self.envelope(
            AgencyType.POLICE, org, h.authority, occurred, self.priority(level is RiskLevel.HIGH), True
        )
        return PoliceDomesticAbuseIncident(
            envelope=envelope,
            police_reference=f"{org.code.removeprefix('POLICE-')[:3]}-{on:%y%m%d}-{rng.randrange(10000):04d}",
            risk=RiskAssessment(tool=tool, level=level, ticks=ticks, professional_judgement_marac=judgement),
            welfare_check_made=welfare,
            victim=_adult_subject(h.victim, AdultRole.VICTIM),
            suspect=_adult_subject(h.suspect, AdultRole.SUSPECT),
            children=children,
            summary=f"SYNTHETIC NARRATIVE: domestic abuse incident, {len(children)} children listed",
        )

    def police_child_concern(self, occurred: datetime) -> Record:
        rng, config = self.rng, self.config
        on = occurred.astimezone(LONDON).date()
        _, h = self.household(on, min_children=1)
        kids = _children_on(h, on)
        chosen = kids if rng.random() < 0.3 else [rng.choice(kids)]
        categories = sorted(
            {_weighted(rng, _CHILD_CONCERNS) for _ in range(rng.choice((1, 1, 2)))}, key=lambda c: c.value
        )
        org = self.organisation(AgencyType.POLICE, h.authority)
        adults = [_adult_subject(h.victim, AdultRole.PARENT_CARER)] if rng.random() < 0.5 else []
        return PoliceChildConcern(
            envelope=self.envelope(
                AgencyType.POLICE, org, h.authority, occurred, self.priority(False), False
            ),
            police_reference=f"{org.code.removeprefix('POLICE-')[:3]}-{on:%y%m%d}-{rng.randrange(10000):04d}",
            categories=categories,
            children=[_child_subject(c, on, config, None) for c in chosen],
            adults=adults,
            summary=f"SYNTHETIC NARRATIVE: police concern for {len(chosen)} child(ren).",
        )

    def health(self, occurred: datetime) -> Record:
        rng, config = self.rng, self.config
        on = occurred.astimezone(LONDON).date()
        if rng.random() < config.unborn_share_of_health:
            return self.unborn(occurred, on)
        _, h = self.household(on, min_children=1)
        child = rng.choice(_children_on(h, on))
        age = _age(child.date_of_birth, on)
        settings = [
            (s, w)
            for s, w, lo, hi in _HEALTH_SETTINGS
            if lo <= age <= hi and s is not HealthSetting.MIDWIFERY
        ]
        setting = _weighted(rng, settings)
        categories = sorted(
            {_weighted(rng, _HEALTH_CONCERNS) for _ in range(rng.choice((1, 1, 2)))}, key=lambda c: c.value
        )
        domestic = ConcernCategory.DOMESTIC_ABUSE in categories
        org = self.organisation(AgencyType.HEALTH, h.authority, setting)
        adults = [_adult_subject(h.victim, AdultRole.PARENT_CARER)] if rng.random() < 0.6 else []
        return HealthSafeguardingNotification(
            envelope=self.envelope(
                AgencyType.HEALTH, org, h.authority, occurred, self.priority(False), domestic
            ),
            setting=setting,
            categories=categories,
            children=[_child_subject(child, on, config, None)],
            adults=adults,
            summary=f"SYNTHETIC NARRATIVE: {setting.value.lower()} safeguarding concern.",
        )

    def unborn(self, occurred: datetime, on: date) -> Record:
        rng = self.rng
        i, h = self.household(on)
        if h.unborn_due is None or h.unborn_due <= on:
            h = replace(h, unborn_due=on + timedelta(days=rng.randint(30, 250)))
            self.pool[i] = h
        assert h.unborn_due is not None
        child = ChildSubject(
            family_name=h.victim.family_name,
            postcode=h.postcode,
            unborn=True,
            expected_due_date=h.unborn_due,
            mother_index=0,
            education=EducationSetting(status=EducationStatus.NOT_SCHOOL_AGE),
        )
        categories = [
            _weighted(
                rng,
                (
                    (ConcernCategory.DOMESTIC_ABUSE, 0.4),
                    (ConcernCategory.SUBSTANCE_MISUSE, 0.3),
                    (ConcernCategory.NEGLECT, 0.2),
                    (ConcernCategory.OTHER, 0.1),
                ),
            )
        ]
        domestic = categories[0] is ConcernCategory.DOMESTIC_ABUSE
        org = self.organisation(AgencyType.HEALTH, h.authority, HealthSetting.MIDWIFERY)
        return HealthSafeguardingNotification(
            envelope=self.envelope(
                AgencyType.HEALTH, org, h.authority, occurred, self.priority(False), domestic
            ),
            setting=HealthSetting.MIDWIFERY,
            categories=categories,
            children=[child],
            adults=[_adult_subject(h.victim, AdultRole.MOTHER)],
            summary="SYNTHETIC NARRATIVE: midwifery concern for an unborn child.",
        )

    def probation(self, occurred: datetime) -> Record:
        rng, config = self.rng, self.config
        on = occurred.astimezone(LONDON).date()
        _, h = self.household(on)
        kids = _children_on(h, on)
        named = kids if kids and rng.random() < 0.6 else []
        risk = _weighted(rng, _GRADED)
        mappa = None
        if rng.random() < 0.3:
            mappa = Mappa(
                category=rng.choice(
                    (MappaCategory.CATEGORY_1, MappaCategory.CATEGORY_2, MappaCategory.CATEGORY_3)
                ),
                level=_weighted(
                    rng, ((MappaLevel.LEVEL_1, 0.7), (MappaLevel.LEVEL_2, 0.25), (MappaLevel.LEVEL_3, 0.05))
                ),
            )
        domestic = rng.random() < 0.5
        org = self.organisation(AgencyType.PROBATION, h.authority)
        high = risk in (RiskLevel.HIGH, RiskLevel.VERY_HIGH)
        return ProbationRiskNotification(
            envelope=self.envelope(
                AgencyType.PROBATION, org, h.authority, occurred, self.priority(high), domestic
            ),
            person=_adult_subject(h.suspect, AdultRole.PERSON_ON_PROBATION),
            event=_weighted(rng, _PROBATION_EVENTS),
            risk_to_children=risk,
            mappa=mappa,
            domestic_abuse_related=domestic,
            household_postcode=h.postcode if rng.random() < 0.8 else None,
            children=[_child_subject(c, on, config, None) for c in named],
            summary="SYNTHETIC NARRATIVE: probation risk information.",
        )

    def youth_justice(self, occurred: datetime) -> Record:
        rng, config = self.rng, self.config
        on = occurred.astimezone(LONDON).date()
        _, h = self.household(on, min_children=1, youth=True)
        child = rng.choice([c for c in _children_on(h, on) if _age(c.date_of_birth, on) >= 10])
        wellbeing = _weighted(rng, _GRADED)
        org = self.organisation(AgencyType.YOUTH_JUSTICE, h.authority)
        domestic = rng.random() < 0.1
        high = wellbeing in (RiskLevel.HIGH, RiskLevel.VERY_HIGH)
        return YouthJusticeNotification(
            envelope=self.envelope(
                AgencyType.YOUTH_JUSTICE, org, h.authority, occurred, self.priority(high), domestic
            ),
            child=_child_subject(child, on, config, None),
            event=_weighted(rng, _YJ_EVENTS),
            safety_wellbeing_risk=wellbeing,
            risk_of_serious_harm=_weighted(rng, _GRADED),
            domestic_abuse_related=domestic,
            summary="SYNTHETIC NARRATIVE: youth justice event.",
        )


def _children_on(h: Household, on: date) -> list[SimChild]:
    """The household's children born by `on` and under 18 on it."""
    return [c for c in h.children if c.date_of_birth <= on and _age(c.date_of_birth, on) < 18]


def generate(
    start: datetime,
    *,
    seed: int,
    count: int | None = None,
    span: timedelta | None = None,
    config: SimulatorConfig | None = None,
) -> Iterator[Record]:
    """Yield synthetic notifications occurring in [start, start + span), in produced order.

    Give `count`, `span` or both: with only a count the span is `count / rate_per_hour` hours; with only a
    span the count is `span hours * rate_per_hour`.  The agency mix is drawn first, then each occurred
    instant from that kind's hour-of-week profile (incidents: evenings and weekends; others: weekday
    mornings).
    """
    if start.tzinfo is None or start.utcoffset() is None:
        raise ValueError("start: must carry a UTC offset")
    config = config or SimulatorConfig()
    if count is None and span is None:
        raise ValueError("give count, span or both")
    if span is None:
        span = timedelta(hours=max(count or 0, 1) / config.rate_per_hour)
    if count is None:
        count = round(span.total_seconds() / 3600 * config.rate_per_hour)
    if count < 0 or span <= timedelta(0):
        raise ValueError("count must not be negative and span must be positive")
    run = _Run(seed, config)
    rng = run.rng
    clocks = {incident: _Clock(start, span, incident, config) for incident in (True, False)}
    planned: list[tuple[datetime, str]] = []
    for _ in range(count):
        kind = _weighted(rng, config.kind_weights)
        planned.append((clocks[kind == _INCIDENT].draw(rng), kind))
    planned.sort()
    made = [run.build(kind, occurred) for occurred, kind in planned]  # households evolve in occurred order
    made.sort(key=lambda r: (_envelope(r).produced, str(_envelope(r).notification_id)))
    yield from made


def stream(
    start: datetime,
    *,
    seed: int,
    count: int,
    span: timedelta,
    config: SimulatorConfig | None = None,
    reference: ReferenceData | None = None,
) -> Iterator[Record]:
    """Yield `count` notifications occurring in [start, start + span), in produced order, lazily.

    The same mix as `generate` (not the same records), built an hour at a time: the count is shared over the
    kinds by weight, each kind's over the hours by its hour-of-week profile, and a record is yielded once no
    later hour can produce before it.  Memory is bounded by the records produced within ~12 hours (the longest
    reporting delay) and `config.household_pool_limit`, not by `count`.  `reference` defaults to the regional
    reference of `config.reference_seed`.
    """
    if start.tzinfo is None or start.utcoffset() is None:
        raise ValueError("start: must carry a UTC offset")
    if count < 0 or span <= timedelta(0):
        raise ValueError("count must not be negative and span must be positive")
    config = config or SimulatorConfig()
    run = _Run(seed, config, reference)
    others = tuple((k, w) for k, w in config.kind_weights if k != _INCIDENT)
    incident_weight = sum(w for k, w in config.kind_weights if k == _INCIDENT)
    n_incidents, n_others = apportion(count, [incident_weight, sum(w for _, w in others)])
    clocks = {incident: _Clock(start, span, incident, config) for incident in (True, False)}
    incident_hours = clocks[True].counts(n_incidents, run.rng.random())
    other_hours = clocks[False].counts(n_others, run.rng.random())
    waiting: list[tuple[datetime, str, int, Record]] = []  # a heap by produced instant
    made = 0
    for i, (incidents_now, others_now) in enumerate(zip(incident_hours, other_hours, strict=True)):
        planned = [(clocks[True].draw_in(run.rng, i), _INCIDENT) for _ in range(incidents_now)]
        planned += [(clocks[False].draw_in(run.rng, i), _weighted(run.rng, others)) for _ in range(others_now)]
        for occurred, kind in sorted(planned):
            record = run.build(kind, occurred)
            heapq.heappush(waiting, (_envelope(record).produced, str(_envelope(record).notification_id), made, record))
            made += 1
        horizon = clocks[True].starts[i + 1] if i + 1 < len(clocks[True].starts) else None
        while waiting and (horizon is None or waiting[0][0] < horizon):
            yield heapq.heappop(waiting)[3]


def apportion(total: int, weights: Sequence[float]) -> list[int]:
    """`total` shared in proportion to `weights` (largest remainders, ties to the earlier): sums to `total`."""
    whole = sum(weights)
    exact = [total * w / whole for w in weights]
    counts = [math.floor(x) for x in exact]
    by_remainder = sorted(range(len(exact)), key=lambda i: (counts[i] - exact[i], i))
    for i in by_remainder[: total - sum(counts)]:
        counts[i] += 1
    return counts


def _envelope(record: Record) -> Envelope:
    envelope = getattr(record, "envelope", None)
    if not isinstance(envelope, Envelope):
        raise TypeError(f"{type(record).__name__} has no envelope")
    return envelope


def simulate_night(start: datetime, seed: int, count: int) -> list[Record]:
    """`count` notifications occurring over the 15 hours from `start` (e.g. 18:00 to 09:00)."""
    return list(generate(start, seed=seed, count=count, span=NIGHT))


def to_jsonl(models: Iterable[Record]) -> str:
    """JSON Lines of ``{"kind": "<RecordName>", "payload": {...}}``, one record a line."""
    return "".join(
        f'{{"kind": {json.dumps(type(m).__name__)}, "payload": {m.model_dump_json()}}}\n' for m in models
    )


_AGENCY_OPTIONS = {
    "police": AgencyType.POLICE,
    "health": AgencyType.HEALTH,
    "probation": AgencyType.PROBATION,
    "youth-justice": AgencyType.YOUTH_JUSTICE,
}


def _aware(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    if value.tzinfo is None or value.utcoffset() is None:
        raise argparse.ArgumentTypeError("must carry a UTC offset, e.g. 2026-11-20T18:00:00+00:00")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: write synthetic notifications as JSON Lines to stdout, or the reference files."""
    parser = argparse.ArgumentParser(
        prog="python -m producers.simulator", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--seed", type=int, default=7, help="random seed (same seed, same output)")
    parser.add_argument("--count", type=int, default=None, help="number of notifications")
    parser.add_argument("--hours", type=float, default=None, help="span in hours (default: a 15-hour night)")
    parser.add_argument("--start", type=_aware, help="first instant, ISO 8601 with a UTC offset")
    parser.add_argument(
        "--write-reference",
        metavar="DIR",
        type=Path,
        default=None,
        help="write schools.json and organisations.json (seed --reference-seed) into DIR and exit",
    )
    parser.add_argument(
        "--reference-seed", type=int, default=REFERENCE_SEED, help="seed of the reference data (default 2026)"
    )
    parser.add_argument(
        "--national",
        action="store_true",
        help="England's mix (153 authorities, ~24,500 schools), streamed; --hours defaults to a year (8760)",
    )
    parser.add_argument(
        "--agency",
        choices=sorted(_AGENCY_OPTIONS),
        default=None,
        help="only this agency's records (`mash publish` takes one agency's file at a time)",
    )
    args = parser.parse_args(argv)
    if args.write_reference is not None:
        for path in _write_reference(args):
            print(path, file=sys.stderr)
        return 0
    if args.start is None:
        parser.error("--start is required (the simulator never reads the clock)")
    if args.count is None and args.hours is None and not args.national:
        parser.error("give --count, --hours or both")
    records = _records(args)
    if args.agency is not None:
        agency = _AGENCY_OPTIONS[args.agency]
        records = (r for r in records if _envelope(r).source.agency_type is agency)
    for record in records:  # line by line: a national year is never held in memory
        sys.stdout.write(to_jsonl((record,)))
    return 0


def _write_reference(args: argparse.Namespace) -> list[Path]:
    if args.national:
        from producers import national  # imports this module: loaded here, only when asked for

        return national.write_national_reference(args.write_reference, args.reference_seed)
    return write_reference(args.write_reference, args.reference_seed)


def _records(args: argparse.Namespace) -> Iterator[Record]:
    if args.national:
        from producers import national

        span = timedelta(hours=args.hours) if args.hours is not None else national.YEAR
        count = args.count if args.count is not None else round(national.NATIONAL_PER_YEAR * (span / national.YEAR))
        return national.year(args.start, seed=args.seed, count=count, span=span, reference_seed=args.reference_seed)
    span = timedelta(hours=args.hours) if args.hours is not None else NIGHT
    config = SimulatorConfig(reference_seed=args.reference_seed)
    return generate(args.start, seed=args.seed, count=args.count, span=span, config=config)


if __name__ == "__main__":
    raise SystemExit(main())
