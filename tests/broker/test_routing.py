"""Routing rules (broker.routing): front door, Encompass, DV triage / MARAC, emergency duty, cumulative concern,
AMEND / WITHDRAW recalls and stable output ids.  Pure: no Kafka, stand-in deadlines unless stated."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta

import pytest

from broker._deadlines import DefaultDeadlines
from broker.identity import subjects
from broker.routing import (
    DeadlineCalculator,
    Decision,
    RoutingContext,
    RoutingError,
    VictimHistory,
    VictimIncident,
    route,
)
from schemas.models import (
    Action,
    AgencyType,
    CaveatType,
    ConcernCategory,
    CumulativeConcernAlert,
    CumulativeTrigger,
    DvTriageItem,
    EducationStatus,
    EmergencyDutyAlert,
    EncompassNotice,
    FrontDoorReferral,
    HealthSetting,
    MaracCriterion,
    MaracReferral,
    Priority,
    ProbationEvent,
    Recall,
    RecallReason,
    RiskLevel,
    Route,
)
from tests.broker.factories import (
    BASE,
    DORSET,
    SCHOOLS,
    SECRET,
    SHROPSHIRE,
    MemoryState,
    StubDeadlines,
    adult,
    child,
    health_notification,
    police_concern,
    police_incident,
    probation_notification,
    youth_justice_notification,
)

RECEIVED = BASE + timedelta(hours=1)  # Wednesday 21:00 UTC: out of office hours


def _route(
    notification,
    ctx: RoutingContext | None = None,
    *,
    received: datetime = RECEIVED,
    deadlines: DeadlineCalculator | None = None,
) -> Decision:
    return route(
        notification,
        ctx=ctx if ctx is not None else RoutingContext(schools=SCHOOLS),
        received=received,
        secret=SECRET,
        deadlines=deadlines if deadlines is not None else StubDeadlines(),
    )


def _payloads(decision: Decision, kind: type) -> list:
    return [o.payload for o in decision.outputs if isinstance(o.payload, kind)]


def _key(person) -> str:
    return subjects(police_incident([person]), SECRET).children[0].primary


# ----------------------------------------------------------------------------------- incident shape
def test_incident_with_two_schools_and_a_toddler() -> None:
    """Two school children at different schools + a toddler: two notices, one referral naming three, one item."""
    kids = [
        child(1, school_urn="900001", date_of_birth=date(2016, 5, 1)),
        child(2, school_urn="900002", date_of_birth=date(2013, 9, 9)),
        child(3, date_of_birth=date(2023, 6, 1), education=EducationStatus.NOT_SCHOOL_AGE),
    ]
    decision = _route(police_incident(kids))
    notices = _payloads(decision, EncompassNotice)
    assert sorted(n.school_urn for n in notices) == ["900001", "900002"]
    referrals = _payloads(decision, FrontDoorReferral)
    assert len(referrals) == 1 and len(referrals[0].children) == 3
    assert not any(c.education_contact_needed for c in referrals[0].children)
    assert len(_payloads(decision, DvTriageItem)) == 1
    assert len(decision.outputs) == 4
    assert {o.route for o in decision.outputs} == {Route.ENCOMPASS, Route.FRONT_DOOR, Route.DV_TRIAGE}


def test_notice_carries_only_what_the_dsl_needs() -> None:
    """A notice holds the child, when, present, police reference, welfare check, caveats and the due time."""
    stub = StubDeadlines(verified=False)
    incident = police_incident(
        [child(1, school_urn="900003", present=False)],
        welfare_check_made=False,
        caveats=[CaveatType.DO_NOT_CONTACT_NAMED_PARENT],
    )
    (notice,) = _payloads(_route(incident, deadlines=stub), EncompassNotice)
    assert notice.authority == DORSET  # the school's authority, not the home authority
    assert notice.child_present is False and notice.welfare_check_made is False
    assert notice.police_reference == incident.police_reference
    assert notice.safety_caveats == incident.envelope.safety_caveats
    assert notice.due == incident.envelope.reported + timedelta(hours=12)
    assert notice.calendar_verified is False
    assert ("encompass", (incident.envelope.reported, DORSET, time(9, 0))) in stub.calls
    assert "summary" not in EncompassNotice.model_fields and "narrative" not in notice.model_dump_json()


def test_school_age_child_without_a_setting_is_flagged_not_notified() -> None:
    """Aged 4-17 and home-educated / unknown setting: flagged on the referral, no notice; others not flagged."""
    kids = [
        child(1, education=EducationStatus.HOME_EDUCATED),
        child(2, education=EducationStatus.UNKNOWN, date_of_birth=date(2021, 11, 19)),  # 4 on the day
        child(3, education=EducationStatus.UNKNOWN, date_of_birth=date(2021, 11, 20)),  # 3 on the day
        child(4, education=EducationStatus.NOT_IN_EDUCATION, date_of_birth=date(2007, 11, 19)),  # 18
    ]
    decision = _route(police_incident(kids))
    assert _payloads(decision, EncompassNotice) == []
    (referral,) = _payloads(decision, FrontDoorReferral)
    assert [c.education_contact_needed for c in referral.children] == [True, True, False, False]


def test_unknown_and_closed_schools() -> None:
    """An unknown URN still gets a notice (home authority); a closed school gets none and the child is flagged."""
    decision = _route(police_incident([child(1, school_urn="912345"), child(2, school_urn="900009")]))
    (notice,) = _payloads(decision, EncompassNotice)
    assert notice.school_urn == "912345" and notice.authority == SHROPSHIRE
    (referral,) = _payloads(decision, FrontDoorReferral)
    assert [c.education_contact_needed for c in referral.children] == [False, True]
    assert any("children[1].education.urn" in n for n in decision.notes)


def test_nursery_not_notified_without_opt_in() -> None:
    """A nursery child gets no notice unless the authority opts in (none does by default)."""
    decision = _route(
        police_incident(
            [child(1, school_urn="900001", education=EducationStatus.NURSERY, date_of_birth=date(2022, 1, 1))]
        )
    )
    assert _payloads(decision, EncompassNotice) == []


def test_incident_without_children_is_triage_only() -> None:
    """A domestic abuse incident with no children: a DV triage item, no referral, no notice."""
    decision = _route(police_incident([]))
    assert [o.route for o in decision.outputs] == [Route.DV_TRIAGE]


def test_front_door_referral_contents() -> None:
    """The referral goes to the home authority, due from deadlines.frontdoor(received, authority, None)."""
    stub = StubDeadlines()
    incident = police_incident([child(1)], risk=RiskLevel.MEDIUM)
    (out,) = _route(incident, deadlines=stub).of_route(Route.FRONT_DOOR)
    referral = out.payload
    assert isinstance(referral, FrontDoorReferral)
    assert out.recipient == SHROPSHIRE == referral.authority
    assert referral.decision_due == RECEIVED + timedelta(days=1)
    assert ("frontdoor", (RECEIVED, SHROPSHIRE, None)) in stub.calls
    assert referral.kind == "PoliceDomesticAbuseIncident" and referral.risk_level is RiskLevel.MEDIUM
    assert out.lawful_basis is incident.envelope.lawful_basis and out.output_id == referral.referral_id


def test_probation_without_child_is_adult_risk_only() -> None:
    """Probation with no named child: a referral flagged adult_risk_only, no children."""
    (referral,) = _payloads(_route(probation_notification()), FrontDoorReferral)
    assert referral.adult_risk_only and referral.children == []


def test_every_child_notification_gets_a_referral() -> None:
    """Police child concern, health and youth justice notifications each get one front door referral."""
    for note in (police_concern(), health_notification(), youth_justice_notification()):
        decision = _route(note)
        assert [o.route for o in decision.outputs] == [Route.FRONT_DOOR], type(note).__name__


def test_domestic_abuse_items_from_other_agencies_reach_triage() -> None:
    """Probation / YJ marked domestic abuse and health with a DOMESTIC_ABUSE category get a triage item."""
    for note in (
        probation_notification(domestic_abuse_related=True),
        youth_justice_notification(domestic_abuse_related=True),
        health_notification(categories=[ConcernCategory.DOMESTIC_ABUSE]),
    ):
        (item,) = _payloads(_route(note), DvTriageItem)
        assert item.authority == SHROPSHIRE and not item.marac, type(note).__name__


# ------------------------------------------------------------------------------------------- MARAC
def _marac(decision: Decision) -> list[MaracCriterion]:
    (item,) = _payloads(decision, DvTriageItem)
    referrals = _payloads(decision, MaracReferral)
    assert item.marac == bool(referrals)
    if referrals:
        assert referrals[0].criteria == item.marac_criteria and referrals[0].triage_item_id == item.item_id
    return item.marac_criteria


def test_standard_risk_is_not_flagged() -> None:
    """Standard risk, few ticks, no history: triage item, no MARAC."""
    assert _marac(_route(police_incident([child(1)]))) == []


@pytest.mark.parametrize("level", [RiskLevel.HIGH, RiskLevel.VERY_HIGH])
def test_marac_dash_high(level: RiskLevel) -> None:
    """DASH HIGH / VERY_HIGH flags DASH_HIGH."""
    assert _marac(_route(police_incident([], risk=level))) == [MaracCriterion.DASH_HIGH]


def test_marac_fourteen_ticks() -> None:
    """14 ticks flags DASH_14_PLUS_TICKS; 13 does not."""
    assert _marac(_route(police_incident([], ticks=14))) == [MaracCriterion.DASH_14_PLUS_TICKS]
    assert _marac(_route(police_incident([], ticks=13))) == []


def _victim_ctx(*incidents: VictimIncident) -> RoutingContext:
    victim = subjects(police_incident([]), SECRET).adults[0][1]
    assert victim is not None
    return RoutingContext(victims={victim.primary: VictimHistory(incidents=incidents)}, schools=SCHOOLS)


def test_marac_escalation_three_incidents_in_twelve_months() -> None:
    """Two earlier incidents with the same victim within 365 days make a 3rd flagged; one outside does not."""
    inside = _victim_ctx(
        VictimIncident(uuid.uuid4(), BASE - timedelta(days=30)),
        VictimIncident(uuid.uuid4(), BASE - timedelta(days=364)),
    )
    assert _marac(_route(police_incident([]), inside)) == [MaracCriterion.ESCALATION_3_INCIDENTS_12_MONTHS]
    outside = _victim_ctx(
        VictimIncident(uuid.uuid4(), BASE - timedelta(days=30)),
        VictimIncident(uuid.uuid4(), BASE - timedelta(days=366)),
    )
    assert _marac(_route(police_incident([]), outside)) == []


def test_marac_repeat_within_twelve_months_of_referral() -> None:
    """An earlier MARAC-referred incident within 12 months flags REPEAT_WITHIN_12_MONTHS_OF_MARAC."""
    ctx = _victim_ctx(VictimIncident(uuid.uuid4(), BASE - timedelta(days=200), marac_referred=True))
    assert _marac(_route(police_incident([]), ctx)) == [MaracCriterion.REPEAT_WITHIN_12_MONTHS_OF_MARAC]
    old = _victim_ctx(VictimIncident(uuid.uuid4(), BASE - timedelta(days=400), marac_referred=True))
    assert _marac(_route(police_incident([]), old)) == []


def test_marac_professional_judgement() -> None:
    """The officer's professional judgement flag flags PROFESSIONAL_JUDGEMENT."""
    assert _marac(_route(police_incident([], professional_judgement=True))) == [MaracCriterion.PROFESSIONAL_JUDGEMENT]


