"""The pipeline on the real broker: worker processes on a fresh prefix, the simulated night published through the
SDK's encoding, measured from the records themselves.

One run: fresh prefix (topics, schemas) -> the notifications checked and encoded by the SDK (before the clock)
-> worker(s) started and ready -> a small warm-up night routed (each partition's first records, the producer's
connections and every schema id out of the way) -> offsets of every topic of the prefix noted -> the timed
notifications published (as fast as possible, or at a fixed rate) while the audit topic is tailed incrementally
until every one of them has a disclosed output -> offsets noted again -> records read back:

- throughput: notifications / (last routed output's timestamp - first send), timestamps set by the broker's clients;
- latency: intake append time (LogAppendTime) -> timestamp of each routed output of that notification;
- records written per notification: the offsets moved on every topic of the prefix but the intake topics
  (outputs, audit, internal, dead letters, the worker's changelogs), divided by notifications;
- CPU (user+sys) of the worker(s), Kafka, the registry and this process over the timed window; peak RSS;
- checks from everything on the prefix: notifications accepted and routed, output ids per route, ids written
  twice with the same content (redeliveries, harmless to an idempotent view) and with different content (never).

    .venv/bin/python -m benchmarks.pipeline [count] [workers] [--national]
"""

from __future__ import annotations

import asyncio
import collections
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka import TopicPartition

from benchmarks._harness import (
    ROOT,
    AuditTail,
    CpuWindow,
    Encoded,
    Progress,
    decode_all,
    delete_prefix,
    encode_night,
    fresh_settings,
    peak_rss_kb,
    produce,
    read_ranges,
    rss_kb,
    service_pid,
    start_worker,
    stop,
    topic_ends,
    wait_ready,
)
from broker.run import last_night
from broker.settings import Settings
from broker.topics import INTAKE_TOPICS, ROUTE_TOPICS, catalogue
from producers.national import write_national_reference, year
from producers.simulator import NIGHT, simulate_night
from schemas.models import Record

__all__ = ["Checks", "Latency", "RunResult", "night", "run_pipeline"]

WARM_UP = 120
_BATCH = re.compile(r"component=(?P<component>\w+).*?records=(?P<records>\d+)")
PY_SPY = ROOT / ".venv" / "bin" / "py-spy"
DEFERRED_MS = 250  # a MARAC referral this long after its notification's first output was raised by a later one


def night(count: int, seed: int, *, national: bool = False) -> list[Record]:
    """The simulated mix (the night before now): the seeds' three authorities, or England's 153 (`national`)."""
    start = last_night(datetime.now(UTC))
    if national:
        return list(year(start, seed=seed, count=count, span=NIGHT))
    return simulate_night(start, seed, count)


