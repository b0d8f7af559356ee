"""What reading a record costs the worker before any work: faust and the worker's serving loop, no stage.

A child process runs the worker's own faust application (`broker.app.faust_app`: the same settings and patches)
with one agent served as the worker serves its stages (`broker.app.serve_stage`: batches, offset guard, manual
acknowledgements, commits), over a topic loaded with `count` records of 600 bytes, and a stage that does
nothing but wait `work_ms` per batch (as a real stage's sends would; 0 lets batches shrink to a few records). It
prints the process's CPU per record read (both of faust's threads) from the first batch to the last. Against a
bare aiokafka consumer (`benchmarks.raw`) this is what faust's per-record machinery costs.

    .venv/bin/python -m benchmarks.faust_floor [count] [work_ms]
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from benchmarks._harness import ROOT
from benchmarks.raw import PARTITIONS, RECORD_BYTES, _load
from broker.settings import Settings

__all__ = ["FaustFloor", "run_faust_floor"]

_RESULT = re.compile(r"faust floor: (?P<records>\d+) records, (?P<batches>\d+) batches, (?P<cpu>[\d.]+) us/record, "
                     r"(?P<rate>[\d.]+) records/s")


@dataclass(frozen=True)
class FaustFloor:
    """CPU per record read through faust and the serving loop, with no work."""

    records: int
    batches: int
    cpu_us: float
    records_per_s: float
    work_ms: float

    def lines(self) -> list[str]:
        """The result as printable lines."""
        return [f"faust read floor: {self.records:,} records of {RECORD_BYTES} B read through the worker's faust app "
                f"and serving loop, a stage that only waits {self.work_ms:g} ms a batch: {self.cpu_us:.1f} us CPU "
                f"per record ({self.records / self.batches:.0f} records a batch, {self.records_per_s:,.0f} records/s)"]


class _Idle:
    """A stage that settles every record with no outcome to write: it only waits, as sends would."""

    def __init__(self, count: int, work_s: float) -> None:
        self.count, self.work_s = count, work_s
        self.seen = self.batches = 0
        self.cpu0 = self.t0 = 0.0

    async def handle_batch(self, items: Sequence[Any]) -> list[None]:
        if not self.seen:
            self.cpu0, self.t0 = time.process_time(), time.monotonic()
        self.seen += len(items)
        self.batches += 1
        await asyncio.sleep(self.work_s)
        if self.seen >= self.count:
            cpu, wall = time.process_time() - self.cpu0, time.monotonic() - self.t0
            print(f"faust floor: {self.seen} records, {self.batches} batches, {cpu * 1e6 / self.seen:.1f} us/record, "
                  f"{self.seen / wall:.1f} records/s", flush=True)
            os._exit(0)  # measured: nothing to shut down cleanly
        return [None] * len(items)


def _child(topic: str, count: int, work_ms: float, datadir: str) -> None:
    """Run the faust app over `topic` until `count` records are read (in the child process)."""
    import faust

    from broker.app import faust_app, serve_stage

    settings = Settings()
    app = faust_app(settings, f"{topic}-floor", Path(datadir), partitions=PARTITIONS, replication=1)
    source = app.topic(topic, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
    serve_stage(app, "floor", source, _Idle(count, work_ms / 1000), settings)
    sys.argv = sys.argv[:1]
    faust.Worker(app, loglevel="WARNING").execute_from_commandline()


async def _topic(settings: Settings, count: int) -> str:
    topic = f"bench-faust-floor-{uuid.uuid4().hex[:6]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
    finally:
        await admin.close()
    await _load(settings.kafka_bootstrap, topic, count)
    return topic


async def _drop(settings: Settings, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        await admin.delete_topics([topic])
    finally:
        await admin.close()


def run_faust_floor(settings: Settings, count: int = 100_000, work_ms: float = 5.0,
                    timeout_s: float = 300.0) -> FaustFloor:
    """Load a topic, read it through the child, delete it; the child's numbers."""
    topic = asyncio.run(_topic(settings, count))
    env = {**os.environ, "MASH_KAFKA_BOOTSTRAP": settings.kafka_bootstrap}
    try:
        with tempfile.TemporaryDirectory(prefix="faust-floor-") as datadir:  # the child ends with os._exit
            out = subprocess.run([sys.executable, "-m", "benchmarks.faust_floor", "--child", topic, str(count),
                                  str(work_ms), datadir], cwd=ROOT, capture_output=True, text=True,
                                 timeout=timeout_s, env=env)
    finally:
        asyncio.run(_drop(settings, topic))
    found = _RESULT.search(out.stdout + out.stderr)  # faust redirects a worker's stdout into its log (stderr)
    if found is None:
        raise RuntimeError(f"the faust floor child printed no result (exit {out.returncode}): {out.stderr[-2000:]}")
    return FaustFloor(int(found["records"]), int(found["batches"]), float(found["cpu"]), float(found["rate"]),
                      work_ms)


def main() -> None:
    """Print the faust read floor (or, with --child, be the measured worker)."""
    if sys.argv[1:2] == ["--child"]:
        _child(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), sys.argv[5])
        return
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    work_ms = float(sys.argv[2]) if len(sys.argv) > 2 else 5.0
    for line in run_faust_floor(Settings(), count, work_ms).lines():
        print(line)


if __name__ == "__main__":
    main()
