"""SLA clock rules: pure functions over clocks, acknowledgements and instants (no Kafka, no clock reads).

A clock is keyed by the output id of a routed item and lives in the partition the item was read from.

* What opens a clock (`item_of`): an Encompass notice (`due`), a front door referral (`decision_due`, already
  RAG-aware), a DV triage item (`meeting_at`), an emergency duty alert (`received` + 1 hour, configurable
  per authority), a cumulative-concern alert (treated as a referral: one working day from `raised`, the front
  door rule of `broker.deadline`) and a MARAC referral. MARAC: the next MARAC meeting is not known to the
  broker, so the clock measures receipt by the MARAC coordinator: one working day after it was routed (the
  front door rule), or a fixed period when `SlaRules.marac_within` is set.
* Start: the item's own receipt instant where it carries one (`received`, `raised`), else the instant the
  item was routed (the route record's timestamp), so a re-read of the same record starts the same clock.
* Events, each at most once per clock with the id `uuid5(output id, state)`, and each `at` the instant the
  state changed (not when the tracker noticed): STARTED (start); AT_RISK (the earlier of `percent` % of
  the time elapsed and `margin` before the deadline, never before the start); BREACHED (`due`: the deadline
  passed unacknowledged, i.e. a tick strictly after `due`); MET (the acknowledgement's own instant; late
  when after `due`, lateness = at - due); CANCELLED (a recall's instant, or the receipt of the referral that
  supersedes this one). Ties: an acknowledgement at exactly `due` is in time; at exactly the at-risk
  instant it closes the clock before it is at risk; a tick at exactly the at-risk instant marks it.
* An acknowledgement or recall processed after instants the clock has not yet been ticked past emits the
  missed AT_RISK / BREACHED first (in order), so the events do not depend on how often the tracker ticks or
  whether it was down. A tracker that was down across a deadline emits BREACHED on its first tick: once.
* Acknowledgements: only the item's recipient (school URN, authority code) and only the kind of record made
  for that route may close a clock. An acknowledgement for an item not known (yet) in this partition is held
  (reads of several topics interleave in any order) and applied when the item arrives; after `hold_for` it
  expires: ignored. One for a recalled or already closed item is ignored. All of these are verdicts the
  stage audits; none is an error.
* Retention (`purge`): a closed clock (MET, late or not, or CANCELLED) is deleted from the table
  `SlaRules.retain_closed` after it closed, so the table holds open clocks and recent history only (its
  events are on `sla.events`, which the dashboards read). The default outlasts the feedback topic's
  retention, so no acknowledgement still readable there finds its clock gone; after it, a late acknowledgement
  is held and expires like one for an unknown item. An open clock (breached and never acknowledged, too) is kept.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any
from uuid import UUID

from broker.authority import authority_or_default
from broker.deadline import frontdoor_deadline
from schemas.models import (
    CumulativeConcernAlert,
    DvTriageItem,
    EmergencyDutyAlert,
    EncompassAcknowledgement,
    EncompassNotice,
    FrontDoorDecision,
    FrontDoorReferral,
    MaracReferral,
    Route,
    SlaEvent,
    SlaState,
    TriageItemDiscussed,
)

__all__ = [
    "SLA_NAMESPACE",
    "Ack",
    "Clock",
    "Held",
    "Item",
    "Phase",
    "Policy",
    "SlaRules",
    "Step",
    "Verdict",
    "ack_of",
    "acknowledge",
    "at_risk_at",
    "cancel",
    "expire",
    "item_of",
    "open_clock",
    "purge",
    "sla_event_id",
    "tick",
]

SLA_NAMESPACE = UUID("8d4f5a62-3c1e-5b7a-9e0f-1a2b3c4d5e6f")


def sla_event_id(output_id: UUID, state: SlaState) -> UUID:
    """The derived id of a clock's event: the same however often it is emitted."""
    return uuid.uuid5(SLA_NAMESPACE, f"{output_id}|{state.value}")


# --------------------------------------------------------------------------------------------- rules
@dataclass(frozen=True)
class Policy:
    """When a clock is at risk: `percent` % of its time elapsed or `margin` left, whichever comes first."""

    percent: int = 80
    margin: timedelta = timedelta(minutes=30)

    def __post_init__(self) -> None:
        if not 0 <= self.percent <= 100 or self.margin < timedelta(0):
            raise ValueError("Policy: percent in 0..100, margin not negative")


