"""`make soak`: the pipeline at a steady rate for a long time (default 50 notifications/s for an hour), the memory
of each process sampled, and a verdict on whether it stays flat. Not a CI test.

A fresh topic prefix and one worker process; the simulated mix is generated and encoded a minute at a time (so the
driver's own memory stays small) and published with the SDK's producer settings at the steady rate. Every
`--every` seconds the resident set size (VmRSS) of the worker, Kafka and the schema registry is sampled. The verdict
fits a straight line through the second half of each process's samples (after warm-up, caches and JVM heaps have
grown to their working size): "flat" when it rises less than `--tolerance` MB per 10 minutes. The result is printed
and appended to docs/benchmarks.md ("Soak runs").

    .venv/bin/python -m benchmarks.soak [--rate 50] [--minutes 60] [--every 30] [--no-append]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from benchmarks._harness import (
    ROOT,
    delete_prefix,
    encode_night,
    fresh_settings,
    produce,
    rss_kb,
    service_pid,
    start_worker,
    stop,
    topic_ends,
    wait_ready,
)
from broker.run import last_night
from broker.settings import Settings
from broker.topics import catalogue
from producers.simulator import simulate_night

__all__ = ["Soak", "main", "slope_mb_per_10min"]

DOC = ROOT / "docs" / "benchmarks.md"


def _tree_rss_kb(pid: int | None) -> int:
    """RSS of a process and its children (deploy/kafka.sh records the shell that runs java)."""
    if pid is None:
        return 0
    total = rss_kb(pid)
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    return total + sum(_tree_rss_kb(int(c)) for c in children)


def slope_mb_per_10min(samples: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MB) samples, in MB per 10 minutes (0 with fewer than 2 samples)."""
    if len(samples) < 2:
        return 0.0
    n = len(samples)
    mx = sum(t for t, _ in samples) / n
    my = sum(m for _, m in samples) / n
    var = sum((t - mx) ** 2 for t, _ in samples)
    if var == 0:
        return 0.0
    return sum((t - mx) * (m - my) for t, m in samples) / var * 600


@dataclass
class Soak:
    """The samples of one soak run: process -> [(seconds since start, MB)]."""

    rate: float
    minutes: float
    prefix: str
    samples: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    published: int = 0
    forwarded: int = 0

    def add(self, t: float, name: str, kb: int) -> None:
        """One sample."""
        self.samples.setdefault(name, []).append((t, kb / 1024))

    def lines(self, tolerance: float) -> list[str]:
        """The table and the verdict."""
        out = [f"soak: {self.published:,} notifications at {self.rate:g}/s over {self.minutes:g} min "
               f"(prefix {self.prefix}); forwarded by intake {self.forwarded:,}",
               f"  {'process':10} {'first MB':>9} {'max MB':>8} {'last MB':>8} {'slope, 2nd half':>18}  verdict"]
        for name, pts in self.samples.items():
            half = pts[len(pts) // 2:]
            slope = slope_mb_per_10min(half)
            verdict = "flat" if slope < tolerance else "GROWING"
            out.append(f"  {name:10} {pts[0][1]:9.0f} {max(m for _, m in pts):8.0f} {pts[-1][1]:8.0f} "
                       f"{slope:+11.1f} MB/10min  {verdict}")
        return out


async def _run(args: argparse.Namespace, soak: Soak, s: Settings, worker_pid: int) -> None:
    start = time.monotonic()
    minute = 0
    while time.monotonic() - start < args.minutes * 60:
        records = simulate_night(last_night(datetime.now(UTC)), 7000 + minute, int(args.rate * 60))
        encoded = await encode_night(s, records)
        await produce(s, encoded, rate=args.rate)
        soak.published += len(encoded)
        minute += 1
        t = time.monotonic() - start
        for name, pid in (("worker", worker_pid), ("kafka", service_pid("kafka")),
                          ("registry", service_pid("registry"))):
            soak.add(t, name, _tree_rss_kb(pid))
        print(f"[{t:6.0f}s] published {soak.published:,}; worker {soak.samples['worker'][-1][1]:.0f} MB, "
              f"kafka {soak.samples['kafka'][-1][1]:.0f} MB", flush=True)


def main(argv: list[str] | None = None) -> None:
    """Run the soak and print (and append) the result."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=float, default=50.0, help="notifications per second (50)")
    ap.add_argument("--minutes", type=float, default=60.0, help="how long (60)")
    ap.add_argument("--tolerance", type=float, default=2.0, help="flat below this many MB per 10 minutes (2)")
    ap.add_argument("--no-append", action="store_true", help="do not append the result to docs/benchmarks.md")
    args = ap.parse_args(argv)
    s = fresh_settings("soak")
    log = ROOT / ".local" / "bench" / f"{s.topic_prefix}.soak.log"
    proc = start_worker(s, log, data_dir=str(ROOT / ".local" / "bench" / s.topic_prefix))
    soak = Soak(args.rate, args.minutes, s.topic_prefix)
    try:
        wait_ready(log, proc=proc)
        asyncio.run(_run(args, soak, s, proc.pid))
        time.sleep(10)  # let intake finish the last minute
        ends = asyncio.run(topic_ends(s))
        accepted = catalogue(s.topic_prefix).name("internal.accepted")
        soak.forwarded = sum(v for tp, v in ends.items() if tp.topic == accepted)
        assert proc.poll() is None, f"the worker exited ({proc.returncode}); see {log}"
    finally:
        stop(proc)
        asyncio.run(delete_prefix(s))
    lines = soak.lines(args.tolerance)
    print("\n".join(lines))
    if not args.no_append:
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        with DOC.open("a") as f:
            f.write(f"\n### Soak run, {stamp}\n\n```\n" + "\n".join(lines) + "\n```\n")


if __name__ == "__main__":
    main()
