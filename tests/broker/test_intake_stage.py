"""The intake stage (broker.intake_stage) end to end over recording fakes of its two I/O boundaries: every
record ends in exactly one outcome, whatever fails."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from aiokafka.errors import KafkaConnectionError

from broker.batch import Received
from broker.faults import Faults
from broker.intake_stage import SEEN_TABLE, IntakeOutcome, IntakeStage
from broker.outlet import Inbound
from producers.simulator import generate as simulate
from schemas.models import AgencyType, AuditEvent, AuditRecord, DeadLetter, PoliceDomesticAbuseIncident, Rejection
from tests.broker.kafka_fakes import DictState, RecordingOutlet, prepared_codec

START = datetime(2026, 11, 2, 18, tzinfo=UTC)
TOPIC = "t.intake.police"
CODEC = prepared_codec()


@pytest.fixture(scope="module")
def incident() -> PoliceDomesticAbuseIncident:
    """A synthetic police incident from the simulator."""
    for record in simulate(START, seed=13, count=40):
        if isinstance(record, PoliceDomesticAbuseIncident):
            return record
    raise AssertionError("the simulator made no police incident")


def _inbound(value: bytes, offset: int = 0, partition: int = 2) -> Inbound:
    received = START + timedelta(days=1)
    return Inbound(TOPIC, partition, offset, b"k", value, int(received.timestamp() * 1000), {})


def _stage(outlet: RecordingOutlet, state: DictState, faults: Faults | None = None) -> IntakeStage:
    return IntakeStage(codec=CODEC, secret=b"s", agencies={TOPIC: AgencyType.POLICE}, outlet=outlet, state=state,
                       faults=faults)


def _audits(outlet: RecordingOutlet) -> list[AuditEvent]:
    return [r.event for r in outlet.of("audit") if isinstance(r, AuditRecord)]


async def test_accepted_record_is_forwarded_audited_then_remembered(incident: PoliceDomesticAbuseIncident) -> None:
    """ACCEPTED: forwarded keyed by home authority, one ACCEPTED audit, the id remembered in its partition."""
    outlet, state = RecordingOutlet(), DictState({SEEN_TABLE: {}})
    outcome = await _stage(outlet, state).handle(_inbound(CODEC.encode(incident, TOPIC)))
    assert outcome is IntakeOutcome.ACCEPTED
    [fwd] = [s for s in outlet.sent if s.short == "internal.accepted"]
    assert fwd.key == incident.envelope.home_local_authority
    assert _audits(outlet) == [AuditEvent.ACCEPTED]
    assert state.writes == [(2, SEEN_TABLE, str(incident.envelope.notification_id))]


async def test_redelivery_is_not_reported_as_a_resend(incident: PoliceDomesticAbuseIncident) -> None:
    """The same record read again (same coordinates) completes the acceptance again; no DUPLICATE audit."""
    outlet, state = RecordingOutlet(), DictState({SEEN_TABLE: {}})
    stage = _stage(outlet, state)
    await stage.handle(_inbound(CODEC.encode(incident, TOPIC), offset=5))
    again = await stage.handle(_inbound(CODEC.encode(incident, TOPIC), offset=5))
    assert again is IntakeOutcome.REDELIVERED
    assert _audits(outlet) == [AuditEvent.ACCEPTED, AuditEvent.ACCEPTED]
    assert len({r.audit_id for r in outlet.of("audit")}) == 1  # the same derived audit id


async def test_sender_resend_is_dropped_and_audited(incident: PoliceDomesticAbuseIncident) -> None:
    """The same content at another offset is the sender's resend: DUPLICATE, audited, not forwarded again."""
    outlet, state = RecordingOutlet(), DictState({SEEN_TABLE: {}})
    stage = _stage(outlet, state)
    await stage.handle(_inbound(CODEC.encode(incident, TOPIC), offset=5))
    again = await stage.handle(_inbound(CODEC.encode(incident, TOPIC), offset=9))
    assert again is IntakeOutcome.DUPLICATE
    assert _audits(outlet) == [AuditEvent.ACCEPTED, AuditEvent.DUPLICATE_DROPPED]
    assert len(outlet.of("internal.accepted")) == 1


async def test_undecodable_record_is_dead_lettered_and_rejected() -> None:
    """Random bytes: one dead letter (reason, coordinates), one rejection, one REJECTED audit."""
    outlet, state = RecordingOutlet(), DictState({SEEN_TABLE: {}})
    outcome = await _stage(outlet, state).handle(_inbound(b"\x00not avro", offset=3))
    assert outcome is IntakeOutcome.REFUSED
    [letter] = outlet.of("deadletter")
    assert isinstance(letter, DeadLetter)
    assert (letter.reason, letter.source_offset, letter.stage) == ("UNDECODABLE", 3, "intake")
    assert len(outlet.of("feedback.rejections")) == 1
    assert _audits(outlet) == [AuditEvent.REJECTED]
    assert state.writes == []


