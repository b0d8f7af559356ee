"""Read topics back from the beginning up to their current end (for summaries, tests and operations)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition

from schemas.codec import Codec
from schemas.models import Record

__all__ = ["Consumed", "read_topics"]


@dataclass(frozen=True)
class Consumed:
    """One record read back."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int

    def decode(self, codec: Codec) -> Record:
        """The decoded record."""
        return codec.decode(self.value)


async def read_topics(bootstrap: str, topics: Iterable[str], *, timeout_s: float = 30.0) -> list[Consumed]:
    """Every record currently on the topics (no consumer group, nothing committed)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    await consumer.start()
    out: list[Consumed] = []
    try:
        tps = []
        for topic in topics:
            parts = consumer.partitions_for_topic(topic)
            if parts is None:
                await consumer._client.force_metadata_update()
                parts = consumer.partitions_for_topic(topic) or set()
            tps.extend(TopicPartition(topic, p) for p in sorted(parts))
        if not tps:
            return out
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        await consumer.seek_to_beginning(*tps)
        remaining = {tp for tp in tps if ends[tp] > 0}
        for tp in tps:
            if ends[tp] == 0:
                consumer.pause(tp)
        while remaining:
            batch = await consumer.getmany(timeout_ms=int(timeout_s * 1000))
            if not batch:
                break
            for tp, records in batch.items():
                for r in records:
                    if r.offset < ends[tp]:
                        out.append(Consumed(r.topic, r.partition, r.offset, r.key, r.value, r.timestamp))
                if records and records[-1].offset >= ends[tp] - 1:
                    remaining.discard(tp)
                    consumer.pause(tp)
    finally:
        await consumer.stop()
    return out
