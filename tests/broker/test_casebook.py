"""The router's state rules (broker.casebook) with plain dict tables, exactly as the worker calls them:
redelivery, one identity per person, order independence, recall across partitions, no raw NHS numbers."""

from __future__ import annotations

import copy
import itertools
import json
import random
from datetime import timedelta
from typing import Any

import pytest

from broker.casebook import (
    CasebookError,
    Status,
    Step,
    apply_writes,
    load_notification,
    on_notification,
    on_supersede,
)
from broker.identity import subjects
from schemas.models import (
    Action,
    CumulativeConcernAlert,
    DvTriageItem,
    EncompassNotice,
    FrontDoorReferral,
    HealthSetting,
    MaracCriterion,
    MaracReferral,
    ProbationEvent,
    Recall,
    RecallReason,
    RiskLevel,
    Route,
    YouthJusticeEvent,
)
from tests.broker.factories import (
    BASE,
    DORSET,
    SCHOOLS,
    SECRET,
    SHROPSHIRE,
    StubDeadlines,
    adult,
    child,
    health_notification,
    new_tables,
    nhs_number,
    person_of,
    police_concern,
    police_incident,
    probation_notification,
    run,
    youth_justice_notification,
)

Tables = dict[str, dict[str, Any]]


def _deliver(tables: Tables, notification: Any) -> Step:
    """on_notification without applying its writes (received: an hour after occurred, as `run`)."""
    return on_notification(
        notification,
        received=notification.envelope.occurred + timedelta(hours=1),
        tables=tables,
        schools=SCHOOLS,
        secret=SECRET,
        deadlines=StubDeadlines(),
    )


def _ids(steps: list[Step], kind: type) -> set:
    return {o.output_id for s in steps for o in s.outputs if isinstance(o.payload, kind)}


def _payloads(step: Step, kind: type) -> list:
    return [o.payload for o in step.outputs if isinstance(o.payload, kind)]


def _key(person: Any) -> str:
    return subjects(police_concern([person]), SECRET).children[0].primary


def _nid(notification: Any) -> str:
    return str(notification.envelope.notification_id)


# ------------------------------------------------------------------------------------------ redelivery
def test_redelivery_sends_nothing_and_rewrites_what_the_step_wrote() -> None:
    """A routed notification redelivered: no outputs, skipped, and the stored values it wrote re-written."""
    tables = new_tables()
    incident = police_incident([child(1, school_urn="900001")], risk=RiskLevel.HIGH)
    first = run(tables, incident)
    again = _deliver(tables, incident)
    assert again.outputs == () and again.skipped == "already routed" and again.broadcast is None
    assert {(t, k) for t, k, _ in again.writes} == {(t, k) for t, k, _ in first.writes}
    assert all(tables[t][k] == v for t, k, v in again.writes)
    assert again.writes[-1][:2] == ("notifications", _nid(incident))


def _scenario() -> tuple[Tables, Any]:
    """A child with a referral and a release (already alerted), a victim with two incidents; then a late,
    earlier incident naming the child: it completes a threshold and a retroactive MARAC referral."""
    tables = new_tables()
    run(tables, police_concern([child(1)], occurred=BASE - timedelta(days=20)))
    run(tables, probation_notification([child(1)], event=ProbationEvent.RELEASE_FROM_CUSTODY,
                                       occurred=BASE - timedelta(days=10)))
    run(tables, police_incident([], occurred=BASE - timedelta(days=5)))
    run(tables, police_incident([], occurred=BASE - timedelta(days=1)))
    late = police_incident([child(1)], occurred=BASE - timedelta(days=30))
    return tables, late


