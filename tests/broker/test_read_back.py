"""Records the worker writes and reads back itself (`broker.topics.READ_BACK`): the codec keeps them
(`ConfluentCodec.keep`) so the router and the SLA tracker do not decode what intake and the router just encoded.
The three real stages over a simulated night, through the outlet's own encoding (`encode_sends`), write the
same bytes with and without the kept records."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from broker import casebook
from broker._deadlines import DefaultDeadlines
from broker.batch import Received
from broker.intake_stage import SEEN_TABLE, IntakeStage, audit_record
from broker.outlet import Inbound, RawRecord, Send, encode_sends, partition_of
from broker.reference import DEFAULT_SCHOOLS, load_schools
from broker.router_stage import RouterStage
from broker.run import last_night
from broker.sla_stage import TABLES as SLA_TABLES
from broker.sla_stage import SlaStage
from broker.topics import INTAKE_TOPICS, READ_BACK, ROUTE_TOPICS, catalogue
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


@dataclass
class _EncodingOutlet:
    """The worker's outlet without Kafka: sends encoded by `encode_sends`, as `KafkaOutlet` encodes them."""

    codec: Codec
    sent: list[tuple[str, RawRecord]] = field(default_factory=list)

    def partitions(self, short: str) -> int:
        return 6

    async def send_all(self, items: Sequence[Send]) -> None:
        raw = encode_sends(self.codec, items, NAMES, SIX, READ_BACK)
        self.sent.extend((short, r) for (short, *_), r in zip(items, raw, strict=True))


async def _night(kept: int) -> tuple[list[tuple[str, RawRecord]], Codec]:
    """Every record the three stages write over the same night, with a codec keeping at most `kept` records."""
    codec = Codec(InMemoryRegistry(), kept=kept)
    await codec.prepare({CAT.name(s.name): s.records for s in CAT.specs if s.records})
    records: list[Record] = simulate_night(last_night(NOW), 7, 150)
    ms = int(NOW.timestamp() * 1000)
    inbound = []
    for i, r in enumerate(records):
        topic = CAT.intake(r.envelope.source.agency_type)  # type: ignore[attr-defined]
        key = str(r.envelope.notification_id).encode()  # type: ignore[attr-defined]
        inbound.append(Inbound(topic, partition_of(key, 6), i, key, codec.encode(r, topic), ms, {}))
    out = _EncodingOutlet(codec)
    intake = IntakeStage(codec=codec, secret=SECRET, agencies={CAT.name(t): a for a, t in INTAKE_TOPICS.items()},
                         outlet=out, state=DictState({SEEN_TABLE: {}}))
    await intake.handle_batch([Received(m) for m in inbound])
    router = RouterStage(codec=codec, secret=SECRET, schools=load_schools(DEFAULT_SCHOOLS),
                         deadlines=DefaultDeadlines(), outlet=out, state=DictState({n: {} for n in casebook.TABLES}))
    accepted = [Inbound(t, p, i, k, v, ms, dict(h)) for i, (s, (t, p, k, v, h)) in enumerate(list(out.sent))
                if s == "internal.accepted"]
    await router.handle_batch([Received(m) for m in accepted])
    tracker = SlaStage(codec=codec, outlet=out, state=DictState({t: {} for t in SLA_TABLES}))
    routed = [Inbound(t, p, i, k, v, ms, {}) for i, (s, (t, p, k, v, _)) in enumerate(list(out.sent))
              if s in ROUTE_TOPICS.values()]
    await tracker.handle_batch([Received(m) for m in routed])
    return out.sent, codec


def test_kept_records_change_nothing_the_stages_write() -> None:
    """Intake -> router -> SLA tracker write the same records, byte for byte, whether the router and the tracker
    read kept records or decode the bytes; with records kept, everything read back was taken from the codec."""
    plain, _ = asyncio.run(_night(0))
    kept, codec = asyncio.run(_night(8192))
    assert [s for s, _ in plain].count("internal.accepted") == 150
    assert any(s in ROUTE_TOPICS.values() for s, _ in plain) and any(s == "sla.events" for s, _ in plain)
    assert kept == plain
    assert codec.kept == 0  # every kept record was read back (and taken out) by the router or the tracker


def test_only_read_back_topics_are_kept() -> None:
    """`encode_sends` keeps the records of topics the worker reads back (internal.accepted, routes), not audits."""
    codec = Codec(InMemoryRegistry(), kept=10)
    asyncio.run(codec.prepare({CAT.name(s.name): s.records for s in CAT.specs if s.records}))
    records: list[Record] = simulate_night(last_night(NOW), 3, 1)
    audit = audit_record(AuditEvent.ACCEPTED, NOW, notification_id=None, purpose="test")
    raw = encode_sends(codec, [("internal.accepted", "E06000051", records[0], None, None),
                               ("audit", "x", audit, None, None)], NAMES, SIX, READ_BACK)
    assert codec.kept == 1
    assert raw[0][1] == partition_of(b"E06000051", 6) and raw[1][1] == partition_of(b"x", 6)
    assert codec.decode(raw[0][3], trusted=True) is records[0]
    assert codec.decode(raw[1][3], trusted=True) is not audit



def test_intake_forwards_the_bytes_it_read_and_checked() -> None:
    """What intake forwards to internal.accepted is the very bytes it read (not a second encoding), and the router
    reads them back as the record intake checked."""
    codec = Codec(InMemoryRegistry(), kept=10)
    asyncio.run(codec.prepare({CAT.name(s.name): s.records for s in CAT.specs if s.records}))
    (record,) = simulate_night(last_night(NOW), 5, 1)
    topic = CAT.intake(record.envelope.source.agency_type)  # type: ignore[attr-defined]
    value = codec.encode(record, topic)
    out = _EncodingOutlet(codec)
    intake = IntakeStage(codec=codec, secret=SECRET, agencies={CAT.name(t): a for a, t in INTAKE_TOPICS.items()},
                         outlet=out, state=DictState({SEEN_TABLE: {}}))
    ms = int(NOW.timestamp() * 1000)
    asyncio.run(intake.handle_batch([Received(Inbound(topic, 0, 0, b"k", value, ms, {}))]))
    [(_, _, _, forwarded, _)] = [raw for short, raw in out.sent if short == "internal.accepted"]
    assert forwarded == value and codec.kept == 1
    assert codec.decode(forwarded, trusted=True) == record
