"""Routing rules (broker.routing) through the casebook the worker uses (broker.casebook, plain dict tables):
front door and its RAG, Encompass, DV triage / MARAC, emergency duty, cumulative concern, AMEND / WITHDRAW
recalls and stable output ids.  Pure: no Kafka, stand-in deadlines unless stated."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest

from broker._deadlines import DefaultDeadlines
from broker.casebook import Step, load_notification
from broker.identity import subjects
from broker.routing import RAG_RED_IMMEDIATE, RAG_RED_RISK, RAG_STANDARD, DeadlineCalculator, RoutingError
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
    Rag,
    Recall,
    RecallReason,
    RiskLevel,
    Route,
)
from tests.broker.factories import (
    BASE,
    DORSET,
    SECRET,
    SHROPSHIRE,
    StubDeadlines,
    adult,
    child,
    health_notification,
    new_tables,
    person_of,
    police_concern,
    police_incident,
    probation_notification,
    run,
    youth_justice_notification,
)

RECEIVED = BASE + timedelta(hours=1)  # Wednesday 21:00 UTC: out of office hours


Tables = dict[str, dict[str, Any]]


def _route(
    notification,
    tables: Tables | None = None,
    *,
    received: datetime = RECEIVED,
    deadlines: DeadlineCalculator | None = None,
) -> Step:
    """One notification through the casebook (fresh tables unless given), its writes applied."""
    return run(new_tables() if tables is None else tables, notification, received=received, deadlines=deadlines)


def _payloads(step: Step, kind: type) -> list:
    return [o.payload for o in step.outputs if isinstance(o.payload, kind)]


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
    step = _route(police_incident(kids))
    notices = _payloads(step, EncompassNotice)
    assert sorted(n.school_urn for n in notices) == ["900001", "900002"]
    referrals = _payloads(step, FrontDoorReferral)
    assert len(referrals) == 1 and len(referrals[0].children) == 3
    assert not any(c.education_contact_needed for c in referrals[0].children)
    assert len(_payloads(step, DvTriageItem)) == 1
    assert len(step.outputs) == 4
    assert {o.route for o in step.outputs} == {Route.ENCOMPASS, Route.FRONT_DOOR, Route.DV_TRIAGE}


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
    """Aged 4-17 and home-educated / unknown / no setting: flagged on the referral, no notice; a 3-year-old not."""
    kids = [
        child(1, education=EducationStatus.HOME_EDUCATED),
        child(2, education=EducationStatus.UNKNOWN, date_of_birth=date(2021, 11, 19)),  # 4 on the day
        child(3, education=EducationStatus.UNKNOWN, date_of_birth=date(2021, 11, 20)),  # 3 on the day
        child(4, education=EducationStatus.NOT_IN_EDUCATION, date_of_birth=date(2007, 11, 20)),  # 17
    ]
    step = _route(police_incident(kids))
    assert _payloads(step, EncompassNotice) == []
    (referral,) = _payloads(step, FrontDoorReferral)
    assert [c.education_contact_needed for c in referral.children] == [True, True, False, True]


def test_unknown_and_closed_schools() -> None:
    """An unknown URN still gets a notice (home authority); a closed school gets none and the child is flagged."""
    step = _route(police_incident([child(1, school_urn="912345"), child(2, school_urn="900009")]))
    (notice,) = _payloads(step, EncompassNotice)
    assert notice.school_urn == "912345" and notice.authority == SHROPSHIRE
    (referral,) = _payloads(step, FrontDoorReferral)
    assert [c.education_contact_needed for c in referral.children] == [False, True]
    assert any("children[1].education.urn" in n for n in step.notes)


def test_nursery_not_notified_without_opt_in() -> None:
    """A nursery child gets no notice unless the authority opts in (none does by default)."""
    step = _route(
        police_incident(
            [child(1, school_urn="900001", education=EducationStatus.NURSERY, date_of_birth=date(2022, 1, 1))]
        )
    )
    assert _payloads(step, EncompassNotice) == []


def test_incident_without_children_is_triage_only() -> None:
    """A domestic abuse incident with no children: a DV triage item, no referral, no notice."""
    step = _route(police_incident([]))
    assert [o.route for o in step.outputs] == [Route.DV_TRIAGE]


def test_front_door_referral_contents() -> None:
    """A standard referral goes to the home authority, due from deadlines.frontdoor(received, authority, None)."""
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
    assert referral.rag is Rag.UNKNOWN and referral.rag_reason == RAG_STANDARD


def test_probation_without_child_is_adult_risk_only() -> None:
    """Probation with no named child: a referral flagged adult_risk_only, no children."""
    (referral,) = _payloads(_route(probation_notification()), FrontDoorReferral)
    assert referral.adult_risk_only and referral.children == []


def test_every_child_notification_gets_a_referral() -> None:
    """Police child concern, health and youth justice notifications each get one front door referral."""
    for note in (police_concern(), health_notification(), youth_justice_notification()):
        step = _route(note)
        assert [o.route for o in step.outputs] == [Route.FRONT_DOOR], type(note).__name__


def test_domestic_abuse_items_from_other_agencies_reach_triage() -> None:
    """Probation / YJ marked domestic abuse and health with a DOMESTIC_ABUSE category get a triage item."""
    for note in (
        probation_notification(domestic_abuse_related=True),
        youth_justice_notification(domestic_abuse_related=True),
        health_notification(categories=[ConcernCategory.DOMESTIC_ABUSE]),
    ):
        (item,) = _payloads(_route(note), DvTriageItem)
        assert item.authority == SHROPSHIRE and not item.marac, type(note).__name__


# --------------------------------------------------------------------------------------- front door RAG
def test_immediate_priority_is_red_with_four_working_hours() -> None:
    """Priority IMMEDIATE: RAG RED with its rule as reason, deadline asked for "RED"."""
    stub = StubDeadlines()
    (referral,) = _payloads(_route(police_concern(priority=Priority.IMMEDIATE), deadlines=stub), FrontDoorReferral)
    assert referral.rag is Rag.RED and referral.rag_reason == RAG_RED_IMMEDIATE
    assert ("frontdoor", (RECEIVED, SHROPSHIRE, "RED")) in stub.calls


def test_high_risk_is_red_only_with_a_child_present() -> None:
    """Stated risk HIGH / VERY_HIGH is RED when a listed child was present; absent or unknown: standard."""
    for level in (RiskLevel.HIGH, RiskLevel.VERY_HIGH):
        (red,) = _payloads(_route(police_incident([child(1, present=False), child(2)], risk=level)), FrontDoorReferral)
        assert red.rag is Rag.RED and red.rag_reason == RAG_RED_RISK
    for present in (False, None):
        (std,) = _payloads(_route(police_incident([child(1, present=present)], risk=RiskLevel.HIGH)), FrontDoorReferral)
        assert std.rag is Rag.UNKNOWN and std.rag_reason == RAG_STANDARD
    (medium,) = _payloads(_route(police_incident([child(1)], risk=RiskLevel.MEDIUM)), FrontDoorReferral)
    assert medium.rag is Rag.UNKNOWN


def test_red_is_due_in_four_working_hours_with_real_deadlines() -> None:
    """Real deadlines: RED received Wed 10:00 is due 14:00; at 16:00, Thu 12:00; standard, Thu 10:00."""
    deadlines = DefaultDeadlines()
    red = police_incident([child(1)], risk=RiskLevel.HIGH, occurred=datetime(2025, 11, 19, 9, 0, tzinfo=UTC))
    morning = datetime(2025, 11, 19, 10, 0, tzinfo=UTC)  # GMT: UTC is local time
    (referral,) = _payloads(_route(red, received=morning, deadlines=deadlines), FrontDoorReferral)
    assert referral.rag is Rag.RED and referral.decision_due == datetime(2025, 11, 19, 14, 0, tzinfo=UTC)
    late = datetime(2025, 11, 19, 16, 0, tzinfo=UTC)
    (referral,) = _payloads(_route(red, received=late, deadlines=deadlines), FrontDoorReferral)
    assert referral.decision_due == datetime(2025, 11, 20, 12, 0, tzinfo=UTC)
    standard = police_incident([child(1)], occurred=datetime(2025, 11, 19, 9, 0, tzinfo=UTC))
    (referral,) = _payloads(_route(standard, received=morning, deadlines=deadlines), FrontDoorReferral)
    assert referral.rag is Rag.UNKNOWN and referral.decision_due == datetime(2025, 11, 20, 10, 0, tzinfo=UTC)


# ------------------------------------------------------------------------------------------- MARAC
def _marac(step: Step, notification=None) -> list[MaracCriterion]:
    """The criteria on the step's triage item (and its MARAC referral, which must agree)."""
    items = _payloads(step, DvTriageItem)
    (item,) = [i for i in items if notification is None or i.notification_id == notification.envelope.notification_id]
    referrals = [r for r in _payloads(step, MaracReferral) if r.notification_id == item.notification_id]
    assert item.marac == bool(referrals)
    if referrals:
        assert referrals[0].criteria == item.marac_criteria and referrals[0].triage_item_id == item.item_id
    return item.marac_criteria


