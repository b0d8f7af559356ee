"""The school feed on the real broker and registry: the view consumer builds the view from route.encompass
and feedback.acknowledgements (idempotent: a rebuild and a second group give the same rows), and the page's
acknowledgement sink puts an EncompassAcknowledgement on feedback.acknowledgements with acks=all."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import select

from broker.reader import read_topics
from broker.settings import Settings
from broker.topics import catalogue
from consumers.acknowledge import KafkaAckSink
from consumers.codec import RecordCodec, close, decode, encode, make_codec
from consumers.database import Database, migrate
from consumers.tables import EncompassAck, EncompassNotice
from consumers.view_consumer import ViewConsumer, rebuild_views
from schemas.models import EncompassAcknowledgement, Recall, Record
from schemas.models import EncompassNotice as NoticeRecord
from tests.consumers.conftest import SCHOOL_A, SCHOOL_B, notice, recall
from tests.integration.conftest import delete_topics, fresh_settings

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def feed_settings(kafka: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A fresh topic prefix for this module."""
    s = fresh_settings(kafka, tmp_path_factory.mktemp("feed"), "s")
    yield s
    asyncio.run(delete_topics(s))


def topics(s: Settings) -> dict[str, list[type[Record]]]:
    """The view's topics and the records on them."""
    cat = catalogue(s.topic_prefix)
    return {cat.name("route.encompass"): [NoticeRecord, Recall],
            cat.name("feedback.acknowledgements"): [EncompassAcknowledgement]}


@pytest.fixture
async def codec(feed_settings: Settings) -> AsyncIterator[RecordCodec]:
    """The product's codec for the view's topics."""
    c = await make_codec(feed_settings.registry_url, topics(feed_settings))
    yield c
    await close(c)


async def publish(s: Settings, codec: RecordCodec, short: str, *records: Record) -> None:
    """Send records to a topic as the worker does (keyed, acks=all)."""
    topic = catalogue(s.topic_prefix).name(short)
    producer = AIOKafkaProducer(bootstrap_servers=s.kafka_bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for r in records:
            await producer.send_and_wait(topic, encode(codec, r, topic), key=uuid.uuid4().bytes)
    finally:
        await producer.stop()


def new_db(tmp_path: Path, name: str) -> Database:
    """A migrated SQLite database."""
    url = f"sqlite:///{tmp_path}/{name}.db"
    migrate(url)
    return Database(url)


def snapshot(db: Database) -> list[tuple[Any, ...]]:
    """Notice rows and acknowledgements, comparable across databases."""
    with db.session() as s:
        notices = [(n.notice_id, n.school_urn, n.withdrawn, n.given_name, n.police_reference, n.due)
                   for n in s.scalars(select(EncompassNotice).order_by(EncompassNotice.notice_id))]
        acks = [(a.notice_id, a.school_urn) for a in s.scalars(select(EncompassAck).order_by(EncompassAck.notice_id))]
    return notices + acks


async def consume_all(s: Settings, codec: RecordCodec, db: Database, group: str, expected: int) -> None:
    """Run a view consumer group until it has applied `expected` records."""
    consumer = ViewConsumer(db, codec, s.kafka_bootstrap, list(topics(s)), group)
    await consumer.start()
    try:
        for _ in range(60):
            await consumer.poll_once(500)
            if consumer.applied >= expected:
                return
        raise AssertionError(f"applied {consumer.applied} of {expected}")
    finally:
        await consumer.stop()


async def test_view_from_the_topics_is_idempotent(feed_settings: Settings, codec: RecordCodec, tmp_path: Path) -> None:
    """Notices, a recall and an ack on the real topics: the consumer, a rebuild and a second group agree."""
    a1, a2, b1 = notice(), notice(given="Second"), notice(school=SCHOOL_B)
    await publish(feed_settings, codec, "route.encompass", a1, a2, b1, recall(a2))
    ack = EncompassAcknowledgement(notice_id=a1.notice_id, school_urn=SCHOOL_A, acknowledged=datetime.now(UTC))
    await publish(feed_settings, codec, "feedback.acknowledgements", ack)
    db = new_db(tmp_path, "one")
    await consume_all(feed_settings, codec, db, f"{feed_settings.topic_prefix}.views-1", 5)
    first = snapshot(db)
    assert len(first) == 4 and any(row[0] == str(a2.notice_id) and row[2] and row[3] is None for row in first)
    await rebuild_views(db, codec, feed_settings.kafka_bootstrap, list(topics(feed_settings)),
                        feed_settings.registry_url)
    assert snapshot(db) == first
    other = new_db(tmp_path, "two")
    await consume_all(feed_settings, codec, other, f"{feed_settings.topic_prefix}.views-2", 5)
    assert snapshot(other) == first


async def test_acknowledgement_sink_writes_to_the_topic(feed_settings: Settings, codec: RecordCodec) -> None:
    """KafkaAckSink.send returns once the acknowledgement is on feedback.acknowledgements."""
    topic = catalogue(feed_settings.topic_prefix).name("feedback.acknowledgements")

    async def factory() -> RecordCodec:
        return await make_codec(feed_settings.registry_url, {topic: [EncompassAcknowledgement]})

    sink = KafkaAckSink(feed_settings.kafka_bootstrap, topic, factory, 15.0)
    await sink.start()
    ack = EncompassAcknowledgement(notice_id=uuid.uuid4(), school_urn=SCHOOL_B, acknowledged=datetime.now(UTC))
    try:
        await sink.send(ack)
    finally:
        await sink.stop()
    records = [await decode(codec, r.value) for r in await read_topics(feed_settings.kafka_bootstrap, [topic])]
    assert ack in records