@dataclass(frozen=True)
class SlaRules:
    """The tracker's configuration. `overrides` keys: (route, authority), (None, authority) or (route, None),
    looked up in that order before `default`."""

    default: Policy = Policy()
    overrides: Mapping[tuple[Route | None, str | None], Policy] = field(default_factory=dict)
    emergency_duty_within: timedelta = timedelta(hours=1)
    emergency_duty_by_authority: Mapping[str, timedelta] = field(default_factory=dict)
    marac_within: timedelta | None = None  # None: one working day (the front door rule)
    hold_for: timedelta = timedelta(days=7)
    retain_closed: timedelta = timedelta(days=90)  # as long as feedback.acknowledgements keeps records

    def policy(self, route: Route, authority: str) -> Policy:
        """The at-risk policy of a route in an authority."""
        for key in ((route, authority), (None, authority), (route, None)):
            if key in self.overrides:
                return self.overrides[key]
        return self.default

    def emergency_duty(self, authority: str) -> timedelta:
        """How long the emergency duty team has to acknowledge an alert."""
        return self.emergency_duty_by_authority.get(authority, self.emergency_duty_within)


def at_risk_at(start: datetime, due: datetime, policy: Policy) -> datetime:
    """The earlier of `percent` % of the time elapsed and `margin` before `due`; never before `start`."""
    by_share = start + (due - start) * policy.percent // 100
    return max(start, min(by_share, due - policy.margin))


# --------------------------------------------------------------------------------------------- items
@dataclass(frozen=True)
class Item:
    """A routed item with a deadline: what its clock needs."""

    output_id: UUID
    route: Route
    recipient: str
    authority: str
    start: datetime
    due: datetime
    verified: bool = True
    supersedes: UUID | None = None


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("instants must carry a UTC offset")
    return value.astimezone(UTC)


def _one_working_day(start: datetime, authority: str) -> datetime:
    return frontdoor_deadline(start, authority_or_default(authority)).at


def item_of(record: Any, routed: datetime, rules: SlaRules) -> Item | None:
    """The clock a routed record opens (None for a record without one, e.g. a Recall)."""
    routed = _utc(routed)
    if isinstance(record, EncompassNotice):
        return Item(record.notice_id, Route.ENCOMPASS, record.school_urn, record.authority, routed,
                    _utc(record.due), record.calendar_verified)
    if isinstance(record, FrontDoorReferral):
        return Item(record.referral_id, Route.FRONT_DOOR, record.authority, record.authority,
                    _utc(record.received), _utc(record.decision_due), supersedes=record.supersedes_referral)
    if isinstance(record, DvTriageItem):
        return Item(record.item_id, Route.DV_TRIAGE, record.authority, record.authority, routed,
                    _utc(record.meeting_at))
    if isinstance(record, EmergencyDutyAlert):
        start = _utc(record.received)
        return Item(record.alert_id, Route.EMERGENCY_DUTY, record.authority, record.authority, start,
                    start + rules.emergency_duty(record.authority))
    if isinstance(record, CumulativeConcernAlert):
        start = _utc(record.raised)
        return Item(record.alert_id, Route.CUMULATIVE_CONCERN, record.authority, record.authority, start,
                    _one_working_day(start, record.authority))
    if isinstance(record, MaracReferral):
        due = routed + rules.marac_within if rules.marac_within else _one_working_day(routed, record.authority)
        return Item(record.referral_id, Route.MARAC, record.authority, record.authority, routed, due)
    return None


# --------------------------------------------------------------------------------------------- clocks
class Phase(str, Enum):
    """Whether a clock still runs."""

    OPEN = "OPEN"
    MET = "MET"
    CANCELLED = "CANCELLED"


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


def _instant(value: Any) -> datetime:
    return _utc(datetime.fromisoformat(str(value)))


