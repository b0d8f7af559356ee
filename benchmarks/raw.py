"""The raw ceiling: a plain aiokafka consume -> produce pass-through on the same broker, with the worker's
delivery discipline and none of its work.

Two fresh topics of 6 partitions; `count` records of ~600 bytes are loaded into the first (idempotent acks=all
producer), then one consumer (a consumer group, no auto-commit) takes batches, produces every record to the
second topic with an idempotent acks=all producer, awaits the acknowledgements, then commits the batch: the
at-least-once loop of the worker. Records/s is counted from the first record fetched to the last
acknowledgement. The topics are deleted afterwards.

    .venv/bin/python -m benchmarks.raw [count]
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from broker.settings import Settings

__all__ = ["RawResult", "run_raw"]

PARTITIONS = 6
RECORD_BYTES = 600


@dataclass(frozen=True)
class RawResult:
    """The pass-through's numbers."""

    count: int
    load_per_s: float  # records/s loaded by the producer alone
    records_per_s: float  # records/s through consume -> produce -> ack -> commit
    seconds: float

    def lines(self) -> list[str]:
        """The result as printable lines."""
        return [f"raw ceiling: aiokafka consume->produce pass-through, {self.count} records of {RECORD_BYTES} B, "
                f"{PARTITIONS} partitions, acks=all, idempotent: {self.records_per_s:,.0f} records/s "
                f"({self.seconds:.1f} s; producer alone loaded {self.load_per_s:,.0f} records/s)"]


def _producer(bootstrap: str) -> AIOKafkaProducer:
    return AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5,
                            max_batch_size=512 * 1024)


async def _load(bootstrap: str, topic: str, count: int) -> float:
    producer = _producer(bootstrap)
    await producer.start()
    try:
        t0 = time.monotonic()
        pending = []
        for _ in range(count):
            key = uuid.uuid4().bytes
            pending.append(await producer.send(topic, key=key, value=os.urandom(RECORD_BYTES)))
        await asyncio.gather(*pending)
        return count / (time.monotonic() - t0)
    finally:
        await producer.stop()


async def _pass_through(bootstrap: str, source: str, sink: str, count: int,
                        progress: Callable[[str], None]) -> float:
    consumer = AIOKafkaConsumer(source, bootstrap_servers=bootstrap, group_id=f"{source}-raw",
                                enable_auto_commit=False, auto_offset_reset="earliest", max_poll_records=500)
    producer = _producer(bootstrap)
    await consumer.start()
    await producer.start()
    try:
        moved, started, last_note = 0, 0.0, time.monotonic()
        while moved < count:
            batch = await consumer.getmany(timeout_ms=1000, max_records=500)
            if not batch:
                continue
            if not started:
                started = time.monotonic()
            pending = [await producer.send(sink, key=r.key, value=r.value) for rs in batch.values() for r in rs]
            await asyncio.gather(*pending)
            await consumer.commit()
            moved += len(pending)
            if time.monotonic() - last_note > 2:
                last_note = time.monotonic()
                progress(f"raw pass-through: {moved:,}/{count:,} records")
        return time.monotonic() - started
    finally:
        await producer.stop()
        await consumer.stop()


async def run_raw(settings: Settings, count: int = 100_000,
                  progress: Callable[[str], None] = lambda _: None) -> RawResult:
    """Create the topics, load, pass through, delete; the pass-through's records/s."""
    name = f"bench-raw-{uuid.uuid4().hex[:6]}"
    source, sink = f"{name}.in", f"{name}.out"
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(t, PARTITIONS, 1) for t in (source, sink)])
        progress(f"raw: loading {count:,} records of {RECORD_BYTES} B")
        load_rate = await _load(settings.kafka_bootstrap, source, count)
        seconds = await _pass_through(settings.kafka_bootstrap, source, sink, count, progress)
        return RawResult(count, load_rate, count / seconds, seconds)
    finally:
        await admin.delete_topics([source, sink])
        await admin.close()


def main() -> None:
    """Print the raw ceiling."""
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    result = asyncio.run(run_raw(Settings(), count, lambda note: print(note, file=sys.stderr)))
    for line in result.lines():
        print(line)


if __name__ == "__main__":
    main()