def test_marac_lists_every_criterion_met() -> None:
    """All criteria met at once are all listed, in a fixed order."""
    ctx = _victim_ctx(
        VictimIncident(uuid.uuid4(), BASE - timedelta(days=10), marac_referred=True),
        VictimIncident(uuid.uuid4(), BASE - timedelta(days=20)),
    )
    incident = police_incident([], risk=RiskLevel.HIGH, ticks=20, professional_judgement=True)
    assert _marac(_route(incident, ctx)) == list(MaracCriterion)[1:]


def test_victim_history_update_and_redelivery() -> None:
    """The victim's incident is recorded; re-routing with it already recorded changes nothing."""
    state = MemoryState()
    incident = police_incident([], risk=RiskLevel.HIGH)
    first = _route(incident, state.context(incident))
    state.apply(first)
    assert len(first.victim_updates) == 1 and first.victim_updates[0][1].marac_referred
    assert _route(incident, state.context(incident)) == first


# ------------------------------------------------------------------------------------ emergency duty
def test_emergency_duty_at_two_in_the_morning_for_high_risk() -> None:
    """HIGH risk with children received at 02:00 on a weekday (real deadlines): one emergency duty alert."""
    incident = police_incident([child(1)], risk=RiskLevel.HIGH, occurred=datetime(2025, 11, 20, 1, 30, tzinfo=UTC))
    decision = _route(incident, received=datetime(2025, 11, 20, 2, 0, tzinfo=UTC), deadlines=DefaultDeadlines())
    (alert,) = _payloads(decision, EmergencyDutyAlert)
    assert alert.reason == "HIGH_RISK_WITH_CHILDREN" and alert.authority == SHROPSHIRE
    assert alert.child_keys == [_key(child(1))]


