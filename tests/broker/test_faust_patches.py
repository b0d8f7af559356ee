"""The worker's adjustments of faust's consumer (broker._faust_patches)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import faust
import pytest
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
    """faust's drain loop still hands each record over with `wait_first(callback, suspend_flow.wait())` and then
    sets the read offset, exactly once, so the rewrite can replace both (else the worker refuses to start)."""
    rewritten = _faust_patches.delivery_target()
    assert rewritten is not None
    assert "_mash_delivered = await self._mash_hand_over(callback, message)" in rewritten
    assert "if _mash_delivered and _mash_seen == (" in rewritten
    assert "set_read_offset(tp, offset)" not in rewritten.replace("): set_read_offset(tp, offset)", "")


class _Probe:
    """faust's (patched) drain loop over one fetch of `count` records of partition t/0, with no broker: the
    consumer's thread-side seek is a no-op, so `seek` only does what faust's base consumer does itself."""

    def __init__(self, name: str, *, count: int = 3, direct: bool = True) -> None:
        _faust_patches.patch_drain(direct=direct)
        self.app = faust.App(name, broker="kafka://127.0.0.1:9", web_enabled=False)
        self.consumer: Any = self.app.consumer
        self.fetcher = SimpleNamespace(_stopped=asyncio.Event())
        self.delivered: list[int] = []
        self.handovers = 0
        self.count = count
        self.during: dict[int, Any] = {}  # offset -> coroutine function run while that record is handed over
        real_wait_first = self.consumer.wait_first

        async def wait_first(*coros: Any, **kw: Any) -> Any:
            self.handovers += 1
            return await real_wait_first(*coros, **kw)

        async def no_seek(tp: Any, offset: int) -> None:
            return None

        self.consumer.callback, self.consumer.getmany = self._callback, self._getmany
        self.consumer.wait_first, self.consumer._seek = wait_first, no_seek

    async def _callback(self, message: Any) -> None:
        if message.offset in self.during:
            await self.during[message.offset]()
        self.delivered.append(message.offset)

    def _getmany(self, timeout: float) -> Any:
        async def records() -> Any:
            for offset in range(self.count):
                yield TP("t", 0), SimpleNamespace(offset=offset, topic="t")
            self.fetcher._stopped.set()  # one fetch, then the loop ends
        return records()

    async def drain(self) -> None:
        await self.consumer._drain_messages(self.fetcher)

    def read_offset(self) -> Any:
        return self.consumer._read_offset[TP("t", 0)]


async def test_records_are_handed_over_directly_while_the_flow_is_active_and_by_faust_when_suspended() -> None:
    """While the flow is active every fetched record reaches the stream's callback in order without faust's
    per-record `wait_first`; while it is suspended (a rebalance), or with direct delivery off, faust's own
    hand-over runs for each record."""
    active = _Probe("drain-active")
    await active.drain()
    assert active.delivered == [0, 1, 2] and active.handovers == 0 and active.read_offset() == 2
    suspended = _Probe("drain-suspended")
    suspended.consumer.suspend_flow.set()
    await suspended.drain()
    assert suspended.handovers == 3
    off = _Probe("drain-off", direct=False)
    await off.drain()
    assert off.delivered == [0, 1, 2] and off.handovers == 3 and off.read_offset() == 2
    _faust_patches.patch_drain(direct=True)


@pytest.mark.parametrize("direct", [True, False])
async def test_a_seek_made_while_a_record_is_handed_over_is_kept(direct: bool) -> None:
    """A seek made while a record's hand-over waits (a full stream buffer) is not overwritten by that record's
    offset when the hand-over returns, so the records re-fetched from the seek are not dropped; the records
    after it set the read offset as before. The same with faust's own hand-over."""
    probe = _Probe(f"drain-seek-{direct}", count=4, direct=direct)

    async def seek_back() -> None:
        await probe.consumer.seek(TP("t", 0), 1)
        assert probe.read_offset() == 1

    probe.during[3] = seek_back  # the last record: nothing after it would move the read offset again
    try:
        await probe.drain()
    finally:
        _faust_patches.patch_drain(direct=True)
    assert probe.delivered == [0, 1, 2, 3]
    assert probe.read_offset() == 1


async def test_a_seek_of_another_partition_does_not_hold_the_read_offset_back() -> None:
    """A seek of another partition during a record's hand-over leaves that record's partition as faust keeps it:
    its read offset moves on to the record."""
    probe = _Probe("drain-other-seek", count=3)

    async def seek_elsewhere() -> None:
        await probe.consumer.seek(TP("other", 0), 5)

    probe.during[2] = seek_elsewhere
    await probe.drain()
    assert probe.delivered == [0, 1, 2] and probe.read_offset() == 2


async def test_a_seek_in_faust_s_consumer_thread_is_kept_too() -> None:
    """A seek through `seek_wait` (faust's seek in its consumer thread, which the worker uses) made during a
    hand-over is kept like one through `seek`."""
    probe = _Probe("drain-seek-wait", count=4)

    async def in_thread(partitions: dict[TP, int]) -> None:  # what faust's consumer thread does, without Kafka
        for tp, offset in partitions.items():
            probe.consumer._read_offset[tp] = offset

    probe.consumer._thread = SimpleNamespace(seek_wait=in_thread)

    async def seek_back() -> None:
        await probe.consumer.seek_wait({TP("t", 0): 1})

    probe.during[3] = seek_back
    await probe.drain()
    assert probe.delivered == [0, 1, 2, 3] and probe.read_offset() == 1


async def test_faust_s_seek_to_the_committed_offsets_is_kept_too() -> None:
    """faust's own seek after a rebalance (`perform_seek`, to the committed offsets) made during a hand-over is
    kept as well."""
    probe = _Probe("drain-perform-seek", count=3)

    async def committed() -> dict[Any, int]:
        return {TP("t", 0): 1}

    probe.consumer.seek_to_committed = committed

    async def rebalance() -> None:
        await probe.consumer.perform_seek()

    probe.during[2] = rebalance
    await probe.drain()
    assert probe.delivered == [0, 1, 2] and probe.read_offset() == 1


async def test_a_record_a_rebalance_kept_from_the_stream_is_not_marked_read() -> None:
    """A hand-over that a suspended flow (a rebalance) interrupts before the record reached the stream leaves the
    read offset at the last record delivered, so the record is delivered when it is fetched again (faust marked
    it read, and dropped it when re-fetched)."""
    probe = _Probe("drain-interrupted", count=3)
    probe.consumer.suspend_flow.set()

    async def full_buffer() -> None:
        await asyncio.Event().wait()  # never makes room: the suspension wins

    probe.during[2] = full_buffer
    await probe.drain()
    assert probe.delivered == [0, 1] and probe.read_offset() == 1


def test_the_worker_runs_on_faust_s_compiled_stream_iterator(monkeypatch: pytest.MonkeyPatch) -> None:
    """This install has faust's compiled stream iterator (which skips a stale generation's events without
    acknowledging them); without it the worker refuses to start with a readable reason."""
    import faust.streams

    from broker.errors import ConfigurationError

    _faust_patches.require_compiled_streams()
    monkeypatch.setattr(faust.streams, "_CStreamIterator", None)
    with pytest.raises(ConfigurationError, match="NO_CYTHON"):
        _faust_patches.require_compiled_streams()
