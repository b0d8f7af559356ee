"""Routing: which outputs an accepted agency notification produces, to whom, and by when.

PURE: no Kafka, no I/O, no clock reads.  The adapter looks up the state (`RoutingContext`), passes the
`received` instant and the identity secret, and applies the returned `Decision` (emit outputs, append
chronology entries, record aliases, victim history and cumulative-concern markers, remember `produced`
for a later AMEND / WITHDRAW, audit every output).

Rules as built (defaults; per-authority settings come from `broker.authority.authority_or_default`):

* FRONT_DOOR (recipient: home authority): every notification about a child; a police domestic abuse
  incident only when it lists children; a probation notification with no named child is sent as
  `adult_risk_only`.  One referral per notification (one home authority per envelope).
  `decision_due` = `deadlines.frontdoor(received, authority, None)`.
* ENCOMPASS (recipient: URN): police domestic abuse incidents only; one notice per child whose setting is a
  SCHOOL (or a NURSERY when the authority opts in) that is not marked closed in the schools directory.  The
  school's authority and start time come from the directory (home authority and the authority default
  start when the URN is unknown).  `due` = `deadlines.encompass(reported, school authority, start)`.
  A child aged 4-17 on the incident's local date with status HOME_EDUCATED / NOT_IN_EDUCATION / UNKNOWN
  (or at a school the directory marks closed) is flagged `education_contact_needed` on the referral.
* DV_TRIAGE (recipient: home authority): police domestic abuse incidents; police child concerns and health
  notifications whose categories include DOMESTIC_ABUSE; probation and youth justice notifications marked
  `domestic_abuse_related`.  `meeting_at` = `deadlines.dvtriage(received, authority)`.  MARAC criteria:
  DASH_HIGH (police risk HIGH / VERY_HIGH), DASH_14_PLUS_TICKS (ticks >= 14), ESCALATION_3_INCIDENTS_12_MONTHS
  (this + the victim's other incidents with occurred in [occurred - 365 days, occurred] >= 3),
  REPEAT_WITHIN_12_MONTHS_OF_MARAC (a MARAC-referred incident of the victim with occurred in
  [occurred - 365 days, occurred)), PROFESSIONAL_JUDGEMENT (the officer's flag).  Any criterion -> MARAC.
* EMERGENCY_DUTY (recipient: home authority): notification lists a child, and (stated risk HIGH / VERY_HIGH
  or priority IMMEDIATE), and `deadlines.out_of_hours(received, authority)`.
* CUMULATIVE_CONCERN (recipient: home authority, one per child): see `_threshold_crossing` (3+ notifications,
  2+ agency types, inside a 90-day window by occurred; once per crossing) and `_SIGNIFICANT` (significant
  event about a child with an open referral).  A threshold alert wins over a significant-event alert for the
  same child and notification (they would share an id).
* AMEND: routed afresh under the AMEND's id.  Every output of the superseded notification is recalled
  (AMENDED) except a front door referral to the same authority, which the new referral replaces through
  `supersedes_referral`.  (Reissued notices and items carry no link to what they replace, so their old
  copies are recalled too, which also cancels their SLA clocks.)  WITHDRAW: every prior output recalled
  (WITHDRAWN), nothing new.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol
from uuid import UUID
from zoneinfo import ZoneInfo

from broker.authority import authority_or_default
from broker.errors import BrokerError
from broker.identity import AgencyNotification, PersonKeys, Subjects, children_of, subjects
from broker.reference import School
from schemas.models import (
    Action,
    AdultRole,
    AgencyType,
    ChildSubject,
    ConcernCategory,
    CumulativeConcernAlert,
    CumulativeTrigger,
    DvTriageItem,
    EducationStatus,
    EmergencyDutyAlert,
    EncompassNotice,
    Envelope,
    FrontDoorReferral,
    HealthSafeguardingNotification,
    HealthSetting,
    LawfulBasis,
    MaracCriterion,
    MaracReferral,
    PoliceChildConcern,
    PoliceDomesticAbuseIncident,
    Priority,
    ProbationEvent,
    ProbationRiskNotification,
    Recall,
    RecallReason,
    ReferralChild,
    RiskLevel,
    Route,
    YouthJusticeEvent,
    YouthJusticeNotification,
)

__all__ = [
    "OUTPUT_NAMESPACE",
    "ChildState",
    "ChronologyEntry",
    "CumulativeMarker",
    "Deadline",
    "DeadlineCalculator",
    "Decision",
    "PriorOutput",
    "RoutedOutput",
    "RoutingContext",
    "RoutingError",
    "VictimHistory",
    "VictimIncident",
    "output_id",
    "route",
]

#: Fixed namespace of every derived output id (never change it: ids must survive redelivery and releases).
OUTPUT_NAMESPACE = UUID("b0c8bfa8-2067-4a11-ba00-ccb129f882e6")
CUMULATIVE_WINDOW = timedelta(days=90)
CUMULATIVE_MIN_NOTIFICATIONS = 3
CUMULATIVE_MIN_AGENCY_TYPES = 2
MARAC_WINDOW = timedelta(days=365)
MARAC_ESCALATION_INCIDENTS = 3
MARAC_TICKS = 14
EDUCATION_AGES = range(4, 18)  # aged 4-17 inclusive on the incident's local date
LONDON = ZoneInfo("Europe/London")

_HIGH = frozenset({RiskLevel.HIGH, RiskLevel.VERY_HIGH})
_NO_SETTING = frozenset({EducationStatus.HOME_EDUCATED, EducationStatus.NOT_IN_EDUCATION, EducationStatus.UNKNOWN})
_RISK_ORDER = (
    RiskLevel.UNKNOWN,
    RiskLevel.STANDARD,
    RiskLevel.LOW,
    RiskLevel.MEDIUM,
    RiskLevel.HIGH,
    RiskLevel.VERY_HIGH,
)
_SIGNIFICANT_PROBATION = frozenset(
    {
        ProbationEvent.RELEASE_FROM_CUSTODY,
        ProbationEvent.BAIL_CONDITION_CHANGE,
        ProbationEvent.LICENCE_CONDITION_CHANGE,
        ProbationEvent.ADDRESS_CHANGE,
    }
)
_ROUTE_ORDER = tuple(Route)

Output = (
    FrontDoorReferral
    | EncompassNotice
    | Recall
    | DvTriageItem
    | MaracReferral
    | EmergencyDutyAlert
    | CumulativeConcernAlert
)

_PURPOSE = {
    Route.FRONT_DOOR: "front door referral: safeguarding information about a child",
    Route.ENCOMPASS: "Operation Encompass: pupil involved in a domestic abuse incident",
    Route.DV_TRIAGE: "daily Domestic Violence Triage item",
    Route.MARAC: "referral to MARAC: high-risk domestic abuse",
    Route.EMERGENCY_DUTY: "emergency duty alert: high risk or immediate, out of office hours",
    Route.CUMULATIVE_CONCERN: "cumulative concern alert about a child",
}


class RoutingError(BrokerError):
    """The routing call itself is wrong (e.g. a naive instant); the message names the argument and rule."""


# ------------------------------------------------------------------------------------------ deadlines
class Deadline(Protocol):
    """A due instant (aware UTC) and whether the calendar behind it is verified."""

    @property
    def at(self) -> datetime: ...

    @property
    def verified(self) -> bool: ...


class DeadlineCalculator(Protocol):
    """The deadline rules routing needs (see `broker._deadlines.DefaultDeadlines`)."""

    def encompass(self, reported: datetime, authority_code: str, school_start: time | None) -> Deadline: ...

    def frontdoor(self, received: datetime, authority_code: str, rag: str | None) -> Deadline: ...

    def dvtriage(self, received: datetime, authority_code: str) -> Deadline: ...

    def out_of_hours(self, instant: datetime, authority_code: str) -> bool: ...


# -------------------------------------------------------------------------------------------- state
@dataclass(frozen=True)
class ChronologyEntry:
    """One notification in a child's chronology: no narrative, only what routing and people need.

    `action` and `supersedes` let routing ignore what was amended or withdrawn: an entry whose id is the
    `supersedes` of another entry no longer counts, and WITHDRAW entries never count.
    """

    notification_id: UUID
    agency_type: AgencyType
    kind: str
    occurred: datetime
    routes: tuple[Route, ...] = ()
    action: Action = Action.NEW
    supersedes: UUID | None = None


@dataclass(frozen=True)
class CumulativeMarker:
    """A cumulative-concern alert raised for a child; `at` is the window end (the crossing instant)."""

    alert_id: UUID
    notification_id: UUID
    trigger: CumulativeTrigger
    at: datetime


@dataclass(frozen=True)
class ChildState:
    """What the adapter knows of one child key: chronology, alerts raised, whether a referral is open."""

    chronology: tuple[ChronologyEntry, ...] = ()
    alerts: tuple[CumulativeMarker, ...] = ()
    open_referral: bool = False


@dataclass(frozen=True)
class VictimIncident:
    """One domestic abuse notification about a victim, and whether it was referred to MARAC."""

    notification_id: UUID
    occurred: datetime
    marac_referred: bool = False
    action: Action = Action.NEW
    supersedes: UUID | None = None


@dataclass(frozen=True)
class VictimHistory:
    """A victim key's domestic abuse history."""

    incidents: tuple[VictimIncident, ...] = ()