async def test_oversize_record_keeps_a_bounded_preview() -> None:
    """A 1,040,000-byte value: its dead letter carries a preview, the full size and the coordinates."""
    outlet, state = RecordingOutlet(), DictState({SEEN_TABLE: {}})
    raw = b"\x00\x00\x00\x00\x01" + b"x" * 1_039_995
    outcome = await _stage(outlet, state).handle(_inbound(raw, offset=11))
    assert outcome is IntakeOutcome.REFUSED
    [letter] = outlet.of("deadletter")
    assert isinstance(letter, DeadLetter)
    assert letter.raw_truncated and letter.raw_size == 1_040_000
    assert letter.raw_value is not None and len(letter.raw_value) <= 4096
    assert letter.source_offset == 11


async def test_dead_letter_refused_by_the_producer_is_shrunk_not_lost() -> None:
    """When even the bounded dead letter is refused as too large, a smaller one is sent instead."""
    outlet, state = RecordingOutlet(too_large=3000), DictState({SEEN_TABLE: {}})
    outcome = await _stage(outlet, state).handle(_inbound(b"\x00\x00\x00\x00\x01" + b"y" * 200_000, offset=1))
    assert outcome is IntakeOutcome.REFUSED
    [letter] = outlet.of("deadletter")
    assert isinstance(letter, DeadLetter) and letter.raw_truncated


async def test_transient_failure_while_forwarding_is_retried(incident: PoliceDomesticAbuseIncident) -> None:
    """The broker unreachable twice while forwarding: retried, then ACCEPTED once, nothing dead-lettered."""
    outlet, state = RecordingOutlet(), DictState({SEEN_TABLE: {}})
    outlet.fail["internal.accepted"] = [KafkaConnectionError("down"), KafkaConnectionError("down")]
    outcome = await _stage(outlet, state).handle(_inbound(CODEC.encode(incident, TOPIC)))
    assert outcome is IntakeOutcome.ACCEPTED
    assert outlet.of("deadletter") == []
    assert len(outlet.of("internal.accepted")) == 1


@pytest.mark.parametrize("stage", ["intake.decode", "intake.admit", "intake.forward"])
async def test_deterministic_failure_before_forwarding_is_refused(incident: PoliceDomesticAbuseIncident,
                                                                  stage: str) -> None:
    """A deterministic failure before the forward: dead letter naming the stage, a rejection, not forwarded."""
    outlet, state = RecordingOutlet(), DictState({SEEN_TABLE: {}})
    faults = Faults.parse(f'[{{"stage": "{stage}", "kind": "fatal"}}]')
    outcome = await _stage(outlet, state, faults).handle(_inbound(CODEC.encode(incident, TOPIC)))
    assert outcome is IntakeOutcome.REFUSED
    [letter] = outlet.of("deadletter")
    assert isinstance(letter, DeadLetter) and letter.stage == stage
    assert len(outlet.of("feedback.rejections")) == 1
    assert outlet.of("internal.accepted") == []


async def test_failure_after_forwarding_is_dead_lettered_without_rejection(
    incident: PoliceDomesticAbuseIncident,
) -> None:
    """Forwarded but not remembered: dead letter at intake.record, no rejection (it was accepted)."""
    outlet, state = RecordingOutlet(), DictState({SEEN_TABLE: {}})
    faults = Faults.parse('[{"stage": "intake.record", "kind": "fatal"}]')
    outcome = await _stage(outlet, state, faults).handle(_inbound(CODEC.encode(incident, TOPIC)))
    assert outcome is IntakeOutcome.REFUSED
    [letter] = outlet.of("deadletter")
    assert isinstance(letter, DeadLetter) and letter.stage == "intake.record"
    assert outlet.of("feedback.rejections") == []
    assert set(_audits(outlet)) == {AuditEvent.ACCEPTED, AuditEvent.DEAD_LETTERED}
    accepted = {r.audit_id for r in outlet.of("audit") if isinstance(r, AuditRecord) and r.event is AuditEvent.ACCEPTED}
    assert len(accepted) == 1  # redone one record at a time: the same derived audit record, not a second one


async def test_transient_failure_while_remembering_is_retried(incident: PoliceDomesticAbuseIncident) -> None:
    """The changelog write failing transiently three times is retried until the id is remembered."""
    outlet, state = RecordingOutlet(), DictState({SEEN_TABLE: {}})
    faults = Faults.parse('[{"stage": "intake.record", "kind": "transient", "times": 3}]')
    outcome = await _stage(outlet, state, faults).handle(_inbound(CODEC.encode(incident, TOPIC)))
    assert outcome is IntakeOutcome.ACCEPTED
    assert len(state.writes) == 1


async def test_rejection_never_echoes_an_unreadable_key() -> None:
    """A rejection of an unreadable record is keyed by (at most 64 characters of) the record key."""
    outlet, state = RecordingOutlet(), DictState({SEEN_TABLE: {}})
    await _stage(outlet, state).handle(_inbound(b"junk"))
    [rej] = outlet.of("feedback.rejections")
    assert isinstance(rej, Rejection) and rej.source_reference is None


