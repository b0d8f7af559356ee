"""Fuzzed intake on the real broker: every bad record dead-lettered exactly once, every valid one accepted.

`MASH_FUZZ_COUNT` raises the count (the issue's long run is `mash fuzz --count 10000` against a running worker).
"""

from __future__ import annotations

import os

import pytest

from broker.settings import Settings
from mash.fuzz import run_fuzz
from tests.integration.conftest import WorkerProcess

pytestmark = pytest.mark.integration
COUNT = int(os.environ.get("MASH_FUZZ_COUNT", "300"))


async def test_every_fuzzed_record_has_exactly_one_outcome(settings: Settings, worker: WorkerProcess) -> None:
    """A few hundred fuzzed records (every bad case, 10% valid) through the worker: nothing lost, nothing doubled."""
    report = await run_fuzz(settings, count=COUNT, seed=2026, timeout=max(240.0, COUNT / 10))
    summary = "\n".join(report.lines())
    assert report.bad_sent == COUNT - COUNT // 10 and report.valid_sent == COUNT // 10
    assert report.dead_lettered_once == report.bad_sent, summary
    assert report.dead_lettered_more == 0 and report.bad_accepted == 0, summary
    assert report.valid_accepted == report.valid_sent and report.valid_dead_lettered == 0, summary
    assert report.ok
