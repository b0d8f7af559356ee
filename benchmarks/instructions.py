"""Instructions per notification in the worker's three stages, counted by valgrind: a deterministic measure for
A/B comparisons of the Python core on a shared or noisy machine, where process time moves by a third from one
run to the next and an instruction count by about 0.1%.

The three real stages (`IntakeStage`, `RouterStage`, `SlaStage`, as `benchmarks.micro` runs them, no Kafka) go
over N simulated notifications of one fixed night (seed 7, 2026-12-01 09:00 UTC) under `valgrind --tool=cachegrind`
twice, with N = small and N = large; the difference divided by the difference in N is what one more notification
costs, with interpreter start-up, imports and warm-up cancelled out. PYTHONHASHSEED is fixed so set and dict
orders, and so the work done, are the same from run to run.

    .venv/bin/python -m benchmarks.instructions [--small 200] [--large 600]

Compare two trees by running it in each (e.g. a `git worktree` of the older commit). About a minute per tree.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime

__all__ = ["instructions_per_notification"]

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
SEED = 7


async def _run_stages(count: int) -> None:
    """The three stages once over `count` notifications of the fixed night (the process valgrind measures)."""
    from benchmarks import micro
    from broker.reference import DEFAULT_SCHOOLS, load_schools
    from broker.run import last_night
    from broker.topics import catalogue
    from producers.simulator import simulate_night

    micro._logging(20)
    codec = await micro._prepare()
    cat = catalogue(micro.PREFIX)
    records = simulate_night(last_night(NOW), SEED, count)
    topics = [cat.intake(micro._agency(r)) for r in records]
    values = [codec.encode(r, t) for r, t in zip(records, topics, strict=True)]
    await micro._stages(codec, records, topics, values, load_schools(DEFAULT_SCHOOLS), NOW)


def _count(valgrind: str, n: int) -> int:
    """Instructions valgrind counts for one run of the stages over `n` notifications."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "cachegrind.out")
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        cmd = [valgrind, "--tool=cachegrind", "--cache-sim=no", f"--cachegrind-out-file={out}",
               sys.executable, "-m", "benchmarks.instructions", "--inner", str(n)]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"valgrind run over {n} notifications failed:\n{done.stderr[-2000:]}")
        found = re.search(r"^summary:\s+(\d+)", open(out).read(), re.MULTILINE)  # noqa: SIM115 - read once
        if found is None:
            raise SystemExit("valgrind wrote no instruction summary")
        return int(found.group(1))


def instructions_per_notification(small: int = 200, large: int = 600) -> float:
    """What one more notification costs in instructions through the three stages."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise SystemExit("valgrind is not installed: this measure needs it (apt install valgrind)")
    low, high = _count(valgrind, small), _count(valgrind, large)
    return (high - low) / (large - small)


def main() -> None:
    """Print instructions per notification (or, with --inner, be the measured process)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=200)
    parser.add_argument("--large", type=int, default=600)
    parser.add_argument("--inner", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner is not None:
        asyncio.run(_run_stages(args.inner))
        return
    print(f"counting instructions over {args.small} and {args.large} notifications (about a minute)...", flush=True)
    per = instructions_per_notification(args.small, args.large)
    print(f"instructions per notification, three stages: {per:,.0f}")


if __name__ == "__main__":
    main()
