"""`make bench`: one run of every benchmark on the local broker, printed and appended to docs/benchmarks.md.

1. the raw ceiling (benchmarks.raw): plain aiokafka consume -> produce, acks=all, idempotent, 6 partitions, 600 B;
2. what faust and the worker's serving loop cost a record read with no work (benchmarks.faust_floor), the
   in-process CPU per notification (benchmarks.micro), and from these and the raw client's CPU per record the floor
   of one worker process (benchmarks.floor);
3. the pipeline saturated with the simulated mix, one worker (benchmarks.pipeline);
4. the pipeline at a fixed offered load (100 notifications/s for 60 s) for latency;
5. scale-out: the saturated run with two workers in one consumer group, and a rebalance under load (the second
   worker joins when a quarter is routed), both checked by counts;
6. a py-spy profile of the worker under the saturated load (a separate run, so the sampler does not slow the
   measured ones), summarised.

    .venv/bin/python -m benchmarks.bench [--count N] [--rate R] [--duration S] [--profile-seconds S] ...
    make bench BENCH_ARGS="--count 50000 --duration 300"      # a bigger run
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import os
import platform
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from benchmarks._harness import ROOT
from benchmarks.faust_floor import FaustFloor, run_faust_floor
from benchmarks.floor import Floor, consumed_per_notification
from benchmarks.micro import ALL_STAGES, MicroResult, run_micro
from benchmarks.pipeline import RunResult, night, run_pipeline
from benchmarks.profile import Profile, summarise
from benchmarks.raw import RawResult, run_raw
from broker.settings import Settings

__all__ = ["main"]

DOC = ROOT / "docs" / "benchmarks.md"
RUNS_HEADER = "## Runs (appended by `make bench`)"


def _versions() -> str:
    kafka = re.search(r"<kafka.version>([^<]+)<", (ROOT / "deploy" / "kafka" / "pom.xml").read_text())
    registry = re.search(r"^version=(\S+)", (ROOT / "deploy" / "registry.sh").read_text(), re.M)
    return (f"Python {platform.python_version()}, Kafka {kafka[1] if kafka else '?'} (single-node KRaft on "
            f"loopback), Apicurio Registry {registry[1] if registry else '?'}, aiokafka "
            f"{importlib.metadata.version('aiokafka')}, faust-streaming {importlib.metadata.version('faust-streaming')}"
            f", fastavro {importlib.metadata.version('fastavro')}, pydantic {importlib.metadata.version('pydantic')}")


def _machine() -> str:
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        mem_kb = int(next(x for x in Path("/proc/meminfo").read_text().splitlines()
                          if x.startswith("MemTotal")).split()[1])
    except (OSError, StopIteration, ValueError):
        mem_kb = 0
    load = os.getloadavg()
    return (f"{os.cpu_count()} cores ({model}), {mem_kb / 1024 / 1024:.1f} GiB RAM, load average at start "
            f"{load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} (1/5/15 min; the machine is shared)")


def _commit() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "broker", "schemas",
                                "producers", "mash"], cwd=ROOT, capture_output=True, text=True).stdout.split("\n")
    except (OSError, subprocess.CalledProcessError):
        return "?"
    changed = [line[3:] for line in dirty if line.strip()]
    return head + (f" (+ uncommitted changes in {', '.join(changed)})" if changed else "")


class _Progress:
    def __init__(self) -> None:
        self.t0 = time.monotonic()

    def __call__(self, message: str) -> None:
        print(f"[{time.monotonic() - self.t0:5.0f}s] {message}", file=sys.stderr, flush=True)


def _floor(raw: RawResult, micro: MicroResult, sat: RunResult, faust: FaustFloor | None) -> Floor:
    """The floor of one worker process from the run's own parts (see benchmarks.floor)."""
    return Floor(python_us=micro.us[ALL_STAGES], written=sat.written_per_notification,
                 read=consumed_per_notification(sat.written, sat.count), produce_us=raw.batch_cpu_us,
                 consume_us=raw.consume_cpu_us, measured_us=1e6 * sat.worker_cpu / sat.count,
                 faust_read_us=faust.cpu_us if faust else float("nan"))


