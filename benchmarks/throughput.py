"""Throughput of one worker on the simulated mix, on the real broker: notifications per second from the
first produce to the last routed output, and per-notification latency (intake append -> first output).

    .venv/bin/python -m benchmarks.throughput [count]
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from benchmarks._harness import ROOT, fresh_settings, routed_notifications, start_worker, stop, wait_ready
from broker.reader import read_topics
from broker.run import last_night
from broker.topics import INTAKE_TOPICS, ROUTE_TOPICS, catalogue
from mash.night import publish_night
from schemas.codec import Codec
from schemas.registry import SchemaRegistry


async def latencies(settings, count: int) -> list[float]:  # type: ignore[no-untyped-def]
    """Milliseconds from each notification's intake append time to its first routed output."""
    cat = catalogue(settings.topic_prefix)
    codec = Codec(SchemaRegistry(settings.registry_url))
    intake = await read_topics(settings.kafka_bootstrap, [cat.name(t) for t in INTAKE_TOPICS.values()])
    appended = {(await codec.decode_async(r.value)).envelope.notification_id: r.timestamp_ms  # type: ignore[attr-defined]
                for r in intake}
    first: dict[object, int] = {}
    for r in await read_topics(settings.kafka_bootstrap, [cat.name(t) for t in ROUTE_TOPICS.values()]):
        nid = getattr(await codec.decode_async(r.value), "notification_id", None)
        if nid is None:  # cumulative-concern alerts cover several notifications
            continue
        first[nid] = min(first.get(nid, r.timestamp_ms), r.timestamp_ms)
    return [first[n] - appended[n] for n in first if n in appended]


def main() -> None:
    """Run the benchmark and print the numbers."""
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    settings = fresh_settings("tput")
    log = Path(ROOT / ".local" / f"{settings.topic_prefix}.log")
    worker = start_worker(settings, log)
    try:
        wait_ready(log)
        t0 = time.monotonic()
        asyncio.run(publish_night(settings, count=count, seed=2024, start=last_night(datetime.now(UTC)).isoformat()))
        produced = time.monotonic() - t0
        while len(asyncio.run(routed_notifications(settings))) < count:
            if time.monotonic() - t0 > 600:
                raise TimeoutError("not all notifications routed within 10 minutes")
            time.sleep(0.5)
        elapsed = time.monotonic() - t0
    finally:
        stop(worker)
    lat = sorted(asyncio.run(latencies(settings, count)))
    print(f"notifications: {count}  (simulated mix, one worker, single-node Kafka on loopback, 2 cores)")
    print(f"produce time: {produced:.1f}s  ({count / produced:.0f}/s through the SDK)")
    print(f"produce -> last routed output: {elapsed:.1f}s  => {count / elapsed:.1f} notifications/s")
    print(f"latency intake append -> first output: p50 {statistics.median(lat):.0f} ms, "
          f"p95 {lat[int(len(lat) * 0.95)]:.0f} ms, max {lat[-1]:.0f} ms")


if __name__ == "__main__":
    main()