def test_redelivery_after_any_partial_write_gives_no_new_id_and_nothing_twice() -> None:
    """Crash after each write of a step: the redelivery re-derives only the first attempt's ids, sends no alert
    or MARAC referral once remembered, and ends in the same people table with one chronology entry."""
    before, late = _scenario()
    clean = copy.deepcopy(before)
    first = run(clean, late)
    assert _ids([first], CumulativeConcernAlert) and len(_ids([first], MaracReferral)) == 1  # both consequences
    first_ids = {o.output_id for o in first.outputs}
    for k in range(len(first.writes)):
        tables = copy.deepcopy(before)
        apply_writes(tables, first.writes[:k])
        again = run(tables, late)
        assert {o.output_id for o in again.outputs} <= first_ids, k
        if k >= len([w for w in first.writes if w[0] == "people"]):
            assert not _ids([again], CumulativeConcernAlert) and not _ids([again], MaracReferral), k
        assert tables["people"] == clean["people"], k
        entries = [e.notification_id for e in person_of(tables, _key(child(1))).chronology]
        assert len(entries) == len(set(entries)) == 3


def test_redelivered_significant_event_raises_no_second_alert() -> None:
    """Finding 5: the state writes landed, the notification record did not; the event's alert is not re-raised."""
    tables = new_tables()
    run(tables, police_concern([child(1)], occurred=BASE - timedelta(days=5)))
    release = probation_notification([child(1)], event=ProbationEvent.RELEASE_FROM_CUSTODY)
    first = _deliver(tables, release)
    (alert,) = _payloads(first, CumulativeConcernAlert)
    apply_writes(tables, first.writes[:-1])
    again = run(tables, release)
    assert _payloads(again, CumulativeConcernAlert) == []
    produced = load_notification(tables["notifications"][_nid(release)]).produced
    assert alert.alert_id in {p.output_id for p in produced}


# ------------------------------------------------------------------------------------------- identity
def _three_agencies() -> list[Any]:
    """Health (NHS + demographics), police (demographics only), youth justice (NHS only): one child."""
    return [
        health_notification([child(1)], occurred=BASE - timedelta(days=20)),
        police_concern([child(1, nhs=False)], occurred=BASE - timedelta(days=10)),
        youth_justice_notification(child(1, postcode=None), occurred=BASE),
    ]


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_three_agencies_meet_in_one_chronology_in_any_order(order: tuple[int, ...]) -> None:
    """Finding 4: whatever the order, one chronology with all three and one cumulative-concern alert, same id."""
    notes = _three_agencies()
    tables = new_tables()
    steps = [run(tables, notes[i]) for i in order]
    alerts = [a for s in steps for a in _payloads(s, CumulativeConcernAlert)]
    assert len(alerts) == 1 and alerts[0].child_key == _key(child(1))
    reference = new_tables()
    expected = _ids([run(reference, n) for n in notes], CumulativeConcernAlert)
    assert {alerts[0].alert_id} == expected
    demographic = _key(child(1, nhs=False))
    assert person_of(tables, demographic) == person_of(tables, _key(child(1)))
    assert len(person_of(tables, demographic).chronology) == 3
    assert tables["people"][f"{SHROPSHIRE}|{demographic}"] == {"root": _key(child(1))}


def test_two_existing_chronologies_are_merged_by_a_linking_notification() -> None:
    """Two roots holding entries are merged into the canonical one; the other becomes a pointer to it."""
    tables = new_tables()
    run(tables, police_concern([child(1, nhs=False)], occurred=BASE - timedelta(days=2)))
    run(tables, youth_justice_notification(child(1, postcode=None), occurred=BASE - timedelta(days=1)))
    demographic, nhs = _key(child(1, nhs=False)), _key(child(1))
    assert len(person_of(tables, demographic).chronology) == len(person_of(tables, nhs).chronology) == 1
    step = run(tables, health_notification([child(1)], occurred=BASE))
    assert tables["people"][f"{SHROPSHIRE}|{demographic}"] == {"root": nhs}
    assert len(person_of(tables, nhs).chronology) == 3 and len(_payloads(step, CumulativeConcernAlert)) == 1


def test_unborn_keys_join_through_the_mother_keys() -> None:
    """An unborn child named via the mother's NHS number only, her demographics only, and both: one chronology."""
    notes = [
        health_notification([child(unborn=True)], setting=HealthSetting.MIDWIFERY, adults=[mother],
                            occurred=BASE - timedelta(days=d))
        for d, mother in ((3, adult(n=4, postcode=None)), (2, adult(n=4, nhs=False)), (1, adult(n=4)))
    ]
    tables = new_tables()
    for note in notes:
        run(tables, note)
    keys = {subjects(n, SECRET).children[0].primary for n in notes}
    assert len(keys) == 2
    records = [person_of(tables, k) for k in keys]
    assert records[0] == records[1] and len(records[0].chronology) == 3


