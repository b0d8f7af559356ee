"""The SLA clock rules (broker.sla), pure: which items open clocks and when they are due, the events each
clock gives, acknowledgements and their verdicts, and property tests against a brute-force clock."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.sla import (
    Ack,
    Clock,
    Held,
    Item,
    Phase,
    Policy,
    SlaRules,
    Step,
    Verdict,
    ack_of,
    acknowledge,
    at_risk_at,
    cancel,
    expire,
    item_of,
    open_clock,
    sla_event_id,
    tick,
)
from schemas.models import (
    AgencyType,
    ConsentStatus,
    CumulativeConcernAlert,
    CumulativeTrigger,
    DvTriageItem,
    EmergencyDutyAlert,
    EncompassAcknowledgement,
    EncompassNotice,
    FrontDoorDecision,
    FrontDoorReferral,
    FrontDoorResponse,
    LawfulBasis,
    MaracCriterion,
    MaracReferral,
    Priority,
    Recall,
    RecallReason,
    Route,
    SecurityMarking,
    SlaEvent,
    SlaState,
    TriageItemDiscussed,
)

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # a Monday, Europe/London = UTC in November
SHROPSHIRE = "E06000051"
DORSET = "E06000059"
URN = "900001"
OTHER_URN = "900002"
RULES = SlaRules()


# ------------------------------------------------------------------------------------------ builders
def _oid(label: str) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"test-sla/{label}")


def notice(label: str = "n", *, due: datetime = T0 + timedelta(hours=23), urn: str = URN,
           verified: bool = True) -> EncompassNotice:
    """A synthetic Encompass notice (no real child)."""
    return EncompassNotice(notice_id=_oid(label), notification_id=_oid(label + "/nid"), school_urn=urn,
                           authority=SHROPSHIRE, child_key="child-key-1", given_name="Test", family_name="Child-One",
                           incident_occurred=T0 - timedelta(hours=3), police_reference="PR-1",
                           welfare_check_made=True, due=due, calendar_verified=verified)


def referral(label: str = "r", *, received: datetime = T0, due: datetime = T0 + timedelta(days=1),
             authority: str = SHROPSHIRE, supersedes: uuid.UUID | None = None) -> FrontDoorReferral:
    """A synthetic front door referral."""
    return FrontDoorReferral(referral_id=_oid(label), notification_id=_oid(label + "/nid"),
                             supersedes_referral=supersedes, authority=authority, agency_type=AgencyType.POLICE,
                             organisation_code="ORG1", source_reference="REF-1", kind="PoliceDomesticAbuseIncident",
                             occurred=received - timedelta(hours=1), received=received, decision_due=due,
                             priority=Priority.ROUTINE, security_marking=SecurityMarking.OFFICIAL,
                             lawful_basis=LawfulBasis.CHILDREN_ACT_1989_S17, consent=ConsentStatus.GIVEN)


def triage_item(label: str = "t", *, meeting: datetime = T0 + timedelta(days=1)) -> DvTriageItem:
    """A synthetic DV triage item."""
    return DvTriageItem(item_id=_oid(label), notification_id=_oid(label + "/nid"), authority=SHROPSHIRE,
                        agency_type=AgencyType.POLICE, source_reference="REF-2", meeting_at=meeting, marac=False,
                        occurred=T0 - timedelta(hours=2))


def edt_alert(label: str = "e", *, received: datetime = T0) -> EmergencyDutyAlert:
    """A synthetic emergency duty alert."""
    return EmergencyDutyAlert(alert_id=_oid(label), notification_id=_oid(label + "/nid"), authority=SHROPSHIRE,
                              agency_type=AgencyType.POLICE, source_reference="REF-3",
                              reason="HIGH_RISK_WITH_CHILDREN", received=received)


def cumulative(label: str = "c", *, raised: datetime = T0) -> CumulativeConcernAlert:
    """A synthetic cumulative-concern alert."""
    return CumulativeConcernAlert(alert_id=_oid(label), child_key="child-key-1", authority=SHROPSHIRE,
                                  trigger=CumulativeTrigger.THRESHOLD, notification_ids=[_oid("a"), _oid("b")],
                                  agency_types=[AgencyType.POLICE, AgencyType.HEALTH],
                                  window_start=raised - timedelta(days=30), window_end=raised, raised=raised)


def marac(label: str = "m") -> MaracReferral:
    """A synthetic MARAC referral."""
    return MaracReferral(referral_id=_oid(label), notification_id=_oid(label + "/nid"), triage_item_id=_oid("t"),
                         authority=SHROPSHIRE, criteria=[MaracCriterion.DASH_HIGH], occurred=T0)


def recall(of: uuid.UUID, route: Route, recipient: str, issued: datetime) -> Recall:
    """A synthetic recall of an output."""
    return Recall(recall_id=_oid(f"recall/{of}"), recalled_output_id=of, route=route, recipient=recipient,
                  notification_id=_oid("amend"), reason=RecallReason.WITHDRAWN, issued=issued)


def school_ack(of: uuid.UUID, at: datetime, urn: str = URN) -> EncompassAcknowledgement:
    """A DSL's acknowledgement of a notice."""
    return EncompassAcknowledgement(notice_id=of, school_urn=urn, acknowledged=at)


