"""Session fixtures: the real Kafka broker and schema registry (started by deploy/kafka.sh and
deploy/registry.sh), a topic prefix per session with the catalogue applied and its schemas registered, and the
stream worker as a separate process."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from broker.admin import apply_topics, publish_schemas
from broker.reader import Consumed, read_topics
from broker.settings import Settings
from broker.topics import catalogue
from schemas.codec import Codec, codec_for
from schemas.models import Record
from schemas.registry import default_url

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def kafka() -> str:
    """Start (or reuse) the project's local Kafka broker, then the schema registry stored in it."""
    subprocess.run(["bash", str(ROOT / "deploy" / "kafka.sh"), "start"], check=True, cwd=ROOT)
    subprocess.run(["bash", str(ROOT / "deploy" / "registry.sh"), "start"], check=True, cwd=ROOT)
    return "127.0.0.1:" + os.environ.get("MASH_KAFKA_PORT", "9092")


@pytest.fixture(scope="session")
def registry_url(kafka: str) -> str:
    """The running registry's Confluent-compatible API."""
    return default_url()


def fresh_settings(kafka: str, data_dir: Path, letter: str) -> Settings:
    """Settings with a new topic prefix (`letter` + 8 hex digits), the catalogue applied, schemas registered under
    the prefix's subjects."""
    s = Settings(
        kafka_bootstrap=kafka,
        registry_url=default_url(),
        topic_prefix=f"{letter}{uuid.uuid4().hex[:8]}",
        worker_data_dir=str(data_dir),
        identity_secret="integration-test-secret",  # type: ignore[arg-type]
    )
    asyncio.run(apply_topics(s))
    asyncio.run(publish_schemas(s))
    return s


@pytest.fixture(scope="session")
def settings(kafka: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Settings for the session's shared worker; its topics are deleted afterwards."""
    s = fresh_settings(kafka, tmp_path_factory.mktemp("worker"), "t")
    yield s
    asyncio.run(delete_topics(s))


async def delete_topics(s: Settings) -> None:
    """Remove a test prefix's topics (ours and the worker's changelogs), so a long-lived broker stays small."""
    admin = AIOKafkaAdminClient(bootstrap_servers=s.kafka_bootstrap)
    await admin.start()
    try:
        names = [t for t in await admin.list_topics() if t.startswith((f"{s.topic_prefix}.", f"{s.topic_prefix}-"))]
        if names:
            await admin.delete_topics(names)
    finally:
        await admin.close()


def worker_env(s: Settings) -> dict[str, str]:
    """Environment that points a `mash` subprocess at these settings."""
    env = dict(os.environ)
    env.update(
        MASH_KAFKA_BOOTSTRAP=s.kafka_bootstrap,
        MASH_REGISTRY_URL=s.registry_url,
        MASH_TOPIC_PREFIX=s.topic_prefix,
        MASH_WORKER_DATA_DIR=s.worker_data_dir,
        MASH_IDENTITY_SECRET=s.identity_secret.get_secret_value(),
        MASH_FAULT_PLAN=s.fault_plan,
        MASH_PROFILE=s.profile,
        PYTHONUNBUFFERED="1",
        MASH_KAFKA_SECURITY_PROTOCOL=s.kafka_security_protocol,
    )
    for name, value in (("MASH_KAFKA_SASL_USERNAME", s.kafka_sasl_username), ("MASH_KAFKA_CA_FILE", s.kafka_ca_file),
                        ("MASH_KAFKA_SASL_PASSWORD",
                         s.kafka_sasl_password.get_secret_value() if s.kafka_sasl_password else None)):
        if value:
            env[name] = value
        else:
            env.pop(name, None)
    return env


class WorkerProcess:
    """The stream worker as a separate OS process (`python -m mash.cli worker`), supervised as in
    deploy/worker.sh: restarted when it exits on its own with a non-zero status."""

    def __init__(self, s: Settings, log: Path) -> None:
        self.settings = s
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        self._stopping = threading.Event()
        self._supervisor: threading.Thread | None = None

    def _spawn(self) -> None:
        out = self.log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mash.cli", "worker"], cwd=ROOT, env=worker_env(self.settings),
            stdout=out, stderr=subprocess.STDOUT,
        )

    def _supervise(self) -> None:
        while not self._stopping.is_set():
            proc = self.proc
            assert proc is not None
            rc = proc.wait()
            if self._stopping.is_set() or rc in (0, -signal.SIGKILL, -signal.SIGTERM):
                return
            self.restarts += 1
            time.sleep(2)
            self._spawn()

    def start(self) -> None:
        """Start the worker process and its supervisor."""
        self._stopping.clear()
        self._spawn()
        self._supervisor = threading.Thread(target=self._supervise, daemon=True)
        self._supervisor.start()

    def kill(self) -> None:
        """SIGKILL: no shutdown, no final commit (the supervisor does not restart a killed worker)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        """Graceful stop (SIGTERM), then SIGKILL if it hangs."""
        self._stopping.set()
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


@pytest.fixture(scope="session")
def worker(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerProcess]:
    """One worker process for the session."""
    w = WorkerProcess(settings, tmp_path_factory.mktemp("logs") / "worker.log")
    w.start()
    yield w
    w.stop()


Predicate = Callable[[list[tuple[Consumed, Record]]], bool]


async def read_decoded(s: Settings, *shorts: str) -> list[tuple[Consumed, Record]]:
    """Every record on the topics (short names), decoded (the reader fetches their schema ids)."""
    cat = catalogue(s.topic_prefix)
    codec = Codec()
    recs = await read_topics(s.kafka_bootstrap, [cat.name(x) for x in shorts], registry_url=s.registry_url)
    return [(r, r.decode(codec)) for r in recs]


async def wait_for(s: Settings, shorts: tuple[str, ...], predicate: Predicate, timeout: float = 90.0) -> list[
    tuple[Consumed, Record]
]:
    """Poll the topics until `predicate` holds on what is there; fail with what was seen at the timeout."""
    end = time.monotonic() + timeout
    while True:
        got = await read_decoded(s, *shorts)
        if predicate(got):
            return got
        if time.monotonic() > end:
            kinds = sorted(type(r).__name__ for _, r in got)
            raise AssertionError(f"timed out after {timeout}s waiting on {shorts}; saw {len(got)}: {kinds[:20]}")
        await asyncio.sleep(1.0)


async def encode_for(s: Settings, record: Record, short: str) -> bytes:
    """Wire-format bytes of `record` for a topic (short name), its schema registered under that topic's subject
    (for tests that write a topic directly, past the SDK)."""
    topic = catalogue(s.topic_prefix).name(short)
    codec = await codec_for(s.registry_url, {topic: [type(record)]})
    try:
        return codec.encode(record, topic)
    finally:
        await codec.aclose()
