"""The raw ceiling: a plain aiokafka consume -> produce pass-through on the same broker, with the worker's
delivery discipline and none of its work.

Two fresh topics of 6 partitions; `count` records of ~600 bytes are loaded into the first (idempotent acks=all
producer), then one consumer (a consumer group, no auto-commit) takes batches, produces every record to the
second topic with an idempotent acks=all producer, awaits the acknowledgements, then commits the batch: the
at-least-once loop of the worker. Records/s is counted from the first record fetched to the last
acknowledgement. The process's CPU time is measured over each phase too: per record produced (the load, values
made beforehand, a send per record), per record sent by the worker's own outlet through aiokafka's batch API
(`BATCH` records a call over the 6 partitions, into the second topic), per record consumed (the loaded
records read again by a group of their own, a commit a batch) and per record moved (consume -> produce -> ack ->
commit): what a bare client spends on a record whatever else the machine does
(`benchmarks.floor` charges it to the pipeline's records). The topics are deleted
afterwards.

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

from broker.outlet import KafkaOutlet
from broker.settings import Settings
from schemas.codec import Codec
from schemas.registry import InMemoryRegistry

__all__ = ["RawResult", "run_raw"]

PARTITIONS = 6
RECORD_BYTES = 600
BATCH = 500  # records a round trip in the batch-API phase


@dataclass(frozen=True)
class RawResult:
    """The pass-through's numbers."""

    count: int
    load_per_s: float  # records/s loaded by the producer alone
    records_per_s: float  # records/s through consume -> produce -> ack -> commit
    seconds: float
    produce_cpu_us: float = float("nan")  # CPU per record produced by the load (the producer alone)
    pass_cpu_us: float = float("nan")  # CPU per record through the pass-through (consumed and produced)
    batch_cpu_us: float = float("nan")  # CPU per record produced through the batch API, BATCH a round trip
    consume_cpu_us: float = float("nan")  # CPU per record consumed (getmany, a commit a batch)

    def lines(self) -> list[str]:
        """The result as printable lines."""
        return [f"raw ceiling: aiokafka consume->produce pass-through, {self.count} records of {RECORD_BYTES} B, "
                f"{PARTITIONS} partitions, acks=all, idempotent: {self.records_per_s:,.0f} records/s "
                f"({self.seconds:.1f} s; producer alone loaded {self.load_per_s:,.0f} records/s)",
                f"  client CPU: {self.produce_cpu_us:.1f} us per record produced (a send each), "
                f"{self.batch_cpu_us:.1f} us through the batch API ({BATCH} a round trip), "
                f"{self.consume_cpu_us:.1f} us per record consumed, {self.pass_cpu_us:.1f} us per record moved"]


def _producer(bootstrap: str) -> AIOKafkaProducer:
    return AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5,
                            max_batch_size=512 * 1024)


def _records(count: int) -> list[tuple[bytes, bytes]]:
    """`count` (key, value) pairs of random bytes, made before any clock starts."""
    return [(uuid.uuid4().bytes, os.urandom(RECORD_BYTES)) for _ in range(count)]


async def _load(bootstrap: str, topic: str, count: int) -> tuple[float, float]:
    """Records/s and CPU us per record of the producer alone."""
    producer = _producer(bootstrap)
    await producer.start()
    try:
        records = _records(count)
        t0, c0 = time.monotonic(), time.process_time()
        pending = [await producer.send(topic, key=key, value=value) for key, value in records]
        await asyncio.gather(*pending)
        return count / (time.monotonic() - t0), (time.process_time() - c0) * 1e6 / count
    finally:
        await producer.stop()


async def _batched(bootstrap: str, topic: str, count: int) -> float:
    """CPU us per record sent by the worker's own outlet (`KafkaOutlet.send_raw`: one batch per partition through
    aiokafka's batch API, every acknowledgement awaited), BATCH records a call."""
    records = [(topic, i % PARTITIONS, key, value, []) for i, (key, value) in enumerate(_records(count))]
    async with KafkaOutlet(bootstrap, {}, {}, Codec(InMemoryRegistry())) as outlet:
        c0 = time.process_time()
        for start in range(0, count, BATCH):
            await outlet.send_raw(records[start:start + BATCH])
        return (time.process_time() - c0) * 1e6 / count


async def _consume(bootstrap: str, topic: str, count: int) -> float:
    """CPU us per record of a consumer alone: `count` records read in batches by a group of its own, each batch
    committed."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=f"{topic}-read",
                                enable_auto_commit=False, auto_offset_reset="earliest", max_poll_records=BATCH)
    await consumer.start()
    try:
        read, c0 = 0, 0.0
        while read < count:
            batch = await consumer.getmany(timeout_ms=1000, max_records=BATCH)
            if batch and not read:
                c0 = time.process_time()  # from the first batch: joining the group is not a record's cost
            read += sum(len(records) for records in batch.values())
            if batch:
                await consumer.commit()
        return (time.process_time() - c0) * 1e6 / read
    finally:
        await consumer.stop()


async def _pass_through(bootstrap: str, source: str, sink: str, count: int,
                        progress: Callable[[str], None]) -> tuple[float, float]:
    """Seconds from the first record fetched to the last committed, and CPU us per record moved."""
    consumer = AIOKafkaConsumer(source, bootstrap_servers=bootstrap, group_id=f"{source}-raw",
                                enable_auto_commit=False, auto_offset_reset="earliest", max_poll_records=500)
    producer = _producer(bootstrap)
    await consumer.start()
    await producer.start()
    try:
        moved, started, last_note, cpu0 = 0, 0.0, time.monotonic(), 0.0
        while moved < count:
            batch = await consumer.getmany(timeout_ms=1000, max_records=500)
            if not batch:
                continue
            if not started:
                started, cpu0 = time.monotonic(), time.process_time()
            pending = [await producer.send(sink, key=r.key, value=r.value) for rs in batch.values() for r in rs]
            await asyncio.gather(*pending)
            await consumer.commit()
            moved += len(pending)
            if time.monotonic() - last_note > 2:
                last_note = time.monotonic()
                progress(f"raw pass-through: {moved:,}/{count:,} records")
        return time.monotonic() - started, (time.process_time() - cpu0) * 1e6 / moved
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
        load_rate, produce_us = await _load(settings.kafka_bootstrap, source, count)
        batch_us = await _batched(settings.kafka_bootstrap, sink, count)
        consume_us = await _consume(settings.kafka_bootstrap, source, count)
        seconds, pass_us = await _pass_through(settings.kafka_bootstrap, source, sink, count, progress)
        return RawResult(count, load_rate, count / seconds, seconds, produce_us, pass_us, batch_us, consume_us)
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
