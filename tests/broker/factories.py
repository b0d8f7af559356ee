"""Synthetic notifications, schools, stand-in deadlines, and `run`: one record through the casebook.

Every person is synthetic ("Test Child-One"); NHS numbers are made in the 999 test range with a valid
check digit by `nhs_number(n)`.  Import with `from tests.broker.factories import ...` (run pytest as
`python -m pytest` from the repository root).
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from broker.casebook import TABLES, Person, Step, apply_writes, load_person, on_notification
from broker.reference import School
from broker.routing import DeadlineCalculator
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
    PoliceChildConcern,
    PoliceDomesticAbuseIncident,
    Priority,
    ProbationEvent,
    ProbationRiskNotification,
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
    "BASE",
    "DORSET",
    "SCHOOLS",
    "SECRET",
    "SHROPSHIRE",
    "StubDeadlines",
    "adult",
    "child",
    "envelope",
    "health_notification",
    "new_tables",
    "nhs_number",
    "person_of",
    "police_concern",
    "police_incident",
    "probation_notification",
    "run",
    "school",
    "youth_justice_notification",
]

SHROPSHIRE = "E06000051"
DORSET = "E06000059"
SECRET = b"test-only-identity-secret"
#: A Wednesday evening in term time (20:00 UTC, 20:00 GMT).
BASE = datetime(2025, 11, 19, 20, 0, tzinfo=UTC)
_WORDS = ("One", "Two", "Three", "Four", "Five", "Six", "Seven", "Eight", "Nine", "Ten")
_REFS = itertools.count(1)

_ORGS = {
    AgencyType.POLICE: ("TESTFORCE", "Test Constabulary", "Test Police Records"),
    AgencyType.HEALTH: ("TESTTRUST", "Test NHS Trust", "Test Health Record"),
    AgencyType.PROBATION: ("TESTREGION", "Test Probation Region", "Test Case Management"),
    AgencyType.YOUTH_JUSTICE: ("TESTYJS", "Test Youth Justice Service", "Test YJ Case System"),
}


def nhs_number(n: int) -> str:
    """A synthetic 10-digit NHS number in the 999 test range with a valid mod-11 check digit."""
    for candidate in itertools.count(n):
        prefix = f"999{candidate % 1_000_000:06d}"
        total = sum(int(d) * w for d, w in zip(prefix, range(10, 1, -1), strict=True))
        check = (11 - total % 11) % 11
        if check != 10:
            return prefix + str(check)
    raise AssertionError("unreachable")


def school(urn: str, authority: str = SHROPSHIRE, *, start: time = time(8, 50), open: bool = True) -> School:
    """A synthetic school for the directory."""
    return School(urn=urn, name=f"Test School {urn}", authority=authority, phase="primary", start_time=start, open=open)


SCHOOLS = {
    "900001": school("900001"),
    "900002": school("900002", start=time(8, 45)),
    "900003": school("900003", DORSET, start=time(9, 0)),
    "900009": school("900009", open=False),
}


def envelope(
    agency: AgencyType = AgencyType.POLICE,
    *,
    notification_id: uuid.UUID | None = None,
    action: Action = Action.NEW,
    supersedes: uuid.UUID | None = None,
    occurred: datetime = BASE,
    reported: datetime | None = None,
    produced: datetime | None = None,
    authority: str = SHROPSHIRE,
    priority: Priority = Priority.ROUTINE,
    caveats: Iterable[CaveatType] = (),
    source_reference: str | None = None,
    lawful_basis: LawfulBasis = LawfulBasis.CHILDREN_ACT_2004_S11,
) -> Envelope:
    """A valid envelope; `reported` defaults to 30 minutes after `occurred`, `produced` to 5 after that."""
    code, name, system = _ORGS[agency]
    reported = reported or occurred + timedelta(minutes=30)
    return Envelope(
        notification_id=notification_id or uuid.uuid4(),
        action=action,
        supersedes=supersedes,
        source=Source(agency_type=agency, organisation_code=code, organisation_name=name, system=system),
        source_reference=source_reference or f"TEST/{next(_REFS):06d}",
        occurred=occurred,
        reported=reported,
        produced=produced or reported + timedelta(minutes=5),
        home_local_authority=authority,
        security_marking=SecurityMarking.OFFICIAL_SENSITIVE,
        lawful_basis=lawful_basis,
        consent=Consent(status=ConsentStatus.NOT_SOUGHT_RISK_OF_HARM, recorded_by_role="officer"),
        priority=priority,
        safety_caveats=[SafetyCaveat(type=c, applies_to_role=AdultRole.SUSPECT) for c in caveats],
    )


def child(
    n: int = 1,
    *,
    given_name: str | None = "Test",
    family_name: str | None = None,
    date_of_birth: date | None = date(2016, 5, 1),
    nhs: str | bool | None = True,
    postcode: str | None = "SY1 1AA",
    school_urn: str | None = None,
    education: EducationStatus | None = None,
    present: bool | None = True,
    unborn: bool = False,
    expected_due_date: date | None = None,
    mother_index: int | None = None,
) -> ChildSubject:
    """Synthetic child number `n` ("Test Child-One"); `nhs=True` makes a valid number, False/None none.

    `school_urn` sets education SCHOOL at that URN; otherwise `education` (default UNKNOWN).
    An unborn child has no name, date of birth or NHS number.
    """
    if unborn:
        return ChildSubject(
            family_name=family_name,
            postcode=postcode,
            unborn=True,
            expected_due_date=expected_due_date or date(2026, 3, 1),
            mother_index=0 if mother_index is None else mother_index,
            education=EducationSetting(status=EducationStatus.NOT_SCHOOL_AGE),
        )
    if school_urn is not None:
        setting = EducationSetting(status=education or EducationStatus.SCHOOL, urn=school_urn)
    else:
        setting = EducationSetting(status=education or EducationStatus.UNKNOWN)
    number = nhs_number(100 + n) if nhs is True else (nhs or None)
    return ChildSubject(
        given_name=given_name,
        family_name=family_name if family_name is not None else f"Child-{_WORDS[(n - 1) % len(_WORDS)]}",
        date_of_birth=date_of_birth,
        nhs_number=number if isinstance(number, str) else None,
        postcode=postcode,
        present=present,
        education=setting,
    )


def adult(
    role: AdultRole = AdultRole.VICTIM,
    n: int = 1,
    *,
    given_name: str | None = "Test",
    family_name: str | None = None,
    date_of_birth: date | None = date(1990, 2, 3),
    nhs: str | bool | None = True,
    postcode: str | None = "SY1 1AA",
) -> AdultSubject:
    """Synthetic adult number `n` ("Test Adult-One") in `role`."""
    number = nhs_number(500 + n) if nhs is True else (nhs or None)
    return AdultSubject(
        role=role,
        given_name=given_name,
        family_name=family_name if family_name is not None else f"Adult-{_WORDS[(n - 1) % len(_WORDS)]}",
        date_of_birth=date_of_birth,
        nhs_number=number if isinstance(number, str) else None,
        postcode=postcode,
    )


def police_incident(
    children: Sequence[ChildSubject] = (),
    *,
    risk: RiskLevel = RiskLevel.STANDARD,
    ticks: int | None = 3,
    professional_judgement: bool = False,
    welfare_check_made: bool = True,
    victim: AdultSubject | None = None,
    suspect: AdultSubject | None = None,
    police_reference: str = "TESTPPN/0001",
    summary: str | None = "Synthetic narrative for the front door only.",
    **envelope_kw: Any,
) -> PoliceDomesticAbuseIncident:
    """A police domestic abuse incident (public protection notice)."""
    return PoliceDomesticAbuseIncident(
        envelope=envelope(AgencyType.POLICE, **envelope_kw),
        police_reference=police_reference,
        risk=RiskAssessment(
            tool=RiskTool.DASH, level=risk, ticks=ticks, professional_judgement_marac=professional_judgement
        ),
        welfare_check_made=welfare_check_made,
        victim=victim or adult(AdultRole.VICTIM, 1),
        suspect=suspect or adult(AdultRole.SUSPECT, 2),
        children=list(children),
        summary=summary,
    )


def police_concern(
    children: Sequence[ChildSubject] | None = None,
    *,
    categories: Sequence[ConcernCategory] = (ConcernCategory.NEGLECT,),
    adults: Sequence[AdultSubject] = (),
    **envelope_kw: Any,
) -> PoliceChildConcern:
    """A police child concern."""
    return PoliceChildConcern(
        envelope=envelope(AgencyType.POLICE, **envelope_kw),
        police_reference="TESTCC/0001",
        categories=list(categories),
        children=list(children) if children is not None else [child()],
        adults=list(adults),
        summary="Synthetic concern narrative.",
    )


def health_notification(
    children: Sequence[ChildSubject] | None = None,
    *,
    setting: HealthSetting = HealthSetting.EMERGENCY_DEPARTMENT,
    categories: Sequence[ConcernCategory] = (ConcernCategory.PHYSICAL_ABUSE,),
    adults: Sequence[AdultSubject] = (),
    **envelope_kw: Any,
) -> HealthSafeguardingNotification:
    """A health safeguarding notification (default: ED, physical abuse, one child)."""
    return HealthSafeguardingNotification(
        envelope=envelope(AgencyType.HEALTH, **envelope_kw),
        setting=setting,
        categories=list(categories),
        children=list(children) if children is not None else [child()],
        adults=list(adults),
        summary="Synthetic health narrative.",
    )


def probation_notification(
    children: Sequence[ChildSubject] = (),
    *,
    event: ProbationEvent = ProbationEvent.RISK_ESCALATION,
    risk_to_children: RiskLevel = RiskLevel.MEDIUM,
    domestic_abuse_related: bool = False,
    person: AdultSubject | None = None,
    **envelope_kw: Any,
) -> ProbationRiskNotification:
    """A probation risk notification (default: no named child)."""
    return ProbationRiskNotification(
        envelope=envelope(AgencyType.PROBATION, **envelope_kw),
        person=person or adult(AdultRole.PERSON_ON_PROBATION, 3),
        event=event,
        risk_to_children=risk_to_children,
        domestic_abuse_related=domestic_abuse_related,
        household_postcode="SY1 1AA",
        children=list(children),
        summary="Synthetic probation narrative.",
    )


def youth_justice_notification(
    subject: ChildSubject | None = None,
    *,
    event: YouthJusticeEvent = YouthJusticeEvent.ARREST,
    safety_wellbeing_risk: RiskLevel = RiskLevel.MEDIUM,
    risk_of_serious_harm: RiskLevel = RiskLevel.LOW,
    domestic_abuse_related: bool = False,
    **envelope_kw: Any,
) -> YouthJusticeNotification:
    """A youth justice notification about one child (default: a 15-year-old)."""
    return YouthJusticeNotification(
        envelope=envelope(AgencyType.YOUTH_JUSTICE, **envelope_kw),
        child=subject or child(7, date_of_birth=date(2010, 4, 4)),
        event=event,
        safety_wellbeing_risk=safety_wellbeing_risk,
        risk_of_serious_harm=risk_of_serious_harm,
        domestic_abuse_related=domestic_abuse_related,
        summary="Synthetic youth justice narrative.",
    )


# ------------------------------------------------------------------------------- deadlines stand-in
@dataclass(frozen=True)
class StubDeadline:
    """A deadline answer."""

    at: datetime
    verified: bool = True


@dataclass
class StubDeadlines:
    """Predictable deadlines: encompass = reported + 12h, front door = received + 1 day, triage + 13h.

    Out of hours: before 09:00 / from 17:00 UTC or at a weekend, unless `always_out_of_hours` is set.
    Records each call so tests can check the arguments.
    """

    verified: bool = True
    always_out_of_hours: bool | None = None
    calls: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)

    def encompass(self, reported: datetime, authority_code: str, school_start: time | None) -> StubDeadline:
        self.calls.append(("encompass", (reported, authority_code, school_start)))
        return StubDeadline(reported + timedelta(hours=12), self.verified)

    def frontdoor(self, received: datetime, authority_code: str, rag: str | None) -> StubDeadline:
        self.calls.append(("frontdoor", (received, authority_code, rag)))
        return StubDeadline(received + timedelta(days=1))

    def dvtriage(self, received: datetime, authority_code: str) -> StubDeadline:
        self.calls.append(("dvtriage", (received, authority_code)))
        return StubDeadline(received + timedelta(hours=13))

    def out_of_hours(self, instant: datetime, authority_code: str) -> bool:
        self.calls.append(("out_of_hours", (instant, authority_code)))
        if self.always_out_of_hours is not None:
            return self.always_out_of_hours
        local = instant.astimezone(UTC)
        return local.weekday() >= 5 or not time(9) <= local.time() < time(17)


# ------------------------------------------------------------------------------------ casebook runs
def new_tables() -> dict[str, dict[str, Any]]:
    """Empty router tables, one plain dict per `broker.casebook.TABLES` name (what faust tables hold)."""
    return {name: {} for name in TABLES}


def run(
    tables: dict[str, dict[str, Any]],
    notification: Any,
    *,
    received: datetime | None = None,
    deadlines: DeadlineCalculator | None = None,
    schools: dict[str, School] | None = None,
) -> Step:
    """What the worker does with one record: `on_notification`, then `apply_writes` (outputs 'acknowledged').

    `received` defaults to one hour after the notification's `occurred`.
    """
    step = on_notification(
        notification,
        received=received or notification.envelope.occurred + timedelta(hours=1),
        tables=tables,
        schools=SCHOOLS if schools is None else schools,
        secret=SECRET,
        deadlines=deadlines if deadlines is not None else StubDeadlines(),
    )
    apply_writes(tables, step.writes)
    return step


def person_of(tables: dict[str, dict[str, Any]], key: str, authority: str = SHROPSHIRE) -> Person:
    """The stored record a person key resolves to (following alias pointers), for assertions."""
    table_key = f"{authority}|{key}"
    while "root" in (value := tables["people"][table_key]):
        table_key = f"{authority}|{value['root']}"
    return load_person(value)
