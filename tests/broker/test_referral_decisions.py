"""Front door decisions close referrals in the router's state (broker.casebook.on_decision), through the same
stage the worker runs (broker.router_stage), after the SLA tracker re-sends them (broker.sla_stage)."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta
from typing import Any

from broker import casebook
from broker.batch import Received
from broker.casebook import Closure, Step, apply_writes, held_key, load_referral, on_decision
from broker.faults import Faults
from broker.outlet import Inbound, partition_of
from broker.router_stage import RouterOutcome, RouterStage
from broker.sla_stage import CLOCKS_TABLE, HELD_TABLE, SlaOutcome, SlaStage
from schemas.models import (
    Action,
    AuditEvent,
    AuditRecord,
    CumulativeConcernAlert,
    CumulativeTrigger,
    DeadLetter,
    FrontDoorDecision,
    FrontDoorReferral,
    FrontDoorResponse,
    ProbationEvent,
    Recall,
    Record,
)
from tests.broker.factories import (
    BASE,
    DORSET,
    SCHOOLS,
    SECRET,
    SHROPSHIRE,
    StubDeadlines,
    child,
    new_tables,
    person_of,
    police_concern,
    probation_notification,
    run,
)
from tests.broker.kafka_fakes import DictState, RecordingOutlet, prepared_codec
from tests.broker.test_casebook import _key
from tests.broker.test_sla import cumulative, referral

Tables = dict[str, dict[str, Any]]
CODEC = prepared_codec()
PART = partition_of(SHROPSHIRE.encode(), 6)
NEIGHBOUR = "E06000020"  # an authority whose router state shares Shropshire's partition
assert partition_of(NEIGHBOUR.encode(), 6) == PART


def _decision(rid: Any, at: datetime, authority: str = SHROPSHIRE) -> FrontDoorDecision:
    return FrontDoorDecision(referral_id=rid, authority=authority, response=FrontDoorResponse.NO_FURTHER_ACTION,
                             decided=at)


def _referral_id(step: Step) -> Any:
    (ref,) = [o.payload for o in step.outputs if isinstance(o.payload, FrontDoorReferral)]
    return ref.referral_id


def _decide(tables: Tables, d: FrontDoorDecision, owns: Any = None) -> Step:
    step = on_decision(d, tables=tables, owns=owns)
    apply_writes(tables, step.writes)
    return step


def _alerts(step: Step) -> list[CumulativeConcernAlert]:
    """The SIGNIFICANT_EVENT alerts a step raised (threshold alerts are not about open referrals)."""
    return [o.payload for o in step.outputs if isinstance(o.payload, CumulativeConcernAlert)
            and o.payload.trigger is CumulativeTrigger.SIGNIFICANT_EVENT]


def _release(days: float = 0) -> Any:
    return probation_notification([child(1)], event=ProbationEvent.RELEASE_FROM_CUSTODY,
                                  occurred=BASE + timedelta(days=days))


# ------------------------------------------------------------------------------------------ pure core
def test_decided_referral_is_not_open_for_a_later_significant_event() -> None:
    """Decided 3 days before a release: no SIGNIFICANT_EVENT alert, but the release makes its own new referral."""
    open_tables, closed = new_tables(), new_tables()
    run(open_tables, police_concern([child(1)], occurred=BASE - timedelta(days=5)))
    rid = _referral_id(run(closed, police_concern([child(1)], occurred=BASE - timedelta(days=5))))
    step = _decide(closed, _decision(rid, BASE - timedelta(days=3)))
    assert step.closing is not None and step.closing.verdict is Closure.CLOSED and step.outputs == ()
    assert [e.decided for e in person_of(closed, _key(child(1))).chronology] == [BASE - timedelta(days=3)]
    release = _release()
    assert len(_alerts(run(open_tables, release))) == 1  # without the decision the referral is still open
    after = run(closed, release)
    assert _alerts(after) == [] and len([o for o in after.outputs if isinstance(o.payload, FrontDoorReferral)]) == 1
    (_, later) = person_of(closed, _key(child(1))).chronology
    assert later.decided is None  # the release's own referral is open: a further event counts it
    assert len(_alerts(run(closed, _release(days=1)))) == 1


def test_event_occurring_before_the_decision_still_finds_the_referral_open() -> None:
    """A release that occurred before the decision but is reported after it raises the alert (occurred order)."""
    tables = new_tables()
    rid = _referral_id(run(tables, police_concern([child(1)], occurred=BASE - timedelta(days=5))))
    _decide(tables, _decision(rid, BASE - timedelta(days=3)))
    assert len(_alerts(run(tables, _release(days=-4)))) == 1


def test_decision_before_its_referral_is_held_and_applied_when_routed() -> None:
    """A decision before its referral is HELD and applied when it is routed: the same state as the other order."""
    concern = police_concern([child(1)], occurred=BASE - timedelta(days=5))
    probe = new_tables()
    rid = _referral_id(run(copy.deepcopy(probe), concern))
    decision = _decision(rid, BASE - timedelta(days=3))
    first = new_tables()
    held = _decide(first, decision)
    assert held.closing is not None and held.closing.verdict is Closure.HELD and held.skipped
    assert list(first["referrals"]) == [held_key(SHROPSHIRE, rid)]
    run(first, concern)
    assert load_referral(first["referrals"][str(rid)]).notification_id == concern.envelope.notification_id
    second = new_tables()
    run(second, concern)
    _decide(second, decision)
    assert first["people"] == second["people"]
    assert first["referrals"][str(rid)] == second["referrals"][str(rid)]
    assert _alerts(run(first, _release())) == _alerts(run(second, _release())) == []


def test_repeated_decision_changes_nothing_and_the_earliest_instant_wins() -> None:
    """A repeated or later decision changes nothing (re-writes only); an earlier one moves the closing instant."""
    tables = new_tables()
    rid = _referral_id(run(tables, police_concern([child(1)], occurred=BASE - timedelta(days=5))))
    first = _decide(tables, _decision(rid, BASE - timedelta(days=3)))
    before = copy.deepcopy(tables)
    again = on_decision(_decision(rid, BASE - timedelta(days=3)), tables=tables)
    assert again.closing is not None and again.closing.verdict is Closure.DUPLICATE
    assert {(t, k) for t, k, _ in again.writes} == {(t, k) for t, k, _ in first.writes}
    assert all(tables[t][k] == v for t, k, v in again.writes)
    later = _decide(tables, _decision(rid, BASE - timedelta(days=1)))
    assert later.closing is not None and later.closing.verdict is Closure.DUPLICATE and tables == before
    earlier = _decide(tables, _decision(rid, BASE - timedelta(days=4)))
    assert earlier.closing is not None and earlier.closing.verdict is Closure.CLOSED
    assert load_referral(tables["referrals"][str(rid)]).decided == BASE - timedelta(days=4)


def test_decision_for_a_recalled_referral_is_ignored() -> None:
    """The referral's notification was withdrawn: the decision is ignored, nothing written, nothing raised."""
    tables = new_tables()
    concern = police_concern([child(1)], occurred=BASE - timedelta(days=5))
    rid = _referral_id(run(tables, concern))
    run(tables, police_concern([child(1)], action=Action.WITHDRAW, supersedes=concern.envelope.notification_id,
                               occurred=concern.envelope.occurred))
    step = on_decision(_decision(rid, BASE - timedelta(days=3)), tables=tables)
    assert step.closing is not None and step.closing.verdict is Closure.RECALLED
    assert step.writes == () and step.outputs == ()
    assert step.skipped == "referral's notification superseded"