def decision(of: uuid.UUID, at: datetime, authority: str = SHROPSHIRE) -> FrontDoorDecision:
    """A front door decision on a referral."""
    return FrontDoorDecision(referral_id=of, authority=authority, response=FrontDoorResponse.EARLY_HELP, decided=at)


def discussed(of: uuid.UUID, at: datetime) -> TriageItemDiscussed:
    """The triage meeting discussed an item."""
    return TriageItemDiscussed(item_id=of, authority=SHROPSHIRE, discussed=at)


def _item(start: datetime = T0, due: datetime = T0 + timedelta(hours=10), route: Route = Route.ENCOMPASS) -> Item:
    return Item(_oid("item"), route, URN, SHROPSHIRE, start, due)


def _open(item: Item | None = None) -> Clock:
    return open_clock(item or _item(), 3, RULES).clocks[0]


def _states(events: Any) -> list[SlaState]:
    return [e.state for e in events]


# ------------------------------------------------------------------------------------------ items
def test_each_routed_kind_opens_a_clock_with_its_deadline() -> None:
    """Notice: `due`; referral: `decision_due` from `received`; triage: the meeting; EDT: received + 1 hour."""
    routed = T0 + timedelta(minutes=5)
    n, r, t, e = notice(), referral(), triage_item(), edt_alert()
    assert item_of(n, routed, RULES) == Item(n.notice_id, Route.ENCOMPASS, URN, SHROPSHIRE, routed, n.due)
    assert item_of(r, routed, RULES) == Item(r.referral_id, Route.FRONT_DOOR, SHROPSHIRE, SHROPSHIRE, T0,
                                             r.decision_due)
    assert item_of(t, routed, RULES) == Item(t.item_id, Route.DV_TRIAGE, SHROPSHIRE, SHROPSHIRE, routed,
                                             t.meeting_at)
    assert item_of(e, routed, RULES) == Item(e.alert_id, Route.EMERGENCY_DUTY, SHROPSHIRE, SHROPSHIRE, T0,
                                             T0 + timedelta(hours=1))


def test_cumulative_alert_and_marac_referral_are_due_in_one_working_day() -> None:
    """Cumulative concern from `raised`, MARAC from routing: the same local time on the next working day."""
    friday = datetime(2026, 11, 27, 15, tzinfo=UTC)
    alert = item_of(cumulative(raised=friday), friday, RULES)
    referral_ = item_of(marac(), friday, RULES)
    assert alert is not None and alert.due == datetime(2026, 11, 30, 15, tzinfo=UTC)
    assert referral_ is not None and referral_.due == alert.due and referral_.route is Route.MARAC


def test_deadline_periods_are_configurable() -> None:
    """EDT per authority and MARAC as a fixed period override the defaults."""
    rules = SlaRules(emergency_duty_by_authority={SHROPSHIRE: timedelta(minutes=20)}, marac_within=timedelta(days=5))
    e, m = item_of(edt_alert(), T0, rules), item_of(marac(), T0, rules)
    assert e is not None and e.due == T0 + timedelta(minutes=20)
    assert m is not None and m.due == T0 + timedelta(days=5)


def test_recall_and_unverified_notice() -> None:
    """A recall opens no clock; a notice's calendar_verified is carried."""
    assert item_of(recall(_oid("n"), Route.ENCOMPASS, URN, T0), T0, RULES) is None
    unverified = item_of(notice(verified=False), T0, RULES)
    assert unverified is not None and unverified.verified is False