def _table(raw: RawResult | None, sat: RunResult | None, fixed: RunResult | None, scale: RunResult | None,
           rebalance: RunResult | None, micro: MicroResult | None, faust: FaustFloor | None = None) -> list[str]:
    rows: list[tuple[str, str]] = []
    if raw:
        rows.append(("raw ceiling: aiokafka consume->produce, acks=all, idempotent, 6 partitions, 600 B",
                     f"**{raw.records_per_s:,.0f} records/s**"))
    if sat:
        rows += [
            ("pipeline saturated, 1 worker (first produce -> last routed output)",
             f"**{sat.per_s:,.0f} notifications/s** ({sat.count:,} in {sat.elapsed_s:.1f} s)"),
            ("records written per notification (outputs, audit, internal, changelogs, SLA)",
             f"{sat.written_per_notification:.2f}"),
            ("pipeline records written/s vs the raw ceiling",
             f"{sat.written_per_s:,.0f} records/s" + (f" = **{sat.written_per_s / raw.records_per_s:.1%}** of the "
                                                      "ceiling" if raw else "")),
            ("latency at saturation, intake append -> each routed output", sat.latency.text()),
            ("worker CPU (user+sys) in the saturated window",
             f"{sat.worker_cpu:.1f} s = {1000 * sat.worker_cpu / sat.count:.2f} ms per notification"),
            ("worker peak RSS", ", ".join(f"{m:.0f} MB" for m in sat.peak_rss_mb)),
        ]
    if fixed:
        seconds = fixed.count / (fixed.offered_rate or 1)
        rows.append((f"latency at {fixed.offered_rate:g} notifications/s for {seconds:.0f} s, intake append -> each"
                     " routed output", f"**{fixed.latency.text()}**"))
    if scale:
        speed = f"; speed-up **{scale.per_s / sat.per_s:.2f}x**" if sat else ""
        rows.append(("scale-out: 2 workers, one group, saturated",
                     f"{scale.per_s:,.0f} notifications/s{speed}; lost {scale.checks.lost}, conflicting ids "
                     f"{scale.checks.conflicting}"))
    if rebalance:
        rows.append(("rebalance under load (2nd worker joins at 25%)",
                     f"{rebalance.per_s:,.0f} notifications/s; published {rebalance.checks.published:,}, routed "
                     f"{rebalance.checks.routed:,}, lost {rebalance.checks.lost}, same id twice "
                     f"{rebalance.checks.same_content_twice}, conflicting {rebalance.checks.conflicting}"))
    if micro:
        rows.append(("in-process Python per notification, all three stages, no I/O (micro)",
                     f"{micro.us[ALL_STAGES]:,.0f} us"))
    if faust:
        rows.append(("faust read floor: a record read through the worker's faust app and serving loop, no work",
                     f"{faust.cpu_us:.1f} us CPU per record (a bare consumer: "
                     f"{raw.consume_cpu_us:.1f} us)" if raw else f"{faust.cpu_us:.1f} us CPU per record"))
    if raw and micro and sat:
        f = _floor(raw, micro, sat, faust)
        rows.append(("floor of one worker: that Python + a bare client's CPU for its records (benchmarks.floor)",
                     f"{f.floor_us:,.0f} us per notification => **at most {f.ceiling_per_s:,.0f} notifications/s** on "
                     f"a whole core; the worker spent {f.measured_us:,.0f} us"))
        if faust:
            rows.append(("the same floor with faust reading the records",
                         f"{f.faust_floor_us:,.0f} us => **at most {1e6 / f.faust_floor_us:,.0f} notifications/s**"))
    return ["| measure | value |", "| --- | --- |", *(f"| {a} | {b} |" for a, b in rows)]


def _append(text: list[str]) -> None:
    DOC.parent.mkdir(parents=True, exist_ok=True)
    existing = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    if RUNS_HEADER not in existing:
        existing = existing.rstrip("\n") + f"\n\n{RUNS_HEADER}\n"
    DOC.write_text(existing.rstrip("\n") + "\n\n" + "\n".join(text) + "\n")


