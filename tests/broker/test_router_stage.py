"""The router stage (broker.router_stage) over recording fakes of its I/O boundaries: batches give the same
outputs and state as one record at a time, and a deterministic failure costs only its own record."""

from __future__ import annotations

from datetime import date, timedelta

from broker import casebook
from broker.batch import Received
from broker.faults import Faults
from broker.outlet import Inbound
from broker.router_stage import RouterOutcome, RouterStage, partition_of
from schemas.models import Action, DeadLetter, FrontDoorReferral, Recall, Record
from tests.broker.factories import BASE, SCHOOLS, SECRET, SHROPSHIRE, StubDeadlines, child, envelope, police_incident
from tests.broker.kafka_fakes import DictState, RecordingOutlet, prepared_codec

CODEC = prepared_codec()
PART = partition_of(SHROPSHIRE.encode(), 6)


def _item(record: Record, offset: int) -> Received:
    ms = str(int((BASE + timedelta(hours=2)).timestamp() * 1000)).encode()
    topic = "t.internal.accepted"
    return Received(Inbound(topic, PART, offset, SHROPSHIRE.encode(), CODEC.encode(record, topic), 0,
                            {"received-ms": ms}))


def _stage(outlet: RecordingOutlet, state: DictState, faults: Faults | None = None) -> RouterStage:
    return RouterStage(codec=CODEC, secret=SECRET, schools=SCHOOLS, deadlines=StubDeadlines(), outlet=outlet,
                       state=state, faults=faults)


def _night() -> list[Record]:
    kid = child(31, school_urn="900001", date_of_birth=date(2015, 5, 5))
    first = police_incident([kid], occurred=BASE - timedelta(days=3))
    second = police_incident([kid], occurred=BASE - timedelta(days=2))
    env = envelope(action=Action.AMEND, supersedes=first.envelope.notification_id, occurred=first.envelope.occurred)
    amend = first.model_copy(update={"envelope": env})
    return [first, second, amend]


def _tables() -> DictState:
    return DictState({name: {} for name in casebook.TABLES})


async def test_a_batch_routes_like_one_record_at_a_time() -> None:
    """NEW, NEW, AMEND of the first in one batch: the same outputs and state as three separate records."""
    records = _night()
    one_out, one_state = RecordingOutlet(), _tables()
    for i, r in enumerate(records):
        await _stage(one_out, one_state).handle(_item(r, i).msg)
    batch_out, batch_state = RecordingOutlet(), _tables()
    outcomes = await _stage(batch_out, batch_state).handle_batch([_item(r, i) for i, r in enumerate(records)])
    assert outcomes == [RouterOutcome.ROUTED] * 3
    assert [s.record for s in batch_out.sent] == [s.record for s in one_out.sent]
    assert batch_state.tables == one_state.tables
    assert any(isinstance(s.record, Recall) for s in batch_out.sent)


async def test_a_deterministic_failure_in_a_batch_costs_only_its_record() -> None:
    """A fatal failure while emitting the second record: it is dead-lettered at router.emit, the others routed."""
    records = _night()
    nid = records[1].envelope.notification_id  # type: ignore[attr-defined]
    outlet, state = RecordingOutlet(), _tables()
    faults = Faults.parse(f'[{{"stage": "router.emit", "kind": "fatal", "match": "{nid}"}}]')
    outcomes = await _stage(outlet, state, faults).handle_batch([_item(r, i) for i, r in enumerate(records)])
    assert outcomes == [RouterOutcome.ROUTED, RouterOutcome.DEAD_LETTERED, RouterOutcome.ROUTED]
    [letter] = outlet.of("deadletter")
    assert isinstance(letter, DeadLetter) and letter.stage == "router.emit" and letter.notification_id == nid
    referred = [r for r in outlet.of("route.frontdoor") if isinstance(r, FrontDoorReferral)]
    assert nid not in {r.notification_id for r in referred}


async def test_redelivered_batch_emits_nothing_new() -> None:
    """The same batch read again after it was recorded: nothing routed again, state unchanged."""
    records = _night()
    outlet, state = RecordingOutlet(), _tables()
    await _stage(outlet, state).handle_batch([_item(r, i) for i, r in enumerate(records)])
    before, sent = {k: dict(v) for k, v in state.tables.items()}, len(outlet.sent)
    again = await _stage(outlet, state).handle_batch([_item(r, i) for i, r in enumerate(records)])
    assert again == [RouterOutcome.SKIPPED] * 3
    assert len(outlet.sent) == sent and state.tables == before


async def test_a_failed_state_write_in_a_batch_emits_nothing_twice() -> None:
    """The batch's outputs are acknowledged, then one record's state write fails for good: redone one at a time,
    no output is sent a second time, the failing record is dead-lettered at router.record, the others routed."""
    records = _night()
    nid = records[1].envelope.notification_id  # type: ignore[attr-defined]
    outlet, state = RecordingOutlet(), _tables()
    faults = Faults.parse(f'[{{"stage": "router.record", "kind": "fatal", "match": "{nid}"}}]')
    outcomes = await _stage(outlet, state, faults).handle_batch([_item(r, i) for i, r in enumerate(records)])
    assert outcomes == [RouterOutcome.ROUTED, RouterOutcome.DEAD_LETTERED, RouterOutcome.ROUTED]
    routed = [s for s in outlet.sent if s.short not in ("deadletter", "audit")]
    ids = [next(iter(s.record.model_dump().values())) for s in routed]
    assert len(ids) == len(set(ids)), "an output was sent twice"
    [letter] = outlet.of("deadletter")
    assert isinstance(letter, DeadLetter) and letter.stage == "router.record" and letter.notification_id == nid


async def test_a_batch_logs_one_summary_line_and_no_info_line_per_routed_record() -> None:
    """Routed records get no INFO line of their own; the batch's INFO line counts them and their outputs and names
    the offsets."""
    from structlog.testing import capture_logs

    records = _night()
    with capture_logs() as logs:
        outcomes = await _stage(RecordingOutlet(), _tables()).handle_batch([_item(r, i) for i, r in enumerate(records)])
    assert outcomes == [RouterOutcome.ROUTED] * 3
    (line,) = [e for e in logs if e["log_level"] != "debug"]
    assert line["event"] == "batch settled" and line["routed"] == 3 and line["outputs"] > 3
    assert line["offsets"] == f"t.internal.accepted/{PART}:0-2"