# ------------------------------------------------------------------------------------------ at risk
def test_at_risk_is_the_earlier_of_share_and_margin() -> None:
    """10 hours: 80 % is at 8 h, 30 minutes before is 9.5 h -> 8 h; 1 hour: 48 min vs 30 min -> 30 min."""
    assert at_risk_at(T0, T0 + timedelta(hours=10), Policy()) == T0 + timedelta(hours=8)
    assert at_risk_at(T0, T0 + timedelta(hours=1), Policy()) == T0 + timedelta(minutes=30)


def test_at_risk_is_never_before_the_start() -> None:
    """A 10-minute clock (margin larger than the time) and an overdue one are at risk from the start."""
    assert at_risk_at(T0, T0 + timedelta(minutes=10), Policy()) == T0
    assert at_risk_at(T0, T0 - timedelta(hours=1), Policy()) == T0


def test_policy_by_route_and_authority() -> None:
    """(route, authority) before (None, authority) before (route, None) before the default."""
    exact, by_la, by_route = Policy(50), Policy(60), Policy(70)
    rules = SlaRules(overrides={(Route.ENCOMPASS, SHROPSHIRE): exact, (None, SHROPSHIRE): by_la,
                                (Route.ENCOMPASS, None): by_route})
    assert rules.policy(Route.ENCOMPASS, SHROPSHIRE) is exact
    assert rules.policy(Route.FRONT_DOOR, SHROPSHIRE) is by_la
    assert rules.policy(Route.ENCOMPASS, DORSET) is by_route
    assert rules.policy(Route.FRONT_DOOR, DORSET) == Policy()


def test_policy_rejects_nonsense() -> None:
    """A share over 100 % or a negative margin is a configuration error."""
    with pytest.raises(ValueError):
        Policy(120)
    with pytest.raises(ValueError):
        Policy(80, timedelta(minutes=-1))


# ------------------------------------------------------------------------------------------ events
def test_started_once_and_redelivery_changes_nothing() -> None:
    """STARTED at the start with the derived id; the same item again (clock exists) gives no step."""
    step = open_clock(_item(), 3, RULES)
    [started] = step.events
    assert (started.state, started.at, started.sla_event_id) == (
        SlaState.STARTED, T0, sla_event_id(_oid("item"), SlaState.STARTED))
    assert step.clocks[0].partition == 3
    assert open_clock(_item(), 3, RULES, existing=step.clocks[0]) == Step()


def test_never_acknowledged_gives_at_risk_then_breached_once() -> None:
    """Ticks through the whole day: AT_RISK at 8 h, BREACHED at the deadline (strictly after), each once."""
    clock, events = _open(), list[SlaEvent]()
    for minutes in range(0, 24 * 60, 7):
        step = tick(clock, T0 + timedelta(minutes=minutes))
        clock = step.clocks[0] if step.clocks else clock
        events.extend(step.events)
    assert [(e.state, e.at) for e in events] == [(SlaState.AT_RISK, T0 + timedelta(hours=8)),
                                                 (SlaState.BREACHED, T0 + timedelta(hours=10))]


def test_tick_at_the_deadline_is_not_a_breach() -> None:
    """At exactly `due` nothing is breached yet; a microsecond later it is."""
    clock = replace(_open(), at_risk=True)
    assert tick(clock, clock.due) == Step()
    assert _states(tick(clock, clock.due + timedelta(microseconds=1)).events) == [SlaState.BREACHED]


def test_tracker_down_across_the_deadline_breaches_once_on_recovery() -> None:
    """The first tick after a long outage gives AT_RISK and BREACHED (their own instants), the next nothing."""
    step = tick(_open(), T0 + timedelta(days=3))
    assert [(e.state, e.at) for e in step.events] == [(SlaState.AT_RISK, T0 + timedelta(hours=8)),
                                                      (SlaState.BREACHED, T0 + timedelta(hours=10))]
    assert tick(step.clocks[0], T0 + timedelta(days=3, seconds=5)) == Step()


def _ack(clock: Clock, at: datetime, by: str = URN, routes: frozenset[Route] = frozenset({Route.ENCOMPASS})) -> Ack:
    return Ack(clock.output_id, by, at, "EncompassAcknowledgement", routes)


def test_acknowledged_in_time_is_met() -> None:
    """An acknowledgement before the deadline: MET at its instant, clock closed, verdict MET."""
    clock = _open()
    step = acknowledge(clock, _ack(clock, T0 + timedelta(hours=2)), partition=3)
    assert [(e.state, e.at) for e in step.events] == [(SlaState.MET, T0 + timedelta(hours=2))]
    assert step.clocks[0].phase is Phase.MET and step.verdicts[0][1] is Verdict.MET