@dataclass(frozen=True)
class PriorOutput:
    """An output already produced for a notification (kept for recall on AMEND / WITHDRAW).

    `payload_key` is the child key for per-child outputs (Encompass notice, cumulative alert), else None.
    """

    output_id: UUID
    route: Route
    recipient: str
    payload_key: str | None = None


@dataclass(frozen=True)
class RoutingContext:
    """State the adapter looked up for one notification.

    children: ChildState by child key; give every key of `PersonKeys.all` you hold state for (primary and
      aliases) - routing merges them.
    victims: VictimHistory by adult key (likewise primary and aliases).
    prior_outputs: for an AMEND / WITHDRAW, the `Decision.produced` of the superseded notification.
    schools: the schools directory by URN.
    """

    children: Mapping[str, ChildState] = field(default_factory=dict)
    victims: Mapping[str, VictimHistory] = field(default_factory=dict)
    prior_outputs: tuple[PriorOutput, ...] = ()
    schools: Mapping[str, School] = field(default_factory=dict)


@dataclass(frozen=True)
class RoutedOutput:
    """One output to emit: where (route, recipient), what (payload), and what the audit record needs."""

    route: Route
    recipient: str
    payload: Output
    output_id: UUID
    payload_key: str | None
    lawful_basis: LawfulBasis
    purpose: str