async def test_a_batch_sees_its_own_earlier_records(incident: PoliceDomesticAbuseIncident) -> None:
    """Two copies of one notification in one batch: the first is accepted, the second is the sender's resend."""
    outlet, state = RecordingOutlet(), DictState({SEEN_TABLE: {}})
    raw = CODEC.encode(incident, TOPIC)
    outcomes = await _stage(outlet, state).handle_batch([Received(_inbound(raw, 1)), Received(_inbound(raw, 2))])
    assert outcomes == [IntakeOutcome.ACCEPTED, IntakeOutcome.DUPLICATE]
    assert len(outlet.of("internal.accepted")) == 1


async def test_a_deterministic_failure_in_a_batch_fails_only_its_record(incident: PoliceDomesticAbuseIncident) -> None:
    """A batch of a good record, a record whose forward fails deterministically, and junk: one outcome each."""
    outlet, state = RecordingOutlet(), DictState({SEEN_TABLE: {}})
    other = incident.model_copy(update={"envelope": incident.envelope.model_copy(
        update={"notification_id": uuid.uuid4()})})
    nid = other.envelope.notification_id
    faults = Faults.parse(f'[{{"stage": "intake.forward", "kind": "fatal", "match": "{nid}"}}]')
    batch = [Received(_inbound(CODEC.encode(incident, TOPIC), 1)), Received(_inbound(CODEC.encode(other, TOPIC), 2)),
             Received(_inbound(b"junk", 3))]
    outcomes = await _stage(outlet, state, faults).handle_batch(batch)
    assert outcomes == [IntakeOutcome.ACCEPTED, IntakeOutcome.REFUSED, IntakeOutcome.REFUSED]
    assert [r.envelope.notification_id for r in outlet.of("internal.accepted")] == [incident.envelope.notification_id]
    assert sorted(d.source_offset for d in outlet.of("deadletter")) == [2, 3]


async def test_a_failed_state_write_in_a_batch_sends_nothing_twice(incident: PoliceDomesticAbuseIncident) -> None:
    """The batch's forwards and refusals are acknowledged, then one record's state write fails for good: redone one
    at a time, no forward and no dead letter is sent a second time, and each record still ends in its outcome."""
    outlet, state = RecordingOutlet(), DictState({SEEN_TABLE: {}})
    other = incident.model_copy(update={"envelope": incident.envelope.model_copy(
        update={"notification_id": uuid.uuid4()})})
    nid = other.envelope.notification_id
    faults = Faults.parse(f'[{{"stage": "intake.record", "kind": "fatal", "match": "{nid}"}}]')
    batch = [Received(_inbound(CODEC.encode(incident, TOPIC), 1)), Received(_inbound(CODEC.encode(other, TOPIC), 2)),
             Received(_inbound(b"junk", 3))]
    outcomes = await _stage(outlet, state, faults).handle_batch(batch)
    assert outcomes == [IntakeOutcome.ACCEPTED, IntakeOutcome.REFUSED, IntakeOutcome.REFUSED]
    forwarded = [r.envelope.notification_id for r in outlet.of("internal.accepted")]
    assert sorted(map(str, forwarded)) == sorted([str(incident.envelope.notification_id), str(nid)])  # once each
    letters = outlet.of("deadletter")
    assert sorted((d.source_offset, d.stage) for d in letters) == [(2, "intake.record"), (3, "intake")]
    assert str(incident.envelope.notification_id) in state.tables[SEEN_TABLE]
    assert str(nid) not in state.tables[SEEN_TABLE]


async def test_a_batch_logs_one_summary_line_and_no_info_line_per_acceptance(
        incident: PoliceDomesticAbuseIncident) -> None:
    """An accepted record gets no INFO line of its own (debug only); the batch's INFO line counts the outcomes and
    names the offsets; a duplicate and a refusal still get their own line."""
    from structlog.testing import capture_logs

    resend = _inbound(CODEC.encode(incident, TOPIC), offset=9)
    items = [Received(_inbound(CODEC.encode(incident, TOPIC), offset=7)), Received(_inbound(b"\x00junk", offset=8))]
    state = DictState({SEEN_TABLE: {}})
    with capture_logs() as logs:
        await _stage(RecordingOutlet(), state).handle_batch(items)
        await _stage(RecordingOutlet(), state).handle_batch([Received(resend)])
    at_info = [(e["event"], e["log_level"]) for e in logs if e["log_level"] != "debug"]
    assert at_info == [("rejected", "warning"), ("batch settled", "info"), ("duplicate", "info"),
                       ("batch settled", "info")]
    first = next(e for e in logs if e["event"] == "batch settled")
    assert first["accepted"] == 1 and first["refused"] == 1 and first["offsets"] == f"{TOPIC}/2:7-8"
    assert [e["event"] for e in logs if e["log_level"] == "debug"] in ([], ["accepted"])