def test_acknowledged_at_the_deadline_is_in_time() -> None:
    """At exactly `due`: AT_RISK (missed) then MET, not late."""
    clock = _open()
    step = acknowledge(clock, _ack(clock, clock.due), partition=3)
    assert _states(step.events) == [SlaState.AT_RISK, SlaState.MET]
    assert step.verdicts[0][1] is Verdict.MET


def test_late_acknowledgement_after_breach_is_met_late() -> None:
    """After BREACHED, an acknowledgement is MET late; the lateness is MET.at - due."""
    clock = tick(_open(), T0 + timedelta(hours=11)).clocks[0]
    step = acknowledge(clock, _ack(clock, T0 + timedelta(hours=12)), partition=3)
    [met] = step.events
    assert met.state is SlaState.MET and met.at - met.due == timedelta(hours=2)
    assert step.verdicts[0][1] is Verdict.MET_LATE


def test_late_acknowledgement_without_a_tick_emits_the_missed_breach_first() -> None:
    """No tick happened since the start: a late acknowledgement gives AT_RISK, BREACHED, MET in order."""
    clock = _open()
    step = acknowledge(clock, _ack(clock, T0 + timedelta(hours=12)), partition=3)
    assert _states(step.events) == [SlaState.AT_RISK, SlaState.BREACHED, SlaState.MET]


def test_acknowledgement_from_another_school_is_refused() -> None:
    """Another school's acknowledgement: REFUSED_RECIPIENT, no event, the clock still open."""
    clock = _open()
    step = acknowledge(clock, _ack(clock, T0 + timedelta(hours=1), by=OTHER_URN), partition=3)
    assert step.events == () and step.clocks == ()
    assert step.verdicts[0][1] is Verdict.REFUSED_RECIPIENT


def test_acknowledgement_of_the_wrong_kind_is_refused() -> None:
    """A triage 'discussed' record cannot close an Encompass clock."""
    clock = _open()
    ack = _ack(clock, T0 + timedelta(hours=1), routes=frozenset({Route.DV_TRIAGE}))
    assert acknowledge(clock, ack, partition=3).verdicts[0][1] is Verdict.REFUSED_KIND


def test_acknowledgement_of_closed_or_recalled_items_is_ignored() -> None:
    """A second acknowledgement of a MET clock: IGNORED_CLOSED; of a cancelled one: IGNORED_RECALLED."""
    clock = _open()
    met = acknowledge(clock, _ack(clock, T0 + timedelta(hours=1)), partition=3).clocks[0]
    again = acknowledge(met, _ack(clock, T0 + timedelta(hours=2)), partition=3)
    assert again.events == () and again.verdicts[0][1] is Verdict.IGNORED_CLOSED
    cancelled = cancel(clock, T0 + timedelta(hours=1)).clocks[0]
    late = acknowledge(cancelled, _ack(clock, T0 + timedelta(hours=2)), partition=3)
    assert late.events == () and late.verdicts[0][1] is Verdict.IGNORED_RECALLED


def test_recall_cancels_an_open_clock_only() -> None:
    """CANCELLED at the recall's instant; a recall of a MET clock, or of an unknown item, does nothing."""
    clock = _open()
    step = cancel(clock, T0 + timedelta(hours=1))
    assert [(e.state, e.at) for e in step.events] == [(SlaState.CANCELLED, T0 + timedelta(hours=1))]
    met = acknowledge(clock, _ack(clock, T0 + timedelta(minutes=5)), partition=3).clocks[0]
    assert cancel(met, T0 + timedelta(hours=1)) == Step()
    assert cancel(None, T0) == Step()


def test_acknowledgement_before_its_item_is_held_then_applied() -> None:
    """Read before the item (topics interleave): HELD; when the item arrives, STARTED then MET."""
    item = _item()
    ack = Ack(item.output_id, URN, T0 + timedelta(hours=1), "EncompassAcknowledgement", frozenset({Route.ENCOMPASS}))
    held_step = acknowledge(None, ack, partition=3)
    assert held_step.verdicts[0][1] is Verdict.HELD and held_step.held is not None
    step = open_clock(item, 3, RULES, held=held_step.held)
    assert _states(step.events) == [SlaState.STARTED, SlaState.MET]
    assert step.held is not None and step.held.settled