@dataclass(frozen=True)
class Clock:
    """One item's clock, as stored in the tracker's table (JSON through `to_json` / `from_json`)."""

    output_id: UUID
    route: Route
    recipient: str
    authority: str
    partition: int
    start: datetime
    due: datetime
    at_risk_at: datetime
    verified: bool = True
    phase: Phase = Phase.OPEN
    at_risk: bool = False
    breached: bool = False
    closed_at: datetime | None = None

    @property
    def open(self) -> bool:
        """Whether the clock still runs."""
        return self.phase is Phase.OPEN

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict (the table's value)."""
        return {
            "output_id": str(self.output_id), "route": self.route.value, "recipient": self.recipient,
            "authority": self.authority, "partition": self.partition, "start": _iso(self.start),
            "due": _iso(self.due), "at_risk_at": _iso(self.at_risk_at), "verified": self.verified,
            "phase": self.phase.value, "at_risk": self.at_risk, "breached": self.breached,
            "closed_at": _iso(self.closed_at),
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Clock:
        """The clock from its table value."""
        closed = raw.get("closed_at")
        return cls(
            output_id=UUID(str(raw["output_id"])), route=Route(raw["route"]), recipient=str(raw["recipient"]),
            authority=str(raw["authority"]), partition=int(raw["partition"]), start=_instant(raw["start"]),
            due=_instant(raw["due"]), at_risk_at=_instant(raw["at_risk_at"]), verified=bool(raw["verified"]),
            phase=Phase(raw["phase"]), at_risk=bool(raw["at_risk"]), breached=bool(raw["breached"]),
            closed_at=None if closed is None else _instant(closed),
        )


@dataclass(frozen=True)
class Ack:
    """An acknowledgement as the clock rules see it: which item, by whom, when, and what it may close."""

    output_id: UUID
    by: str
    at: datetime
    kind: str
    routes: frozenset[Route]

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict (held in the tracker's table)."""
        return {"output_id": str(self.output_id), "by": self.by, "at": _iso(self.at), "kind": self.kind,
                "routes": sorted(r.value for r in self.routes)}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Ack:
        """The acknowledgement from its held value."""
        return cls(UUID(str(raw["output_id"])), str(raw["by"]), _instant(raw["at"]), str(raw["kind"]),
                   frozenset(Route(r) for r in raw["routes"]))


@dataclass(frozen=True)
class Held:
    """Acknowledgements for an item not (yet) known in this partition."""

    output_id: UUID
    partition: int
    acks: tuple[Ack, ...] = ()
    settled: bool = False  # applied to the item when it arrived, or expired

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict (the held table's value)."""
        return {"output_id": str(self.output_id), "partition": self.partition,
                "acks": [a.to_json() for a in self.acks], "settled": self.settled}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Held:
        """The held acknowledgements from their table value."""
        return cls(UUID(str(raw["output_id"])), int(raw["partition"]),
                   tuple(Ack.from_json(a) for a in raw["acks"]), bool(raw["settled"]))


def _ack(output_id: UUID, by: str, at: datetime, record: Any, *routes: Route) -> Ack:
    return Ack(output_id, by, _utc(at), type(record).__name__, frozenset(routes))


def ack_of(record: Any) -> Ack | None:
    """The acknowledgement a feedback record carries (None for any other record).

    Besides the three contract records, any record with `output_id`, `route`, `recipient` and `acknowledged`
    (the acknowledgement proposed for emergency duty alerts and MARAC referrals) acknowledges its route."""
    if isinstance(record, EncompassAcknowledgement):
        return _ack(record.notice_id, record.school_urn, record.acknowledged, record, Route.ENCOMPASS)
    if isinstance(record, FrontDoorDecision):
        return _ack(record.referral_id, record.authority, record.decided, record, Route.FRONT_DOOR,
                    Route.CUMULATIVE_CONCERN)
    if isinstance(record, TriageItemDiscussed):
        return _ack(record.item_id, record.authority, record.discussed, record, Route.DV_TRIAGE)
    fields = ("output_id", "route", "recipient", "acknowledged")
    if all(hasattr(record, f) for f in fields) and isinstance(getattr(record, "route", None), Route):
        return _ack(record.output_id, record.recipient, record.acknowledged, record, record.route)
    return None


# --------------------------------------------------------------------------------------------- steps
class Verdict(str, Enum):
    """What became of an acknowledgement (the stage audits every verdict)."""

    MET = "MET"
    MET_LATE = "MET_LATE"
    HELD = "HELD"  # the item is not known here (yet)
    REFUSED_RECIPIENT = "REFUSED_RECIPIENT"  # not the item's recipient
    REFUSED_KIND = "REFUSED_KIND"  # a record that cannot acknowledge this route
    IGNORED_RECALLED = "IGNORED_RECALLED"
    IGNORED_CLOSED = "IGNORED_CLOSED"
    EXPIRED = "EXPIRED"  # held past `hold_for`, the item never came: ignored


@dataclass(frozen=True)
class Step:
    """What one input does: clocks and held acknowledgements to write, events to emit, verdicts to audit."""

    clocks: tuple[Clock, ...] = ()
    events: tuple[SlaEvent, ...] = ()
    verdicts: tuple[tuple[Ack, Verdict], ...] = ()
    held: Held | None = None
    purged: tuple[UUID, ...] = ()  # closed clocks past retention: deleted from the table


def _event(clock: Clock, state: SlaState, at: datetime) -> SlaEvent:
    return SlaEvent(sla_event_id=sla_event_id(clock.output_id, state), output_id=clock.output_id, route=clock.route,
                    recipient=clock.recipient, state=state, due=clock.due, at=at, calendar_verified=clock.verified)


def _advance(clock: Clock, until: datetime, *, inclusive: bool) -> tuple[Clock, tuple[SlaEvent, ...]]:
    """AT_RISK and BREACHED due by `until` on an open clock (`inclusive`: a tick at the at-risk instant marks
    it; an acknowledgement or recall at that instant comes first)."""
    if not clock.open:
        return clock, ()
    events: list[SlaEvent] = []
    risky = clock.at_risk_at <= until if inclusive else clock.at_risk_at < until
    if not clock.at_risk and risky:
        clock = replace(clock, at_risk=True)
        events.append(_event(clock, SlaState.AT_RISK, clock.at_risk_at))
    if not clock.breached and clock.due < until:
        clock = replace(clock, breached=True)
        events.append(_event(clock, SlaState.BREACHED, clock.due))
    return clock, tuple(events)


def _close(clock: Clock, phase: Phase, state: SlaState, at: datetime) -> Step:
    clock, missed = _advance(clock, at, inclusive=False)
    clock = replace(clock, phase=phase, closed_at=at)
    return Step((clock,), (*missed, _event(clock, state, at)))


def tick(clock: Clock, now: datetime) -> Step:
    """AT_RISK / BREACHED that are due by `now` (nothing for a closed clock or one already marked)."""
    advanced, events = _advance(clock, _utc(now), inclusive=True)
    return Step((advanced,), events) if events else Step()


def cancel(clock: Clock | None, at: datetime) -> Step:
    """A recall: CANCELLED on an open clock (after any AT_RISK / BREACHED due before it); else nothing."""
    if clock is None or not clock.open:
        return Step()
    return _close(clock, Phase.CANCELLED, SlaState.CANCELLED, _utc(at))


def _verdict(clock: Clock, ack: Ack) -> Verdict | None:
    """Why an acknowledgement cannot close this clock (None when it can)."""
    if clock.route not in ack.routes:
        return Verdict.REFUSED_KIND
    if ack.by != clock.recipient:
        return Verdict.REFUSED_RECIPIENT
    if clock.phase is Phase.CANCELLED:
        return Verdict.IGNORED_RECALLED
    if clock.phase is Phase.MET:
        return Verdict.IGNORED_CLOSED
    return None


def _apply(clock: Clock, ack: Ack) -> Step:
    refused = _verdict(clock, ack)
    if refused is not None:
        return Step(verdicts=((ack, refused),))
    step = _close(clock, Phase.MET, SlaState.MET, ack.at)
    return replace(step, verdicts=((ack, Verdict.MET_LATE if ack.at > clock.due else Verdict.MET),))


def acknowledge(clock: Clock | None, ack: Ack, *, partition: int, held: Held | None = None) -> Step:
    """An acknowledgement: MET (late after the deadline) when it may close the clock; held when the item is not
    known here; otherwise a verdict to audit and nothing else."""
    if clock is not None:
        return _apply(clock, ack)
    base = held if held is not None and not held.settled else Held(ack.output_id, partition)
    if ack in base.acks:
        return Step(verdicts=((ack, Verdict.HELD),))
    return Step(verdicts=((ack, Verdict.HELD),), held=replace(base, acks=(*base.acks, ack)))


def open_clock(item: Item, partition: int, rules: SlaRules, *, existing: Clock | None = None,
               superseded: Clock | None = None, held: Held | None = None) -> Step:
    """A routed item: STARTED (once; a redelivered item changes nothing), then any held acknowledgements in the
    order they were made, and CANCELLED for the referral it supersedes (at this one's start)."""
    if existing is not None:
        return Step()
    policy = rules.policy(item.route, item.authority)
    clock = Clock(item.output_id, item.route, item.recipient, item.authority, partition, item.start, item.due,
                  at_risk_at(item.start, item.due, policy), item.verified)
    events = [_event(clock, SlaState.STARTED, item.start)]
    verdicts: list[tuple[Ack, Verdict]] = []
    settled = None
    if held is not None and not held.settled:
        for ack in sorted(held.acks, key=lambda a: a.at):
            step = _apply(clock, ack)
            clock = step.clocks[0] if step.clocks else clock
            events.extend(step.events)
            verdicts.extend(step.verdicts)
        settled = replace(held, settled=True)
    gone = cancel(superseded, item.start)
    return Step((clock, *gone.clocks), (*events, *gone.events), tuple(verdicts), settled)


def purge(clock: Clock | None, now: datetime, rules: SlaRules) -> Step:
    """A closed clock whose retention has passed (`closed_at + rules.retain_closed <= now`): deleted; else nothing."""
    if clock is None or clock.open or clock.closed_at is None or clock.closed_at + rules.retain_closed > _utc(now):
        return Step()
    return Step(purged=(clock.output_id,))


def expire(held: Held, now: datetime, rules: SlaRules) -> Step:
    """Held acknowledgements whose item never came within `hold_for`: settled and ignored (EXPIRED)."""
    if held.settled or not held.acks or max(a.at for a in held.acks) + rules.hold_for > _utc(now):
        return Step()
    return Step(verdicts=tuple((a, Verdict.EXPIRED) for a in held.acks), held=replace(held, settled=True))
