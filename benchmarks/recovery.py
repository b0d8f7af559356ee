"""Table store choice, measured: time for a restarted worker to be ready (changelog recovery) with the
RocksDB store (faust's rocksdb:// through rocksdict) and the in-memory store, after routing N notifications.

    .venv/bin/python -m benchmarks.recovery [count]
"""

from __future__ import annotations

import asyncio
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from benchmarks._harness import ROOT, fresh_settings, routed_notifications, start_worker, stop, wait_ready
from broker.run import last_night
from mash.night import publish_night


def measure(store: str, count: int) -> tuple[float, float]:
    """(cold start ready seconds, restart ready seconds) for one store."""
    settings = fresh_settings(store.split(":")[0], table_store=store)
    log = Path(ROOT / ".local" / f"{settings.topic_prefix}.log")
    worker = start_worker(settings, log)
    try:
        cold = wait_ready(log)
        asyncio.run(publish_night(settings, count=count, seed=77, start=last_night(datetime.now(UTC)).isoformat()))
        t0 = time.monotonic()
        while len(asyncio.run(routed_notifications(settings))) < count and time.monotonic() - t0 < 600:
            time.sleep(1)
    finally:
        stop(worker)
    time.sleep(12)  # let the group forget the stopped member, so only recovery is measured
    log2 = log.with_suffix(".restart.log")
    worker = start_worker(settings, log2)
    try:
        warm = wait_ready(log2)
    finally:
        stop(worker)
    return cold, warm


def main() -> None:
    """Run both stores and print the numbers."""
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    for store in ("rocksdb://", "memory://"):
        cold, warm = measure(store, count)
        print(f"{store:12} after {count} notifications: first start ready {cold:.1f}s, restart ready {warm:.1f}s")


if __name__ == "__main__":
    main()