@dataclass(frozen=True)
class Decision:
    """Everything one routing produced; the adapter applies it (all keys are identity keys).

    chronology: (primary child key, entry) to append.
    aliases: (alias key, primary key) pairs to record, children and adults.
    victim_updates: (victim key, incident) to append to the victim's history.
    cumulative_markers: (child key, marker) to record.
    produced: this notification's outputs (recalls excluded), to store for a later AMEND / WITHDRAW.
    notes: field paths and rules of what identity or routing noticed (never values).
    """

    notification_id: UUID
    action: Action
    outputs: tuple[RoutedOutput, ...]
    chronology: tuple[tuple[str, ChronologyEntry], ...]
    aliases: tuple[tuple[str, str], ...]
    victim_updates: tuple[tuple[str, VictimIncident], ...]
    cumulative_markers: tuple[tuple[str, CumulativeMarker], ...]
    produced: tuple[PriorOutput, ...]
    notes: tuple[str, ...] = ()

    def of_route(self, route: Route) -> tuple[RoutedOutput, ...]:
        """The outputs on one route (recalls are on the route of what they recall)."""
        return tuple(o for o in self.outputs if o.route is route)


def output_id(notification_id: UUID, route: Route, recipient: str, child_key: str | None = None) -> UUID:
    """uuid5 over (notification id, route, recipient[, child key]) in OUTPUT_NAMESPACE."""
    parts = [str(notification_id), route.value, recipient]
    if child_key is not None:
        parts.append(child_key)
    return uuid.uuid5(OUTPUT_NAMESPACE, "|".join(parts))


def _recall_id(notification_id: UUID, route: Route, recalled: UUID) -> UUID:
    return uuid.uuid5(OUTPUT_NAMESPACE, f"{notification_id}|{route.value}|recall|{recalled}")


