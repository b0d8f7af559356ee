"""Crash drill: the same notifications routed by a worker left alone and by one SIGKILLed again and again
(with one wipe of its local table store, rebuilt from the changelogs), then AMENDed one by one.

Both runs must end with the same set of output ids, every output of an original notification recalled or
replaced by its AMEND's, and nothing missing.

    .venv/bin/python -m benchmarks.crash [count] [kills]      (make crash)
"""

from __future__ import annotations

import asyncio
import collections
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from broker.reader import read_topics
from broker.settings import Settings
from broker.topics import INTAKE_TOPICS, ROUTE_TOPICS, catalogue
from producers.sdk import AgencyClient
from producers.simulator import simulate_night
from schemas.codec import Codec
from schemas.models import Action, AuditEvent, AuditRecord, FrontDoorReferral, Recall, Record

__all__ = ["CrashReport", "DrillWorker", "amends_of", "drill", "id_of", "outcome", "publish"]

ROOT = Path(__file__).resolve().parents[1]
WORKER = [sys.executable, "-m", "mash.cli", "worker"]


def id_of(record: Record) -> str:
    """An output's own id (its first field)."""
    return str(getattr(record, next(iter(type(record).model_fields))))


def amends_of(records: Sequence[Record]) -> list[Record]:
    """An AMEND of each notification: same content, a derived new id, `supersedes` the original."""
    out = []
    for r in records:
        env = r.envelope  # type: ignore[attr-defined]
        new_env = env.model_copy(update={
            "notification_id": uuid.uuid5(env.notification_id, "amend"), "action": Action.AMEND,
            "supersedes": env.notification_id, "produced": env.produced + timedelta(seconds=1)})
        out.append(r.model_copy(update={"envelope": new_env}))
    return out


async def publish(s: Settings, records: Sequence[Record]) -> None:
    """Publish through the SDK (one client per agency), awaiting every acknowledgement."""
    clients = {a: AgencyClient(s, a) for a in INTAKE_TOPICS}
    try:
        pending = [await clients[r.envelope.source.agency_type].send(r) for r in records]  # type: ignore[attr-defined]
        await asyncio.gather(*pending)
    finally:
        for c in clients.values():
            await c.stop()


