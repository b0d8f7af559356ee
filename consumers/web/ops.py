"""The operations dashboard (OPERATIONS accounts only; every other role gets the 403 page): SLA compliance per
route per day, items at risk now, breaches today, dead letters by reason with a once-only redrive, consumer-lag
status per group, calendar-unverified deadlines per authority. Charts are inline SVG drawn on the server; the
page asks the browser to reload it every REFRESH_SECONDS (a `Refresh` header: the CSP allows no inline script).

Kafka is reached through an `OpsBackend` on `app.state.ops_backend` (made from the MASH_ environment on first
use; tests install their own): it re-publishes a dead letter's raw key and value (acks=all) and samples consumer
groups' committed offsets and high-water marks. Lag is judged by `broker.lag` over the samples this process took
on earlier page loads (a window in memory: it starts empty when the app starts, and its resolution is how often
someone has the page open).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from broker.lag import Evaluation, LagBook, LagStatus
from broker.logs import get_logger
from consumers.auth import audit
from consumers.ops_view import Dashboard, claim_redrive, dashboard, finish_redrive, release_redrive
from consumers.roles import Principal, Role
from consumers.web.common import AppState, check_csrf, page, require, state_of
from schemas.kafka_auth import KafkaAuth

__all__ = ["KafkaOpsBackend", "LagRow", "OpsBackend", "bar_chart", "install", "router"]

log = get_logger("consumers.ops")
router = APIRouter(prefix="/operations")
operations = Depends(require(Role.OPERATIONS))
REFRESH_SECONDS = 30
KIND = "dead_letter"
Sample = tuple[str, str, int, int | None, int]  # group, topic, partition, committed (None: never), high-water mark
_SEVERITY = {LagStatus.OK: 0, LagStatus.WARN: 1, LagStatus.STALLED: 2, LagStatus.STOPPED: 3}


class OpsBackend(Protocol):
    """What the dashboard needs from Kafka."""

    prefix: str
    book: LagBook

    async def publish(self, topic: str, key: bytes | None, value: bytes) -> tuple[int, int]:
        """Send raw bytes (acks=all); returns (partition, offset)."""
        ...

    async def lag_samples(self) -> list[Sample]:
        """Committed offsets and high-water marks of this deployment's consumer groups."""
        ...


@dataclass
class KafkaOpsBackend:
    """The backend on the real broker; groups are those named `<prefix>-...` or `<prefix>....`."""

    bootstrap: str
    prefix: str
    timeout_seconds: float = 10.0
    book: LagBook = field(default_factory=lambda: LagBook(size=10, min_distance=timedelta(seconds=5)))
    auth: KafkaAuth = field(default_factory=KafkaAuth)

    async def publish(self, topic: str, key: bytes | None, value: bytes) -> tuple[int, int]:
        """One producer per redrive (they are rare), idempotent, acks=all."""
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all", enable_idempotence=True,
                                    **self.auth.aiokafka(),
                                    request_timeout_ms=int(self.timeout_seconds * 1000))
        await producer.start()
        try:
            meta = await asyncio.wait_for(producer.send_and_wait(topic, value=value, key=key), self.timeout_seconds)
        finally:
            await producer.stop()
        return int(meta.partition), int(meta.offset)

    async def _samples(self) -> list[Sample]:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, **self.auth.aiokafka())
        await admin.start()
        try:
            groups = sorted(str(g[0]) for g in await admin.list_consumer_groups()
                            if str(g[0]).startswith((f"{self.prefix}-", f"{self.prefix}.")))
            committed = {g: await admin.list_consumer_group_offsets(g) for g in groups}
        finally:
            await admin.close()
        tps = sorted({tp for offsets in committed.values() for tp in offsets}, key=lambda t: (t.topic, t.partition))
        if not tps:
            return []
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False, **self.auth.aiokafka())
        await consumer.start()
        try:
            ends = await consumer.end_offsets(list(tps))
        finally:
            await consumer.stop()
        out: list[Sample] = []
        for group, offsets in committed.items():
            for tp, meta in sorted(offsets.items(), key=lambda kv: (kv[0].topic, kv[0].partition)):
                out.append((group, tp.topic, tp.partition, meta.offset if meta.offset >= 0 else None,
                            int(ends.get(TopicPartition(tp.topic, tp.partition), 0))))
        return out

    async def lag_samples(self) -> list[Sample]:
        """One sample of every partition of every group (bounded by the timeout)."""
        return await asyncio.wait_for(self._samples(), self.timeout_seconds)


def install(app: object, backend: OpsBackend) -> None:
    """Use this backend (tests; otherwise one is made from the MASH_ environment on first use)."""
    app.state.ops_backend = backend  # type: ignore[attr-defined]


def backend_of(request: Request) -> OpsBackend:
    """The app's backend, made from the MASH_ environment the first time it is needed."""
    backend: OpsBackend | None = getattr(request.app.state, "ops_backend", None)
    if backend is None:
        from broker.settings import Settings

        settings = Settings()
        backend = KafkaOpsBackend(settings.kafka_bootstrap, settings.topic_prefix, auth=settings.kafka_auth())
        install(request.app, backend)
    return backend


