"""A production-like cluster survives losing a broker: three KRaft nodes (deploy/cluster.sh) with the production
topic profile (replication 3, min.insync.replicas 2, no unclean leader election), one worker, a few thousand
simulated notifications published through the SDK while node 2 is killed with SIGKILL and later restarted.

Counted afterwards from the topics themselves: every notification accepted and routed; every output the audit
says was disclosed is on its route topic (nothing acknowledged was lost); no output id twice with different
content on any route (a recipient's view, which keeps one record per output id, sees each once); the worker
never exited. Marker `cluster`; `make cluster-test` runs it alone."""

from __future__ import annotations

import asyncio
import collections
import os
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import pytest

from broker.admin import apply_topics, publish_schemas
from broker.run import last_night
from broker.settings import Settings
from broker.topics import INTAKE_TOPICS, ROUTE_TOPICS
from producers.sdk import AgencyClient
from producers.simulator import simulate_night
from schemas.models import AuditEvent, AuditRecord, Record
from schemas.registry import default_url
from tests.integration.conftest import ROOT, WorkerProcess, read_decoded

pytestmark = [pytest.mark.integration, pytest.mark.cluster]

CLUSTER = str(ROOT / "deploy" / "cluster.sh")
COUNT = int(os.environ.get("MASH_CLUSTER_TEST_COUNT", "1500"))
RATE = 75.0  # notifications per second offered: the kill lands mid-stream
VICTIM = 2


def _cluster(*args: str) -> str:
    return subprocess.run(["bash", CLUSTER, *args], check=True, cwd=ROOT, capture_output=True, text=True,
                          timeout=300).stdout.strip()


@pytest.fixture(scope="module")
def cluster(kafka: str) -> Iterator[str]:
    """Three fresh nodes (the registry stays on the project's single-node broker: the worker only needs its HTTP
    API); stopped and their data removed afterwards."""
    _cluster("reset")
    _cluster("start")
    try:
        yield _cluster("bootstrap")
    finally:
        _cluster("reset")


async def _publish(s: Settings, records: list[Record], kill_at: int, killed: list[float]) -> float:
    """Publish at RATE through the SDK (idempotent, acks=all); SIGKILL node VICTIM once `kill_at` are published."""
    clients = {a: AgencyClient(s, a) for a in INTAKE_TOPICS}
    for c in clients.values():
        await c.start()
    try:
        start = time.monotonic()
        for i, r in enumerate(records):
            if i == kill_at:
                await asyncio.to_thread(_cluster, "kill", str(VICTIM))
                killed.append(time.monotonic())
            await asyncio.sleep(max(0.0, start + i / RATE - time.monotonic()))
            await clients[r.envelope.source.agency_type].publish(r)  # type: ignore[attr-defined]
        return time.monotonic() - start
    finally:
        for c in clients.values():
            await c.stop()


async def _audited(s: Settings) -> tuple[set[UUID], set[UUID], dict[UUID, tuple[str, UUID | None]]]:
    """(accepted notification ids, notification ids with a disclosed output, disclosed output id -> route, nid)."""
    accepted, routed, disclosed = set(), set(), {}
    for _, rec in await read_decoded(s, "audit"):
        if not isinstance(rec, AuditRecord) or rec.notification_id is None:
            continue
        if rec.event is AuditEvent.ACCEPTED:
            accepted.add(rec.notification_id)
        elif rec.event is AuditEvent.DISCLOSED and rec.output_id is not None and rec.route is not None:
            routed.add(rec.notification_id)
            disclosed[rec.output_id] = (ROUTE_TOPICS[rec.route], rec.notification_id)
    return accepted, routed, disclosed


async def _wait_routed(s: Settings, ids: set[UUID], timeout: float) -> None:
    end = time.monotonic() + timeout
    while True:
        _, routed, _ = await _audited(s)
        if ids <= routed:
            return
        if time.monotonic() > end:
            raise AssertionError(f"{len(ids - routed)} of {len(ids)} notifications not routed after {timeout:.0f} s")
        await asyncio.sleep(5)


