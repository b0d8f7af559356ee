"""Shared pieces of the benchmarks: a fresh prefix, worker processes, the simulated night encoded by the SDK and
published raw, an incremental tail of the audit topic, offsets and ranges read back, process CPU and memory."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from broker.admin import apply_topics, publish_schemas
from broker.reader import read_topics
from broker.settings import Settings
from broker.topics import INTAKE_TOPICS, catalogue
from producers.sdk import AgencyClient
from schemas.codec import Codec, schema_id_of
from schemas.errors import RegistryError
from schemas.models import AgencyType, AuditEvent, AuditRecord, Record
from schemas.registry import SchemaRegistry

__all__ = ["ROOT", "AuditTail", "CpuWindow", "Encoded", "Progress", "Raw", "cpu_seconds", "decode_all", "delete_prefix",
           "encode_night", "fresh_settings", "peak_rss_kb", "produce", "read_ranges", "routed_notifications",
           "rss_kb", "service_pid", "start_worker", "stop", "topic_ends", "wait_ready"]

ROOT = Path(__file__).resolve().parents[1]
Progress = Callable[[str], None]
_TICK = os.sysconf("SC_CLK_TCK")


def fresh_settings(tag: str, **overrides: object) -> Settings:
    """Settings with a new topic prefix (catalogue applied, schemas published)."""
    for service in ("kafka", "registry"):  # idempotent; other engineers' runs may have restarted them
        subprocess.run(["bash", str(ROOT / "deploy" / f"{service}.sh"), "start"], check=True, cwd=ROOT)
    prefix = f"bench-{tag}-{uuid.uuid4().hex[:6]}"
    values: dict[str, Any] = {"topic_prefix": prefix, "worker_data_dir": str(ROOT / ".local" / "bench")}
    values.update(overrides)
    s = Settings(**values)
    asyncio.run(apply_topics(s))
    asyncio.run(publish_schemas(s))
    return s


def start_worker(s: Settings, log: Path, *, worker_id: str | None = None, data_dir: str | None = None,
                 env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
    """The worker as a separate process (faust INFO logging, to see 'Worker ready')."""
    full = dict(os.environ)
    full.update(
        MASH_KAFKA_BOOTSTRAP=s.kafka_bootstrap,
        MASH_REGISTRY_URL=s.registry_url,
        MASH_TOPIC_PREFIX=s.topic_prefix,
        MASH_WORKER_DATA_DIR=data_dir or s.worker_data_dir,
        MASH_WORKER_ID=worker_id or s.worker_id,
        MASH_TABLE_STORE=s.table_store,
        MASH_BATCH_SIZE=str(s.batch_size),
        MASH_FAUST_LOG_LEVEL="INFO",
    )
    full.update(env or {})
    log.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen([sys.executable, "-m", "mash.cli", "worker"], cwd=ROOT, env=full,
                            stdout=log.open("wb"), stderr=subprocess.STDOUT)


def wait_ready(log: Path, timeout: float = 120.0, *, times: int = 1,
               proc: subprocess.Popen[bytes] | None = None) -> float:
    """Seconds until the worker has said it is ready `times` times (once per completed rebalance)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if log.read_bytes().count(b"worker ready") >= times:
            return time.monotonic() - start
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"worker exited with {proc.returncode} before it was ready; see {log}")
        time.sleep(0.05)
    raise TimeoutError(f"worker not ready after {timeout}s; see {log}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop a worker process gracefully."""
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


async def routed_notifications(s: Settings) -> set[object]:
    """Notification ids with at least one disclosed output (reads the whole audit topic: small runs only)."""
    codec = Codec()
    recs = await read_topics(s.kafka_bootstrap, [catalogue(s.topic_prefix).name("audit")],
                             registry_url=s.registry_url)
    out: set[object] = set()
    for r in recs:
        rec = r.decode(codec)
        if isinstance(rec, AuditRecord) and rec.event is AuditEvent.DISCLOSED:
            out.add(rec.notification_id)
    return out


async def delete_prefix(s: Settings) -> int:
    """Delete every topic of the prefix (the shared broker keeps no benchmark's topics); how many."""
    admin = AIOKafkaAdminClient(bootstrap_servers=s.kafka_bootstrap)
    await admin.start()
    try:
        topics = [t for t in await admin.list_topics() if t.startswith((f"{s.topic_prefix}.", f"{s.topic_prefix}-"))]
        if topics:
            await admin.delete_topics(topics)
        return len(topics)
    finally:
        await admin.close()


# ----------------------------------------------------------------------------------------- the load
@dataclass(frozen=True)
class Encoded:
    """One notification as the SDK encoded it for one prefix."""

    topic: str
    key: bytes
    value: bytes
    notification_id: str


async def encode_night(s: Settings, records: Sequence[Record]) -> list[Encoded]:
    """Check and encode every notification with the SDK (one client per agency, its schemas registered), so the
    timed publishing that follows does no Python work per notification beyond the producer's."""
    clients = {a: AgencyClient(s, a) for a in INTAKE_TOPICS}
    try:
        for c in clients.values():
            await c.start()
        out = []
        for r in records:
            agency: AgencyType = r.envelope.source.agency_type  # type: ignore[attr-defined]
            client = clients[agency]
            key, value = client.encode(r)
            out.append(Encoded(client.topic, key, value, str(r.envelope.notification_id)))  # type: ignore[attr-defined]
        return out
    finally:
        for c in clients.values():
            await c.stop()


async def produce(s: Settings, items: Sequence[Encoded], *, rate: float | None = None,
                  progress: Progress | None = None) -> tuple[float, float]:
    """Publish with the SDK's producer settings (idempotent, acks=all, linger 5 ms), as fast as possible or at a
    fixed `rate` per second; returns (wall time of the first send, wall time of the last acknowledgement)."""
    producer = AIOKafkaProducer(bootstrap_servers=s.kafka_bootstrap, acks="all", enable_idempotence=True,
                                linger_ms=5, client_id="mash-bench-load")
    await producer.start()
    try:
        first = time.time()
        start = time.monotonic()
        pending = []
        for i, e in enumerate(items):
            if rate is not None:
                delay = start + i / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            pending.append(await producer.send(e.topic, key=e.key, value=e.value))
            if progress is not None and rate is not None and i and i % int(rate * 10) == 0:
                progress(f"offered {i:,}/{len(items):,} at {rate:g}/s")
        await asyncio.gather(*pending)
        return first, time.time()
    finally:
        await producer.stop()


# ------------------------------------------------------------------------------------ reading back
Ends = dict[TopicPartition, int]


def _consumer(s: Settings) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(bootstrap_servers=s.kafka_bootstrap, group_id=None, enable_auto_commit=False,
                            auto_offset_reset="earliest")


async def topic_ends(s: Settings) -> Ends:
    """End offset of every partition of every topic of the prefix (its own topics and the worker's changelogs)."""
    consumer = _consumer(s)
    await consumer.start()
    try:
        topics = [t for t in await consumer.topics() if t.startswith(f"{s.topic_prefix}.")
                  or t.startswith(f"{s.topic_prefix}-")]
        metadata = await consumer._client.fetch_all_metadata()
        tps = [TopicPartition(t, p) for t in topics for p in sorted(metadata.partitions_for_topic(t) or ())]
        ends: Ends = await consumer.end_offsets(tps)
        return ends
    finally:
        await consumer.stop()


@dataclass(frozen=True)
class Raw:
    """One record read back, undecoded."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int


async def read_ranges(s: Settings, ranges: Mapping[TopicPartition, tuple[int, int]]) -> list[Raw]:
    """Every record in [start, end) of each partition."""
    todo = {tp: r for tp, r in ranges.items() if r[1] > r[0]}
    if not todo:
        return []
    consumer = _consumer(s)
    await consumer.start()
    out: list[Raw] = []
    try:
        consumer.assign(list(todo))
        for tp, (start, _) in todo.items():
            consumer.seek(tp, start)
        remaining = set(todo)
        give_up = time.monotonic() + 120
        while remaining and time.monotonic() < give_up:
            batch = await consumer.getmany(timeout_ms=500, max_records=20_000)
            for tp, records in batch.items():
                end = todo[tp][1]
                out.extend(Raw(r.topic, r.partition, r.offset, r.key, r.value, r.timestamp)
                           for r in records if r.offset < end)
                if records and records[-1].offset >= end - 1:
                    remaining.discard(tp)
                    consumer.pause(tp)
        return out
    finally:
        await consumer.stop()


async def _known(codec: Codec, value: bytes | None, patience: float = 180.0) -> None:
    """Fetch the writer schema of a value's id if the codec lacks it; waits out a registry restart (other
    engineers' runs restart the shared one) instead of failing the benchmark."""
    schema_id = schema_id_of(value)
    if schema_id is None or codec.knows(schema_id):
        return
    give_up = time.monotonic() + patience
    while True:
        try:
            await codec.fetch(schema_id)
            return
        except RegistryError as exc:
            if exc.status == 404 or time.monotonic() > give_up:
                raise
            await asyncio.sleep(2.0)


class AuditTail:
    """Consumes the audit topic incrementally from given offsets (no re-reading): which notifications have been
    accepted and which have at least one disclosed output. Values are read raw (Avro, no validation) with the
    writer schema fetched once per id, so the tail costs a fraction of the worker's decoding."""

    def __init__(self, s: Settings, start: Mapping[TopicPartition, int]) -> None:
        self._s = s
        self._topic = catalogue(s.topic_prefix).name("audit")
        self._start = {tp: o for tp, o in start.items() if tp.topic == self._topic}
        self._registry = SchemaRegistry(s.registry_url)
        self._codec = Codec(self._registry)
        self._consumer: AIOKafkaConsumer | None = None
        self.accepted: set[str] = set()
        self.disclosed: set[str] = set()
        self.records = 0

    async def __aenter__(self) -> AuditTail:
        self._consumer = _consumer(self._s)
        await self._consumer.start()
        self._consumer.assign(list(self._start))
        for tp, offset in self._start.items():
            self._consumer.seek(tp, offset)
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
        await self._registry.aclose()

    async def poll(self, timeout_ms: int = 200) -> int:
        """Read what has arrived; returns how many records."""
        assert self._consumer is not None
        batch = await self._consumer.getmany(timeout_ms=timeout_ms, max_records=20_000)
        n = 0
        for records in batch.values():
            for r in records:
                n += 1
                await _known(self._codec, r.value)
                datum = self._codec.peek(r.value)
                if datum is None:
                    continue
                event, nid = datum.get("event"), str(datum.get("notification_id"))
                if event == "DISCLOSED":
                    self.disclosed.add(nid)
                elif event == "ACCEPTED":
                    self.accepted.add(nid)
        self.records += n
        return n


async def decode_all(s: Settings, records: Iterable[Raw]) -> list[tuple[Raw, dict[str, Any]]]:
    """(record, raw Avro datum) for every record whose schema id the registry has."""
    registry = SchemaRegistry(s.registry_url)
    codec = Codec(registry)
    out = []
    try:
        for r in records:
            await _known(codec, r.value)
            datum = codec.peek(r.value)
            if datum is not None:
                out.append((r, datum))
    finally:
        await registry.aclose()
    return out


# --------------------------------------------------------------------------------------- processes
def _children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid:
                out.append(int(entry))
    return out


def cpu_seconds(pid: int, *, tree: bool = False) -> float:
    """User + system CPU seconds of a process (all its threads), and of its descendants when `tree`."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        own = (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime (fields 14 and 15 of stat)
    except (OSError, IndexError, ValueError):
        return 0.0
    if tree:
        own += sum(cpu_seconds(c, tree=True) for c in _children(pid))
    return own


def _status_kb(pid: int, key: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_kb(pid: int) -> int:
    """Resident set size now (kB)."""
    return _status_kb(pid, "VmRSS")


def peak_rss_kb(pid: int) -> int:
    """Peak resident set size over the process's life (kB, VmHWM)."""
    return _status_kb(pid, "VmHWM")


def service_pid(name: str) -> int | None:
    """The pid `deploy/<name>.sh` recorded (kafka, registry), if that process runs."""
    path = ROOT / ".local" / name / f"{name}.pid"
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if Path(f"/proc/{pid}").exists() else None


def _machine() -> dict[str, float]:
    """Core-seconds the whole machine spent busy and idle since boot (/proc/stat)."""
    with open("/proc/stat") as f:
        ticks = [int(x) for x in f.readline().split()[1:]]
    idle = ticks[3] + ticks[4]  # idle + iowait
    return {"busy": (sum(ticks[:8]) - idle) / _TICK, "idle": idle / _TICK}


@dataclass
class CpuWindow:
    """CPU seconds of several processes over a window: `start()`, then `stop()`."""

    pids: dict[str, tuple[int, bool]]  # name -> (pid, whole tree)
    begin: dict[str, float] = field(default_factory=dict)
    used: dict[str, float] = field(default_factory=dict)

    def start(self) -> None:
        """Open the window."""
        self.begin = {n: self._now(pid, tree) for n, (pid, tree) in self.pids.items()}
        self.begin.update(_machine())

    def stop(self) -> dict[str, float]:
        """Close the window: CPU seconds used by each process in it, then `other processes` (everything else
        busy on the machine: other users' work included) and `idle` (core-seconds nobody used)."""
        self.used = {n: self._now(pid, tree) - self.begin[n] for n, (pid, tree) in self.pids.items()}
        for n, (pid, _) in self.pids.items():
            if self.used[n] < 0 or not Path(f"/proc/{pid}").exists():
                self.used[n] = float("nan")  # restarted in the window (the shared registry, by another run)
        machine = {k: v - self.begin[k] for k, v in _machine().items()}
        ours = sum(v for v in self.used.values() if v == v)
        self.used["other processes"] = max(0.0, machine["busy"] - ours)
        self.used["idle"] = machine["idle"]
        return self.used

    @staticmethod
    def _now(pid: int, tree: bool) -> float:
        if pid == os.getpid():
            t = os.times()
            return t.user + t.system
        return cpu_seconds(pid, tree=tree)
