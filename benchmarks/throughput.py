"""Throughput of one worker on the simulated mix, on the real broker (one saturated pipeline run; `make bench`
runs it with everything else and records the numbers in docs/benchmarks.md).

    .venv/bin/python -m benchmarks.throughput [count] [workers]
"""

from __future__ import annotations

from benchmarks.pipeline import main

if __name__ == "__main__":
    main()
