"""The outlet's encoding (`broker.outlet.encode_sends`, what `KafkaOutlet.send_all` sends) and what intake forwards
through it: the very bytes it read and checked (`Encoded`), not a second encoding of the record."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from broker.batch import Received
from broker.intake_stage import SEEN_TABLE, IntakeStage, audit_record
from broker.outlet import Encoded, Inbound, RawRecord, Send, encode_sends, partition_of
from broker.run import last_night
from broker.topics import INTAKE_TOPICS, catalogue
from producers.simulator import simulate_night
from schemas.codec import Codec
from schemas.models import AuditEvent, Record
from schemas.registry import InMemoryRegistry
from tests.broker.factories import SECRET
from tests.broker.kafka_fakes import DictState

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
CAT = catalogue("t")
NAMES = {s.name: CAT.name(s.name) for s in CAT.specs}
SIX: defaultdict[str, int] = defaultdict(lambda: 6)


def _codec() -> Codec:
    codec = Codec(InMemoryRegistry())
    asyncio.run(codec.prepare({CAT.name(s.name): s.records for s in CAT.specs if s.records}))
    return codec


@dataclass
class _EncodingOutlet:
    """The worker's outlet without Kafka: sends encoded by `encode_sends`, as `KafkaOutlet` encodes them."""

    codec: Codec
    sent: list[tuple[str, RawRecord]] = field(default_factory=list)

    def partitions(self, short: str) -> int:
        return 6

    async def send_all(self, items: Sequence[Send]) -> None:
        raw = encode_sends(self.codec, items, NAMES, SIX)
        self.sent.extend((short, r) for (short, *_), r in zip(items, raw, strict=True))


def test_sends_are_encoded_to_their_key_partition_and_encoded_ones_sent_as_they_are() -> None:
    """A record is encoded for its topic, partitioned by its key as Kafka's default partitioner does (partition 0
    without a key, or the one given); an `Encoded` record goes as its own bytes."""
    codec = _codec()
    (record,) = simulate_night(last_night(NOW), 3, 1)
    audit = audit_record(AuditEvent.ACCEPTED, NOW, notification_id=None, purpose="test")
    raw = encode_sends(codec, [("audit", "x", audit, None, None), ("audit", None, audit, {"h": b"1"}, None),
                               ("internal.accepted", b"E06000051", Encoded(record, b"\x00as-read"), None, None),
                               ("audit", "x", audit, None, 4)], NAMES, SIX)
    assert [(t, p) for t, p, *_ in raw] == [(NAMES["audit"], partition_of(b"x", 6)), (NAMES["audit"], 0),
                                           (NAMES["internal.accepted"], partition_of(b"E06000051", 6)),
                                           (NAMES["audit"], 4)]
    assert codec.decode(raw[0][3]) == audit and raw[1][4] == [("h", b"1")]
    assert raw[2][2] == b"E06000051" and raw[2][3] == b"\x00as-read"


def test_intake_forwards_the_bytes_it_read_and_checked() -> None:
    """What intake forwards to internal.accepted is the very bytes it read (not a second encoding), and they
    decode (trusted, as the router reads them) to the record intake checked; the audit is encoded afresh."""
    codec = _codec()
    records: list[Record] = simulate_night(last_night(NOW), 5, 20)
    values = []
    for r in records:
        values.append(codec.encode(r, CAT.intake(r.envelope.source.agency_type)))  # type: ignore[attr-defined]
    out = _EncodingOutlet(codec)
    intake = IntakeStage(codec=codec, secret=SECRET, agencies={CAT.name(t): a for a, t in INTAKE_TOPICS.items()},
                         outlet=out, state=DictState({SEEN_TABLE: {}}))
    ms = int(NOW.timestamp() * 1000)
    inbound = [Inbound(CAT.intake(r.envelope.source.agency_type), 0, i, b"k", v, ms, {})  # type: ignore[attr-defined]
               for i, (r, v) in enumerate(zip(records, values, strict=True))]
    asyncio.run(intake.handle_batch([Received(m) for m in inbound]))
    forwarded = [raw[3] for short, raw in out.sent if short == "internal.accepted"]
    assert forwarded == values
    assert [codec.decode(v, trusted=True) for v in forwarded] == records
    assert len([s for s, _ in out.sent if s == "audit"]) == len(records)