def _history(*incidents) -> Tables:
    """Tables holding earlier incidents with the same (default) victim."""
    tables = new_tables()
    for incident in incidents:
        _route(incident, tables)
    return tables


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


def test_marac_escalation_three_incidents_in_twelve_months() -> None:
    """Two earlier incidents with the same victim within 365 days make a 3rd flagged; one outside does not."""
    inside = _history(police_incident([], occurred=BASE - timedelta(days=30)),
                      police_incident([], occurred=BASE - timedelta(days=364)))
    assert _marac(_route(police_incident([]), inside)) == [MaracCriterion.ESCALATION_3_INCIDENTS_12_MONTHS]
    outside = _history(police_incident([], occurred=BASE - timedelta(days=30)),
                       police_incident([], occurred=BASE - timedelta(days=366)))
    assert _marac(_route(police_incident([]), outside)) == []


def test_marac_repeat_within_twelve_months_of_referral() -> None:
    """An earlier MARAC-referred incident within 12 months flags REPEAT_WITHIN_12_MONTHS_OF_MARAC."""
    recent = _history(police_incident([], risk=RiskLevel.HIGH, occurred=BASE - timedelta(days=200)))
    assert _marac(_route(police_incident([]), recent)) == [MaracCriterion.REPEAT_WITHIN_12_MONTHS_OF_MARAC]
    old = _history(police_incident([], risk=RiskLevel.HIGH, occurred=BASE - timedelta(days=400)))
    assert _marac(_route(police_incident([]), old)) == []


