"""Read topics back from the beginning up to their current end (for summaries, tests and operations)."""

from __future__ import annotations

import asyncio
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
    # auto_offset_reset=earliest: the fetcher's own first reset must agree with the explicit seeks below
    # (with "latest" its reset can land after a seek and silently skip everything).
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    out: list[Consumed] = []
    try:
        metadata = await consumer._client.fetch_all_metadata()  # partitions of topics not yet assigned
        tps = [
            TopicPartition(topic, p) for topic in topics for p in sorted(metadata.partitions_for_topic(topic) or ())
        ]
        if not tps:
            return out
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        starts = await consumer.beginning_offsets(tps)
        for tp in tps:
            consumer.seek(tp, starts[tp])
        remaining = {tp for tp in tps if ends[tp] > starts[tp]}
        for tp in tps:
            if ends[tp] <= starts[tp]:
                consumer.pause(tp)
        loop = asyncio.get_running_loop()
        give_up = loop.time() + timeout_s
        while remaining and loop.time() < give_up:
            batch = await consumer.getmany(timeout_ms=500)
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
