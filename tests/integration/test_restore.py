"""Lost table stores rebuilt in bulk from their changelogs on the real broker (broker.restore), in faust's own
store layout: latest value per key, tombstones deleted, faust's persisted offset at the changelog's end; stores
that kept their offset are left alone, a rebuild cut short is done again; and a worker process that lost its
store rebuilds it so and still drops what it already accepted."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import TopicPartition

from benchmarks.crash import publish, routed
from broker import casebook
from broker.app import create_app
from broker.restore import Store, restore, stores
from broker.settings import Settings
from producers.simulator import simulate_night
from schemas.models import AuditRecord
from tests.integration.conftest import WorkerProcess, delete_topics, fresh_settings, read_decoded

pytestmark = pytest.mark.integration

PARTITIONS = 6


@pytest.fixture()
def own(kafka: str, tmp_path: Path) -> Iterator[Settings]:
    """A prefix of its own (its topics deleted afterwards)."""
    s = fresh_settings(kafka, tmp_path / "worker", "r")
    yield s
    asyncio.run(delete_topics(s))


async def _seed(s: Settings, table: Any) -> dict[tuple[int, bytes], bytes | None]:
    """Create the table's changelog and write keys to partitions 1 and 4: 40 keys each, then key 0 overwritten
    and key 1 deleted (a tombstone). Returns the expected final value per (partition, raw key)."""
    name = table.changelog_topic.get_topic_name()
    admin = AIOKafkaAdminClient(bootstrap_servers=s.kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, PARTITIONS, 1, topic_configs={"cleanup.policy": "compact"})])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=s.kafka_bootstrap, acks="all")
    await producer.start()
    expected: dict[tuple[int, bytes], bytes | None] = {}

    async def put(partition: int, key: str, value: Any) -> None:
        k, _ = table.changelog_topic.prepare_key(key, table.key_serializer)
        v = None if value is None else table.changelog_topic.prepare_value(value, table.value_serializer)[0]
        await producer.send_and_wait(name, key=k, value=v, partition=partition)
        expected[(partition, k)] = v

    try:
        for partition in (1, 4):
            for i in range(40):
                await put(partition, f"E06000051|dem:{partition}-{i}", {"entries": [i], "partition": partition})
            await put(partition, f"E06000051|dem:{partition}-0", {"entries": ["overwritten"]})
            await put(partition, f"E06000051|dem:{partition}-1", None)
    finally:
        await producer.stop()
    return expected


def _contents(store: Store) -> tuple[dict[bytes, bytes], bytes | None]:
    """Every key of a store but faust's offset key, and the offset it holds."""
    db = store.opener.open(store.path)
    try:
        items = {bytes(k): bytes(v) for k, v in db.items() if bytes(k) != store.offset_key}
        return items, db.get(store.offset_key)
    finally:
        db.close()


def test_lost_stores_are_rebuilt_in_faust_layout_and_kept_ones_left_alone(own: Settings) -> None:
    """Only the two partitions with changelog records are rebuilt; each holds exactly the latest value per key
    (the tombstoned key absent) and faust's persisted offset = the changelog's end - 1, read back through
    faust's own store; a second start rebuilds nothing; a store whose offset is gone is rebuilt from nothing."""
    app = create_app(own)
    table = app.tables[casebook.PEOPLE]
    expected = asyncio.run(_seed(own, table))
    candidates = stores(app.tables.values())
    mine = {c.tp.partition: c for c in candidates if c.tp.topic == table.changelog_topic.get_topic_name()}
    assert sorted(mine) == list(range(PARTITIONS))

    done = asyncio.run(restore(candidates, own.kafka_bootstrap))
    assert (done.partitions, done.records) == (2, 2 * 42)
    for partition in (1, 4):
        items, offset = _contents(mine[partition])
        want = {k: v for (p, k), v in expected.items() if p == partition and v is not None}
        assert items == want and len(items) == 39
        assert offset == b"41"
    assert not mine[0].path.exists(), "an empty changelog partition makes no store"

    assert asyncio.run(restore(candidates, own.kafka_bootstrap)).partitions == 0

    db = mine[4].opener.open(mine[4].path)  # a rebuild cut short: no offset, a stray key
    db.delete(mine[4].offset_key)
    db.put(b"stray", b"left behind")
    db.close()
    again = asyncio.run(restore(candidates, own.kafka_bootstrap))
    assert (again.partitions, again.records) == (1, 42)
    items, offset = _contents(mine[4])
    assert b"stray" not in items and len(items) == 39 and offset == b"41"
    for partition in (1, 4):  # last: faust's own store keeps what it opens
        assert table.data.persisted_offset(TopicPartition(mine[partition].tp.topic, partition)) == 41


def _ready_count(log: Path) -> int:
    return log.read_bytes().count(b"worker ready:")


async def _audit_events(s: Settings, ids: set[object]) -> Counter[str]:
    got = await read_decoded(s, "audit")
    return Counter(r.event.value for _, r in got if isinstance(r, AuditRecord) and r.notification_id in ids)


def test_a_worker_that_lost_its_store_rebuilds_it_in_bulk_and_still_knows_what_it_saw(own: Settings,
                                                                                       tmp_path: Path) -> None:
    """A worker routes 30 notifications, stops and loses its whole store; started again, it rebuilds the store in
    bulk before faust starts (its log says so), and the same 30 sent again are all dropped as duplicates (the
    rebuilt intake table remembers them): no second acceptance."""
    records = simulate_night(datetime.now(UTC).replace(microsecond=0) - timedelta(days=2), 41, 30)
    ids = {r.envelope.notification_id for r in records}  # type: ignore[attr-defined]
    log = tmp_path / "worker.log"
    worker = WorkerProcess(own, log)
    worker.start()
    try:
        _wait(lambda: _ready_count(log) >= 1, 120)
        asyncio.run(publish(own, records))
        _wait(lambda: ids <= asyncio.run(routed(own)), 120)
        worker.stop()
        shutil.rmtree(Path(own.worker_data_dir) / own.topic_prefix)
        worker.start()
        _wait(lambda: _ready_count(log) >= 2, 120)
        text = log.read_bytes().decode(errors="replace")
        assert "lost table stores rebuilt from their changelogs" in text
        asyncio.run(publish(own, records))
        _wait(lambda: asyncio.run(_audit_events(own, ids))["DUPLICATE_DROPPED"] >= len(ids), 120)
        assert asyncio.run(_audit_events(own, ids))["ACCEPTED"] == len(ids)
    finally:
        worker.stop()


def _wait(condition: Callable[[], bool], timeout: float) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"not reached within {timeout:.0f} s")
        time.sleep(1.0)
