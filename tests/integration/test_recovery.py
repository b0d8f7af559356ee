"""A worker SIGKILLed again and again (once with its local table store wiped and rebuilt from the changelogs)
while routing a night and then AMENDs of all of it: nothing lost, no output doubled, everything recalled or
replaced."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from benchmarks.crash import drill
from broker.settings import Settings
from producers.simulator import simulate_night
from tests.integration.conftest import delete_topics, fresh_settings

pytestmark = pytest.mark.integration

COUNT = 300


@pytest.fixture(scope="module")
def own_settings(kafka: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A prefix of its own, so counts here are exact."""
    s = fresh_settings(kafka, tmp_path_factory.mktemp("killed-worker"), "k")
    yield s
    asyncio.run(delete_topics(s))


async def test_sigkills_and_a_store_rebuild_lose_nothing(own_settings: Settings, tmp_path: Path) -> None:
    """Four SIGKILLs (the second with the store wiped) over 300 notifications and their 300 AMENDs: every
    output id has one content, and every output of an original is recalled or replaced by its AMEND."""
    records = simulate_night(datetime.now(UTC).replace(microsecond=0) - timedelta(days=2), 99, COUNT)
    report = await drill(own_settings, records, tmp_path / "worker.log", kills=4, wipe_at=2, timeout=400)
    assert report.kills == 4
    differing = [oid for oid, copies in report.outputs.items() if len(copies) > 1]
    assert differing == [], "a redelivered output differs from its first copy"
    assert report.uncovered == [], "an original's output was neither recalled nor replaced"
    assert report.kinds["FrontDoorReferral"] > 0 and report.kinds["Recall"] > 0