def test_marac_professional_judgement() -> None:
    """The officer's professional judgement flag flags PROFESSIONAL_JUDGEMENT."""
    assert _marac(_route(police_incident([], professional_judgement=True))) == [MaracCriterion.PROFESSIONAL_JUDGEMENT]


def test_marac_lists_every_criterion_met() -> None:
    """All criteria met at once are all listed, in a fixed order."""
    tables = _history(police_incident([], risk=RiskLevel.HIGH, occurred=BASE - timedelta(days=10)),
                      police_incident([], occurred=BASE - timedelta(days=20)))
    incident = police_incident([], risk=RiskLevel.HIGH, ticks=20, professional_judgement=True)
    assert _marac(_route(incident, tables)) == list(MaracCriterion)[1:]


def test_unidentified_victim_still_meets_its_own_criteria() -> None:
    """An incident whose victim has no identity key is still referred on its own criteria (no history)."""
    victim = adult(nhs=False, given_name=None)
    step = _route(police_incident([], risk=RiskLevel.HIGH, victim=victim))
    assert _marac(step) == [MaracCriterion.DASH_HIGH]
    assert any(note.startswith("victim:") for note in step.notes)


# ------------------------------------------------------------------------------------ emergency duty
def test_emergency_duty_at_two_in_the_morning_for_high_risk() -> None:
    """HIGH risk with children received at 02:00 on a weekday (real deadlines): one emergency duty alert."""
    incident = police_incident([child(1)], risk=RiskLevel.HIGH, occurred=datetime(2025, 11, 20, 1, 30, tzinfo=UTC))
    step = _route(incident, received=datetime(2025, 11, 20, 2, 0, tzinfo=UTC), deadlines=DefaultDeadlines())
    (alert,) = _payloads(step, EmergencyDutyAlert)
    assert alert.reason == "HIGH_RISK_WITH_CHILDREN" and alert.authority == SHROPSHIRE
    assert alert.child_keys == [_key(child(1))]


