"""The worker's adjustments of faust's consumer (broker._faust_patches)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import faust
from faust.types import TP

from broker import _faust_patches


def test_the_fetch_settings_still_have_their_targets() -> None:
    """faust still builds its consumer in the wrapped factory and aiokafka still reads the two fetch attributes
    when it starts (else the worker refuses to start)."""
    assert _faust_patches.fetch_targets_exist()


async def test_consumers_faust_builds_fetch_with_the_tuned_values() -> None:
    """After `tune_fetch`, the consumer faust's consumer thread builds carries the tuned fetch wait and size, and
    a second call replaces them (one wrapper, not two)."""
    app = faust.App("fetch-probe", broker="kafka://127.0.0.1:9", web_enabled=False)
    thread = app.consumer._thread  # faust's consumer thread, whose factory the patch wraps
    try:
        _faust_patches.tune_fetch(min_bytes=1234, max_wait_ms=56)
        consumer = thread._create_worker_consumer(app.transport)
        assert (consumer._fetch_min_bytes, consumer._fetch_max_wait_ms) == (1234, 56)
        _faust_patches.tune_fetch(min_bytes=4096, max_wait_ms=100)
        again = thread._create_worker_consumer(app.transport)
        assert (again._fetch_min_bytes, again._fetch_max_wait_ms) == (4096, 100)
    finally:
        _faust_patches.tune_fetch(min_bytes=4096, max_wait_ms=100)


def test_the_drain_loop_still_has_its_per_record_hand_over() -> None:
    """faust's drain loop still hands each record over with `wait_first(callback, suspend_flow.wait())`, exactly
    once, so the direct delivery can rewrite it (else the worker refuses to start with it on)."""
    rewritten = _faust_patches.delivery_target()
    assert rewritten is not None
    assert "await (callback(message) if not self.suspend_flow.is_set()" in rewritten


async def _drain(suspended: bool) -> tuple[list[int], int]:
    """Run faust's (patched) drain loop over one fetch of three records: (offsets delivered, wait_first calls)."""
    app = faust.App(f"drain-probe-{suspended}", broker="kafka://127.0.0.1:9", web_enabled=False)
    consumer: Any = app.consumer
    fetcher = SimpleNamespace(_stopped=asyncio.Event())
    delivered: list[int] = []
    handovers = [0]

    async def callback(message: Any) -> None:
        delivered.append(message.offset)

    def getmany(timeout: float) -> Any:
        async def records() -> Any:
            for offset in range(3):
                yield TP("t", 0), SimpleNamespace(offset=offset, topic="t")
            fetcher._stopped.set()  # one fetch, then the loop ends
        return records()

    real_wait_first = consumer.wait_first

    async def wait_first(*coros: Any, **kw: Any) -> Any:
        handovers[0] += 1
        return await real_wait_first(*coros, **kw)

    consumer.callback, consumer.getmany, consumer.wait_first = callback, getmany, wait_first
    if suspended:
        consumer.suspend_flow.set()
    _faust_patches.deliver_directly()
    await consumer._drain_messages(fetcher)
    return delivered, handovers[0]


async def test_records_are_handed_over_directly_while_the_flow_is_active_and_by_faust_when_suspended() -> None:
    """While the flow is active every fetched record reaches the stream's callback in order without faust's
    per-record `wait_first`; while it is suspended (a rebalance) faust's own hand-over runs for each record."""
    delivered, handovers = await _drain(suspended=False)
    assert delivered == [0, 1, 2] and handovers == 0
    _, handovers = await _drain(suspended=True)
    assert handovers == 3
