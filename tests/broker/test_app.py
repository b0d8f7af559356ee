"""The worker's wiring around faust (broker.app): re-seeking the input partitions when faust's flow resumes."""

from __future__ import annotations

import asyncio
from typing import Any

import faust
from aiokafka.errors import IllegalStateError
from faust.types import TP
from mode.utils.queues import FlowControlEvent, FlowControlQueue

from broker import app as worker_app


class _Consumer:
    """What `_Progress.reseek` uses of faust's consumer: the assignment and `seek_wait` (faust's seek in its
    consumer thread)."""

    def __init__(self, assigned: list[TP], revoked: frozenset[TP] = frozenset()) -> None:
        self.assigned = assigned
        self.revoked = revoked
        self.sought: dict[TP, int] = {}

    def assignment(self) -> set[TP]:
        return set(self.assigned)

    async def seek_wait(self, partitions: dict[TP, int]) -> None:
        for tp, offset in partitions.items():
            if tp in self.revoked:
                raise IllegalStateError("not assigned")
            self.sought[tp] = offset


def _progress(committed: dict[TP, int]) -> Any:
    progress = worker_app._Progress("127.0.0.1:1", "probe")
    asked: list[list[TP]] = []

    async def group_commit(tps: list[TP], consumer: Any) -> dict[TP, int]:
        asked.append(sorted(tps))
        return {tp: committed[tp] for tp in tps}

    progress.committed = group_commit  # type: ignore[method-assign]  # the group's offsets, without Kafka
    progress.asked = asked  # type: ignore[attr-defined]
    return progress


async def test_reseek_puts_each_input_partition_at_its_next_offset_to_process() -> None:
    """A partition the offset guard tracks goes to the guard's next offset, one it does not yet track to the
    group's commit (one lookup for all of them); changelog partitions are left to faust and a partition revoked
    meanwhile is skipped."""
    known, fresh, gone = TP("p.internal.accepted", 3), TP("p.route.frontdoor", 1), TP("p.intake.police", 0)
    changelog = TP("p-worker-people-changelog", 3)
    progress = _progress({fresh: 40, gone: 7})
    progress.guard.start(known, 600)
    progress.guard.done(known, 615)
    consumer = _Consumer([known, fresh, gone, changelog], revoked=frozenset({gone}))
    assert await progress.reseek(consumer) == 2
    assert consumer.sought == {known: 616, fresh: 40}
    assert progress.asked == [sorted([fresh, gone])]


async def test_records_the_resume_clears_are_read_again() -> None:
    """faust's flow-control resume empties the stream buffers (the records in them are dropped unacknowledged);
    with the worker's hook every resume is followed by a re-seek, and the buffer is still cleared as before."""
    flow = FlowControlEvent(initially_suspended=True)
    buffer: FlowControlQueue[str] = FlowControlQueue(maxsize=10, flow_control=flow, clear_on_resume=True)
    buffer.put_nowait("a record fetched after faust's seek")
    calls: list[str] = []

    async def reseek() -> None:
        calls.append("reseek")

    worker_app._reseek_on_resume(flow, reseek)
    flow.resume()
    assert buffer.empty() and flow.is_active()
    await asyncio.sleep(0)
    assert calls == ["reseek"]
    flow.suspend()
    flow.resume()
    await asyncio.sleep(0)
    assert calls == ["reseek", "reseek"]


def test_the_hook_wraps_the_apps_own_flow_control() -> None:
    """faust's recovery resumes `app.flow_control`: the same object on every access, so the hook is installed on
    the one faust uses."""
    app = faust.App("flow-probe", broker="kafka://127.0.0.1:9", web_enabled=False)
    assert app.flow_control is app.flow_control
    calls: list[str] = []

    async def reseek() -> None:
        calls.append("reseek")

    worker_app._reseek_on_resume(app.flow_control, reseek)
    app.flow_control.resume()  # no running loop: nothing delivered yet, nothing to re-seek
    assert calls == [] and app.flow_control.is_active()