def test_decision_from_another_authority_is_refused() -> None:
    """Dorset deciding a Shropshire referral: refused, the referral stays open (a release still alerts)."""
    tables = new_tables()
    rid = _referral_id(run(tables, police_concern([child(1)], occurred=BASE - timedelta(days=5))))
    before = copy.deepcopy(tables)
    step = _decide(tables, _decision(rid, BASE - timedelta(days=3), authority=DORSET))
    assert step.closing is not None and step.closing.verdict is Closure.REFUSED and step.writes == ()
    assert tables == before and len(_alerts(run(tables, _release()))) == 1


def test_decision_read_outside_its_authority_partition_changes_nothing() -> None:
    """`owns` says the deciding authority lives elsewhere: ignored, no writes."""
    tables = new_tables()
    rid = _referral_id(run(tables, police_concern([child(1)], occurred=BASE - timedelta(days=5))))
    step = on_decision(_decision(rid, BASE), tables=tables, owns=lambda authority: False)
    assert step.closing is not None and step.closing.verdict is Closure.ELSEWHERE and step.writes == ()


def test_alert_raised_before_the_decision_arrived_is_never_recalled() -> None:
    """An alert raised before an earlier-dated decision reached the router is never recalled later."""
    tables = new_tables()
    rid = _referral_id(run(tables, police_concern([child(1)], occurred=BASE - timedelta(days=5))))
    (alert,) = _alerts(run(tables, _release()))
    _decide(tables, _decision(rid, BASE - timedelta(days=1)))
    nxt = run(tables, police_concern([child(1)], occurred=BASE + timedelta(days=2)))
    assert [o for o in nxt.outputs if isinstance(o.payload, Recall)] == []
    assert alert.alert_id in {r.output_id for r in person_of(tables, _key(child(1))).raised}