def test_alias_pointer_cycle_is_refused() -> None:
    """Stored pointers that loop are a CasebookError naming the table and rule."""
    tables = new_tables()
    nhs = _key(child(1))
    dem = _key(child(1, nhs=False))
    tables["people"] = {f"{SHROPSHIRE}|{nhs}": {"root": dem}, f"{SHROPSHIRE}|{dem}": {"root": nhs}}
    with pytest.raises(CasebookError, match="people: alias pointers form a cycle"):
        run(tables, police_concern([child(1)]))


def test_no_raw_nhs_number_in_any_key_value_or_output() -> None:
    """Finding 6: table keys and values, output keys and payloads never hold a raw NHS number."""
    tables = new_tables()
    notes = [*_three_agencies(), police_incident([child(2, school_urn="900001")], risk=RiskLevel.HIGH),
             health_notification([child(unborn=True)], setting=HealthSetting.MIDWIFERY, adults=[adult(n=4)])]
    steps = [run(tables, n) for n in notes]
    numbers = {nhs_number(100 + n) for n in (1, 2)} | {nhs_number(500 + n) for n in (1, 2, 4)}
    text = json.dumps(tables) + "".join(
        f"{o.recipient}|{o.payload_key}|{o.payload.model_dump_json()}" for s in steps for o in s.outputs
    )
    assert not [n for n in numbers if n in text]
    assert all(k.split("|", 1)[1][:4] in {"nhs:", "dem:", "unb:"} for k in tables["people"])


# -------------------------------------------------------------------------------- order independence
def _victim_incidents() -> list[Any]:
    """Same victim, days ago: 900 and 600 standard, 450 DASH HIGH, 300 and 100 standard."""
    days = ((900, RiskLevel.STANDARD), (600, RiskLevel.STANDARD), (450, RiskLevel.HIGH),
            (300, RiskLevel.STANDARD), (100, RiskLevel.STANDARD))
    return [police_incident([], risk=r, occurred=BASE - timedelta(days=d)) for d, r in days]


def test_marac_referrals_do_not_depend_on_arrival_order() -> None:
    """Finding 10: all 120 orders of five incidents give the same MARAC referral ids (repeat, escalation)."""
    notes = _victim_incidents()
    results = set()
    for order in itertools.permutations(notes):
        tables = new_tables()
        results.add(frozenset(_ids([run(tables, n) for n in order], MaracReferral)))
    # 450 (DASH HIGH); 300 (repeat of 450); 100 (450, 300 and itself in 12 months; repeat of 300); not 900, 600
    assert results == {frozenset(_marac_id(n) for n in notes[2:])}


def _marac_id(notification: Any) -> Any:
    from broker.routing import output_id

    return output_id(notification.envelope.notification_id, Route.MARAC, SHROPSHIRE)


def test_late_earlier_incident_makes_a_routed_incident_meet_marac() -> None:
    """An earlier incident reported late: the already routed incident's MARAC referral is emitted then, naming
    its triage item; it is recorded against that incident, so withdrawing the incident recalls it."""
    tables = new_tables()
    later = [police_incident([], occurred=BASE - timedelta(days=d)) for d in (20, 10)]
    routed = [run(tables, n) for n in later]
    (item,) = _payloads(routed[1], DvTriageItem)
    assert not item.marac
    late = run(tables, police_incident([], occurred=BASE - timedelta(days=40)))
    (referral,) = _payloads(late, MaracReferral)
    assert referral.notification_id == later[1].envelope.notification_id and referral.triage_item_id == item.item_id
    assert referral.criteria == [MaracCriterion.ESCALATION_3_INCIDENTS_12_MONTHS]
    assert _payloads(late, DvTriageItem)[0].marac is False  # the late one itself is first of three
    withdraw = police_incident([], action=Action.WITHDRAW, supersedes=later[1].envelope.notification_id)
    recalls = _payloads(run(tables, withdraw), Recall)
    assert [r.recalled_output_id for r in recalls].count(referral.referral_id) == 1