def test_no_emergency_duty_in_office_hours() -> None:
    """The same incident received at 11:00 on a weekday: no alert (real deadlines)."""
    incident = police_incident([child(1)], risk=RiskLevel.HIGH, occurred=datetime(2025, 11, 20, 10, 0, tzinfo=UTC))
    step = _route(incident, received=datetime(2025, 11, 20, 11, 0, tzinfo=UTC), deadlines=DefaultDeadlines())
    assert _payloads(step, EmergencyDutyAlert) == []


def test_emergency_duty_for_immediate_priority_needs_children() -> None:
    """Priority IMMEDIATE out of hours alerts when children are named; without children it does not."""
    (alert,) = _payloads(_route(police_concern(priority=Priority.IMMEDIATE)), EmergencyDutyAlert)
    assert alert.reason == "SENDER_MARKED_IMMEDIATE"
    assert _payloads(_route(probation_notification(priority=Priority.IMMEDIATE)), EmergencyDutyAlert) == []
    assert _payloads(_route(police_incident([], risk=RiskLevel.HIGH)), EmergencyDutyAlert) == []


# -------------------------------------------------------------------------------- cumulative concern
def _alerts(step: Step) -> list[CumulativeConcernAlert]:
    return _payloads(step, CumulativeConcernAlert)


def test_cumulative_concern_once_per_quarter() -> None:
    """Three police notifications: nothing; the 4th (health) within 90 days: one alert; the 5th: none."""
    tables = new_tables()
    day = [BASE - timedelta(days=d) for d in (60, 50, 40, 30, 20)]
    first_three = [
        police_concern(occurred=day[0]),
        police_incident([child(1)], occurred=day[1]),
        police_concern(occurred=day[2]),
    ]
    assert [_alerts(_route(n, tables)) for n in first_three] == [[], [], []]
    fourth = health_notification(occurred=day[3])
    (alert,) = _alerts(_route(fourth, tables))
    assert alert.trigger is CumulativeTrigger.THRESHOLD and alert.child_key == _key(child(1))
    assert alert.notification_ids == [n.envelope.notification_id for n in [*first_three, fourth]]
    assert alert.agency_types == [AgencyType.POLICE, AgencyType.HEALTH]
    assert alert.window_end == day[3] and alert.window_start == day[3] - timedelta(days=90)
    assert _alerts(_route(youth_justice_notification(child(1), occurred=day[4]), tables)) == []


def test_cumulative_concern_alerts_again_in_a_later_quarter() -> None:
    """When the 90-day condition is met again in a later quarter, a new alert is raised."""
    tables = new_tables()
    early = [police_concern(occurred=BASE - timedelta(days=d)) for d in (300, 295)]
    steps = [_route(note, tables) for note in [*early, health_notification(occurred=BASE - timedelta(days=290))]]
    assert sum(len(_alerts(s)) for s in steps) == 1
    later = [health_notification(occurred=BASE - timedelta(days=d)) for d in (20, 10)]
    assert [_alerts(_route(n, tables)) for n in later] == [[], []]
    assert len(_alerts(_route(police_concern(occurred=BASE), tables))) == 1