def test_no_emergency_duty_in_office_hours() -> None:
    """The same incident received at 11:00 on a weekday: no alert (real deadlines)."""
    incident = police_incident([child(1)], risk=RiskLevel.HIGH, occurred=datetime(2025, 11, 20, 10, 0, tzinfo=UTC))
    decision = _route(incident, received=datetime(2025, 11, 20, 11, 0, tzinfo=UTC), deadlines=DefaultDeadlines())
    assert _payloads(decision, EmergencyDutyAlert) == []


def test_emergency_duty_for_immediate_priority_needs_children() -> None:
    """Priority IMMEDIATE out of hours alerts when children are named; without children it does not."""
    (alert,) = _payloads(_route(police_concern(priority=Priority.IMMEDIATE)), EmergencyDutyAlert)
    assert alert.reason == "SENDER_MARKED_IMMEDIATE"
    assert _payloads(_route(probation_notification(priority=Priority.IMMEDIATE)), EmergencyDutyAlert) == []
    assert _payloads(_route(police_incident([], risk=RiskLevel.HIGH)), EmergencyDutyAlert) == []


# -------------------------------------------------------------------------------- cumulative concern
def _run(state: MemoryState, note) -> Decision:
    decision = _route(note, state.context(note))
    state.apply(decision)
    return decision