def _child_mix() -> list[Any]:
    """One child over two quarters: three notifications in Q3 2025, one in Q4, a release from custody."""
    return [
        police_concern([child(1)], occurred=BASE - timedelta(days=70)),
        health_notification([child(1)], occurred=BASE - timedelta(days=60)),
        police_incident([child(1)], occurred=BASE - timedelta(days=50)),
        health_notification([child(1)], occurred=BASE - timedelta(days=40)),
        probation_notification([child(1)], event=ProbationEvent.RELEASE_FROM_CUSTODY,
                               occurred=BASE - timedelta(days=45)),
        youth_justice_notification(child(1), event=YouthJusticeEvent.RELEASE_FROM_CUSTODY,
                                   occurred=BASE - timedelta(days=80)),
    ]


def test_cumulative_alerts_do_not_depend_on_arrival_order() -> None:
    """Finding 10: 40 orders of six notifications give the same alert ids (two quarters, one significant event)."""
    notes = _child_mix()
    orders = [list(notes), list(reversed(notes))]
    rng = random.Random(6)
    orders += [rng.sample(notes, len(notes)) for _ in range(38)]
    results = []
    for order in orders:
        tables = new_tables()
        steps = [run(tables, n) for n in order]
        assert not _ids(steps, Recall)
        results.append((_ids(steps, CumulativeConcernAlert), _ids(steps, MaracReferral)))
    assert all(r == results[0] for r in results)
    assert len(results[0][0]) == 3  # Q3 and Q4 thresholds, the probation release (after a referral)


# ------------------------------------------------------------------------------------ across partitions
def _shropshire_to_dorset() -> tuple[Tables, Tables, Any, Step, Any]:
    """NEW in Shropshire (two children at two schools), routed in Shropshire's partition; AMEND to Dorset."""
    shropshire, dorset = new_tables(), new_tables()
    original = police_incident([child(1, school_urn="900001"), child(2, school_urn="900002")])
    first = run(shropshire, original)
    moved = police_incident(
        [child(1, school_urn="900003", postcode="DT1 1AA"), child(2, school_urn="900003", postcode="DT1 1AA")],
        authority=DORSET, action=Action.AMEND, supersedes=original.envelope.notification_id,
    )
    return shropshire, dorset, original, first, moved


def test_amend_moving_the_child_to_another_authority_recalls_in_the_old_partition() -> None:
    """Must-work 3: Dorset routes the AMEND and broadcasts; Shropshire's partition recalls the referral and both
    notices (and the triage item) with the ids the local path would give; a repeat request changes nothing."""
    shropshire, dorset, original, first, moved = _shropshire_to_dorset()
    assert len(_payloads(first, EncompassNotice)) == 2
    step = run(dorset, moved)
    request = step.broadcast
    assert request is not None and request.superseded_id == original.envelope.notification_id
    assert not _payloads(step, Recall)
    (referral,) = _payloads(step, FrontDoorReferral)
    assert referral.authority == DORSET and referral.supersedes_referral is None
    assert {n.school_urn for n in _payloads(step, EncompassNotice)} == {"900003"}
    recall_step = on_supersede(request, tables=shropshire)
    apply_writes(shropshire, recall_step.writes)
    recalls = _payloads(recall_step, Recall)
    assert {r.recalled_output_id for r in recalls} == {o.output_id for o in first.outputs}
    assert {r.route for r in recalls} == {Route.FRONT_DOOR, Route.ENCOMPASS, Route.DV_TRIAGE}
    assert all(r.reason is RecallReason.AMENDED and r.notification_id == moved.envelope.notification_id
               for r in recalls)
    local = new_tables()  # the same AMEND in one partition holding both authorities: the same recall ids
    run(local, original)
    assert {r.recall_id for r in _payloads(run(local, moved), Recall)} == {r.recall_id for r in recalls}
    assert load_notification(shropshire["notifications"][_nid(original)]).status is Status.SUPERSEDED
    assert person_of(shropshire, _key(child(1))).chronology == ()
    again = on_supersede(request, tables=shropshire)
    assert again.outputs == () and again.skipped == "already superseded"
    elsewhere = on_supersede(request, tables=dorset)  # Dorset's own copy: not there, remembered
    assert elsewhere.outputs == () and elsewhere.writes[-1][2]["status"] == Status.PENDING.value