def test_redelivered_notification_rewrites_its_referral_record() -> None:
    """A routed notification read again re-writes its referral record (the changelog may have lost it)."""
    tables = new_tables()
    concern = police_concern([child(1)], occurred=BASE - timedelta(days=5))
    rid = _referral_id(run(tables, concern))
    again = run(tables, concern)
    assert ("referrals", str(rid)) in {(t, k) for t, k, _ in again.writes} and again.outputs == ()


# ------------------------------------------------------------------------------------------- stages
def _item(record: Record, offset: int) -> Received:
    ms = str(int((BASE + timedelta(hours=2)).timestamp() * 1000)).encode()
    topic = "t.internal.accepted"
    return Received(Inbound(topic, PART, offset, SHROPSHIRE.encode(), CODEC.encode(record, topic), 0,
                            {"received-ms": ms}))


def _router(outlet: RecordingOutlet, state: DictState, faults: Faults | None = None) -> RouterStage:
    return RouterStage(codec=CODEC, secret=SECRET, schools=SCHOOLS, deadlines=StubDeadlines(), outlet=outlet,
                       state=state, faults=faults)


def _tables() -> DictState:
    return DictState({name: {} for name in casebook.TABLES})


def _night() -> tuple[list[Record], Any]:
    concern = police_concern([child(1)], occurred=BASE - timedelta(days=5))
    rid = _referral_id(run(new_tables(), concern))
    ghost = _referral_id(run(new_tables(), police_concern([child(2)])))
    records: list[Record] = [concern, _decision(rid, BASE - timedelta(days=3)),
                             _decision(rid, BASE - timedelta(days=3)),
                             _decision(rid, BASE - timedelta(days=2), authority=NEIGHBOUR), _decision(ghost, BASE)]
    return records, rid


def _decision_audits(outlet: RecordingOutlet) -> list[AuditRecord]:
    return [r for r in outlet.of("audit") if isinstance(r, AuditRecord) and r.event is AuditEvent.ACKNOWLEDGED]