def _alerts(decision: Decision) -> list[CumulativeConcernAlert]:
    return _payloads(decision, CumulativeConcernAlert)


def test_cumulative_concern_once_per_crossing() -> None:
    """Three police notifications: nothing; the 4th (health) within 90 days: one alert; the 5th: none."""
    state = MemoryState()
    day = [BASE - timedelta(days=d) for d in (60, 50, 40, 30, 20)]
    first_three = [
        police_concern(occurred=day[0]),
        police_incident([child(1)], occurred=day[1]),
        police_concern(occurred=day[2]),
    ]
    assert [_alerts(_run(state, n)) for n in first_three] == [[], [], []]
    fourth = health_notification(occurred=day[3])
    alerts = _alerts(_run(state, fourth))
    assert len(alerts) == 1
    alert = alerts[0]
    assert alert.trigger is CumulativeTrigger.THRESHOLD and alert.child_key == _key(child(1))
    assert alert.notification_ids == [n.envelope.notification_id for n in [*first_three, fourth]]
    assert alert.agency_types == [AgencyType.POLICE, AgencyType.HEALTH]
    assert alert.window_end == day[3] and alert.window_start == day[3] - timedelta(days=90)
    assert _alerts(_run(state, youth_justice_notification(child(1), occurred=day[4]))) == []


def test_cumulative_concern_alerts_again_after_the_crossing_lapses() -> None:
    """When the 90-day condition has stopped holding, a new crossing raises a new alert."""
    state = MemoryState()
    early = [police_concern(occurred=BASE - timedelta(days=d)) for d in (300, 295)]
    for note in [*early, health_notification(occurred=BASE - timedelta(days=290))]:
        _run(state, note)
    assert len(state.alerts[_key(child(1))]) == 1
    later = [health_notification(occurred=BASE - timedelta(days=d)) for d in (20, 10)]
    assert [_alerts(_run(state, n)) for n in later] == [[], []]
    assert len(_alerts(_run(state, police_concern(occurred=BASE)))) == 1


def test_late_notification_inside_an_alerted_crossing_raises_nothing() -> None:
    """A notification that arrives late but falls inside an already-alerted crossing raises no alert."""
    state = MemoryState()
    for d, make in ((30, police_concern), (20, health_notification), (10, police_concern)):
        _run(state, make(occurred=BASE - timedelta(days=d)))
    assert len(state.alerts[_key(child(1))]) == 1
    assert _alerts(_run(state, health_notification(occurred=BASE - timedelta(days=25)))) == []