def test_withdraw_of_a_cross_authority_amend() -> None:
    """WITHDRAW of the AMEND: recalled in Dorset, locally or through a request from another partition."""
    shropshire, dorset, _, _, moved = _shropshire_to_dorset()
    amend_step = run(dorset, moved)
    assert amend_step.broadcast is not None
    apply_writes(shropshire, on_supersede(amend_step.broadcast, tables=shropshire).writes)
    withdraw = police_incident([], authority=DORSET, action=Action.WITHDRAW, supersedes=moved.envelope.notification_id)
    local = _deliver(copy.deepcopy(dorset), withdraw)
    assert local.broadcast is None
    assert {r.recalled_output_id for r in _payloads(local, Recall)} == {o.output_id for o in amend_step.outputs}
    remote = run(shropshire, police_incident([], action=Action.WITHDRAW, supersedes=moved.envelope.notification_id))
    assert remote.broadcast is not None and not _payloads(remote, Recall)
    recalled = on_supersede(remote.broadcast, tables=dorset)
    assert {r.recalled_output_id for r in _payloads(recalled, Recall)} == {o.output_id for o in amend_step.outputs}
    assert all(r.reason is RecallReason.WITHDRAWN for r in _payloads(recalled, Recall))


def test_amend_arriving_before_its_new() -> None:
    """The AMEND is routed and broadcast; its own partition remembers the supersession; the late NEW routes nothing."""
    tables = new_tables()
    original = police_incident([child(1, school_urn="900001")])
    amend = police_incident([child(1, school_urn="900002")], action=Action.AMEND,
                            supersedes=original.envelope.notification_id)
    step = run(tables, amend)
    assert step.broadcast is not None and _payloads(step, FrontDoorReferral)
    apply_writes(tables, on_supersede(step.broadcast, tables=tables).writes)
    late = run(tables, original)
    assert late.outputs == () and late.skipped == "superseded before routing"
    assert load_notification(tables["notifications"][_nid(original)]).status is Status.SUPERSEDED
    assert [e.notification_id for e in person_of(tables, _key(child(1))).chronology] == [amend.envelope.notification_id]
    assert run(tables, original).skipped == "already superseded"


def test_pending_amend_still_supersedes_its_own_predecessor() -> None:
    """An AMEND superseded before it arrived routes nothing but still recalls what its predecessor produced."""
    tables = new_tables()
    original = police_incident([child(1, school_urn="900001")])
    first = run(tables, original)
    amend = police_incident([child(1)], action=Action.AMEND, supersedes=original.envelope.notification_id)
    second = police_incident([child(1)], action=Action.AMEND, supersedes=amend.envelope.notification_id)
    request = run(tables, second).broadcast
    assert request is not None
    apply_writes(tables, on_supersede(request, tables=tables).writes)
    late = run(tables, amend)
    assert late.skipped == "superseded before routing"
    assert {r.recalled_output_id for r in _payloads(late, Recall)} == {o.output_id for o in first.outputs}


def test_predecessor_held_by_another_partition_is_left_to_it() -> None:
    """With `owns` saying the predecessor's authority is elsewhere, a request changes nothing here."""
    shropshire, _, original, _, moved = _shropshire_to_dorset()
    step = run(new_tables(), moved)
    assert step.broadcast is not None
    skipped = on_supersede(step.broadcast, tables=shropshire, owns=lambda authority: authority == DORSET)
    assert skipped.outputs == () and skipped.writes == ()
    assert load_notification(shropshire["notifications"][_nid(original)]).status is Status.ROUTED
