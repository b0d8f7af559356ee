"""A year of England through the pipeline: the national mix replayed through one worker (or `--workers N`), timed
and counted.

One run: fresh prefix (topics, schemas) -> the national schools directory written and given to a worker process
(MASH_SCHOOLS_FILE) -> the year generated (`producers.national.year`) or read from files written by
`mash simulate --national --out DIR` -> published in chunks, each checked and encoded by the SDK
(`encode_night`, `produce`), while the audit topic is tailed; a chunk waits while more than `--window`
notifications are published but not yet routed, so the driver's memory stays bounded whatever the count ->
done when every notification has a disclosed output (or nothing moves for `--stall` seconds) -> the records on
each route topic and the dead letters counted from the topics' offsets.

Wall time runs from the first send to the last notification seen routed; it includes generating and encoding
in this process (reported apart), which on a small machine competes with the worker for the same cores.

    python -m benchmarks.year --count 20000                 # a quick check: a few minutes
    python -m benchmarks.year --count 2000000               # the year: ~2 million notifications
    mash simulate --national --count 2000000 --out DIR && python -m benchmarks.year --from DIR

Progress goes to stderr; the result to stdout and, unless --no-append, to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiokafka import TopicPartition

from benchmarks._harness import (
    ROOT,
    AuditTail,
    delete_prefix,
    encode_night,
    fresh_settings,
    peak_rss_kb,
    produce,
    start_worker,
    stop,
    topic_ends,
    wait_ready,
)
from broker.settings import Settings
from broker.topics import ROUTE_TOPICS, catalogue
from mash.year import YEAR_START, read_year
from producers import national
from schemas.models import Record

__all__ = ["Replay", "main", "replay", "run_year"]

DOC = ROOT / "docs" / "benchmarks.md"
Progress = Callable[[str], None]


@dataclass
class Replay:
    """What a replay published and saw routed; the counts of the route topics are filled in at the end."""

    expected: int
    workers: int = 1
    span: str = "a year"  # what the notifications cover, e.g. "30 days" (from the files: as written)
    published: int = 0
    accepted: int = 0  # distinct notifications with an ACCEPTED audit record
    routed: int = 0  # distinct notifications with a DISCLOSED audit record
    unaccepted: set[str] = field(default_factory=set)  # published, no ACCEPTED record seen yet (in flight)
    unrouted: set[str] = field(default_factory=set)  # published, no DISCLOSED record seen yet (in flight)
    first_send: float = 0.0  # monotonic
    last_routed: float = 0.0  # monotonic
    driver_s: float = 0.0  # generating (or reading) and encoding, in this process
    routes: dict[str, int] = field(default_factory=dict)  # route topic short name -> records
    dead_lettered: int = 0
    peak_rss_mb: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def lost(self) -> int:
        """Published notifications without a disclosed output."""
        return self.published - self.routed

    @property
    def wall_s(self) -> float:
        """First send -> last notification seen routed."""
        return max(self.last_routed - self.first_send, 0.0)

    @property
    def per_s(self) -> float:
        """Notifications routed per second of wall time."""
        return self.routed / self.wall_s if self.wall_s > 0 else float("nan")

    def take(self, tail: AuditTail) -> None:
        """Count what the tail has seen since the last call, then forget it (memory stays with the in-flight)."""
        accepted, routed = self.unaccepted & tail.accepted, self.unrouted & tail.disclosed
        self.unaccepted -= accepted
        self.unrouted -= routed
        self.accepted += len(accepted)
        self.routed += len(routed)
        if routed:
            self.last_routed = time.monotonic()
        tail.accepted.clear()
        tail.disclosed.clear()

    def lines(self, prefix: str) -> list[str]:
        """The result as printable lines."""
        routes = ", ".join(f"{k.removeprefix('route.')} {v:,}" for k, v in self.routes.items())
        return [
            f"England's national mix, {self.span}: {self.published:,} notifications published, "
            f"{self.workers} worker{'s' if self.workers > 1 else ''}  [{prefix}]",
            f"  first send -> last routed {self.wall_s:,.1f} s => {self.per_s:,.0f} notifications/s "
            f"(generating/reading + SDK encoding in the driver {self.driver_s:,.1f} s of it)",
            f"  accepted {self.accepted:,}, routed {self.routed:,}, dead-lettered {self.dead_lettered:,}, "
            f"lost (published - routed) {self.lost:,}",
            f"  records per route topic: {routes}; {sum(self.routes.values()):,} in all "
            f"({sum(self.routes.values()) / max(self.published, 1):.2f} per notification)",
            f"  peak RSS: {', '.join(f'{k} {v:,.0f} MB' for k, v in self.peak_rss_mb.items())}",
            *(f"  note: {n}" for n in self.notes),
        ]


def _chunks(records: Iterable[Record], size: int) -> Iterator[list[Record]]:
    it = iter(records)
    while chunk := list(itertools.islice(it, size)):
        yield chunk


async def _drain(tail: AuditTail, run: Replay, *, until: int, stall_s: float, progress: Progress,
                 alive: Callable[[], bool]) -> bool:
    """Poll the tail until at most `until` notifications are in flight; False if nothing moved for `stall_s`."""
    moved = last_note = time.monotonic()
    while len(run.unrouted) > until:
        if await tail.poll(200):
            before = run.routed
            run.take(tail)
            if run.routed != before:
                moved = time.monotonic()
        now = time.monotonic()
        if not alive():
            raise RuntimeError("the worker exited; see its log in .local/bench/")
        if now - moved > stall_s:
            run.notes.append(f"gave up after {stall_s:.0f} s without progress: {len(run.unrouted):,} not routed")
            return False
        if now - last_note >= 2.0:
            last_note = now
            progress(f"published {run.published:,}/{run.expected:,}, accepted {run.accepted:,}, routed "
                     f"{run.routed:,} ({run.routed / max(now - run.first_send, 1e-9):,.0f}/s)")
    return True


async def replay(s: Settings, records: Iterable[Record], run: Replay, *, chunk: int, window: int, stall_s: float,
                 progress: Progress, alive: Callable[[], bool]) -> None:
    """Publish `records` in chunks through the SDK's encoding, keeping at most `window` in flight, until every
    one is routed (see the module docstring)."""
    start = await topic_ends(s)
    async with AuditTail(s, start) as tail:
        batches = _chunks(records, chunk)
        while True:
            began = time.monotonic()
            batch = next(batches, None)
            if batch is None:
                break
            encoded = await encode_night(s, batch)
            run.driver_s += time.monotonic() - began
            del batch
            if not run.first_send:
                run.first_send = time.monotonic()
            run.unaccepted.update(e.notification_id for e in encoded)
            run.unrouted.update(e.notification_id for e in encoded)
            await produce(s, encoded)
            run.published += len(encoded)
            progress(f"published {run.published:,}/{run.expected:,} (chunk generated and encoded in "
                     f"{time.monotonic() - began:.1f} s); routed {run.routed:,}")
            if not await _drain(tail, run, until=window, stall_s=stall_s, progress=progress, alive=alive):
                return
        await _drain(tail, run, until=0, stall_s=stall_s, progress=progress, alive=alive)


def _moved(before: Mapping[TopicPartition, int], after: Mapping[TopicPartition, int], topic: str) -> int:
    return sum(end - before.get(tp, 0) for tp, end in after.items() if tp.topic == topic)


def _count_topics(s: Settings, before: Mapping[TopicPartition, int], run: Replay) -> None:
    time.sleep(1.5)  # the last outputs' records are written with (not before) their audit records
    after = asyncio.run(topic_ends(s))
    cat = catalogue(s.topic_prefix)
    run.routes = {short: _moved(before, after, cat.name(short)) for short in ROUTE_TOPICS.values()}
    run.dead_lettered = _moved(before, after, cat.name("deadletter"))


def _records(args: argparse.Namespace) -> Iterable[Record]:
    if args.from_dir is not None:
        records = read_year(args.from_dir)
        return itertools.islice(records, args.count) if args.count is not None else records
    count = args.count if args.count is not None else national.NATIONAL_PER_YEAR
    return national.year(datetime.fromisoformat(args.start), seed=args.seed, count=count,
                         span=timedelta(hours=args.hours))


def _expected(args: argparse.Namespace) -> int:
    if args.from_dir is None:
        return args.count if args.count is not None else national.NATIONAL_PER_YEAR
    lines = sum(sum(1 for _ in p.open("rb")) for p in args.from_dir.glob("*.jsonl"))
    return min(lines, args.count) if args.count is not None else lines


def run_year(args: argparse.Namespace, progress: Progress) -> tuple[Replay, str]:
    """One replay on a fresh prefix with `--workers` workers of its own (one consumer group); returns the result
    and the prefix."""
    s = fresh_settings("year")
    work = ROOT / ".local" / "bench" / s.topic_prefix
    schools = national.write_national_reference(work / "reference")[0]
    names = ["worker"] if args.workers == 1 else [f"worker{i + 1}" for i in range(args.workers)]
    logs = [ROOT / ".local" / "bench" / f"{s.topic_prefix}.year.{name}.log" for name in names]
    procs: list[subprocess.Popen[bytes]] = []
    span = "as written by mash simulate" if args.from_dir is not None else (
        "a year" if args.hours == 8760 else f"{args.hours / 24:,.1f} days")
    result = Replay(_expected(args), workers=args.workers, span=span)
    try:
        ready = _start_workers(s, work, names, logs, schools, procs)
        progress(f"prefix {s.topic_prefix}; {len(procs)} worker(s) ready in {ready:.1f} s; publishing "
                 f"{result.expected:,} notifications in chunks of {args.chunk:,}")
        before = asyncio.run(topic_ends(s))
        asyncio.run(replay(s, _records(args), result, chunk=args.chunk, window=args.window, stall_s=args.stall,
                           progress=progress, alive=lambda: all(p.poll() is None for p in procs)))
        _count_topics(s, before, result)
        result.peak_rss_mb = {**{name: peak_rss_kb(p.pid) / 1024 for name, p in zip(names, procs, strict=True)},
                              "driver": peak_rss_kb(os.getpid()) / 1024}
    finally:
        for p in procs:
            stop(p)
        if not args.keep:
            asyncio.run(delete_prefix(s))
            shutil.rmtree(work, ignore_errors=True)
    return result, s.topic_prefix


def _start_workers(s: Settings, work: Path, names: list[str], logs: list[Path], schools: Path,
                   procs: list[subprocess.Popen[bytes]]) -> float:
    """Start the workers one after another (each ready before the next joins), then wait until the earlier ones
    have finished the rebalances the later ones caused; `procs` is filled as they start (so they can be stopped
    whatever fails). Seconds until all are ready."""
    began = time.monotonic()
    for i, (name, log) in enumerate(zip(names, logs, strict=True)):
        procs.append(start_worker(s, log, worker_id=f"year-{name}", data_dir=str(work / name),
                                  env={"MASH_SCHOOLS_FILE": str(schools)}))
        wait_ready(log, proc=procs[i])
    for i, log in enumerate(logs[:-1]):
        wait_ready(log, times=len(logs) - i, proc=procs[i])
    return time.monotonic() - began


def _append(lines: list[str], argv: list[str]) -> None:
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    with DOC.open("a") as f:
        f.write(f"\n### A year of England, {stamp}\n\n- commit {head.strip() or '?'}; command: "
                f"`{' '.join(['python -m benchmarks.year', *argv])}`\n\n```\n" + "\n".join(lines) + "\n```\n")


def _at_least_one(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.year", description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=None, help="notifications (default 2,000,000; with --from: all)")
    ap.add_argument("--from", dest="from_dir", type=Path, default=None,
                    help="replay the agency files `mash simulate --national --out DIR` wrote instead of generating")
    ap.add_argument("--seed", type=int, default=2025, help="seed of the generated year (2025)")
    ap.add_argument("--start", default=YEAR_START, help=f"first instant of the generated year ({YEAR_START})")
    ap.add_argument("--hours", type=float, default=8760.0, help="span of the generated year in hours (8760)")
    ap.add_argument("--workers", type=_at_least_one, default=1, help="worker processes in the consumer group (1)")
    ap.add_argument("--chunk", type=int, default=10_000, help="notifications generated and encoded at a time")
    ap.add_argument("--window", type=int, default=20_000, help="most notifications published but not yet routed")
    ap.add_argument("--stall", type=float, default=180.0, help="give up after this many seconds without progress")
    ap.add_argument("--keep", action="store_true", help="keep the prefix's topics and the worker's store")
    ap.add_argument("--no-append", action="store_true", help="do not append the result to docs/benchmarks.md")
    return ap


def main(argv: list[str] | None = None) -> None:
    """Run the replay (see the module docstring)."""
    args = _parser().parse_args(argv)
    t0 = time.monotonic()

    def progress(message: str) -> None:
        print(f"[{time.monotonic() - t0:6.0f}s] {message}", file=sys.stderr, flush=True)

    result, prefix = run_year(args, progress)
    lines = result.lines(prefix)
    print("\n".join(lines))
    if not args.no_append:
        _append(lines, argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    main()