def test_alias_joins_chronologies_for_the_threshold() -> None:
    """Notifications with and without the NHS number count in one chronology through the alias."""
    state = MemoryState()
    _run(state, police_concern([child(1)], occurred=BASE - timedelta(days=3)))
    _run(state, police_concern([child(1, nhs=False)], occurred=BASE - timedelta(days=2)))
    assert len(_alerts(_run(state, health_notification([child(1, nhs=False)], occurred=BASE)))) == 1


def test_significant_event_with_open_referral() -> None:
    """A release from custody naming a child with an open referral raises a SIGNIFICANT_EVENT alert."""
    state = MemoryState()
    release = probation_notification([child(1)], event=ProbationEvent.RELEASE_FROM_CUSTODY)
    assert _alerts(_route(release, state.context(release))) == []
    state.open_referrals.add(_key(child(1)))
    (alert,) = _alerts(_route(release, state.context(release)))
    assert alert.trigger is CumulativeTrigger.SIGNIFICANT_EVENT
    routine = probation_notification([child(1)], event=ProbationEvent.SENTENCE_START)
    assert _alerts(_route(routine, state.context(routine))) == []


def test_birth_related_midwifery_notification_is_significant() -> None:
    """A midwifery notification about an unborn child with an open referral raises a significant-event alert."""
    mother = adult(n=4)
    note = health_notification([child(unborn=True)], setting=HealthSetting.MIDWIFERY, adults=[mother])
    state = MemoryState()
    state.open_referrals.add(subjects(note, SECRET).children[0].primary)
    (alert,) = _alerts(_route(note, state.context(note)))
    assert alert.trigger is CumulativeTrigger.SIGNIFICANT_EVENT


# ----------------------------------------------------------------------------------- AMEND / WITHDRAW
def test_amend_moving_a_child_to_another_school() -> None:
    """AMEND moving a child's school: recall to the first school, a notice to the second, referral superseded."""
    state = MemoryState()
    original = police_incident([child(1, school_urn="900001"), child(2, school_urn="900002")])
    first = _run(state, original)
    amended = police_incident(
        [child(1, school_urn="900001"), child(2, school_urn="900003")],
        action=Action.AMEND,
        supersedes=original.envelope.notification_id,
    )
    second = _run(state, amended)
    recalls = _payloads(second, Recall)
    assert all(r.reason is RecallReason.AMENDED for r in recalls)
    old = {(o.route, o.recipient, o.payload_key): o.output_id for o in first.outputs}
    child2 = _key(child(2))
    assert old[(Route.ENCOMPASS, "900002", child2)] in {r.recalled_output_id for r in recalls}
    notices = {n.school_urn: n for n in _payloads(second, EncompassNotice)}
    assert set(notices) == {"900001", "900003"} and notices["900003"].authority == DORSET
    (referral,) = _payloads(second, FrontDoorReferral)
    assert referral.supersedes_referral == old[(Route.FRONT_DOOR, SHROPSHIRE, None)]
    assert Route.FRONT_DOOR not in {r.route for r in recalls}
    assert referral.referral_id != old[(Route.FRONT_DOOR, SHROPSHIRE, None)]


def test_amend_recalls_reissued_outputs_without_a_link() -> None:
    """Reissued notices and items (no supersedes field) recall their old copies; new ids come from the AMEND."""
    state = MemoryState()
    original = police_incident([child(1, school_urn="900001")])
    first = _run(state, original)
    amended = police_incident(
        [child(1, school_urn="900001")], action=Action.AMEND, supersedes=original.envelope.notification_id
    )
    second = _run(state, amended)
    recalled = {r.recalled_output_id for r in _payloads(second, Recall)}
    expected = {o.output_id for o in first.outputs if o.route is not Route.FRONT_DOOR}
    assert recalled == expected
    assert not {o.output_id for o in second.outputs} & {o.output_id for o in first.outputs}


def test_amend_removing_risk_recalls_marac() -> None:
    """An amendment that lowers the risk recalls the MARAC referral and issues none."""
    state = MemoryState()
    original = police_incident([], risk=RiskLevel.HIGH)
    first = _run(state, original)
    amended = police_incident([], action=Action.AMEND, supersedes=original.envelope.notification_id)
    second = _run(state, amended)
    (marac,) = first.of_route(Route.MARAC)
    assert [o.payload for o in second.of_route(Route.MARAC)] == [
        r for r in _payloads(second, Recall) if r.recalled_output_id == marac.output_id
    ]


