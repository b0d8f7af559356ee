"""Lost table stores rebuilt in bulk from their changelogs, before faust starts.

faust rebuilds a lost RocksDB store by passing every changelog record through its recovery loop one at a time
(a queue hop, a per-record check of every partition's remaining offsets, asyncio churn): about 3,000 records/s,
so a million chronologies take five minutes. This module does the same rebuild the way a bulk loader would: a
plain aiokafka consumer (no group) fetches each lost partition's changelog in large batches and writes it into
the partition's store with RocksDB write batches (no write-ahead log; flushed at the end), in exactly faust's
layout (the changelog's raw key and value bytes; a tombstone deletes), then records the last offset read under
faust's own `Store.offset_key`. faust opens the store as one it kept, and replays only what came after.

A store counts as lost when its directory is missing or holds no persisted offset (a rebuild that was cut short
leaves none: the offset is written last, after a flush), and its changelog partition is not empty. A store that
kept its offset is never touched. Every partition of every table is checked, not only those this worker will be
assigned (the assignment is not known before the worker joins its group): with several workers on fresh disks,
each rebuilds the whole state once, which also leaves it a warm copy of the partitions it may take over.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from broker.errors import TransportError
from broker.logs import get_logger
from schemas.kafka_auth import KafkaAuth

__all__ = ["Restored", "Store", "lost", "restore", "stores"]

log = get_logger("restore")
_FETCH_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class Store:
    """One partition's RocksDB store: where it lives, which changelog partition holds it, how faust opens it."""

    path: Path
    tp: TopicPartition
    opener: Any  # faust's RocksDBOptions of the table: `open(path)` gives the store as faust opens it
    offset_key: bytes

    def kept(self) -> bool:
        """Whether the store exists and holds faust's persisted changelog offset."""
        if not self.path.exists():
            return False
        db = self.opener.open(self.path)
        try:
            return db.get(self.offset_key) is not None
        finally:
            db.close()


@dataclass(frozen=True)
class Restored:
    """What a bulk rebuild did."""

    partitions: int
    records: int
    seconds: float


def stores(tables: Iterable[Any]) -> list[Store]:
    """Every partition's store of every table kept in RocksDB (memory:// tables are replayed on every start
    anyway). Call it outside any running event loop: the first access of `table.data` makes faust's store
    service, which keeps the loop current at that moment."""
    found: list[Store] = []
    for table in tables:
        store = table.data
        if not hasattr(store, "partition_path") or not hasattr(store, "rocksdb_options"):
            continue
        topic = table.changelog_topic.get_topic_name()
        found.extend(Store(Path(store.partition_path(p)), TopicPartition(topic, p), store.rocksdb_options,
                           store.offset_key) for p in range(table.partitions))
    return found


def lost(candidates: Iterable[Store], ends: Mapping[TopicPartition, int]) -> list[Store]:
    """The stores that are lost (no persisted offset) and whose changelog (end offsets `ends`) is not empty."""
    return [s for s in candidates if ends.get(s.tp, 0) > 0 and not s.kept()]


async def _ends(consumer: AIOKafkaConsumer, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
    """End offsets of the partitions whose topic exists (a first start has no changelog topics yet)."""
    topics = await consumer.topics()
    present = [tp for tp in tps if tp.topic in topics]
    return dict(await consumer.end_offsets(present)) if present else {}


class _Target:
    """One lost store being rebuilt: its database, open without a write-ahead log."""

    def __init__(self, store: Store) -> None:
        import rocksdict

        shutil.rmtree(store.path, ignore_errors=True)  # a cut-short rebuild: start again from nothing
        store.path.parent.mkdir(parents=True, exist_ok=True)
        self.store = store
        self.db = store.opener.open(store.path)
        no_wal = rocksdict.WriteOptions()
        no_wal.disable_wal = True  # type: ignore[method-assign,assignment]  # a property; the stub says method
        self.db.set_write_options(no_wal)
        self._batch = rocksdict.WriteBatch

    def apply(self, records: list[Any]) -> None:
        batch = self._batch(raw_mode=True)
        for r in records:
            if r.value is None:
                batch.delete(r.key)
            else:
                batch.put(r.key, r.value)
        self.db.write(batch)

    def finish(self, end: int) -> None:
        """Flush the data, then record the last offset read, `end` - 1 (so a store cut short has none)."""
        self.db.flush()
        self.db.put(self.store.offset_key, str(end - 1).encode())
        self.db.flush()

    def close(self) -> None:
        """Close the database (idempotent); a store closed before `finish` holds no offset."""
        if self.db is not None:
            self.db.close()
            self.db = None


async def _fetch_into(consumer: AIOKafkaConsumer, targets: dict[TopicPartition, _Target],
                      ends: Mapping[TopicPartition, int]) -> int:
    records = 0
    remaining = {tp for tp in targets if ends[tp] > 0}
    last_report = time.monotonic()
    while remaining:
        fetched = await consumer.getmany(*remaining, timeout_ms=1000, max_records=20000)
        for tp, batch in fetched.items():
            if batch:
                targets[tp].apply(batch)
                records += len(batch)
        remaining = {tp for tp in remaining if await consumer.position(tp) < ends[tp]}
        if time.monotonic() - last_report > 5:
            last_report = time.monotonic()
            log.info("rebuilding lost table stores", records=records, partitions_left=len(remaining))
    return records


async def restore(candidates: Iterable[Store], bootstrap: str, auth: KafkaAuth | None = None) -> Restored:
    """Rebuild every lost store among `candidates` (see `stores`) from its changelog; returns what was done."""
    candidates = list(candidates)
    started = time.monotonic()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None,
                                max_partition_fetch_bytes=_FETCH_BYTES, fetch_max_bytes=4 * _FETCH_BYTES,
                                **(auth or KafkaAuth()).aiokafka())
    try:
        await consumer.start()
    except Exception as exc:
        raise TransportError(f"table restore: cannot reach Kafka ({type(exc).__name__})") from exc
    try:
        ends = await _ends(consumer, [c.tp for c in candidates])
        missing = lost(candidates, ends)
        if not missing:
            return Restored(0, 0, time.monotonic() - started)
        targets: dict[TopicPartition, _Target] = {}
        try:
            for x in missing:
                targets[x.tp] = _Target(x)
            consumer.assign(list(targets))
            await consumer.seek_to_beginning(*targets)
            records = await _fetch_into(consumer, targets, ends)
            for tp, target in targets.items():
                target.finish(ends[tp])
        finally:
            for target in targets.values():
                target.close()
    finally:
        await consumer.stop()
    done = Restored(len(missing), records, time.monotonic() - started)
    log.info("lost table stores rebuilt from their changelogs", partitions=done.partitions, records=done.records,
             seconds=round(done.seconds, 1))
    return done