def test_held_acknowledgements_are_checked_when_the_item_arrives() -> None:
    """Held: another school's then the right one; on arrival the first is refused, the second meets it."""
    item = _item()
    wrong = Ack(item.output_id, OTHER_URN, T0 + timedelta(minutes=10), "EncompassAcknowledgement",
                frozenset({Route.ENCOMPASS}))
    right = replace(wrong, by=URN, at=T0 + timedelta(minutes=20))
    held = acknowledge(None, wrong, partition=3).held
    held = acknowledge(None, right, partition=3, held=held).held
    step = open_clock(item, 3, RULES, held=held)
    assert [v for _, v in step.verdicts] == [Verdict.REFUSED_RECIPIENT, Verdict.MET]


def test_held_acknowledgement_expires() -> None:
    """A held acknowledgement whose item never comes is EXPIRED after `hold_for`, once."""
    ack = Ack(_oid("ghost"), URN, T0, "EncompassAcknowledgement", frozenset({Route.ENCOMPASS}))
    held = acknowledge(None, ack, partition=1).held
    assert held is not None
    assert expire(held, T0 + timedelta(days=6), RULES) == Step()
    step = expire(held, T0 + timedelta(days=8), RULES)
    assert step.verdicts == ((ack, Verdict.EXPIRED),) and step.held is not None
    assert expire(step.held, T0 + timedelta(days=9), RULES) == Step()


def test_a_superseding_referral_cancels_the_one_it_replaces() -> None:
    """An AMEND's referral (supersedes_referral) opens its clock and cancels the old one at its receipt."""
    old = item_of(referral("old"), T0, RULES)
    assert old is not None
    old_clock = open_clock(old, 2, RULES).clocks[0]
    new = item_of(referral("new", received=T0 + timedelta(hours=2), supersedes=old.output_id), T0, RULES)
    assert new is not None
    step = open_clock(new, 2, RULES, superseded=old_clock)
    assert [(e.output_id, e.state) for e in step.events] == [(new.output_id, SlaState.STARTED),
                                                             (old.output_id, SlaState.CANCELLED)]


def test_ack_of_reads_the_three_contract_records() -> None:
    """Encompass acknowledgement, front door decision (referrals and cumulative alerts), triage discussed."""
    a = ack_of(school_ack(_oid("n"), T0))
    assert a is not None and (a.output_id, a.by, a.routes) == (_oid("n"), URN, frozenset({Route.ENCOMPASS}))
    d = ack_of(decision(_oid("r"), T0))
    assert d is not None and d.routes == frozenset({Route.FRONT_DOOR, Route.CUMULATIVE_CONCERN})
    t = ack_of(discussed(_oid("t"), T0))
    assert t is not None and t.routes == frozenset({Route.DV_TRIAGE}) and t.by == SHROPSHIRE
    assert ack_of(notice()) is None


def test_ack_of_reads_the_proposed_generic_acknowledgement() -> None:
    """Any record with output_id, route, recipient, acknowledged (the proposed EDT/MARAC record) is read."""

    class ItemAcknowledgement:
        output_id = _oid("e")
        route = Route.EMERGENCY_DUTY
        recipient = SHROPSHIRE
        acknowledged = T0

    a = ack_of(ItemAcknowledgement())
    assert a is not None and a.routes == frozenset({Route.EMERGENCY_DUTY}) and a.by == SHROPSHIRE


def test_clock_and_held_round_trip_through_json() -> None:
    """What the table stores reads back equal."""
    clock = tick(_open(), T0 + timedelta(hours=9)).clocks[0]
    assert Clock.from_json(clock.to_json()) == clock
    ack = Ack(_oid("x"), URN, T0, "EncompassAcknowledgement", frozenset({Route.ENCOMPASS}))
    held = Held(_oid("x"), 4, (ack,))
    assert Held.from_json(held.to_json()) == held


# ------------------------------------------------------------------------------------------ properties
STEP = timedelta(seconds=6)  # grid of the brute-force clock: every instant below is a multiple of 6 s from T0