def test_late_notification_inside_an_alerted_quarter_raises_nothing() -> None:
    """A notification that arrives late but falls in an already-alerted quarter raises no alert."""
    tables = new_tables()
    steps = [_route(make(occurred=BASE - timedelta(days=d)), tables)
             for d, make in ((30, police_concern), (20, health_notification), (10, police_concern))]
    assert sum(len(_alerts(s)) for s in steps) == 1
    assert _alerts(_route(health_notification(occurred=BASE - timedelta(days=25)), tables)) == []


def test_alias_joins_chronologies_for_the_threshold() -> None:
    """Notifications with and without the NHS number count in one chronology through the alias."""
    tables = new_tables()
    _route(police_concern([child(1)], occurred=BASE - timedelta(days=3)), tables)
    _route(police_concern([child(1, nhs=False)], occurred=BASE - timedelta(days=2)), tables)
    assert len(_alerts(_route(health_notification([child(1, nhs=False)], occurred=BASE), tables))) == 1


def test_significant_event_with_open_referral() -> None:
    """A release from custody naming a child with an earlier referral raises a SIGNIFICANT_EVENT alert."""
    release = probation_notification([child(1)], event=ProbationEvent.RELEASE_FROM_CUSTODY)
    assert _alerts(_route(release)) == []  # its own referral does not count
    tables = _history(police_concern([child(1)], occurred=BASE - timedelta(days=5)))
    (alert,) = _alerts(_route(release, tables))
    assert alert.trigger is CumulativeTrigger.SIGNIFICANT_EVENT and alert.window_end == BASE
    routine = probation_notification([child(1)], event=ProbationEvent.SENTENCE_START)
    assert _alerts(_route(routine, _history(police_concern([child(1)], occurred=BASE - timedelta(days=5))))) == []


def test_referral_reported_late_makes_an_earlier_event_significant() -> None:
    """A referral occurring before an already routed event raises the event's alert then, recorded against it."""
    tables = new_tables()
    release = probation_notification([child(1)], event=ProbationEvent.RELEASE_FROM_CUSTODY)
    assert _alerts(_route(release, tables)) == []
    assert _alerts(_route(police_concern([child(1)], occurred=BASE + timedelta(days=100)), tables)) == []  # after
    (alert,) = _alerts(_route(police_concern([child(1)], occurred=BASE - timedelta(days=1)), tables))
    assert alert.trigger is CumulativeTrigger.SIGNIFICANT_EVENT and alert.window_end == BASE
    produced = load_notification(tables["notifications"][str(release.envelope.notification_id)]).produced
    assert alert.alert_id in {p.output_id for p in produced}


def test_birth_related_midwifery_notification_is_significant() -> None:
    """A midwifery notification about an unborn child with an earlier referral raises a significant-event alert."""
    mother = adult(n=4)
    tables = new_tables()
    first = health_notification([child(unborn=True)], setting=HealthSetting.MIDWIFERY, adults=[mother],
                                occurred=BASE - timedelta(days=30))
    assert _alerts(_route(first, tables)) == []
    note = health_notification([child(unborn=True)], setting=HealthSetting.MIDWIFERY, adults=[mother])
    (alert,) = _alerts(_route(note, tables))
    assert alert.trigger is CumulativeTrigger.SIGNIFICANT_EVENT
    assert alert.child_key == subjects(note, SECRET).children[0].primary


# ----------------------------------------------------------------------------------- AMEND / WITHDRAW
def test_amend_moving_a_child_to_another_school() -> None:
    """AMEND moving a child's school: recall to the first school, a notice to the second, referral superseded."""
    tables = new_tables()
    original = police_incident([child(1, school_urn="900001"), child(2, school_urn="900002")])
    first = _route(original, tables)
    amended = police_incident(
        [child(1, school_urn="900001"), child(2, school_urn="900003")],
        action=Action.AMEND,
        supersedes=original.envelope.notification_id,
    )
    second = _route(amended, tables)
    assert second.broadcast is None
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
    tables = new_tables()
    original = police_incident([child(1, school_urn="900001")])
    first = _route(original, tables)
    amended = police_incident(
        [child(1, school_urn="900001")], action=Action.AMEND, supersedes=original.envelope.notification_id
    )
    second = _route(amended, tables)
    recalled = {r.recalled_output_id for r in _payloads(second, Recall)}
    expected = {o.output_id for o in first.outputs if o.route is not Route.FRONT_DOOR}
    assert recalled == expected
    assert not {o.output_id for o in second.outputs} & {o.output_id for o in first.outputs}


