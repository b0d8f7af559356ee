"""Shared pieces of the benchmarks: a fresh prefix, a worker process, counting routed notifications."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

from broker.admin import apply_topics, publish_schemas
from broker.reader import read_topics
from broker.settings import Settings
from broker.topics import catalogue
from schemas.codec import Codec
from schemas.models import AuditEvent, AuditRecord

ROOT = Path(__file__).resolve().parents[1]


def fresh_settings(tag: str, **overrides: object) -> Settings:
    """Settings with a new topic prefix (catalogue applied, schemas published)."""
    subprocess.run(["bash", str(ROOT / "deploy" / "kafka.sh"), "start"], check=True, cwd=ROOT)
    prefix = f"bench-{tag}-{uuid.uuid4().hex[:6]}"
    s = Settings(topic_prefix=prefix, worker_data_dir=str(ROOT / ".local" / "bench"), **overrides)  # type: ignore[arg-type]
    asyncio.run(apply_topics(s))
    asyncio.run(publish_schemas(s))
    return s


def start_worker(s: Settings, log: Path) -> subprocess.Popen[bytes]:
    """The worker as a separate process (faust INFO logging, to see 'Worker ready')."""
    env = dict(os.environ)
    env.update(
        MASH_TOPIC_PREFIX=s.topic_prefix,
        MASH_WORKER_DATA_DIR=s.worker_data_dir,
        MASH_TABLE_STORE=s.table_store,
        MASH_FAUST_LOG_LEVEL="INFO",
    )
    return subprocess.Popen([sys.executable, "-m", "mash.cli", "worker"], cwd=ROOT, env=env,
                            stdout=log.open("wb"), stderr=subprocess.STDOUT)


def wait_ready(log: Path, timeout: float = 120.0) -> float:
    """Seconds until the worker says it is ready."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if b"worker ready" in log.read_bytes():
            return time.monotonic() - start
        time.sleep(0.05)
    raise TimeoutError(f"worker not ready after {timeout}s; see {log}")


async def routed_notifications(s: Settings) -> set[object]:
    """Notification ids with at least one disclosed output (from the audit topic)."""
    codec = Codec()
    recs = await read_topics(s.kafka_bootstrap, [catalogue(s.topic_prefix).name("audit")])
    out = set()
    for r in recs:
        rec = r.decode(codec)
        if isinstance(rec, AuditRecord) and rec.event is AuditEvent.DISCLOSED:
            out.add(rec.notification_id)
    return out


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop a worker process gracefully."""
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