def test_losing_a_broker_loses_nothing(cluster: str, tmp_path: Path) -> None:
    """SIGKILL of one of three brokers a third of the way through publishing, restarted at least 15 s later: work
    goes on with two brokers, every notification is routed, every disclosed output is on its route, no output id
    twice with different content, and the worker never stopped."""
    s = Settings(kafka_bootstrap=cluster, registry_url=default_url(), topic_prefix=f"k{os.getpid()}{int(time.time())}",
                 profile="cluster", worker_data_dir=str(tmp_path / "worker"),
                 identity_secret="cluster-test-secret")  # type: ignore[arg-type]
    asyncio.run(apply_topics(s))
    asyncio.run(publish_schemas(s))
    records = simulate_night(last_night(datetime.now(UTC)), 4242, COUNT)
    ids = {r.envelope.notification_id for r in records}  # type: ignore[attr-defined]
    worker = WorkerProcess(s, tmp_path / "worker.log")
    worker.start()
    try:
        _wait_ready(tmp_path / "worker.log")
        killed: list[float] = []
        t0 = time.monotonic()
        published_s = asyncio.run(_publish(s, records, COUNT // 3, killed))
        time.sleep(max(0.0, 15.0 - (time.monotonic() - killed[0])))
        _, routed_while_down, _ = asyncio.run(_audited(s))  # with node VICTIM still down
        _cluster("restart", str(VICTIM))
        restarted = time.monotonic()
        asyncio.run(_wait_routed(s, ids, timeout=420))
        done = time.monotonic()
        assert worker.proc is not None and worker.proc.poll() is None, "the worker exited"
        assert worker.restarts == 0, "the worker was restarted by its supervisor"
    finally:
        worker.stop()
    accepted, routed, disclosed = asyncio.run(_audited(s))
    by_route: dict[str, dict[str, list[Record]]] = collections.defaultdict(lambda: collections.defaultdict(list))
    for consumed, rec in asyncio.run(read_decoded(s, *ROUTE_TOPICS.values())):
        short = consumed.topic.removeprefix(s.topic_prefix + ".")
        by_route[short][str(next(iter(rec.model_dump().values())))].append(rec)
    on_routes = {UUID(oid) for recs in by_route.values() for oid in recs}
    twice = sum(1 for recs in by_route.values() for v in recs.values() if len(v) > 1)
    conflicting = sum(1 for recs in by_route.values() for v in recs.values() if any(x != v[0] for x in v[1:]))
    missing = [oid for oid, (short, _) in disclosed.items() if str(oid) not in by_route[short]]
    print(f"\ncluster: {COUNT} notifications published in {published_s:.0f} s; node {VICTIM} killed after "
          f"{killed[0] - t0:.0f} s, restarted {restarted - killed[0]:.0f} s later ({len(routed_while_down & ids)} "
          f"routed by then, on two brokers); all routed "
          f"{done - restarted:.0f} s after the restart; accepted {len(accepted & ids)}, routed {len(routed & ids)}; "
          f"{len(disclosed)} disclosed outputs, {len(on_routes)} distinct output ids on the routes, missing "
          f"{len(missing)}, same id twice {twice} (conflicting {conflicting}); per route "
          + ", ".join(f"{k} {len(v)}" for k, v in sorted(by_route.items())))
    assert ids <= accepted and ids <= routed
    assert len(routed_while_down & ids) > COUNT // 3, "nothing was routed while the broker was down"
    assert not missing, f"{len(missing)} disclosed outputs are not on their route"
    assert conflicting == 0


def _wait_ready(log: Path, timeout: float = 180.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if log.exists() and "worker ready" in log.read_text(errors="replace"):
            return
        time.sleep(0.5)
    raise AssertionError(f"worker not ready after {timeout:.0f} s:\n{log.read_text(errors='replace')[-3000:]}")
