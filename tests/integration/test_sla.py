"""The SLA tracker stage on the real broker and registry, before it is wired into the worker process.

What is real: the topics (route topics, feedback.acknowledgements, sla.events, audit), the records produced to
them and consumed back (Confluent wire format, schemas from the registry), and the product's `KafkaOutlet`
(idempotent, acks=all) through which the stage sends. What stands in: the state writer. The worker gives the
stage faust tables (`broker.outlet.DurableTables`); here `ChangelogState` sends every table write to a
compacted topic and awaits the broker's acknowledgement before applying it, and a "restart" rebuilds the tables
from that topic alone, as a wiped faust store would. Once the stage is wired into the worker, the same scenarios
belong in the worker-process tests (see the report of issue 9).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from broker.outlet import Inbound, KafkaOutlet, RawRecord
from broker.reader import read_topics
from broker.settings import Settings
from broker.sla_stage import ACK_TOPIC, EVENTS_TOPIC, INPUT_TOPICS, TABLES, SlaStage
from broker.topics import ROUTE_TOPICS, catalogue
from schemas.codec import Codec, codec_for
from schemas.models import AuditEvent, AuditRecord, Record, Route, SlaEvent, SlaState
from tests.broker.test_sla import OTHER_URN, URN, notice, school_ack
from tests.integration.conftest import delete_topics, fresh_settings, read_decoded

pytestmark = pytest.mark.integration

SHORTS = (*INPUT_TOPICS, EVENTS_TOPIC, "audit", "deadletter")


class ChangelogState:
    """A `StateWriter`: dict tables, each write first acknowledged on a compacted topic (see the module docstring)."""

    def __init__(self, outlet: KafkaOutlet, topic: str) -> None:
        self.outlet, self.topic = outlet, topic
        self.tables: dict[str, dict[str, Any]] = {name: {} for name in TABLES}

    def view(self) -> Mapping[str, Mapping[str, Any]]:
        """The tables."""
        return self.tables

    async def write(self, groups: Iterable[tuple[int, Iterable[tuple[str, str, Any]], Any]]) -> None:
        """Send every write to the changelog, await the acknowledgements, then apply them."""
        raw: list[RawRecord] = []
        applied = []
        for partition, writes, _ in groups:
            for name, key, value in writes:
                raw.append((self.topic, partition, f"{name}|{key}".encode(), json.dumps(value).encode(), []))
                applied.append((name, key, value))
        if raw:
            await self.outlet.send_raw(raw)
        for name, key, value in applied:
            self.tables[name][key] = value

    async def restore(self, bootstrap: str) -> ChangelogState:
        """The tables as the changelog alone has them (a restart with a wiped store)."""
        self.tables = {name: {} for name in TABLES}
        for rec in sorted(await read_topics(bootstrap, [self.topic]), key=lambda r: (r.partition, r.offset)):
            name, key = (rec.key or b"").decode().split("|", 1)
            self.tables[name][key] = json.loads(rec.value or b"null")
        return self


@pytest.fixture(scope="module")
def sla_settings(kafka: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A fresh prefix with the catalogue applied and a compacted changelog topic for the tracker's state."""
    s = fresh_settings(kafka, tmp_path_factory.mktemp("sla"), "s")
    asyncio.run(_create_changelog(s))
    yield s
    asyncio.run(delete_topics(s))


def _changelog(s: Settings) -> str:
    return f"{s.topic_prefix}-sla-changelog"


async def _create_changelog(s: Settings) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=s.kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(_changelog(s), 6, 1, topic_configs={"cleanup.policy": "compact"})])
    finally:
        await admin.close()


@pytest.fixture(scope="module")
def fed() -> set[tuple[str, int, int]]:
    """Input records already fed to a tracker in this module (each is fed once, as a consumer group would)."""
    return set()


