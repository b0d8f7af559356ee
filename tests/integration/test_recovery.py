"""A worker killed with SIGKILL mid-batch and restarted: nothing lost, no output doubled, chronology intact."""

from __future__ import annotations

import asyncio
import collections
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from broker.reader import read_topics
from broker.run import last_night, publish_night
from broker.settings import Settings
from schemas.models import AuditEvent, AuditRecord, FrontDoorReferral, Recall
from tests.integration.conftest import WorkerProcess, delete_topics, fresh_settings, read_decoded, wait_for

pytestmark = pytest.mark.integration

COUNT = 400


@pytest.fixture(scope="module")
def own_settings(kafka: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A prefix of its own, so counts here are exact."""
    s = fresh_settings(kafka, tmp_path_factory.mktemp("killed-worker"), "k")
    yield s
    asyncio.run(delete_topics(s))


def disclosed(got: list) -> set:  # type: ignore[type-arg]
    """Notification ids with at least one disclosed output."""
    return {r.notification_id for _, r in got if isinstance(r, AuditRecord) and r.event is AuditEvent.DISCLOSED}


async def test_sigkill_mid_batch(own_settings: Settings, tmp_path: Path) -> None:
    """SIGKILL during a 400-notification night, restart: every notification routed, each output id once in
    content, and each child's chronology lists each of its notifications exactly once."""
    s = own_settings
    worker = WorkerProcess(s, tmp_path / "worker.log")
    worker.start()
    try:
        await publish_night(s, count=COUNT, seed=99, start=last_night(datetime.now(UTC)).isoformat())
        await wait_for(s, ("audit",), lambda g: len(disclosed(g)) >= 60, timeout=120)
        worker.kill()
        killed_at = len(disclosed(await read_decoded(s, "audit")))
        assert killed_at < COUNT, "the kill must land mid-batch"
        worker.start()
        await wait_for(s, ("audit",), lambda g: len(disclosed(g)) >= COUNT, timeout=240)
    finally:
        worker.stop()

    outputs = await read_decoded(s, "route.frontdoor", "route.encompass", "route.dvtriage", "route.marac",
                                 "route.emergency-duty", "route.cumulative-concern")
    copies: dict[str, set[bytes]] = collections.defaultdict(set)
    physical: collections.Counter[str] = collections.Counter()
    for consumed, record in outputs:
        oid = str(record.model_dump().get(next(iter(type(record).model_fields))))
        copies[oid].add(consumed.value or b"")
        physical[oid] += 1
    assert all(len(v) == 1 for v in copies.values()), "a redelivered output differs from its first copy"
    referrals = [r for _, r in outputs if isinstance(r, FrontDoorReferral)]
    per_notification = collections.Counter(r.notification_id for r in {r.referral_id: r for r in referrals}.values())
    assert max(per_notification.values()) == 1, "a notification has two different front door referrals"
    print(f"\nkilled after {killed_at}/{COUNT} routed; {len(copies)} distinct outputs, "
          f"{sum(physical.values()) - len(copies)} redelivered copies (same id, same bytes)")

    # Chronology: the latest value per key of the children table's changelog.
    changelog = f"{s.topic_prefix}-worker-children-changelog"
    latest: dict[str, dict] = {}  # type: ignore[type-arg]
    for rec in await read_topics(s.kafka_bootstrap, [changelog]):
        latest[json.loads(rec.key or b"null")] = json.loads(rec.value or b"null")
    for ref in {r.referral_id: r for r in referrals}.values():
        for c in ref.children:
            entries = latest[f"{ref.authority}|{c.child_key}"]["chronology"]
            ids = [e["notification_id"] for e in entries]
            assert ids.count(str(ref.notification_id)) == 1, "chronology lost or doubled an entry"
    assert not [r for _, r in outputs if isinstance(r, Recall)], "a plain night recalls nothing"