class DrillWorker:
    """The worker as a process that can be killed, restarted and have its table store wiped."""

    def __init__(self, s: Settings, log: Path) -> None:
        self.settings, self.log = s, log
        self.proc: subprocess.Popen[bytes] | None = None
        self.kills = 0

    def start(self) -> None:
        """Start a worker process."""
        env = dict(os.environ, MASH_KAFKA_BOOTSTRAP=self.settings.kafka_bootstrap,
                   MASH_TOPIC_PREFIX=self.settings.topic_prefix, MASH_WORKER_DATA_DIR=self.settings.worker_data_dir,
                   MASH_IDENTITY_SECRET=self.settings.identity_secret.get_secret_value(),
                   MASH_REGISTRY_URL=self.settings.registry_url, MASH_METRICS_PORT="0", PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(WORKER, cwd=ROOT, env=env, stdout=self.log.open("ab"), stderr=subprocess.STDOUT)

    def kill(self, *, wipe: bool = False) -> None:
        """SIGKILL (no shutdown, no final commit); optionally remove the local table store."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.kills += 1
        if wipe:
            shutil.rmtree(Path(self.settings.worker_data_dir) / self.settings.topic_prefix, ignore_errors=True)

    def stop(self) -> None:
        """Graceful stop."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()


async def routed(s: Settings) -> set[uuid.UUID]:
    """Notification ids with a disclosed or recalled output (from the audit topic)."""
    recs = await read_topics(s.kafka_bootstrap, [catalogue(s.topic_prefix).name("audit")])
    codec = Codec()
    out = set()
    for r in recs:
        a = r.decode(codec)
        if isinstance(a, AuditRecord) and a.event in (AuditEvent.DISCLOSED, AuditEvent.RECALLED) and a.notification_id:
            out.add(a.notification_id)
    return out


async def _until(s: Settings, ids: set[uuid.UUID], worker: DrillWorker, kills: int, wipe_at: int | None,
                 rng: random.Random, timeout: float) -> None:
    """Wait until every id is routed, killing the worker `kills` times at random moments meanwhile."""
    end = time.monotonic() + timeout
    left = kills
    while time.monotonic() < end:
        if left > 0:
            await asyncio.sleep(rng.uniform(2.0, 6.0))
            worker.kill(wipe=worker.kills + 1 == wipe_at)
            left -= 1
            worker.start()
            continue
        if ids <= await routed(s):
            return
        await asyncio.sleep(2)
    raise TimeoutError(f"{len(ids - await routed(s))} notifications not routed after {timeout}s")


@dataclass
class CrashReport:
    """What one run produced."""

    outputs: dict[str, set[str]] = field(default_factory=dict)  # output id -> distinct encodings seen
    kinds: collections.Counter[str] = field(default_factory=collections.Counter)
    uncovered: list[str] = field(default_factory=list)  # originals' outputs neither recalled nor replaced
    kills: int = 0

    @property
    def ids(self) -> set[str]:
        """Every output id (recalls included)."""
        return set(self.outputs)


async def outcome(s: Settings, originals: Sequence[Record]) -> CrashReport:
    """Read every route topic back and check the originals' outputs are all recalled or replaced."""
    cat = catalogue(s.topic_prefix)
    codec = Codec()
    report = CrashReport()
    decoded = []
    for c in await read_topics(s.kafka_bootstrap, [cat.name(t) for t in ROUTE_TOPICS.values()]):
        r = c.decode(codec)
        decoded.append(r)
        report.outputs.setdefault(id_of(r), set()).add((c.value or b"").hex())
        report.kinds[type(r).__name__] += 1
    first = {r.envelope.notification_id for r in originals}  # type: ignore[attr-defined]
    recalled = {r.recalled_output_id for r in decoded if isinstance(r, Recall)}
    replaced = {r.supersedes_referral for r in decoded if isinstance(r, FrontDoorReferral) and r.supersedes_referral}
    reissued = {id_of(r) for r in decoded
                if not isinstance(r, Recall) and getattr(r, "notification_id", None) not in first}
    for r in decoded:
        if isinstance(r, Recall) or getattr(r, "notification_id", None) not in first:
            continue
        oid = id_of(r)
        if uuid.UUID(oid) not in recalled | replaced and oid not in reissued:
            report.uncovered.append(f"{type(r).__name__}:{oid}")
    return report


async def drill(s: Settings, records: Sequence[Record], log: Path, *, kills: int, wipe_at: int | None,
                seed: int = 5, timeout: float = 900) -> CrashReport:
    """Route `records`, then their AMENDs, killing the worker `kills` times in all (half in each phase)."""
    rng = random.Random(seed)
    worker = DrillWorker(s, log)
    worker.start()
    try:
        amends = amends_of(records)
        await publish(s, records)
        await _until(s, {r.envelope.notification_id for r in records}, worker, kills // 2, wipe_at, rng,  # type: ignore[attr-defined]
                     timeout)
        await publish(s, amends)
        await _until(s, {r.envelope.notification_id for r in amends}, worker, kills - kills // 2, wipe_at, rng,  # type: ignore[attr-defined]
                     timeout)
        await asyncio.sleep(5)  # let redelivered copies land before reading
    finally:
        worker.stop()
    report = await outcome(s, records)
    report.kills = worker.kills
    return report


def main() -> None:
    """Clean run and crash run of the same night; print the comparison; non-zero on any difference."""
    from benchmarks._harness import fresh_settings

    count = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    kills = int(sys.argv[2]) if len(sys.argv) > 2 else 12
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
    records = simulate_night(start, 31, count)
    reports = {}
    for tag, n in (("clean", 0), ("crash", kills)):
        s = fresh_settings(tag)
        log = ROOT / ".local" / f"{s.topic_prefix}.log"
        t0 = time.monotonic()
        reports[tag] = asyncio.run(drill(s, records, log, kills=n, wipe_at=n // 2 or None))
        r = reports[tag]
        doubled = sum(1 for v in r.outputs.values() if len(v) > 1)
        print(f"{tag}: {count} notifications + {count} AMENDs, {r.kills} SIGKILLs, {time.monotonic() - t0:.0f}s; "
              f"{len(r.ids)} output ids ({dict(r.kinds)}); differing copies {doubled}; "
              f"originals' outputs neither recalled nor replaced {len(r.uncovered)}")
    missing = reports["clean"].ids - reports["crash"].ids
    extra = reports["crash"].ids - reports["clean"].ids
    print(f"crash vs clean: missing {len(missing)}, extra {len(extra)}")
    bad = missing or extra or any(r.uncovered for r in reports.values())
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