def main(argv: list[str] | None = None) -> None:
    """Run the benchmarks (see the module docstring)."""
    ap = argparse.ArgumentParser(prog="python -m benchmarks.bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=5000, help="notifications in each saturated run (5,000)")
    ap.add_argument("--rate", type=float, default=100.0, help="offered load of the latency run, per second (100)")
    ap.add_argument("--duration", type=float, default=60.0, help="seconds of the latency run (60)")
    ap.add_argument("--raw-count", type=int, default=100_000, help="records through the raw pass-through (100,000)")
    ap.add_argument("--faust-count", type=int, default=100_000,
                    help="records through the faust read floor (100,000); 0 skips it")
    ap.add_argument("--micro-count", type=int, default=1000, help="notifications in the micro-benchmark (1,000)")
    ap.add_argument("--profile-seconds", type=float, default=15.0, help="py-spy duration; 0 skips the profile (15)")
    ap.add_argument("--rebalance-count", type=int, default=3000, help="notifications in the rebalance run; 0 skips")
    ap.add_argument("--workers", type=int, default=2, help="workers in the scale-out run; 1 skips it (2)")
    ap.add_argument("--batch-size", type=int, default=None, help="MASH_BATCH_SIZE for the workers (default 500)")
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--national", action="store_true",
                    help="England's mix of 153 authorities (spread over every partition) instead of the seeds' three")
    ap.add_argument("--keep", action="store_true", help="keep each run's topics and worker stores (deleted by default)")
    ap.add_argument("--no-append", action="store_true", help=f"do not append the results to {DOC.relative_to(ROOT)}")
    args = ap.parse_args(argv)
    progress = _Progress()
    started = datetime.now(UTC)
    settings = Settings()
    header = [f"### {started:%Y-%m-%d %H:%M} UTC", "",
              f"- commit {_commit()}; MASH_BATCH_SIZE {args.batch_size or settings.batch_size}; fetch "
              f"{settings.fetch_min_bytes} B / {settings.fetch_max_wait_ms} ms; mix: "
              f"{'national (153 authorities)' if args.national else 'regional (the three seed authorities)'}",
              f"- {_versions()}", f"- machine: {_machine()}",
              f"- command: `{' '.join(['python -m benchmarks.bench', *(argv if argv is not None else sys.argv[1:])])}`",
              ""]
    lines: list[str] = []

    def show(block: list[str]) -> None:
        for line in block:
            print(line, flush=True)
        lines.extend(block)

    progress(f"raw ceiling: {args.raw_count:,} records")
    raw = asyncio.run(run_raw(settings, args.raw_count, progress))
    show(raw.lines())
    faust: FaustFloor | None = None
    if args.faust_count:
        progress(f"faust read floor: {args.faust_count:,} records")
        faust = run_faust_floor(settings, args.faust_count)
        show(faust.lines())
    progress(f"micro-benchmark: {args.micro_count:,} notifications in-process")
    micro = asyncio.run(run_micro(args.micro_count, args.seed))
    show(micro.lines())
    mix = {"national": args.national}
    records = night(args.count, args.seed, **mix)
    kw = {"batch_size": args.batch_size, "progress": progress, "keep": args.keep, **mix}
    sat = run_pipeline("saturated 1 worker", records, **kw)
    show(sat.lines())
    show(_floor(raw, micro, sat, faust).lines())
    fixed_count = int(args.rate * args.duration)
    fixed = run_pipeline(f"fixed {args.rate:g}/s", night(fixed_count, args.seed + 1, **mix), rate=args.rate,
                         **kw)
    show(fixed.lines())
    scale = rebalance = None
    if args.workers > 1:
        scale = run_pipeline(f"scaleout {args.workers} workers", records, workers=args.workers,
                             **kw)
        show(scale.lines())
        show([f"scale-out speed-up: {scale.per_s / sat.per_s:.2f}x ({sat.per_s:,.0f} -> {scale.per_s:,.0f}"
              " notifications/s)"])
        if args.rebalance_count:
            rebalance = run_pipeline("rebalance 2nd worker joins under load", night(args.rebalance_count,
                                                                                    args.seed + 2, **mix),
                                     workers=2, join_late=True, **kw)
            show(rebalance.lines())
    profile: Profile | None = None
    if args.profile_seconds > 0:
        count = max(3000, int(sat.per_s * (args.profile_seconds + 8)))
        prof_run = run_pipeline("profile", night(count, args.seed + 3, **mix), profile_s=args.profile_seconds,
                                **kw)
        show([f"profile run (py-spy attached, not a measurement): {prof_run.per_s:,.0f} notifications/s, "
              f"{prof_run.count:,} notifications"])
        if prof_run.profile is not None and prof_run.profile.exists():
            profile = summarise(prof_run.profile)
            show(profile.lines())
            show([f"  raw profile: {prof_run.profile.relative_to(ROOT)}"])
        else:
            show(["profile: py-spy wrote nothing", *prof_run.notes])
    took = time.monotonic() - progress.t0
    show([f"whole benchmark: {took / 60:.1f} min"])
    if not args.no_append:
        _append([*header, *_table(raw, sat, fixed, scale, rebalance, micro, faust), "", "```text", *lines, "```"])
        progress(f"appended to {DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
