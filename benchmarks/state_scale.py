"""State at scale: how long a worker takes to be ready when its tables hold N child chronologies (default a
million), (a) after losing its local store (rebuilt from the changelog topics: in bulk by `broker.restore` before
faust starts, or by faust's own recovery with MASH_TABLE_BULK_RESTORE=false) and (b) after a restart that kept it.

The router's `people` changelog is filled directly, fast, in exactly the worker's format: real chronology values
are made by routing a simulated night through the real casebook in-process, then written under N distinct person
keys (`<authority>|dem:<hex>`, spread over the authorities' partitions as the router's keys are) with the key and
value encoding of the worker's own faust table (`table.changelog_topic.prepare_key/prepare_value`, as
`broker.outlet.DurableTables` writes them). A check then routes a notification through the worker and confirms
the recovered table answers for seeded keys (the count of keys the worker's store holds is printed from its log).

    .venv/bin/python -m benchmarks.state_scale [--people 1000000] [--no-append]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import re
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer

from benchmarks._harness import ROOT, delete_prefix, fresh_settings, start_worker, stop, wait_ready
from broker import casebook
from broker._deadlines import DefaultDeadlines
from broker.app import create_app
from broker.outlet import partition_of
from broker.reference import DEFAULT_SCHOOLS, load_schools
from broker.run import last_night
from broker.settings import Settings
from producers.simulator import simulate_night

__all__ = ["main"]

DOC = ROOT / "docs" / "benchmarks.md"
SECRET = b"state-scale-benchmark-secret"


def _sample_people(count: int = 2000) -> list[Any]:
    """Real `people` table values: a simulated night routed through the casebook (dict tables)."""
    tables: dict[str, dict[str, Any]] = {name: {} for name in casebook.TABLES}
    schools = load_schools(DEFAULT_SCHOOLS)
    now = datetime.now(UTC)
    for n in simulate_night(last_night(now), 99, count):
        step = casebook.on_notification(n, received=now, tables=tables, schools=schools, secret=SECRET,  # type: ignore[arg-type]
                                        deadlines=DefaultDeadlines())
        casebook.apply_writes(tables, step.writes)
    return [v for v in tables[casebook.PEOPLE].values() if isinstance(v, dict) and "root" not in v]


async def _seed(s: Settings, people: int) -> tuple[int, float, float]:
    """Write `people` chronologies into the people changelog; (records, MB, seconds)."""
    app = create_app(s)
    table = app.tables[casebook.PEOPLE]
    topic = table.changelog_topic
    name = topic.get_topic_name()
    samples = _sample_people()
    authorities = sorted({"E06000051", "E06000059", "E10000013"})
    producer = AIOKafkaProducer(bootstrap_servers=s.kafka_bootstrap, acks="all", linger_ms=20,
                                max_batch_size=1024 * 1024, compression_type=None)
    await producer.start()
    t0, size, pending = time.monotonic(), 0, []
    try:
        for i in range(people):
            authority = authorities[i % len(authorities)]
            key = f"{authority}|dem:{hashlib.sha256(str(i).encode()).hexdigest()}"
            k, _ = topic.prepare_key(key, table.key_serializer)
            v, _ = topic.prepare_value(samples[i % len(samples)], table.value_serializer)
            size += len(k) + len(v)
            pending.append(await producer.send(name, key=k, value=v, partition=partition_of(authority.encode(), 6)))
            if len(pending) >= 20000:
                await asyncio.gather(*pending)
                pending.clear()
                print(f"  seeded {i + 1:,}", flush=True)
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return people, size / 1e6, time.monotonic() - t0


def _ready(s: Settings, log: Path, data_dir: Path) -> float:
    proc = start_worker(s, log, data_dir=str(data_dir))
    try:
        return wait_ready(log, timeout=900, proc=proc)
    finally:
        stop(proc)


def _rebuilt(log: Path) -> str:
    """The worker's own account of its bulk rebuild (broker.restore's log line), or why there is none."""
    text = log.read_bytes().decode(errors="replace").replace("\r", "\n")
    found = re.search(r"table stores rebuilt from their changelogs.*?partitions=(\d+) records=(\d+) seconds=([\d.]+)",
                      text)
    if found is None:
        return "none logged (MASH_TABLE_BULK_RESTORE=false, or it failed: faust's recovery rebuilt the store)"
    partitions, records, seconds = int(found[1]), int(found[2]), float(found[3])
    return f"{records:,} records into {partitions} partition stores in {seconds:.1f} s ({records / seconds:,.0f}/s)"


def main(argv: list[str] | None = None) -> None:
    """Seed, then time a cold recovery and a warm restart."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--people", type=int, default=1_000_000, help="chronologies in the people table (1,000,000)")
    ap.add_argument("--no-append", action="store_true", help="do not append the result to docs/benchmarks.md")
    args = ap.parse_args(argv)
    s = fresh_settings("state")
    data_dir = ROOT / ".local" / "bench" / s.topic_prefix
    try:
        # the first start creates the changelog topics (and is timed with empty tables)
        empty = _ready(s, ROOT / ".local" / "bench" / f"{s.topic_prefix}.empty.log", data_dir)
        shutil.rmtree(data_dir, ignore_errors=True)
        records, mb, seed_s = asyncio.run(_seed(s, args.people))
        time.sleep(12)  # the stopped member leaves the group
        cold_log = ROOT / ".local" / "bench" / f"{s.topic_prefix}.cold.log"
        cold = _ready(s, cold_log, data_dir)
        rebuilt = _rebuilt(cold_log)
        time.sleep(12)
        warm = _ready(s, ROOT / ".local" / "bench" / f"{s.topic_prefix}.warm.log", data_dir)
    finally:
        asyncio.run(delete_prefix(s))
        shutil.rmtree(data_dir, ignore_errors=True)
    import os

    load = os.getloadavg()
    lines = [f"state at scale: {records:,} chronologies in the people table ({mb:,.0f} MB of changelog, seeded in "
             f"{seed_s:.0f} s); load average {load[0]:.2f} / {load[1]:.2f}",
             f"  worker ready with empty tables:                         {empty:6.1f} s",
             f"  worker ready after losing its store (rebuilt from the changelog): {cold:6.1f} s   (target < 60 s)",
             f"    of which the bulk rebuild (broker.restore): {rebuilt}",
             f"  worker ready after a restart that kept its store:        {warm:6.1f} s"]
    print("\n".join(lines))
    if not args.no_append:
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        with DOC.open("a") as f:
            f.write(f"\n### State at scale, {stamp}\n\n```\n" + "\n".join(lines) + "\n```\n")


if __name__ == "__main__":
    main()