# ------------------------------------------------------------------------------------------------- lag
@dataclass(frozen=True)
class LagRow:
    """One consumer group: its worst partition's status, total lag, and the partitions not OK."""

    group: str
    status: LagStatus
    lag: int
    partitions: int
    problems: list[str]


def lag_rows(evaluations: dict[tuple[str, str, int], Evaluation]) -> list[LagRow]:
    """Per group, worst status first."""
    groups: dict[str, list[tuple[str, int, Evaluation]]] = {}
    for (group, topic, partition), ev in evaluations.items():
        groups.setdefault(group, []).append((topic, partition, ev))
    rows = []
    for group, parts in groups.items():
        worst = max((ev.status for _, _, ev in parts), key=_SEVERITY.__getitem__)
        problems = [f"{t}[{p}] {ev.status.value}: {ev.reason} (lag {ev.lag})" for t, p, ev in parts
                    if ev.status is not LagStatus.OK]
        rows.append(LagRow(group, worst, sum(ev.lag for _, _, ev in parts), len(parts), problems[:5]))
    return sorted(rows, key=lambda r: (-_SEVERITY[r.status], r.group))


async def sample_lag(backend: OpsBackend, now: datetime) -> tuple[list[LagRow], str]:
    """Take a sample, then judge every watched partition; the error's type when Kafka did not answer."""
    try:
        samples = await backend.lag_samples()
    except Exception as exc:  # the page still shows what the database knows
        log.warning("ops.lag_unavailable", error=type(exc).__name__)
        return [], type(exc).__name__
    for group, topic, partition, committed, high_water in samples:
        backend.book.observe((group, topic, partition), now, committed, high_water)
    seen = {(g, t, p) for g, t, p, _, _ in samples}
    backend.book.forget([k for k in backend.book.windows if k not in seen])
    return lag_rows(dict(backend.book.evaluate(now))), ""


# ----------------------------------------------------------------------------------------------- charts
@dataclass(frozen=True)
class Bar:
    """One bar of a horizontal bar chart, laid out (SVG user units)."""

    label: str
    value: int
    y: int
    width: int


def bar_chart(items: list[tuple[str, int]], width: int = 420) -> list[Bar]:
    """Horizontal bars scaled to the largest value."""
    top = max((v for _, v in items), default=0) or 1
    return [Bar(label, value, 26 * i, max(2, round(width * value / top)) if value else 0)
            for i, (label, value) in enumerate(items)]


# ------------------------------------------------------------------------------------------------ pages
def _board(state: AppState, principal: Principal, prefix: str) -> Dashboard:
    with state.db.session() as s, s.begin():
        board = dashboard(s, state.now(), prefix)
        audit(s, principal, "VIEW", "operations_dashboard", ["dashboard"], state.now())
    return board


@router.get("")
async def dashboard_page(request: Request, principal: Principal = operations) -> Response:
    """The dashboard; the browser reloads it every REFRESH_SECONDS."""
    state = state_of(request)
    backend = backend_of(request)
    board = await run_in_threadpool(_board, state, principal, backend.prefix)
    lag, lag_error = await sample_lag(backend, state.now())
    response = page(request, "ops_dashboard.html", principal=principal, board=board, lag=lag, lag_error=lag_error,
                    reasons=bar_chart(board.dead_letter_reasons), unverified=bar_chart(
                        [(a, n) for a, _, n in board.unverified]), refresh=REFRESH_SECONDS,
                    flash=request.query_params.get("redrive"), LagStatus=LagStatus)
    response.headers["Refresh"] = str(REFRESH_SECONDS)
    return response


def _finish(state: AppState, principal: Principal, dead_letter_id: str, partition: int, offset: int) -> None:
    with state.db.session() as s, s.begin():
        finish_redrive(s, dead_letter_id, partition, offset, state.now())
        audit(s, principal, "REDRIVE", KIND, [dead_letter_id], state.now())


@router.post("/dead-letters/{dead_letter_id}/redrive")
async def redrive(request: Request, dead_letter_id: str, csrf_token: str = Form(""),
                  principal: Principal = operations) -> Response:
    """Re-publish the dead letter's whole raw record to its source topic, once; audited."""
    check_csrf(principal, csrf_token)
    state = state_of(request)
    backend = backend_of(request)
    claim = await run_in_threadpool(claim_redrive, state.db, dead_letter_id[:36], principal.account_id, state.now(),
                                    backend.prefix)
    if claim.outcome == "missing":
        return page(request, "not_found.html", status_code=404, principal=principal)
    if claim.outcome != "claimed":
        return RedirectResponse(f"/operations?redrive={claim.outcome}#dead-letters", status_code=303)
    assert claim.value is not None
    try:
        partition, offset = await backend.publish(claim.topic, claim.key, claim.value)
    except Exception as exc:
        log.warning("ops.redrive_failed", dead_letter_id=dead_letter_id, error=type(exc).__name__)
        await run_in_threadpool(release_redrive, state.db, dead_letter_id)
        return RedirectResponse("/operations?redrive=failed#dead-letters", status_code=303)
    await run_in_threadpool(_finish, state, principal, dead_letter_id, partition, offset)
    log.info("ops.redriven", dead_letter_id=dead_letter_id, topic=claim.topic, partition=partition, offset=offset)
    return RedirectResponse("/operations?redrive=done#dead-letters", status_code=303)