@dataclass(frozen=True)
class Latency:
    """Percentiles in milliseconds."""

    n: int
    p50: float
    p95: float
    p99: float
    max: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Latency:
        """Nearest-rank percentiles of the values."""
        if not values:
            return cls(0, float("nan"), float("nan"), float("nan"), float("nan"))
        v = sorted(values)

        def rank(p: float) -> float:
            return v[min(len(v) - 1, max(0, int(-(-p * len(v) // 1)) - 1))]

        return cls(len(v), rank(0.50), rank(0.95), rank(0.99), v[-1])

    def text(self) -> str:
        """p50 / p95 / p99 / max."""
        return f"p50 {self.p50:,.0f} ms, p95 {self.p95:,.0f} ms, p99 {self.p99:,.0f} ms, max {self.max:,.0f} ms"


@dataclass(frozen=True)
class Checks:
    """What is on the prefix after the run (timed and warm-up notifications together)."""

    published: int
    accepted: int  # distinct notifications with an ACCEPTED audit record
    routed: int  # distinct notifications with a DISCLOSED audit record
    outputs: dict[str, int]  # route topic short name -> distinct output ids
    records_on_routes: int
    same_content_twice: int  # output ids written more than once with identical content
    conflicting: int  # output ids written with different content (must be 0)

    @property
    def lost(self) -> int:
        """Published notifications without a disclosed output."""
        return self.published - self.routed

    def text(self) -> str:
        """One line."""
        outs = ", ".join(f"{k.removeprefix('route.')} {v:,}" for k, v in self.outputs.items())
        return (f"published {self.published:,}, accepted {self.accepted:,}, routed {self.routed:,}, lost "
                f"{self.lost}; {self.records_on_routes:,} records on the route topics = {sum(self.outputs.values()):,}"
                f" distinct output ids ({outs}); same id twice with the same content {self.same_content_twice}, "
                f"with different content {self.conflicting}")


@dataclass
class RunResult:
    """One pipeline run's numbers."""

    label: str
    prefix: str
    workers: int
    count: int
    offered_rate: float | None
    ready_s: float
    produce_s: float  # first send -> last acknowledgement of the publisher
    intake_s: float  # first send -> last record forwarded to internal.accepted
    elapsed_s: float  # first send -> last routed output
    routed: int  # timed notifications with a disclosed output when the tail stopped
    written: dict[str, int]  # topic (without prefix) -> records written in the timed window
    latency: Latency  # intake append -> each routed output
    latency_first: Latency  # intake append -> first routed output
    cpu: dict[str, float]  # process -> CPU seconds in the timed window (+ other processes, idle)
    window_s: float  # the timed window: first send -> every notification routed (as the tail saw it)
    peak_rss_mb: list[float]
    checks: Checks
    logs: list[Path]
    profile: Path | None = None
    notes: list[str] = field(default_factory=list)
    accepted_by_partition: list[int] = field(default_factory=list)  # internal.accepted records per partition
    latency_intake: Latency | None = None  # intake append -> forwarded to internal.accepted (the intake hop)
    deferred: int = 0  # MARAC referrals raised later by a subsequent incident (not in the latency percentiles)

    def per_worker(self) -> list[dict[str, int]]:
        """Records each worker settled, by component, from its `batch settled` log lines (the SLA tracker's
        per-record lines counted as such): how the group shared the work."""
        out = []
        for log in self.logs:
            counts: dict[str, int] = collections.Counter()
            for line in log.read_text(errors="replace").splitlines():
                if "batch settled" in line:
                    m = _BATCH.search(line)
                    if m:
                        counts[m["component"]] += int(m["records"])
                elif "component=sla" in line and " topic=" in line:
                    counts["sla"] += 1
            out.append(dict(counts))
        return out

    @property
    def per_s(self) -> float:
        """Notifications per second, first produce -> last routed output."""
        return self.count / self.elapsed_s if self.elapsed_s > 0 else float("nan")

    @property
    def written_total(self) -> int:
        """Records written by the worker(s) in the timed window."""
        return sum(self.written.values())

    @property
    def written_per_notification(self) -> float:
        """Records written per notification."""
        return self.written_total / self.count

    @property
    def written_per_s(self) -> float:
        """Records written per second."""
        return self.written_total / self.elapsed_s if self.elapsed_s > 0 else float("nan")

    @property
    def worker_cpu(self) -> float:
        """CPU seconds of the worker processes."""
        return sum(v for k, v in self.cpu.items() if k.startswith("worker"))

    def lines(self) -> list[str]:
        """The result as printable lines."""
        load = f"offered {self.offered_rate:g}/s" if self.offered_rate else "saturated (published as fast as possible)"
        cpu = ", ".join(f"{k} {v:.1f} s" for k, v in self.cpu.items())
        written = ", ".join(f"{k} {v / self.count:.2f}" for k, v in sorted(self.written.items(), key=lambda kv: -kv[1]))
        out = [
            f"{self.label}: {self.count:,} notifications, {self.workers} worker(s), {load}  [{self.prefix}]",
            f"  first produce -> last routed output {self.elapsed_s:.1f} s => {self.per_s:,.0f} notifications/s "
            f"(publisher done {self.produce_s:.1f} s, intake done {self.intake_s:.1f} s; routed {self.routed:,})",
            f"  latency intake append -> each routed output ({self.latency.n:,}): {self.latency.text()}"
            + (f" ({self.deferred:,} MARAC referrals raised later, by a subsequent incident of the same victim,"
               " not counted)" if self.deferred else ""),
            f"  latency intake append -> first routed output: {self.latency_first.text()}",
            *([f"  latency intake append -> forwarded to the router (the intake hop): {self.latency_intake.text()}"]
              if self.latency_intake is not None else []),
            f"  records written {self.written_total:,} = {self.written_per_notification:.2f} per notification "
            f"({self.written_per_s:,.0f} records/s): {written}",
            f"  CPU seconds in the {self.window_s:.1f} s window ({os.cpu_count()} cores): {cpu}; "
            f"worker CPU per notification {1000 * self.worker_cpu / self.count:.2f} ms; "
            f"peak RSS {', '.join(f'{m:.0f} MB' for m in self.peak_rss_mb)}",
            f"  checks: {self.checks.text()}",
        ]
        if self.workers > 1:
            shares = "; ".join(f"worker{i + 1} " + ", ".join(f"{k} {v:,}" for k, v in sorted(w.items()))
                               for i, w in enumerate(self.per_worker()))
            out.append(f"  work per worker (records settled): {shares}")
        if self.accepted_by_partition:
            out.append(f"  internal.accepted records per partition (keyed by home authority): "
                       f"{', '.join(f'{n:,}' for n in self.accepted_by_partition)}")
        out += [f"  note: {n}" for n in self.notes]
        return out


def _ranges(before: Mapping[TopicPartition, int], after: Mapping[TopicPartition, int],
            topics: set[str]) -> dict[TopicPartition, tuple[int, int]]:
    return {tp: (before.get(tp, 0), end) for tp, end in after.items() if tp.topic in topics}


def _everything(after: Mapping[TopicPartition, int], topics: set[str]) -> dict[TopicPartition, tuple[int, int]]:
    return {tp: (0, end) for tp, end in after.items() if tp.topic in topics}


@dataclass
class _Drive:
    """What the timed window measured, before reading back."""

    before: dict[TopicPartition, int]
    after: dict[TopicPartition, int]
    first_send: float
    last_ack: float
    routed: int
    cpu: dict[str, float]
    window_s: float
    peak_rss_mb: list[float]
    notes: list[str]


async def _wait_routed(s: Settings, start: Mapping[TopicPartition, int], expected: set[str],
                       procs: Sequence[subprocess.Popen[bytes]], label: str, progress: Progress,
                       *, stall_s: float = 90.0, on_tick: Any = None) -> tuple[int, list[str]]:
    """Tail the audit topic until every expected notification has a disclosed output (or nothing moves)."""
    notes: list[str] = []
    async with AuditTail(s, start) as tail:
        t0 = last_move = last_note = time.monotonic()
        done = 0
        while True:
            if await tail.poll(200):
                done_now = len(tail.disclosed & expected)
                if done_now != done:
                    done, last_move = done_now, time.monotonic()
            now = time.monotonic()
            if on_tick is not None:
                on_tick(done)
            if done >= len(expected):
                return done, notes
            for p in procs:
                if p.poll() is not None:
                    raise RuntimeError(f"{label}: a worker exited with {p.returncode}")
            if now - last_move > stall_s:
                notes.append(f"gave up after {stall_s:.0f} s without progress: {len(expected) - done} not routed")
                return done, notes
            if now - last_note >= 2.0:
                last_note = now
                progress(f"{label}: accepted {len(tail.accepted & expected):,}, routed {done:,}/{len(expected):,} "
                         f"({done / (now - t0):,.0f}/s)")


async def _drive(s: Settings, warm: Sequence[Encoded], timed: Sequence[Encoded], procs: list[subprocess.Popen[bytes]],
                 *, rate: float | None, label: str, progress: Progress, profile_s: float, profile_out: Path | None,
                 join_late: Any = None) -> _Drive:
    progress(f"{label}: warm-up, {len(warm)} notifications")
    start0 = await topic_ends(s)
    await produce(s, warm)
    await _wait_routed(s, start0, {e.notification_id for e in warm}, procs, f"{label} warm-up", progress,
                       stall_s=60)
    await asyncio.sleep(1.5)  # the warm-up's last state writes follow its outputs
    before = await topic_ends(s)
    pids: dict[str, tuple[int, bool]] = {f"worker{i + 1}": (p.pid, False) for i, p in enumerate(procs)}
    for name in ("kafka", "registry"):
        pid = service_pid(name)
        if pid is not None:
            pids[name] = (pid, True)
    pids["bench driver"] = (os.getpid(), False)
    window = CpuWindow(pids)
    window.start()
    window_t0 = time.monotonic()
    peaks = [0] * len(procs)
    spy: subprocess.Popen[bytes] | None = None
    joined = False
    first = time.time()

    def tick(done: int) -> None:
        nonlocal spy, joined
        for i, p in enumerate(procs):
            peaks[i] = max(peaks[i], rss_kb(p.pid))
        if profile_out is not None and spy is None and time.time() - first > 1.0:
            spy = subprocess.Popen([str(PY_SPY), "record", "-p", str(procs[0].pid), "-d", str(int(profile_s)),
                                    "-f", "raw", "--nolineno", "-o", str(profile_out)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            progress(f"{label}: py-spy recording worker pid {procs[0].pid} for {profile_s:g} s")
        if join_late is not None and not joined and done >= len(timed) // 4:
            joined = True
            procs.append(join_late())
            peaks.append(0)
            name = f"worker{len(procs)}"
            window.pids[name] = (procs[-1].pid, False)
            window.begin[name] = 0.0  # started inside the window
            progress(f"{label}: second worker started under load ({done:,} routed)")

    sending = asyncio.ensure_future(produce(s, timed, rate=rate, progress=progress))
    routed, notes = await _wait_routed(s, before, {e.notification_id for e in timed}, procs, label, progress,
                                       on_tick=tick)
    cpu = window.stop()
    window_s = time.monotonic() - window_t0
    first_send, last_ack = await sending
    for i, p in enumerate(procs):
        peaks[i] = max(peaks[i], peak_rss_kb(p.pid))
    await asyncio.sleep(1.5)  # the last state writes follow the last outputs
    after = await topic_ends(s)
    if spy is not None:
        _, err = await asyncio.to_thread(spy.communicate)
        if spy.returncode != 0:
            notes.append(f"py-spy failed: {err.decode(errors='replace').strip()[-300:]}")
    return _Drive(before, after, first_send, last_ack, routed, cpu, window_s, [k / 1024 for k in peaks], notes)


async def _read_back(s: Settings, d: _Drive, published: int) -> tuple[float, float, list[float], list[float],
                                                                     dict[str, int], Checks, list[float], int]:
    cat = catalogue(s.topic_prefix)
    intake = {cat.name(t) for t in INTAKE_TOPICS.values()}
    routes = {cat.name(t): t for t in ROUTE_TOPICS.values()}
    accepted_topic = cat.name("internal.accepted")
    appended = {}
    for r, datum in await decode_all(s, await read_ranges(s, _ranges(d.before, d.after, intake))):
        appended[str(datum["envelope"]["notification_id"])] = r.timestamp_ms
    first_ms = d.first_send * 1000
    forwarded = await read_ranges(s, _ranges(d.before, d.after, {accepted_topic}))
    intake_s = (max((r.timestamp_ms for r in forwarded), default=first_ms) - first_ms) / 1000
    hop: list[float] = []
    for r, datum in await decode_all(s, forwarded):
        nid = str((datum.get("envelope") or {}).get("notification_id"))
        if nid in appended:
            hop.append(r.timestamp_ms - appended[nid])
    first_out: dict[str, int] = {}
    outputs_of: list[tuple[str, str, int]] = []  # (notification, route, timestamp)
    last_ms = first_ms
    for r, datum in await decode_all(s, await read_ranges(s, _ranges(d.before, d.after, set(routes)))):
        last_ms = max(last_ms, r.timestamp_ms)
        nid = str(datum.get("notification_id"))
        if nid in appended:
            outputs_of.append((nid, routes[r.topic], r.timestamp_ms))
            first_out[nid] = min(first_out.get(nid, r.timestamp_ms), r.timestamp_ms)
    lat, deferred = _own_latencies(outputs_of, appended, first_out)
    elapsed = (last_ms - first_ms) / 1000
    written: dict[str, int] = collections.Counter()
    for tp, end in d.after.items():
        if tp.topic not in intake:
            moved = end - d.before.get(tp, 0)
            if moved:
                written[tp.topic.removeprefix(f"{s.topic_prefix}.").removeprefix(f"{s.topic_prefix}-")] += moved
    # checks over everything on the prefix
    by_id: dict[tuple[str, str], list[dict[str, Any]]] = collections.defaultdict(list)
    on_routes = 0
    for r, datum in await decode_all(s, await read_ranges(s, _everything(d.after, set(routes)))):
        on_routes += 1
        by_id[(routes[r.topic], str(next(iter(datum.values()))))].append(datum)
    outputs: dict[str, int] = collections.Counter(short for short, _ in by_id)
    twice = sum(1 for v in by_id.values() if len(v) > 1)
    conflicting = sum(1 for v in by_id.values() if any(x != v[0] for x in v[1:]))
    accepted_ids: set[str] = set()
    disclosed_ids: set[str] = set()
    for _, datum in await decode_all(s, await read_ranges(s, _everything(d.after, {cat.name("audit")}))):
        if datum.get("notification_id") is None:
            continue
        if datum.get("event") == "ACCEPTED":
            accepted_ids.add(str(datum.get("notification_id")))
        elif datum.get("event") == "DISCLOSED":
            disclosed_ids.add(str(datum.get("notification_id")))
    checks = Checks(published, len(accepted_ids), len(disclosed_ids), dict(sorted(outputs.items())), on_routes,
                    twice - conflicting, conflicting)
    return (intake_s, elapsed, lat, [first_out[n] - appended[n] for n in first_out], dict(written), checks, hop,
            deferred)


def _own_latencies(outputs: Sequence[tuple[str, str, int]], appended: Mapping[str, int],
                   first_out: Mapping[str, int]) -> tuple[list[float], int]:
    """Intake append -> each output, for the outputs a notification raised itself; and the number of MARAC
    referrals raised later (an earlier incident that meets MARAC once a subsequent incident of the same victim
    arrives carries the earlier incident's id: its delay is the gap between the incidents, not the pipeline's).
    A notification's own outputs leave in one settled batch; one more than `DEFERRED_MS` after its first is
    a later one."""
    lat: list[float] = []
    deferred = 0
    for nid, route, ts in outputs:
        if route == "route.marac" and ts - first_out[nid] > DEFERRED_MS:
            deferred += 1
        else:
            lat.append(ts - appended[nid])
    return lat, deferred


def run_pipeline(label: str, records: Sequence[Record], *, workers: int = 1, rate: float | None = None,
                 profile_s: float = 0.0, join_late: bool = False, batch_size: int | None = None,
                 progress: Progress = lambda _: None, warm_seed: int = 99, keep: bool = False,
                 national: bool = False) -> RunResult:
    """One run (see the module docstring). `join_late`: start with one worker and add the second when a quarter
    of the notifications are routed (a rebalance under load). `national`: the records are England's mix (its
    warm-up too) and the workers load the national schools directory. The prefix's topics and the workers'
    stores are deleted afterwards unless `keep` (the logs and any profile stay in .local/bench/)."""
    tag = label.split()[0].lower()
    overrides: dict[str, object] = {} if batch_size is None else {"batch_size": batch_size}
    s = fresh_settings(tag, **overrides)
    progress(f"{label}: prefix {s.topic_prefix}; encoding {len(records):,} notifications with the SDK")
    warm_records = night(WARM_UP, warm_seed, national=national)
    warm = asyncio.run(encode_night(s, warm_records))
    timed = asyncio.run(encode_night(s, records))
    logs = [ROOT / ".local" / "bench" / f"{s.topic_prefix}.w{i + 1}.log" for i in range(workers)]
    env = {"MASH_SCHOOLS_FILE": str(write_national_reference(ROOT / ".local" / "bench" / s.topic_prefix / "ref")[0])
           } if national else None

    def launch(i: int) -> subprocess.Popen[bytes]:
        return start_worker(s, logs[i], worker_id=f"bench-w{i + 1}",
                            data_dir=str(ROOT / ".local" / "bench" / s.topic_prefix / f"w{i + 1}"), env=env)

    procs = [launch(0)]
    try:
        ready = wait_ready(logs[0], proc=procs[0])
        if workers > 1 and not join_late:
            for i in range(1, workers):
                procs.append(launch(i))
                wait_ready(logs[i], proc=procs[i])
            time.sleep(1.0)
            for i in range(workers - 1):  # the earlier workers finish their rebalance too
                wait_ready(logs[i], times=workers - i, proc=procs[i])
        progress(f"{label}: {len(procs)} worker(s) ready ({ready:.1f} s to the first)")
        profile_out = (ROOT / ".local" / "bench" / f"{s.topic_prefix}.pyspy.txt") if profile_s > 0 else None
        d = asyncio.run(_drive(s, warm, timed, procs, rate=rate, label=label, progress=progress, profile_s=profile_s,
                               profile_out=profile_out, join_late=(lambda: launch(1)) if join_late else None))
    finally:
        for p in procs:
            stop(p)
    progress(f"{label}: reading back")
    intake_s, elapsed, lat, lat_first, written, checks, hop, deferred = asyncio.run(
        _read_back(s, d, len(warm) + len(timed)))
    if not keep:
        asyncio.run(delete_prefix(s))
        shutil.rmtree(ROOT / ".local" / "bench" / s.topic_prefix, ignore_errors=True)
    accepted = catalogue(s.topic_prefix).name("internal.accepted")
    by_partition = [end - d.before.get(tp, 0) for tp, end in sorted(d.after.items(), key=lambda kv: kv[0].partition)
                    if tp.topic == accepted]
    return RunResult(label, s.topic_prefix, len(d.peak_rss_mb), len(timed), rate, ready,
                     d.last_ack - d.first_send, intake_s, elapsed, d.routed, written, Latency.of(lat),
                     Latency.of(lat_first), d.cpu, d.window_s, d.peak_rss_mb, checks, logs[:len(d.peak_rss_mb)],
                     profile_out, d.notes, by_partition, Latency.of(hop), deferred)


def main() -> None:
    """One saturated run: `python -m benchmarks.pipeline [count] [workers] [--national]`."""
    national = "--national" in sys.argv
    args = [a for a in sys.argv[1:] if a != "--national"]
    count = int(args[0]) if args else 5000
    workers = int(args[1]) if len(args) > 1 else 1
    t0 = time.monotonic()
    result = run_pipeline("saturated", night(count, 2024, national=national), workers=workers, national=national,
                          progress=lambda m: print(f"[{time.monotonic() - t0:5.0f}s] {m}", file=sys.stderr))
    for line in result.lines():
        print(line)


if __name__ == "__main__":
    main()
