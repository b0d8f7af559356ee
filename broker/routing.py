"""Routing: which outputs an accepted agency notification produces, to whom, and by when.

PURE: no Kafka, no I/O, no clock reads.  Two halves, both used by `broker.casebook` (the state rules),
which is what the worker and the tests call:

* `route`: the outputs one notification produces by itself, given the `RoutingContext` the casebook
  built (schools, the predecessor's outputs for an AMEND / WITHDRAW, the MARAC criteria the victim's
  history gives this notification).
* history rules over one person's live record, decided by OCCURRED instant, never by arrival order:
  `marac_criteria` (per victim incident), `threshold_quarters` and `significant_events` (per child), and
  the builders of the outputs they cause (`marac_referral`, `threshold_alert`, `significant_alert`,
  `recall`).  The casebook raises what a record now calls for and was not raised yet, whichever
  notification's arrival completed the picture.

Rules as built (defaults; per-authority settings come from `broker.authority.authority_or_default`):

* FRONT_DOOR (recipient: home authority): every notification about a child; a police domestic abuse
  incident only when it lists children; a probation notification with no named child is sent as
  `adult_risk_only`.  One referral per notification (one home authority per envelope).  RAG: RED when the
  priority is IMMEDIATE, or the stated risk is HIGH / VERY_HIGH and a listed child was present
  (`present is True`): `decision_due = deadlines.frontdoor(received, authority, "RED")` (4 working hours by
  default); otherwise `rag = UNKNOWN` (standard: the front door rates it) and one working day
  (`deadlines.frontdoor(received, authority, None)`).  `rag_reason` names the rule, never data.
* ENCOMPASS (recipient: URN): police domestic abuse incidents only; one notice per child whose setting is a
  SCHOOL (or a NURSERY when the authority opts in) that is not marked closed in the schools directory.  The
  school's authority and start time come from the directory (home authority and the authority default
  start when the URN is unknown).  `due` = `deadlines.encompass(reported, school authority, start)`.
  A child aged 4-17 on the incident's local date with status HOME_EDUCATED / NOT_IN_EDUCATION / UNKNOWN
  (or at a school the directory marks closed) is flagged `education_contact_needed` on the referral.
* DV_TRIAGE (recipient: home authority): police domestic abuse incidents; police child concerns and health
  notifications whose categories include DOMESTIC_ABUSE; probation and youth justice notifications marked
  `domestic_abuse_related`.  `meeting_at` = `deadlines.dvtriage(received, authority)`.  The item's MARAC
  flag and criteria: this notification's own (`intrinsic_criteria`: DASH_HIGH for police risk HIGH /
  VERY_HIGH, DASH_14_PLUS_TICKS, PROFESSIONAL_JUDGEMENT) plus the history criteria the casebook found
  (`RoutingContext.marac_history`, see `marac_criteria`).  Any criterion -> a MARAC referral, id
  `output_id(notification, MARAC, authority)`.
* EMERGENCY_DUTY (recipient: home authority): notification lists a child, and (stated risk HIGH / VERY_HIGH
  or priority IMMEDIATE), and `deadlines.out_of_hours(received, authority)`.
* CUMULATIVE_CONCERN (recipient: home authority): raised by the casebook from a child's chronology, see
  `threshold_quarters` and `significant_events`.
* AMEND: routed afresh under the AMEND's id.  Every output of the superseded notification is recalled
  (AMENDED) except a front door referral to the same authority, which the new referral replaces through
  `supersedes_referral`.  (Reissued notices and items carry no link to what they replace, so their old
  copies are recalled too, which also cancels their SLA clocks.)  WITHDRAW: every prior output recalled
  (WITHDRAWN), nothing new.  Recall ids: uuid5 over (recalling notification, route, recalled output id),
  wherever the recall is made (`recall_id`).
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
    Rag,
    Recall,
    RecallReason,
    ReferralChild,
    RiskLevel,
    Route,
    YouthJusticeEvent,
    YouthJusticeNotification,
)

__all__ = [
    "HISTORY_CRITERIA",
    "OUTPUT_NAMESPACE",
    "ChronologyEntry",
    "Deadline",
    "DeadlineCalculator",
    "Decision",
    "PriorOutput",
    "RoutedOutput",
    "RoutingContext",
    "RoutingError",
    "VictimIncident",
    "cumulative_alert_id",
    "domestic_abuse",
    "intrinsic_criteria",
    "marac_criteria",
    "marac_referral",
    "output_id",
    "quarter_of",
    "recall",
    "recall_id",
    "route",
    "significant_alert",
    "significant_event",
    "significant_events",
    "threshold_alert",
    "threshold_quarters",
    "victim_keys",
    "window",
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
#: The MARAC criteria that come from a victim's history rather than from the notification itself.
HISTORY_CRITERIA = frozenset(
    {MaracCriterion.ESCALATION_3_INCIDENTS_12_MONTHS, MaracCriterion.REPEAT_WITHIN_12_MONTHS_OF_MARAC}
)
RAG_RED_IMMEDIATE = "RED: sender's priority IMMEDIATE (4 working hours)"
RAG_RED_RISK = "RED: stated risk HIGH or VERY_HIGH with a child present (4 working hours)"
RAG_STANDARD = "standard: one working day; RAG for the front door to rate"

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


# ------------------------------------------------------------------------------------- history items
@dataclass(frozen=True)
class ChronologyEntry:
    """One live notification in a child's chronology: no narrative, only what the rules and people need.

    `child_key` is the key this notification gave the child (a significant-event alert's id uses it, so
    the id does not depend on later identity merges); `significant` marks a significant event.  `decided`:
    when the front door decided this notification's referral (None while it is open, or when it made none).
    """

    notification_id: UUID
    agency_type: AgencyType
    kind: str
    occurred: datetime
    routes: tuple[Route, ...] = ()
    child_key: str = ""
    significant: bool = False
    lawful_basis: LawfulBasis = LawfulBasis.UNKNOWN
    decided: datetime | None = None


@dataclass(frozen=True)
class VictimIncident:
    """One live domestic abuse notification about a victim, with the MARAC criteria it meets by itself."""

    notification_id: UUID
    occurred: datetime
    intrinsic: tuple[MaracCriterion, ...] = ()
    victim_key: str | None = None
    triage_item_id: UUID | None = None
    lawful_basis: LawfulBasis = LawfulBasis.UNKNOWN


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
    """What `route` needs beyond the notification.

    schools: the schools directory by URN.
    prior_outputs: for an AMEND / WITHDRAW whose predecessor is known here, what the predecessor produced.
    marac_history: the history criteria (`HISTORY_CRITERIA`) this notification meets, from the victim's
      live incidents including this one (`marac_criteria`).
    subjects: the notification's identity keys when the caller has already made them (`identity.subjects`
      with the same secret); made here otherwise.
    """

    schools: Mapping[str, School] = field(default_factory=dict)
    prior_outputs: tuple[PriorOutput, ...] = ()
    marac_history: tuple[MaracCriterion, ...] = ()
    subjects: Subjects | None = None


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

    @property
    def prior(self) -> PriorOutput:
        """What to remember of it for a later recall."""
        return PriorOutput(self.output_id, self.route, self.recipient, self.payload_key)


@dataclass(frozen=True)
class Decision:
    """The outputs one notification produces by itself.

    child_routes: (child key as given, routes taken for that child) in body order.
    produced: the outputs (recalls excluded), to store for a later AMEND / WITHDRAW.
    notes: field paths and rules of what identity or routing noticed (never values).
    """

    notification_id: UUID
    action: Action
    outputs: tuple[RoutedOutput, ...]
    child_routes: tuple[tuple[str, tuple[Route, ...]], ...]
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


def recall_id(notification_id: UUID, route: Route, recalled: UUID) -> UUID:
    """uuid5 over (recalling notification, route, recalled output id): the same wherever it is recalled."""
    return uuid.uuid5(OUTPUT_NAMESPACE, f"{notification_id}|{route.value}|recall|{recalled}")


def cumulative_alert_id(authority: str, root_key: str, quarter: str) -> UUID:
    """uuid5 over (authority, child root key, 'cumulative', 'YYYYQn'): one threshold alert per quarter."""
    return uuid.uuid5(OUTPUT_NAMESPACE, f"{authority}|{root_key}|cumulative|{quarter}")


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


def domestic_abuse(n: AgencyNotification) -> bool:
    """True when the notification goes to DV triage (and counts in its victim's history)."""
    match n:
        case PoliceDomesticAbuseIncident():
            return True
        case PoliceChildConcern() | HealthSafeguardingNotification():
            return ConcernCategory.DOMESTIC_ABUSE in n.categories
        case ProbationRiskNotification() | YouthJusticeNotification():
            return n.domestic_abuse_related


def significant_event(n: AgencyNotification) -> bool:
    """Birth (midwifery, unborn child), release from custody, bail / licence change, risky adult's move."""
    match n:
        case ProbationRiskNotification():
            return n.event in _SIGNIFICANT_PROBATION
        case HealthSafeguardingNotification():
            return n.setting is HealthSetting.MIDWIFERY and any(c.unborn for c in n.children)
        case YouthJusticeNotification():
            return n.event is YouthJusticeEvent.RELEASE_FROM_CUSTODY
        case _:
            return False


def intrinsic_criteria(n: AgencyNotification) -> tuple[MaracCriterion, ...]:
    """The MARAC criteria a notification meets by itself: DASH_HIGH, DASH_14_PLUS_TICKS, PROFESSIONAL_JUDGEMENT."""
    if not isinstance(n, PoliceDomesticAbuseIncident):
        return ()
    found = set()
    if n.risk.level in _HIGH:
        found.add(MaracCriterion.DASH_HIGH)
    if n.risk.ticks is not None and n.risk.ticks >= MARAC_TICKS:
        found.add(MaracCriterion.DASH_14_PLUS_TICKS)
    if n.risk.professional_judgement_marac:
        found.add(MaracCriterion.PROFESSIONAL_JUDGEMENT)
    return tuple(c for c in MaracCriterion if c in found)


def _adult_keys(n: AgencyNotification, who: Subjects) -> tuple[PersonKeys | None, PersonKeys | None]:
    """Victim and perpetrator: police incident victim / suspect fields; probation: the person on
    probation; child concern and health: the first adults with role VICTIM / SUSPECT; youth justice: none."""
    match n:
        case PoliceDomesticAbuseIncident():
            return who.adults[0][1], who.adults[1][1]
        case ProbationRiskNotification():
            return None, who.adults[0][1]
        case PoliceChildConcern() | HealthSafeguardingNotification():
            return who.adult(AdultRole.VICTIM), who.adult(AdultRole.SUSPECT)
        case _:
            return None, None


def victim_keys(n: AgencyNotification, who: Subjects) -> PersonKeys | None:
    """The keys of the notification's victim (whose history MARAC counts), or None."""
    return _adult_keys(n, who)[0]


# ------------------------------------------------------------------------------------ history rules
_MARAC_ORDER = tuple(MaracCriterion)  # the criteria in their declared order (iterating the enum each time is slow)


def marac_criteria(incidents: Iterable[VictimIncident]) -> dict[UUID, tuple[MaracCriterion, ...]]:
    """Every live incident's MARAC criteria, decided in OCCURRED order (ties by notification id).

    Incident X (occurred t) meets its intrinsic criteria, plus ESCALATION_3_INCIDENTS_12_MONTHS when the
    victim's live incidents with occurred in [t - 365 days, t] (X included) number 3 or more, plus
    REPEAT_WITHIN_12_MONTHS_OF_MARAC when an incident with occurred in [t - 365 days, t) meets any
    criterion.  One pass in occurred order reaches the fixpoint (REPEAT looks only at earlier incidents),
    so the answer depends on the set of incidents, never on the order they arrived in.
    """
    ordered = sorted(incidents, key=lambda i: (i.occurred, str(i.notification_id)))
    referred: list[VictimIncident] = []
    out: dict[UUID, tuple[MaracCriterion, ...]] = {}
    for x in ordered:
        t = x.occurred
        found = set(x.intrinsic)
        if sum(1 for y in ordered if t - MARAC_WINDOW <= y.occurred <= t) >= MARAC_ESCALATION_INCIDENTS:
            found.add(MaracCriterion.ESCALATION_3_INCIDENTS_12_MONTHS)
        if any(t - MARAC_WINDOW <= y.occurred < t for y in referred):
            found.add(MaracCriterion.REPEAT_WITHIN_12_MONTHS_OF_MARAC)
        out[x.notification_id] = tuple(c for c in _MARAC_ORDER if c in found)
        if found:
            referred.append(x)
    return out


def quarter_of(instant: datetime) -> str:
    """The Europe/London calendar quarter of an instant, as 'YYYYQn'."""
    local = _utc(instant, "instant").astimezone(LONDON)
    return f"{local.year}Q{(local.month - 1) // 3 + 1}"


def window(entries: Iterable[ChronologyEntry], at: datetime) -> list[ChronologyEntry]:
    """Entries inside the 90-day window ending at `at`: occurred in (at - 90 days, at], by occurred."""
    return sorted(
        (e for e in entries if e.occurred <= at < e.occurred + CUMULATIVE_WINDOW),
        key=lambda e: (e.occurred, str(e.notification_id)),
    )


def _holds(members: Sequence[ChronologyEntry]) -> bool:
    return (
        len(members) >= CUMULATIVE_MIN_NOTIFICATIONS
        and len({e.agency_type for e in members}) >= CUMULATIVE_MIN_AGENCY_TYPES
    )


def threshold_quarters(entries: Sequence[ChronologyEntry]) -> dict[str, ChronologyEntry]:
    """Quarter -> the earliest qualifying entry in it.

    Entry X qualifies when the window (X.occurred - 90 days, X.occurred] holds 3+ live notifications from
    2+ agency types (X the latest).  The DESIGN's 'once per crossing' depends on arrival order (two
    crossings merge when a late notification fills the gap between them), so the alert is defined
    monotonically instead: at most one THRESHOLD alert per child per London calendar quarter holding a
    qualifying notification.
    """
    out: dict[str, ChronologyEntry] = {}
    for x in sorted(entries, key=lambda e: (e.occurred, str(e.notification_id))):
        if _holds(window(entries, x.occurred)):
            out.setdefault(quarter_of(x.occurred), x)
    return out


def significant_events(entries: Sequence[ChronologyEntry], *, decisions: bool = True) -> list[ChronologyEntry]:
    """Significant events about a child with an open referral: another live entry routed to the front
    door whose occurred is at or before the event's, and that the front door had not decided before the event
    occurred (`decided` is None or after the event's occurred).  Both sides are instants, never arrival order,
    so the answer depends only on the notifications and decisions known.  `decisions=False` ignores decisions:
    what a raised alert rests on (a decision closes a referral for later events; it never recalls an alert)."""
    return [
        e
        for e in entries
        if e.significant
        and any(
            o.notification_id != e.notification_id and Route.FRONT_DOOR in o.routes and o.occurred <= e.occurred
            and (not decisions or o.decided is None or e.occurred < o.decided)
            for o in entries
        )
    ]


# ---------------------------------------------------------------------------------------- builders
def _routed(
    route: Route, recipient: str, payload: Output, oid: UUID, key: str | None, basis: LawfulBasis
) -> RoutedOutput:
    purpose = f"recall: {payload.reason.value}" if isinstance(payload, Recall) else _PURPOSE[route]
    return RoutedOutput(route, recipient, payload, oid, key, basis, purpose)


def marac_referral(authority: str, incident: VictimIncident, criteria: Sequence[MaracCriterion]) -> RoutedOutput:
    """The MARAC referral of one incident: id uuid5(notification, MARAC, authority), whenever it is raised."""
    oid = output_id(incident.notification_id, Route.MARAC, authority)
    item = incident.triage_item_id or output_id(incident.notification_id, Route.DV_TRIAGE, authority)
    referral = MaracReferral(
        referral_id=oid,
        notification_id=incident.notification_id,
        triage_item_id=item,
        authority=authority,
        victim_key=incident.victim_key,
        criteria=list(criteria),
        occurred=incident.occurred,
    )
    return _routed(Route.MARAC, authority, referral, oid, None, incident.lawful_basis)


def _alert(
    oid: UUID, authority: str, key: str, trigger: CumulativeTrigger, at: datetime, members: Sequence[ChronologyEntry],
    raised: datetime, basis: LawfulBasis,
) -> RoutedOutput:
    alert = CumulativeConcernAlert(
        alert_id=oid,
        child_key=key,
        authority=authority,
        trigger=trigger,
        notification_ids=[e.notification_id for e in members],
        agency_types=list(dict.fromkeys(e.agency_type for e in members)),
        window_start=at - CUMULATIVE_WINDOW,
        window_end=at,
        raised=raised,
    )
    return _routed(Route.CUMULATIVE_CONCERN, authority, alert, oid, key, basis)


def threshold_alert(
    authority: str, root_key: str, quarter: str, first: ChronologyEntry, entries: Sequence[ChronologyEntry],
    raised: datetime,
) -> RoutedOutput:
    """The quarter's THRESHOLD alert; its window ends at the quarter's earliest qualifying notification."""
    oid = cumulative_alert_id(authority, root_key, quarter)
    members = window(entries, first.occurred)
    trigger = CumulativeTrigger.THRESHOLD
    return _alert(oid, authority, root_key, trigger, first.occurred, members, raised, first.lawful_basis)


def significant_alert(
    authority: str, event: ChronologyEntry, entries: Sequence[ChronologyEntry], raised: datetime
) -> RoutedOutput:
    """A SIGNIFICANT_EVENT alert: id uuid5(event notification, CUMULATIVE_CONCERN, authority, child key)."""
    oid = output_id(event.notification_id, Route.CUMULATIVE_CONCERN, authority, event.child_key)
    members = window(entries, event.occurred)
    trigger = CumulativeTrigger.SIGNIFICANT_EVENT
    return _alert(oid, authority, event.child_key, trigger, event.occurred, members, raised, event.lawful_basis)


def recall(
    prior: PriorOutput, *, by: UUID, reason: RecallReason, issued: datetime, lawful_basis: LawfulBasis
) -> RoutedOutput:
    """Recall of an earlier output, with the id `recall_id(by, route, recalled)`."""
    rid = recall_id(by, prior.route, prior.output_id)
    payload = Recall(
        recall_id=rid,
        recalled_output_id=prior.output_id,
        route=prior.route,
        recipient=prior.recipient,
        notification_id=by,
        reason=reason,
        issued=_utc(issued, "issued"),
    )
    return _routed(prior.route, prior.recipient, payload, rid, prior.payload_key, lawful_basis)


# ------------------------------------------------------------------------------------------- route
def route(
    notification: AgencyNotification,
    *,
    ctx: RoutingContext,
    received: datetime,
    secret: bytes,
    deadlines: DeadlineCalculator,
) -> Decision:
    """Route one accepted notification (NEW, AMEND or WITHDRAW): the outputs it produces by itself."""
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
        self.who = ctx.subjects if ctx.subjects is not None else subjects(n, secret)
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
        victim, perpetrator = _adult_keys(n, self.who)
        self.victim_key = victim.primary if victim else None
        self.perpetrator_key = perpetrator.primary if perpetrator else None

    # ----------------------------------------------------------------------------------- assembly
    def _emit(self, route: Route, recipient: str, payload: Output, oid: UUID, key: str | None = None) -> None:
        self.outputs.append(_routed(route, recipient, payload, oid, key, self.env.lawful_basis))

    def _mark(self, route: Route, keys: Iterable[str]) -> None:
        for key in keys:
            self.child_routes[key].add(route)

    def decide(self) -> Decision:
        if self.env.action is Action.WITHDRAW:
            self._recall(RecallReason.WITHDRAWN, keep=set())
        else:
            self._route_content()
        produced = tuple(o.prior for o in self.outputs if not isinstance(o.payload, Recall))
        return Decision(
            notification_id=self.env.notification_id,
            action=self.env.action,
            outputs=tuple(self.outputs),
            child_routes=tuple(
                (key, tuple(r for r in _ROUTE_ORDER if r in self.child_routes[key])) for key in self.child_keys
            ),
            produced=produced,
            notes=tuple(self.notes),
        )

    def _route_content(self) -> None:
        flagged = self._encompass()
        self._front_door(flagged)
        self._dv_triage()
        self._emergency_duty()
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


    def _rag(self) -> tuple[Rag, str]:
        """RED for priority IMMEDIATE, or stated risk HIGH / VERY_HIGH with a child present; else standard."""
        if self.env.priority is Priority.IMMEDIATE:
            return Rag.RED, RAG_RED_IMMEDIATE
        if _stated_risk(self.n) in _HIGH and any(child.present is True for _, child, _ in self.children):
            return Rag.RED, RAG_RED_RISK
        return Rag.UNKNOWN, RAG_STANDARD

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
        rag, reason = self._rag()
        due = self.deadlines.frontdoor(self.received, self.authority, "RED" if rag is Rag.RED else None)
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
            children=[self._referral_child(child, keys, flagged) for _, child, keys in self.children],
            adult_risk_only=not self.children,
            risk_level=_stated_risk(n),
            priority=self.env.priority,
            security_marking=self.env.security_marking,
            lawful_basis=self.env.lawful_basis,
            consent=self.env.consent.status,
            safety_caveats=list(self.env.safety_caveats),
            summary=n.summary,
            rag=rag,
            rag_reason=reason,
        )
        self._emit(Route.FRONT_DOOR, recipient, referral, oid)
        self._mark(Route.FRONT_DOOR, self.child_keys)

    @staticmethod
    def _referral_child(child: ChildSubject, keys: PersonKeys, flagged: set[str]) -> ReferralChild:
        return ReferralChild(
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

    def _dv_triage(self) -> None:
        n = self.n
        if not domestic_abuse(n):
            return
        wanted = set(intrinsic_criteria(n)) | (set(self.ctx.marac_history) & HISTORY_CRITERIA)
        criteria = [c for c in MaracCriterion if c in wanted]
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
            ticks=n.risk.ticks if isinstance(n, PoliceDomesticAbuseIncident) else None,
            meeting_at=_utc(meeting.at, "deadline.at"),
            marac=bool(criteria),
            marac_criteria=criteria,
            occurred=self.env.occurred,
        )
        self._emit(Route.DV_TRIAGE, recipient, item, item_id)
        self._mark(Route.DV_TRIAGE, self.child_keys)
        if criteria:
            incident = VictimIncident(
                self.env.notification_id, self.env.occurred, (), self.victim_key, item_id, self.env.lawful_basis
            )
            self.outputs.append(marac_referral(recipient, incident, criteria))
            self._mark(Route.MARAC, self.child_keys)

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


    def _recall(self, reason: RecallReason, keep: set[tuple[Route, str, str | None]]) -> None:
        for prior in self.ctx.prior_outputs:
            if (prior.route, prior.recipient, prior.payload_key) in keep:
                continue
            self.outputs.append(
                recall(prior, by=self.env.notification_id, reason=reason, issued=self.received,
                       lawful_basis=self.env.lawful_basis)
            )
