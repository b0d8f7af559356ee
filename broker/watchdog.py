"""Liveness of the stream worker: notice a partition with lag that makes no progress, and act.

Observed on faust-streaming 0.15.3 against Kafka 4.1: a worker restarted straight after a SIGKILL sometimes
stops delivering some assigned partitions while reporting itself ready (no error; consumer lag stays).
Measured: the stuck partitions' fetched-but-dropped records sit below faust's per-partition read offset,
which a fetch batch from before the post-recovery seek had advanced; `Consumer.perform_seek()` resets it,
and in the stalls we caught with it on, that re-seek alone got the partitions moving within two seconds.
The rule here is pure; the worker applies it on a timer while its agents are idle: first it re-seeks to
the committed offsets, and if the partition is still stuck it exits non-zero so its supervisor
(deploy/worker.sh, the tests' harness) starts a fresh process, which recovers from the changelogs.
At-least-once makes both steps safe (a re-seek re-reads from the committed offset; outputs are idempotent).

Two causes of such stalls are now handled where they arise (2026-12-07, docs/benchmarks.md "Seventh pass"): a
seek overwritten by a record's hand-over still in flight (`broker._faust_patches`), and faust's flow-control
resume after a rebalance clearing the stream buffers of records fetched after its seek (`broker.app`, re-seek on
resume). Rebalance benchmark runs stalled in 5 of 14 before and 1 of 50 after; that one's cause is not known,
so this watchdog stays.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum

__all__ = ["Action", "Stall", "StallWatch"]


class Action(str, Enum):
    """What the worker should do about its partitions now."""

    NOTHING = "NOTHING"
    RESEEK = "RESEEK"
    EXIT = "EXIT"


@dataclass(frozen=True)
class Stall:
    """A partition with lag whose committed offset has not moved."""

    partition: object
    lag: int
    seconds: float


@dataclass
class StallWatch:
    """Tracks (processing position, when it last moved) per partition; `check` says what to do."""

    patience: float = 45.0
    _seen: dict[object, tuple[int | None, float]] = field(default_factory=dict)
    _reseeked_at: float | None = None

    def check(
        self, now: float, committed: Mapping[object, int | None], highwaters: Mapping[object, int]
    ) -> tuple[Action, list[Stall]]:
        """Given each partition's committed offset and high watermark at `now` (monotonic seconds)."""
        stalls = []
        for tp, hw in highwaters.items():
            pos = committed.get(tp)
            lag = hw - (pos or 0)
            last = self._seen.get(tp)
            if last is None or last[0] != pos or lag <= 0:  # position = next offset to process
                self._seen[tp] = (pos, now)
                continue
            if now - last[1] > self.patience:
                stalls.append(Stall(tp, lag, now - last[1]))
        for tp in list(self._seen):
            if tp not in highwaters:
                del self._seen[tp]
        if not stalls:
            self._reseeked_at = None
            return Action.NOTHING, []
        if self._reseeked_at is None:
            self._reseeked_at = now
            return Action.RESEEK, stalls
        if now - self._reseeked_at > self.patience:
            return Action.EXIT, stalls
        return Action.NOTHING, stalls
