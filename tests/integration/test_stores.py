"""Every worker's table stores after a rebalance under load, on the real broker: each store that records a
changelog offset must come out right when a worker takes its partition over, because faust trusts that offset and
replays only what comes after it."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from benchmarks._harness import ROOT, delete_prefix
from benchmarks.pipeline import night, run_pipeline
from broker.app import create_app
from broker.restore import stores
from broker.settings import Settings

pytestmark = pytest.mark.integration


async def _changelog(bootstrap: str, tp: TopicPartition) -> list[Any]:
    """Every record of a changelog partition, in order."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign([tp])
        end = (await consumer.end_offsets([tp]))[tp]
        consumer.seek(tp, 0)
        records: list[Any] = []
        while await consumer.position(tp) < end:
            records += (await consumer.getmany(tp, timeout_ms=2000, max_records=5000)).get(tp, [])
        return records
    finally:
        await consumer.stop()


def _apply(state: dict[bytes, bytes], rec: Any) -> None:
    if rec.value is None:
        state.pop(rec.key, None)
    else:
        state[rec.key] = rec.value


def _diverged(s: Settings, changelogs: dict[TopicPartition, list[Any]]) -> list[str]:
    """Every kept store of a worker's data dir that would be wrong if the worker took its partition over now:
    faust replays the changelog after the store's persisted offset onto the store, so the store plus that replay
    must equal the changelog's latest state (a key the store lacks or holds an old value of, and that nothing
    after the offset rewrites, would stay wrong). `changelogs`: each partition's records, read once for both
    workers."""
    out = []
    for store in stores(create_app(s).tables.values()):
        if not store.path.exists():
            continue
        db: Any = store.opener.open(store.path)
        try:
            raw = db.get(store.offset_key)
            if raw is None:
                continue
            promoted = {k: v for k, v in db.items() if k != store.offset_key}
        finally:
            db.close()
        if store.tp not in changelogs:
            changelogs[store.tp] = asyncio.run(_changelog(s.kafka_bootstrap, store.tp))
        final: dict[bytes, bytes] = {}
        for rec in changelogs[store.tp]:
            _apply(final, rec)
            if rec.offset > int(raw):
                _apply(promoted, rec)
        wrong = [k for k in final.keys() | promoted.keys() if promoted.get(k) != final.get(k)]
        if wrong:
            missing = sum(1 for k in wrong if k not in promoted)
            out.append(f"{store.tp.topic}[{store.tp.partition}] at offset {int(raw)}: {len(wrong)} of {len(final)} "
                       f"keys wrong after the replay ({missing} missing)")
    return out


def test_no_store_skips_changelog_records_through_a_rebalance_under_load() -> None:
    """A second worker joins while the first routes: afterwards every store of either worker, replayed from its
    own offset as faust would on a takeover, equals its changelog (faust's standby stores skipped records they
    then claimed to hold, and came out hundreds of keys short)."""
    result = run_pipeline("stores", night(3000, 2024), workers=2, join_late=True, keep=True)
    base = ROOT / ".local" / "bench" / result.prefix
    try:
        assert result.checks.lost == 0
        diverged = []
        changelogs: dict[TopicPartition, list[Any]] = {}
        for worker in ("w1", "w2"):
            s = Settings(topic_prefix=result.prefix, worker_data_dir=str(base / worker))
            diverged += [f"{worker} {d}" for d in _diverged(s, changelogs)]
        assert diverged == []
    finally:
        asyncio.run(delete_prefix(Settings(topic_prefix=result.prefix)))
        shutil.rmtree(Path(base), ignore_errors=True)