async def test_stage_records_one_outcome_and_one_audit_per_decision() -> None:
    """Each decision ends in one outcome and one audit record; a batch ends as one record at a time does."""
    records, rid = _night()
    batch_out, batch_state = RecordingOutlet(), _tables()
    outcomes = await _router(batch_out, batch_state).handle_batch([_item(r, i) for i, r in enumerate(records)])
    assert outcomes == [RouterOutcome.ROUTED, RouterOutcome.CLOSED, RouterOutcome.IGNORED, RouterOutcome.IGNORED,
                        RouterOutcome.HELD]
    audits = _decision_audits(batch_out)
    assert len(audits) == 4 and audits[0].output_id == rid and "closed" in audits[0].purpose
    assert "refused-authority" in audits[2].purpose and audits[2].recipient == NEIGHBOUR
    one_out, one_state = RecordingOutlet(), _tables()
    for i, r in enumerate(records):
        await _router(one_out, one_state).handle(_item(r, i).msg)
    assert batch_state.tables == one_state.tables
    assert [s.record for s in batch_out.sent] == [s.record for s in one_out.sent]
    assert load_referral(batch_state.tables["referrals"][str(rid)]).decided == BASE - timedelta(days=3)


async def test_redelivered_decisions_change_no_state() -> None:
    """The whole batch read again: no referral sent again, decisions IGNORED or HELD, the tables unchanged."""
    records, _ = _night()
    outlet, state = RecordingOutlet(), _tables()
    await _router(outlet, state).handle_batch([_item(r, i) for i, r in enumerate(records)])
    before, referrals = copy.deepcopy(state.tables), len(outlet.of("route.frontdoor"))
    again = await _router(outlet, state).handle_batch([_item(r, i) for i, r in enumerate(records)])
    assert again == [RouterOutcome.SKIPPED, RouterOutcome.IGNORED, RouterOutcome.IGNORED, RouterOutcome.IGNORED,
                     RouterOutcome.HELD]
    assert state.tables == before and len(outlet.of("route.frontdoor")) == referrals


async def test_decision_failing_to_record_is_dead_lettered_alone() -> None:
    """A decision whose state write fails fatally is dead-lettered alone; its referral stays open."""
    records, rid = _night()
    outlet, state = RecordingOutlet(), _tables()
    faults = Faults.parse(f'[{{"stage": "router.record", "kind": "fatal", "match": "{rid}"}}]')
    outcomes = await _router(outlet, state, faults).handle_batch([_item(r, i) for i, r in enumerate(records[:2])])
    assert outcomes == [RouterOutcome.ROUTED, RouterOutcome.DEAD_LETTERED]
    [letter] = outlet.of("deadletter")
    assert isinstance(letter, DeadLetter) and letter.stage == "router.record" and letter.notification_id is None
    assert load_referral(state.tables["referrals"][str(rid)]).decided is None


def _sla_msg(record: Record, offset: int, topic: str) -> Inbound:
    key = getattr(record, "authority", SHROPSHIRE)
    return Inbound(topic, partition_of(key.encode(), 6), offset, key.encode(), CODEC.encode(record, topic),
                   int(BASE.timestamp() * 1000), {})


async def test_sla_tracker_relays_referral_decisions_to_the_router_only() -> None:
    """A decision on a referral is re-sent to internal.accepted keyed by authority; one on an alert is not."""
    outlet, state = RecordingOutlet(), DictState({CLOCKS_TABLE: {}, HELD_TABLE: {}})
    stage = SlaStage(codec=CODEC, outlet=outlet, state=state)
    r, c = referral(), cumulative()
    acks = "t.feedback.acknowledgements"
    outcomes = await stage.handle_batch([
        Received(_sla_msg(r, 0, "t.route.frontdoor")), Received(_sla_msg(c, 1, "t.route.cumulative-concern")),
        Received(_sla_msg(_decision(r.referral_id, BASE), 2, acks)),
        Received(_sla_msg(_decision(c.alert_id, BASE), 3, acks))])
    assert outcomes[2:] == [SlaOutcome.ACKNOWLEDGED, SlaOutcome.ACKNOWLEDGED]
    relayed = [s for s in outlet.sent if s.short == "internal.accepted"]
    assert [(s.key, s.record) for s in relayed] == [(SHROPSHIRE, _decision(r.referral_id, BASE))]