class Tracker:
    """The product's KafkaOutlet and codec on the real broker, and tracker stages over the changelog state."""

    def __init__(self, s: Settings, fed: set[tuple[str, int, int]]) -> None:
        self.s, self.fed = s, fed
        self.codec: Codec | None = None
        self.outlet: KafkaOutlet | None = None

    async def __aenter__(self) -> Tracker:
        cat = catalogue(self.s.topic_prefix)
        self.codec = await codec_for(self.s.registry_url, {cat.name(x): cat.spec(x).records for x in SHORTS})
        self.outlet = KafkaOutlet(self.s.kafka_bootstrap, {x: cat.name(x) for x in SHORTS},
                                  {x: cat.spec(x).partitions for x in SHORTS}, self.codec)
        await self.outlet.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self.outlet is not None and self.codec is not None
        await self.outlet.stop()
        await self.codec.aclose()

    async def start(self) -> SlaStage:
        """A tracker (re)started: its tables rebuilt from the changelog topic alone."""
        assert self.outlet is not None and self.codec is not None
        state = await ChangelogState(self.outlet, _changelog(self.s)).restore(self.s.kafka_bootstrap)
        return SlaStage(codec=self.codec, outlet=self.outlet, state=state)

    async def publish(self, *records: Record) -> None:
        """Produce as the router and the school pages do, keyed by the school's URN."""
        assert self.outlet is not None
        sends: list[Any] = [(ROUTE_TOPICS[Route.ENCOMPASS] if hasattr(r, "due") else ACK_TOPIC,
                             getattr(r, "school_urn", None), r, None, None) for r in records]
        await self.outlet.send_all(sends)

    async def feed(self, stage: SlaStage) -> None:
        """Every input record not fed yet, read back from Kafka, through the stage (per partition in offset
        order; route topics before acknowledgements)."""
        cat = catalogue(self.s.topic_prefix)
        consumed = await read_topics(self.s.kafka_bootstrap, [cat.name(x) for x in INPUT_TOPICS],
                                     registry_url=self.s.registry_url)
        fresh = [r for r in consumed if (r.topic, r.partition, r.offset) not in self.fed]
        for r in sorted(fresh, key=lambda r: (r.topic.endswith(ACK_TOPIC), r.partition, r.offset)):
            await stage.handle(Inbound(r.topic, r.partition, r.offset, r.key, r.value, r.timestamp_ms, {}))
            self.fed.add((r.topic, r.partition, r.offset))


async def _events(s: Settings, output_id: object) -> list[tuple[SlaState, datetime]]:
    got = await read_decoded(s, EVENTS_TOPIC)
    return [(r.state, r.at) for _, r in got if isinstance(r, SlaEvent) and r.output_id == output_id]


@pytest.fixture
def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


async def test_acknowledged_in_time_gives_started_then_met(sla_settings: Settings, fed: set[Any],
                                                           _now: datetime) -> None:
    """A notice and the school's acknowledgement, both through Kafka: STARTED then MET on sla.events."""
    async with Tracker(sla_settings, fed) as t:
        n = notice("it-met", due=_now + timedelta(hours=6))
        await t.publish(n, school_ack(n.notice_id, _now + timedelta(minutes=5)))
        await t.feed(await t.start())
        assert [st for st, _ in await _events(sla_settings, n.notice_id)] == [SlaState.STARTED, SlaState.MET]


async def test_never_acknowledged_gives_at_risk_then_breached(sla_settings: Settings, fed: set[Any],
                                                              _now: datetime) -> None:
    """No acknowledgement: ticks past the at-risk instant and the deadline give AT_RISK then BREACHED, once."""
    async with Tracker(sla_settings, fed) as t:
        n = notice("it-breach", due=_now + timedelta(hours=2))
        await t.publish(n)
        stage = await t.start()
        await t.feed(stage)
        for later in (timedelta(hours=1, minutes=45), timedelta(hours=3), timedelta(hours=4)):
            await stage.tick(_now + later, range(6))
        assert [st for st, _ in await _events(sla_settings, n.notice_id)] == [
            SlaState.STARTED, SlaState.AT_RISK, SlaState.BREACHED]


async def test_tracker_stopped_across_a_deadline_breaches_once_after_restart(sla_settings: Settings, fed: set[Any],
                                                                             _now: datetime) -> None:
    """The clock is recorded, the tracker stops; two restarts (tables rebuilt from the changelog topic) tick
    after the deadline: one BREACHED on sla.events."""
    async with Tracker(sla_settings, fed) as t:
        n = notice("it-restart", due=_now + timedelta(hours=1))
        await t.publish(n)
        await t.feed(await t.start())
        for minutes in (0, 1):
            await (await t.start()).tick(_now + timedelta(hours=5, minutes=minutes), range(6))
        states = [st for st, _ in await _events(sla_settings, n.notice_id)]
        assert states == [SlaState.STARTED, SlaState.AT_RISK, SlaState.BREACHED]


async def test_wrong_school_acknowledgement_is_refused(sla_settings: Settings, fed: set[Any],
                                                       _now: datetime) -> None:
    """Another school's acknowledgement never closes the notice's clock: audited (held in that school's
    partition, then ignored), and the clock breaches."""
    async with Tracker(sla_settings, fed) as t:
        n = notice("it-wrong", due=_now + timedelta(hours=1))
        await t.publish(n, school_ack(n.notice_id, _now + timedelta(minutes=5), urn=OTHER_URN))
        stage = await t.start()
        await t.feed(stage)
        await stage.tick(_now + timedelta(days=8), range(6))
        assert [st for st, _ in await _events(sla_settings, n.notice_id)] == [
            SlaState.STARTED, SlaState.AT_RISK, SlaState.BREACHED]
        audits = [r for _, r in await read_decoded(sla_settings, "audit")
                  if isinstance(r, AuditRecord) and r.event is AuditEvent.ACKNOWLEDGED and r.output_id == n.notice_id]
        assert len(audits) == 2 and all(a.recipient == OTHER_URN != URN for a in audits)
        assert not any("MET" in a.purpose for a in audits)