# ------------------------------------------------------------------------------------------ helpers
def _utc(value: datetime, argument: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise RoutingError(f"{argument}: must carry a UTC offset")
    return value.astimezone(UTC)


def _age_on(born: date, day: date) -> int:
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def _stated_risk(n: AgencyNotification) -> RiskLevel:
    """The highest risk the sender stated (police DASH/DARA, probation risk to children, YJ either risk)."""
    match n:
        case PoliceDomesticAbuseIncident():
            return n.risk.level
        case ProbationRiskNotification():
            return n.risk_to_children
        case YouthJusticeNotification():
            return max(n.safety_wellbeing_risk, n.risk_of_serious_harm, key=_RISK_ORDER.index)
        case _:
            return RiskLevel.UNKNOWN


def _domestic_abuse(n: AgencyNotification) -> bool:
    match n:
        case PoliceDomesticAbuseIncident():
            return True
        case PoliceChildConcern() | HealthSafeguardingNotification():
            return ConcernCategory.DOMESTIC_ABUSE in n.categories
        case ProbationRiskNotification() | YouthJusticeNotification():
            return n.domestic_abuse_related


def _significant_event(n: AgencyNotification) -> bool:
    match n:
        case ProbationRiskNotification():
            return n.event in _SIGNIFICANT_PROBATION
        case HealthSafeguardingNotification():
            return n.setting is HealthSetting.MIDWIFERY and any(c.unborn for c in n.children)
        case YouthJusticeNotification():
            return n.event is YouthJusticeEvent.RELEASE_FROM_CUSTODY
        case _:
            return False


def _victim_and_perpetrator(n: AgencyNotification, who: Subjects) -> tuple[str | None, str | None]:
    """Victim and perpetrator keys: police incident victim / suspect fields; probation: the person on
    probation; child concern and health: the first adults with role VICTIM / SUSPECT; youth justice: none."""
    victim: PersonKeys | None
    perpetrator: PersonKeys | None
    match n:
        case PoliceDomesticAbuseIncident():
            victim, perpetrator = who.adults[0][1], who.adults[1][1]
        case ProbationRiskNotification():
            victim, perpetrator = None, who.adults[0][1]
        case PoliceChildConcern() | HealthSafeguardingNotification():
            victim, perpetrator = who.adult(AdultRole.VICTIM), who.adult(AdultRole.SUSPECT)
        case _:
            victim, perpetrator = None, None
    return (victim.primary if victim else None, perpetrator.primary if perpetrator else None)


def _merged_child(ctx: RoutingContext, keys: PersonKeys) -> ChildState:
    states = [ctx.children[k] for k in keys.all if k in ctx.children]
    return ChildState(
        chronology=tuple(e for s in states for e in s.chronology),
        alerts=tuple(a for s in states for a in s.alerts),
        open_referral=any(s.open_referral for s in states),
    )


def _superseded(entries: Iterable[ChronologyEntry | VictimIncident]) -> set[UUID]:
    return {e.supersedes for e in entries if e.supersedes is not None}


def _effective_chronology(
    entries: Sequence[ChronologyEntry], this: ChronologyEntry
) -> tuple[list[ChronologyEntry], set[UUID]]:
    """Entries that still count (this one replaces any copy of itself), and the ids no longer counting."""
    everything = [e for e in entries if e.notification_id != this.notification_id] + [this]
    gone = _superseded(everything) | {e.notification_id for e in everything if e.action is Action.WITHDRAW}
    by_id = {e.notification_id: e for e in everything}
    return [e for e in by_id.values() if e.notification_id not in gone], gone


def _members(entries: Sequence[ChronologyEntry], at: datetime) -> list[ChronologyEntry]:
    """Entries inside the 90-day window ending at `at`: occurred in (at - 90 days, at]."""
    return sorted(
        (e for e in entries if e.occurred <= at < e.occurred + CUMULATIVE_WINDOW),
        key=lambda e: (e.occurred, str(e.notification_id)),
    )


def _holds(members: Sequence[ChronologyEntry]) -> bool:
    return (
        len(members) >= CUMULATIVE_MIN_NOTIFICATIONS
        and len({e.agency_type for e in members}) >= CUMULATIVE_MIN_AGENCY_TYPES
    )


def _threshold_crossing(
    entries: Sequence[ChronologyEntry], this: ChronologyEntry, markers: Sequence[CumulativeMarker]
) -> tuple[datetime, list[ChronologyEntry]] | None:
    """The crossing instant and window members when this notification should raise a threshold alert.

    The condition at instant T: the window (T - 90 days, T] holds 3+ notifications from 2+ agency types.
    A crossing is a maximal stretch of time over which the condition holds.  This notification (occurred
    t) raises an alert when it is inside a crossing (the crossing meets [t, t + 90 days)) that has no
    THRESHOLD marker yet (marker instant inside the crossing).  The alert's window ends at the first instant
    of that crossing at or after t.  So: one alert per crossing; a 5th notification inside the same crossing
    raises nothing; once the condition has lapsed, the next crossing alerts again.  Late (out-of-order)
    notifications are handled the same way because crossings are recomputed from the whole chronology.
    """
    t = this.occurred
    points = sorted({e.occurred for e in entries} | {e.occurred + CUMULATIVE_WINDOW for e in entries})
    holding = [_holds(_members(entries, p)) for p in points]
    i = 0
    while i < len(points):
        if not holding[i]:
            i += 1
            continue
        j = i
        while j < len(points) and holding[j]:
            j += 1
        start, end = points[i], points[j]  # the last point is an exit, never holding, so j < len(points)
        if start < t + CUMULATIVE_WINDOW and end > t and not any(start <= m.at < end for m in markers):
            first = max(start, t)
            return first, _members(entries, first)
        i = j
    return None


# ------------------------------------------------------------------------------------------- route
def route(
    notification: AgencyNotification,
    *,
    ctx: RoutingContext,
    received: datetime,
    secret: bytes,
    deadlines: DeadlineCalculator,
) -> Decision:
    """Route one accepted notification (NEW, AMEND or WITHDRAW) given the looked-up state."""
    received = _utc(received, "received")
    return _Router(notification, ctx, received, secret, deadlines).decide()


class _Router:
    """One routing: collects outputs and per-child routes while applying the rules in order."""

    def __init__(
        self,
        n: AgencyNotification,
        ctx: RoutingContext,
        received: datetime,
        secret: bytes,
        deadlines: DeadlineCalculator,
    ) -> None:
        self.n = n
        self.env: Envelope = n.envelope
        self.ctx = ctx
        self.received = received
        self.deadlines = deadlines
        self.who = subjects(n, secret)
        self.children: list[tuple[str, ChildSubject, PersonKeys]] = [
            (path, child, keys) for (path, child), keys in zip(children_of(n), self.who.children, strict=True)
        ]
        self.child_keys = [keys.primary for _, _, keys in self.children]
        self.authority = self.env.home_local_authority
        self.config = authority_or_default(self.authority)
        self.kind = type(n).__name__
        self.outputs: list[RoutedOutput] = []
        self.child_routes: dict[str, set[Route]] = {k: set() for k in self.child_keys}
        self.notes: list[str] = list(self.who.notes)
        self.markers: list[tuple[str, CumulativeMarker]] = []
        self.victim_updates: list[tuple[str, VictimIncident]] = []
        self.victim_key, self.perpetrator_key = _victim_and_perpetrator(n, self.who)

    # ----------------------------------------------------------------------------------- assembly
    def _emit(self, route: Route, recipient: str, payload: Output, oid: UUID, key: str | None = None) -> None:
        self.outputs.append(
            RoutedOutput(
                route=route,
                recipient=recipient,
                payload=payload,
                output_id=oid,
                payload_key=key,
                lawful_basis=self.env.lawful_basis,
                purpose=f"recall: {payload.reason.value}" if isinstance(payload, Recall) else _PURPOSE[route],
            )
        )

    def _mark(self, route: Route, keys: Iterable[str]) -> None:
        for key in keys:
            self.child_routes[key].add(route)

    def decide(self) -> Decision:
        if self.env.action is Action.WITHDRAW:
            self._recall(RecallReason.WITHDRAWN, keep=set())
            if self.victim_key is not None and _domestic_abuse(self.n):
                self._victim_update(marac=False)
        else:
            self._route_content()
        produced = tuple(
            PriorOutput(o.output_id, o.route, o.recipient, o.payload_key)
            for o in self.outputs
            if not isinstance(o.payload, Recall)
        )
        aliases = {(alias, keys.primary) for keys in self.who.children for alias in keys.aliases}
        aliases |= {(alias, keys.primary) for _, keys in self.who.adults if keys for alias in keys.aliases}
        return Decision(
            notification_id=self.env.notification_id,
            action=self.env.action,
            outputs=tuple(self.outputs),
            chronology=tuple((key, self._entry(key)) for key in dict.fromkeys(self.child_keys)),
            aliases=tuple(sorted(aliases)),
            victim_updates=tuple(self.victim_updates),
            cumulative_markers=tuple(self.markers),
            produced=produced,
            notes=tuple(self.notes),
        )

    def _entry(self, key: str | None = None) -> ChronologyEntry:
        routes = self.child_routes.get(key, set()) if key is not None else set()
        return ChronologyEntry(
            notification_id=self.env.notification_id,
            agency_type=self.env.source.agency_type,
            kind=self.kind,
            occurred=self.env.occurred,
            routes=tuple(r for r in _ROUTE_ORDER if r in routes),
            action=self.env.action,
            supersedes=self.env.supersedes,
        )

    def _route_content(self) -> None:
        flagged = self._encompass()
        self._front_door(flagged)
        self._dv_triage()
        self._emergency_duty()
        self._cumulative()
        if self.env.action is Action.AMEND:
            keep: set[tuple[Route, str, str | None]] = {
                (o.route, o.recipient, o.payload_key) for o in self.outputs if o.route is Route.FRONT_DOOR
            }
            self._recall(RecallReason.AMENDED, keep=keep)

    # ---------------------------------------------------------------------------------- the rules
    def _encompass(self) -> set[str]:
        """Encompass notices; returns the child keys to flag for the family's education contact."""
        flagged: set[str] = set()
        n = self.n
        if not isinstance(n, PoliceDomesticAbuseIncident):
            return flagged
        incident_day = self.env.occurred.astimezone(LONDON).date()
        for path, child, keys in self.children:
            if child.unborn:
                continue
            setting = child.education
            school_age = child.date_of_birth is not None and _age_on(child.date_of_birth, incident_day) in (
                EDUCATION_AGES
            )
            notifiable = setting.status is EducationStatus.SCHOOL or (
                setting.status is EducationStatus.NURSERY and self.config.encompass_nursery_opt_in
            )
            if notifiable and setting.urn is not None:
                school = self.ctx.schools.get(setting.urn)
                if school is not None and not school.open:
                    self.notes.append(f"{path}.education.urn: closed in the schools directory; no notice")
                    if school_age:
                        flagged.add(keys.primary)
                    continue
                if school is None:
                    self.notes.append(f"{path}.education.urn: not in the schools directory; home authority")
                self._notice(n, child, keys, setting.urn, school)
            elif school_age and setting.status in _NO_SETTING:
                flagged.add(keys.primary)
        return flagged

    def _notice(
        self,
        n: PoliceDomesticAbuseIncident,
        child: ChildSubject,
        keys: PersonKeys,
        urn: str,
        school: School | None,
    ) -> None:
        school_authority = school.authority if school is not None else self.authority
        due = self.deadlines.encompass(
            self.env.reported, school_authority, school.start_time if school is not None else None
        )
        oid = output_id(self.env.notification_id, Route.ENCOMPASS, urn, keys.primary)
        notice = EncompassNotice(
            notice_id=oid,
            notification_id=self.env.notification_id,
            school_urn=urn,
            authority=school_authority,
            child_key=keys.primary,
            given_name=child.given_name,
            family_name=child.family_name,
            date_of_birth=child.date_of_birth,
            incident_occurred=self.env.occurred,
            child_present=child.present,
            police_reference=n.police_reference,
            welfare_check_made=n.welfare_check_made,
            safety_caveats=list(self.env.safety_caveats),
            due=_utc(due.at, "deadline.at"),
            calendar_verified=due.verified,
        )
        self._emit(Route.ENCOMPASS, urn, notice, oid, keys.primary)
        self._mark(Route.ENCOMPASS, [keys.primary])

    def _front_door(self, flagged: set[str]) -> None:
        n = self.n
        if isinstance(n, PoliceDomesticAbuseIncident) and not self.children:
            return  # a domestic abuse incident with no children: DV triage only
        recipient = self.authority
        oid = output_id(self.env.notification_id, Route.FRONT_DOOR, recipient)
        supersedes = next(
            (p.output_id for p in self.ctx.prior_outputs if p.route is Route.FRONT_DOOR and p.recipient == recipient),
            None,
        )
        due = self.deadlines.frontdoor(self.received, self.authority, None)
        referral = FrontDoorReferral(
            referral_id=oid,
            notification_id=self.env.notification_id,
            supersedes_referral=supersedes if self.env.action is Action.AMEND else None,
            authority=recipient,
            agency_type=self.env.source.agency_type,
            organisation_code=self.env.source.organisation_code,
            source_reference=self.env.source_reference,
            kind=self.kind,
            occurred=self.env.occurred,
            received=self.received,
            decision_due=_utc(due.at, "deadline.at"),
            children=[
                ReferralChild(
                    child_key=keys.primary,
                    given_name=child.given_name,
                    family_name=child.family_name,
                    date_of_birth=child.date_of_birth,
                    unborn=child.unborn,
                    education_status=child.education.status,
                    school_urn=child.education.urn,
                    education_contact_needed=keys.primary in flagged,
                    present=child.present,
                )
                for _, child, keys in self.children
            ],
            adult_risk_only=not self.children,
            risk_level=_stated_risk(n),
            priority=self.env.priority,
            security_marking=self.env.security_marking,
            lawful_basis=self.env.lawful_basis,
            consent=self.env.consent.status,
            safety_caveats=list(self.env.safety_caveats),
            summary=n.summary,
        )
        self._emit(Route.FRONT_DOOR, recipient, referral, oid)
        self._mark(Route.FRONT_DOOR, self.child_keys)

    def _dv_triage(self) -> None:
        n = self.n
        if not _domestic_abuse(n):
            return
        criteria: list[MaracCriterion] = []
        ticks: int | None = None
        if isinstance(n, PoliceDomesticAbuseIncident):
            ticks = n.risk.ticks
            if n.risk.level in _HIGH:
                criteria.append(MaracCriterion.DASH_HIGH)
            if ticks is not None and ticks >= MARAC_TICKS:
                criteria.append(MaracCriterion.DASH_14_PLUS_TICKS)
        criteria.extend(self._victim_criteria())
        if isinstance(n, PoliceDomesticAbuseIncident) and n.risk.professional_judgement_marac:
            criteria.append(MaracCriterion.PROFESSIONAL_JUDGEMENT)
        recipient = self.authority
        item_id = output_id(self.env.notification_id, Route.DV_TRIAGE, recipient)
        meeting = self.deadlines.dvtriage(self.received, self.authority)
        item = DvTriageItem(
            item_id=item_id,
            notification_id=self.env.notification_id,
            authority=recipient,
            agency_type=self.env.source.agency_type,
            source_reference=self.env.source_reference,
            victim_key=self.victim_key,
            perpetrator_key=self.perpetrator_key,
            child_keys=list(self.child_keys),
            risk_level=_stated_risk(n),
            ticks=ticks,
            meeting_at=_utc(meeting.at, "deadline.at"),
            marac=bool(criteria),
            marac_criteria=criteria,
            occurred=self.env.occurred,
        )
        self._emit(Route.DV_TRIAGE, recipient, item, item_id)
        self._mark(Route.DV_TRIAGE, self.child_keys)
        if criteria:
            marac_id = output_id(self.env.notification_id, Route.MARAC, recipient)
            marac = MaracReferral(
                referral_id=marac_id,
                notification_id=self.env.notification_id,
                triage_item_id=item_id,
                authority=recipient,
                victim_key=self.victim_key,
                criteria=criteria,
                occurred=self.env.occurred,
            )
            self._emit(Route.MARAC, recipient, marac, marac_id)
            self._mark(Route.MARAC, self.child_keys)
        if self.victim_key is not None:
            self._victim_update(marac=bool(criteria))

    def _victim_update(self, *, marac: bool) -> None:
        assert self.victim_key is not None
        incident = VictimIncident(
            notification_id=self.env.notification_id,
            occurred=self.env.occurred,
            marac_referred=marac,
            action=self.env.action,
            supersedes=self.env.supersedes,
        )
        self.victim_updates.append((self.victim_key, incident))

    def _victim_criteria(self) -> list[MaracCriterion]:
        if self.victim_key is None:
            return []
        victim = next(keys for _, keys in self.who.adults if keys and keys.primary == self.victim_key)
        history = [i for k in victim.all if k in self.ctx.victims for i in self.ctx.victims[k].incidents]
        this_id = self.env.notification_id
        gone = _superseded(history) | {i.notification_id for i in history if i.action is Action.WITHDRAW}
        if self.env.supersedes is not None:
            gone.add(self.env.supersedes)
        others = {i.notification_id: i for i in history if i.notification_id not in gone | {this_id}}
        t = self.env.occurred
        found: list[MaracCriterion] = []
        recent = [i for i in others.values() if t - MARAC_WINDOW <= i.occurred <= t]
        if len(recent) + 1 >= MARAC_ESCALATION_INCIDENTS:
            found.append(MaracCriterion.ESCALATION_3_INCIDENTS_12_MONTHS)
        if any(i.marac_referred and t - MARAC_WINDOW <= i.occurred < t for i in others.values()):
            found.append(MaracCriterion.REPEAT_WITHIN_12_MONTHS_OF_MARAC)
        return found

    def _emergency_duty(self) -> None:
        if not self.children:
            return
        high = _stated_risk(self.n) in _HIGH
        immediate = self.env.priority is Priority.IMMEDIATE
        if not (high or immediate) or not self.deadlines.out_of_hours(self.received, self.authority):
            return
        recipient = self.authority
        oid = output_id(self.env.notification_id, Route.EMERGENCY_DUTY, recipient)
        alert = EmergencyDutyAlert(
            alert_id=oid,
            notification_id=self.env.notification_id,
            authority=recipient,
            agency_type=self.env.source.agency_type,
            source_reference=self.env.source_reference,
            reason="HIGH_RISK_WITH_CHILDREN" if high else "SENDER_MARKED_IMMEDIATE",
            child_keys=list(self.child_keys),
            received=self.received,
            safety_caveats=list(self.env.safety_caveats),
        )
        self._emit(Route.EMERGENCY_DUTY, recipient, alert, oid)
        self._mark(Route.EMERGENCY_DUTY, self.child_keys)

    def _cumulative(self) -> None:
        significant = _significant_event(self.n)
        for key in dict.fromkeys(self.child_keys):
            keys = next(k for _, _, k in self.children if k.primary == key)
            state = _merged_child(self.ctx, keys)
            entries, gone = _effective_chronology(state.chronology, self._entry())
            markers = [
                m
                for m in state.alerts
                if m.trigger is CumulativeTrigger.THRESHOLD
                and m.notification_id not in gone
                and m.notification_id != self.env.notification_id
            ]
            crossing = _threshold_crossing(entries, self._entry(), markers)
            if crossing is not None:
                at, members = crossing
                self._alert(key, CumulativeTrigger.THRESHOLD, at, members)
            elif significant and state.open_referral:
                t = self.env.occurred
                self._alert(key, CumulativeTrigger.SIGNIFICANT_EVENT, t, _members(entries, t))

    def _alert(self, key: str, trigger: CumulativeTrigger, at: datetime, members: Sequence[ChronologyEntry]) -> None:
        recipient = self.authority
        oid = output_id(self.env.notification_id, Route.CUMULATIVE_CONCERN, recipient, key)
        alert = CumulativeConcernAlert(
            alert_id=oid,
            child_key=key,
            authority=recipient,
            trigger=trigger,
            notification_ids=[e.notification_id for e in members],
            agency_types=list(dict.fromkeys(e.agency_type for e in members)),
            window_start=at - CUMULATIVE_WINDOW,
            window_end=at,
            raised=self.received,
        )
        self._emit(Route.CUMULATIVE_CONCERN, recipient, alert, oid, key)
        self._mark(Route.CUMULATIVE_CONCERN, [key])
        marker = CumulativeMarker(oid, self.env.notification_id, trigger, at)
        self.markers.append((key, marker))

    def _recall(self, reason: RecallReason, keep: set[tuple[Route, str, str | None]]) -> None:
        for prior in self.ctx.prior_outputs:
            if (prior.route, prior.recipient, prior.payload_key) in keep:
                continue
            rid = _recall_id(self.env.notification_id, prior.route, prior.output_id)
            recall = Recall(
                recall_id=rid,
                recalled_output_id=prior.output_id,
                route=prior.route,
                recipient=prior.recipient,
                notification_id=self.env.notification_id,
                reason=reason,
                issued=self.received,
            )
            self._emit(prior.route, prior.recipient, recall, rid, prior.payload_key)