def test_withdraw_recalls_everything() -> None:
    """WITHDRAW recalls every prior output (reason WITHDRAWN) and produces nothing new."""
    state = MemoryState()
    original = police_incident([child(1, school_urn="900001"), child(2, school_urn="900002")], risk=RiskLevel.HIGH)
    first = _run(state, original)
    withdraw = police_incident(
        [child(1, school_urn="900001"), child(2, school_urn="900002")],
        action=Action.WITHDRAW,
        supersedes=original.envelope.notification_id,
    )
    second = _run(state, withdraw)
    recalls = _payloads(second, Recall)
    assert len(recalls) == len(second.outputs) == len(first.outputs)
    assert {r.recalled_output_id for r in recalls} == {o.output_id for o in first.outputs}
    assert {(r.route, r.recipient) for r in recalls} == {(o.route, o.recipient) for o in first.outputs}
    assert all(r.reason is RecallReason.WITHDRAWN for r in recalls) and second.produced == ()
    assert all(entry.action is Action.WITHDRAW and entry.routes == () for _, entry in second.chronology)


def test_withdrawn_notification_no_longer_counts() -> None:
    """A withdrawn notification drops out of the cumulative-concern count."""
    state = MemoryState()
    withdrawn = health_notification(occurred=BASE - timedelta(days=3))
    _run(state, withdrawn)
    _run(
        state,
        health_notification(
            occurred=BASE - timedelta(days=3), action=Action.WITHDRAW, supersedes=withdrawn.envelope.notification_id
        ),
    )
    _run(state, police_concern(occurred=BASE - timedelta(days=2)))
    assert _alerts(_run(state, police_concern(occurred=BASE))) == []


# ------------------------------------------------------------------------------------------ ids etc.
def test_output_ids_are_stable_across_calls() -> None:
    """The same input routed twice gives the same Decision, ids included; another notification id differs."""
    incident = police_incident([child(1, school_urn="900001")], risk=RiskLevel.HIGH)
    a, b = _route(incident), _route(incident)
    assert a == b and a.outputs
    other = police_incident([child(1, school_urn="900001")], risk=RiskLevel.HIGH)
    assert not {o.output_id for o in a.outputs} & {o.output_id for o in _route(other).outputs}


def test_decision_gives_what_the_audit_and_chronology_need() -> None:
    """Each output has route, recipient, id and lawful basis; chronology entries list each child's routes."""
    decision = _route(police_incident([child(1, school_urn="900001"), child(2)]))
    for out in decision.outputs:
        assert out.recipient and out.output_id and out.lawful_basis and out.purpose
    routes = {key: entry.routes for key, entry in decision.chronology}
    assert routes[_key(child(1))] == (Route.FRONT_DOOR, Route.ENCOMPASS, Route.DV_TRIAGE)
    assert routes[_key(child(2))] == (Route.FRONT_DOOR, Route.DV_TRIAGE)
    assert {p.output_id for p in decision.produced} == {o.output_id for o in decision.outputs}
    assert decision.aliases  # NHS number + demographics -> alias pairs recorded


def test_naive_received_is_refused() -> None:
    """A `received` instant without a UTC offset is a RoutingError."""
    with pytest.raises(RoutingError, match="received"):
        _route(police_incident([]), received=datetime(2025, 11, 19, 21, 0))


def test_amend_of_the_alerting_notification_reissues_its_alert() -> None:
    """Amending the notification that raised a threshold alert recalls that alert and raises it afresh."""
    state = MemoryState()
    _run(state, police_concern(occurred=BASE - timedelta(days=3)))
    _run(state, police_concern(occurred=BASE - timedelta(days=2)))
    original = health_notification(occurred=BASE - timedelta(days=1))
    (old,) = _alerts(_run(state, original))
    amended = health_notification(
        occurred=BASE - timedelta(days=1), action=Action.AMEND, supersedes=original.envelope.notification_id
    )
    second = _run(state, amended)
    (new,) = _alerts(second)
    assert new.alert_id != old.alert_id and amended.envelope.notification_id in new.notification_ids
    assert original.envelope.notification_id not in new.notification_ids
    assert old.alert_id in {r.recalled_output_id for r in _payloads(second, Recall)}
