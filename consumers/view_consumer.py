"""The view consumer: route.encompass (notices, recalls) and feedback.acknowledgements into the database.

A consumer group with manual commits: a batch is applied in one database transaction, then its offsets are
committed, so a crash in between only re-applies records, which changes nothing (the view is idempotent).
`rebuild` empties the rebuildable tables and re-reads the topics from their start.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import OffsetAndMetadata
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from broker.logs import get_logger
from broker.reader import Consumed, read_topics
from broker.topics import catalogue
from consumers import authority_view, ops_view
from consumers.codec import RecordCodec, decode
from consumers.database import Database
from consumers.encompass_view import apply_record
from consumers.tables import EncompassAck, EncompassNotice, ViewSkip
from schemas.kafka_auth import KafkaAuth
from schemas.models import Record

__all__ = ["ViewConsumer", "apply_batch", "decode_all", "rebuild_views", "view_topics"]

log = get_logger("consumers.views")


def view_topics(prefix: str) -> list[str]:
    """The topics the views are built from (the school feed's, then the local authority's route topics)."""
    cat = catalogue(prefix)
    return [cat.name("route.encompass"), cat.name("feedback.acknowledgements"),
            *authority_view.authority_topics(prefix), *ops_view.ops_topics(prefix)]


def _skip(session: Session, rec: Consumed, reason: str) -> None:
    log.error("view.skipped", topic=rec.topic, partition=rec.partition, offset=rec.offset, reason=reason)
    try:
        with session.begin_nested():
            session.add(ViewSkip(topic=rec.topic, partition=rec.partition, offset=rec.offset, reason=reason[:200],
                                 at=datetime.now(UTC)))
    except IntegrityError:
        pass


Decoded = tuple[Consumed, Record | str]


async def decode_all(codec: RecordCodec, records: Iterable[Consumed]) -> list[Decoded]:
    """Each record decoded, or the reason it could not be (its error's type: a codec error names no value)."""
    out: list[Decoded] = []
    for rec in records:
        try:
            out.append((rec, await decode(codec, rec.value)))
        except Exception as exc:
            out.append((rec, f"undecodable: {type(exc).__name__}"))
    return out


def apply_batch(db: Database, decoded: Iterable[Decoded]) -> int:
    """Apply decoded records in one transaction; undecodable ones are recorded by coordinates."""
    count = 0
    with db.session() as s, s.begin():
        for rec, record in decoded:
            if isinstance(record, str):
                _skip(s, rec, record)
                continue
            received = datetime.fromtimestamp(rec.timestamp_ms / 1000, UTC)
            apply_record(s, record, received)
            authority_view.apply_record(s, record, received)
            ops_view.apply_record(s, record, received)
            count += 1
    return count


async def rebuild_views(db: Database, codec: RecordCodec, bootstrap: str, topics: list[str],
                        registry_url: str | None = None, auth: KafkaAuth | None = None) -> int:
    """Empty the rebuildable tables and re-read the topics from their start to their current end."""
    records = await read_topics(bootstrap, topics, registry_url=registry_url, auth=auth)
    records.sort(key=lambda r: (r.timestamp_ms, r.topic, r.partition, r.offset))
    with db.session() as s, s.begin():
        s.execute(delete(EncompassNotice))
        s.execute(delete(EncompassAck).where(EncompassAck.account_id.is_(None)))
        authority_view.empty_rebuildable(s)
        ops_view.empty_rebuildable(s)
    return await asyncio.to_thread(apply_batch, db, await decode_all(codec, records))


def _consumed(r: object) -> Consumed:
    return Consumed(r.topic, r.partition, r.offset, r.key, r.value, r.timestamp)  # type: ignore[attr-defined]


class ViewConsumer:
    """Keeps the views up to date from a consumer group (at least once, manual commits)."""

    def __init__(self, db: Database, codec: RecordCodec, bootstrap: str, topics: list[str], group_id: str,
                 auth: KafkaAuth | None = None) -> None:
        self.db = db
        self.codec = codec
        self.consumer = AIOKafkaConsumer(
            *topics, bootstrap_servers=bootstrap, group_id=group_id, enable_auto_commit=False,
            auto_offset_reset="earliest", isolation_level="read_committed", **(auth or KafkaAuth()).aiokafka(),
        )
        self.applied = 0

    async def start(self) -> None:
        """Join the group."""
        await self.consumer.start()

    async def stop(self) -> None:
        """Leave the group (offsets were committed after each batch)."""
        await self.consumer.stop()

    async def poll_once(self, timeout_ms: int = 1000) -> int:
        """Fetch a batch, apply it, commit it; returns how many records it held."""
        batch = await self.consumer.getmany(timeout_ms=timeout_ms, max_records=500)
        records = [_consumed(r) for rs in batch.values() for r in rs]
        if not records:
            return 0
        decoded = await decode_all(self.codec, records)
        self.applied += await asyncio.to_thread(apply_batch, self.db, decoded)
        offsets = {tp: OffsetAndMetadata(rs[-1].offset + 1, "") for tp, rs in batch.items() if rs}
        await self.consumer.commit(offsets)
        log.info("view.batch", records=len(records), partitions=len(offsets))
        return len(records)

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until `stop` is set; a failed commit is logged (the batch will be re-applied, harmlessly)."""
        while not stop.is_set():
            try:
                await self.poll_once()
            except Exception as exc:  # keep consuming: nothing is committed past an unapplied batch
                log.warning("view.retry", error=type(exc).__name__)
                await asyncio.sleep(1.0)

    async def lag(self) -> int:
        """Records on the assigned partitions not yet consumed."""
        tps: set[TopicPartition] = self.consumer.assignment()
        if not tps:
            return -1
        ends = await self.consumer.end_offsets(list(tps))
        total = 0
        for tp in tps:
            total += max(0, int(ends[tp]) - int(await self.consumer.position(tp)))
        return total