def test_amend_removing_risk_recalls_marac() -> None:
    """An amendment that lowers the risk recalls the MARAC referral and issues none."""
    tables = new_tables()
    original = police_incident([], risk=RiskLevel.HIGH)
    first = _route(original, tables)
    amended = police_incident([], action=Action.AMEND, supersedes=original.envelope.notification_id)
    second = _route(amended, tables)
    (marac,) = first.of_route(Route.MARAC)
    assert [o.payload for o in second.of_route(Route.MARAC)] == [
        r for r in _payloads(second, Recall) if r.recalled_output_id == marac.output_id
    ]


def test_withdraw_recalls_everything() -> None:
    """WITHDRAW recalls every prior output (reason WITHDRAWN), produces nothing new, and empties the chronology."""
    tables = new_tables()
    original = police_incident([child(1, school_urn="900001"), child(2, school_urn="900002")], risk=RiskLevel.HIGH)
    first = _route(original, tables)
    withdraw = police_incident(
        [child(1, school_urn="900001"), child(2, school_urn="900002")],
        action=Action.WITHDRAW,
        supersedes=original.envelope.notification_id,
    )
    second = _route(withdraw, tables)
    recalls = _payloads(second, Recall)
    assert len(recalls) == len(second.outputs) == len(first.outputs)
    assert {r.recalled_output_id for r in recalls} == {o.output_id for o in first.outputs}
    assert {(r.route, r.recipient) for r in recalls} == {(o.route, o.recipient) for o in first.outputs}
    assert all(r.reason is RecallReason.WITHDRAWN for r in recalls)
    assert load_notification(tables["notifications"][str(withdraw.envelope.notification_id)]).produced == ()
    assert person_of(tables, _key(child(1))).chronology == ()


def test_withdrawn_notification_no_longer_counts() -> None:
    """A withdrawn notification drops out of the cumulative-concern count."""
    tables = new_tables()
    withdrawn = health_notification(occurred=BASE - timedelta(days=3))
    _route(withdrawn, tables)
    _route(
        health_notification(
            occurred=BASE - timedelta(days=3), action=Action.WITHDRAW, supersedes=withdrawn.envelope.notification_id
        ),
        tables,
    )
    _route(police_concern(occurred=BASE - timedelta(days=2)), tables)
    assert _alerts(_route(police_concern(occurred=BASE), tables)) == []


def test_withdrawing_a_basis_recalls_the_alert_it_rested_on() -> None:
    """A threshold alert whose basis is withdrawn is recalled (WITHDRAWN); one still met is kept."""
    tables = new_tables()
    notes = [police_concern(occurred=BASE - timedelta(days=3)), health_notification(occurred=BASE - timedelta(days=2)),
             police_concern(occurred=BASE - timedelta(days=1))]
    (alert,) = [a for n in notes for a in _alerts(_route(n, tables))]
    _route(youth_justice_notification(child(1), occurred=BASE), tables)  # a 4th: still met without one
    gone = police_concern(occurred=notes[0].envelope.occurred, action=Action.WITHDRAW,
                          supersedes=notes[0].envelope.notification_id)
    assert alert.alert_id not in {r.recalled_output_id for r in _payloads(_route(gone, tables), Recall)}
    last = health_notification(occurred=notes[1].envelope.occurred, action=Action.WITHDRAW,
                               supersedes=notes[1].envelope.notification_id)
    (recall,) = [r for r in _payloads(_route(last, tables), Recall) if r.recalled_output_id == alert.alert_id]
    assert recall.reason is RecallReason.WITHDRAWN and recall.route is Route.CUMULATIVE_CONCERN