def _brute_at_risk(t: datetime, start: datetime, due: datetime, policy: Policy) -> bool:
    """At risk at `t`, in exact arithmetic: the share elapsed reached, or no more than the margin left."""
    total = Fraction((due - start) // timedelta(microseconds=1))
    elapsed = Fraction((t - start) // timedelta(microseconds=1))
    return elapsed * 100 >= total * policy.percent or due - t <= policy.margin


def brute_force(start: datetime, due: datetime, policy: Policy, closed: tuple[SlaState, datetime] | None,
                horizon: datetime) -> list[tuple[SlaState, datetime]]:
    """The ideal tracker, by stepping through every grid instant: what happens, and when."""
    events = [(SlaState.STARTED, start)]
    risky = breached = False
    t = start
    end = closed[1] if closed else horizon + STEP
    while t < end:
        if not risky and _brute_at_risk(t, start, due, policy):
            risky = True
            events.append((SlaState.AT_RISK, t))
        if not breached and t > due:
            breached = True
            events.append((SlaState.BREACHED, due))
        t += STEP
    if closed and not breached and closed[1] > due:
        events.append((SlaState.BREACHED, due))
    if closed:
        events.append(closed)
    return events


def _minutes(draw: Any, low: int, high: int) -> timedelta:
    return timedelta(minutes=draw(st.integers(low, high)))


@st.composite
def scenarios(draw: Any) -> dict[str, Any]:
    """A clock (start, due), a policy, maybe an acknowledgement or a recall, and the ticks' instants."""
    due = T0 + _minutes(draw, -30, 600)
    policy = Policy(draw(st.sampled_from(range(0, 101, 10))), _minutes(draw, 0, 120))
    closing = draw(st.sampled_from([None, SlaState.MET, SlaState.CANCELLED]))
    closed_at = T0 + _minutes(draw, 0, 900) if closing else None
    horizon = T0 + timedelta(minutes=960)
    ticks = [*sorted(set(draw(st.lists(st.integers(0, 960), max_size=40)))), 960]
    return {"due": due, "policy": policy, "closing": closing, "closed_at": closed_at, "horizon": horizon,
            "ticks": [T0 + timedelta(minutes=m) for m in ticks]}


def _drive(s: dict[str, Any], *, late_ack: bool = False) -> list[SlaEvent]:
    """Run the rules: ticks in order, the acknowledgement or recall processed at its own instant (ties: first),
    or after every tick when `late_ack`."""
    rules = SlaRules(default=s["policy"])
    step = open_clock(Item(_oid("p"), Route.ENCOMPASS, URN, SHROPSHIRE, T0, s["due"]), 0, rules)
    clock, events = step.clocks[0], list(step.events)
    inputs: list[tuple[datetime, int, str]] = [(t, 1, "tick") for t in s["ticks"]]
    if s["closing"]:
        inputs.append((s["horizon"] + STEP if late_ack else s["closed_at"], 0, "close"))
    for when, _, kind in sorted(inputs):
        if kind == "tick":
            nxt = tick(clock, when)
        elif s["closing"] is SlaState.MET:
            nxt = acknowledge(clock, _ack(clock, s["closed_at"]), partition=0)
        else:
            nxt = cancel(clock, s["closed_at"])
        clock = nxt.clocks[0] if nxt.clocks else clock
        events.extend(nxt.events)
    return events


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_rules_agree_with_the_brute_force_clock(s: dict[str, Any]) -> None:
    """However sparse the ticks, the events (state and instant) are the brute-force clock's."""
    closed = (s["closing"], s["closed_at"]) if s["closing"] else None
    expected = brute_force(T0, s["due"], s["policy"], closed, s["horizon"])
    assert [(e.state, e.at) for e in _drive(s)] == expected


@settings(max_examples=200, deadline=None)
@given(scenarios())
def test_each_state_at_most_once_with_its_derived_id(s: dict[str, Any]) -> None:
    """Whatever the order (even an acknowledgement read after every tick), no state twice, ids derived."""
    events = _drive(s, late_ack=True)
    assert len({e.state for e in events}) == len(events)
    assert all(e.sla_event_id == sla_event_id(e.output_id, e.state) for e in events)
    assert events[0].state is SlaState.STARTED
    assert sum(e.state in (SlaState.MET, SlaState.CANCELLED) for e in events) <= 1


@settings(max_examples=200, deadline=None)
@given(scenarios())
def test_replaying_every_input_adds_nothing(s: dict[str, Any]) -> None:
    """Feeding the final clock every tick again (a redelivery or a second worker's view) emits nothing."""
    rules = SlaRules(default=s["policy"])
    clock = open_clock(Item(_oid("p"), Route.ENCOMPASS, URN, SHROPSHIRE, T0, s["due"]), 0, rules).clocks[0]
    for t in s["ticks"]:
        step = tick(clock, t)
        clock = step.clocks[0] if step.clocks else clock
    for t in s["ticks"]:
        assert tick(clock, t) == Step()