# ------------------------------------------------------------------------------------------ ids etc.
def test_output_ids_are_stable_across_calls() -> None:
    """The same input routed twice (fresh tables) gives the same outputs, ids included; another id differs."""
    incident = police_incident([child(1, school_urn="900001")], risk=RiskLevel.HIGH)
    a, b = _route(incident), _route(incident)
    assert a.outputs == b.outputs and a.outputs
    other = police_incident([child(1, school_urn="900001")], risk=RiskLevel.HIGH)
    assert not {o.output_id for o in a.outputs} & {o.output_id for o in _route(other).outputs}


def test_step_gives_what_the_audit_and_chronology_need() -> None:
    """Each output has route, recipient, id and lawful basis; chronology entries list each child's routes."""
    tables = new_tables()
    incident = police_incident([child(1, school_urn="900001"), child(2)])
    step = _route(incident, tables)
    for out in step.outputs:
        assert out.recipient and out.output_id and out.lawful_basis and out.purpose
    (entry1,) = person_of(tables, _key(child(1))).chronology
    (entry2,) = person_of(tables, _key(child(2))).chronology
    assert entry1.routes == (Route.FRONT_DOOR, Route.ENCOMPASS, Route.DV_TRIAGE)
    assert entry2.routes == (Route.FRONT_DOOR, Route.DV_TRIAGE)
    record = load_notification(tables["notifications"][str(incident.envelope.notification_id)])
    assert {p.output_id for p in record.produced} == {o.output_id for o in step.outputs}
    assert any("root" in v for v in tables["people"].values())  # NHS number + demographics -> alias pointers
    assert step.writes[-1][:2] == ("notifications", str(incident.envelope.notification_id))


def test_naive_received_is_refused() -> None:
    """A `received` instant without a UTC offset is a RoutingError."""
    with pytest.raises(RoutingError, match="received"):
        _route(police_incident([]), received=datetime(2025, 11, 19, 21, 0))


def test_amend_of_the_alerting_notification_keeps_the_quarter_alert() -> None:
    """Amending the notification that completed a threshold keeps the quarter's alert (same id): no recall, no
    second alert; moving it out of the window recalls the alert."""
    tables = new_tables()
    _route(police_concern(occurred=BASE - timedelta(days=3)), tables)
    _route(police_concern(occurred=BASE - timedelta(days=2)), tables)
    original = health_notification(occurred=BASE - timedelta(days=1))
    (old,) = _alerts(_route(original, tables))
    amended = health_notification(
        occurred=BASE - timedelta(days=1), action=Action.AMEND, supersedes=original.envelope.notification_id
    )
    second = _route(amended, tables)
    assert _alerts(second) == [] and old.alert_id not in {r.recalled_output_id for r in _payloads(second, Recall)}
    moved = health_notification(
        occurred=BASE - timedelta(days=200), action=Action.AMEND, supersedes=amended.envelope.notification_id
    )
    third = _route(moved, tables)
    assert old.alert_id in {r.recalled_output_id for r in _payloads(third, Recall)} and _alerts(third) == []


def test_routing_with_the_callers_subjects_decides_the_same() -> None:
    """route() given the identity keys the casebook already made (RoutingContext.subjects) decides exactly as
    when it makes them itself, for every kind of notification."""
    from broker.routing import RoutingContext, route

    kinds = [police_incident([child(), child(2)]), police_concern([child()]), health_notification([child()]),
             probation_notification([child()]), youth_justice_notification()]
    for n in kinds:
        alone = route(n, ctx=RoutingContext(), received=RECEIVED, secret=SECRET, deadlines=StubDeadlines())
        given = route(n, ctx=RoutingContext(subjects=subjects(n, SECRET)), received=RECEIVED, secret=SECRET,
                      deadlines=StubDeadlines())
        assert given == alone and alone.outputs, type(n).__name__
