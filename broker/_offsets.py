"""The offset guard: a record is processed only in offset order, starting at the group's committed offset.

faust-streaming 0.15.3 commits the longest run of acknowledged offsets it holds, and it can commit past a
record it never delivered: it acknowledges a jump in fetched offsets as a "gap" of compacted records, and
its commit accepts a one-record hole at the head of the acknowledged run. Our input topics are neither
compacted nor transactional, so every offset is a record we must process. This guard keeps, per partition,
the next offset to process; the worker acknowledges only that offset (so faust's acknowledged run is always
contiguous from the committed offset), ignores a redelivery below it, and on a jump above it seeks the
partition back (faust's public `Consumer.seek_wait`, in its consumer thread) instead of processing out of order.

Pure: no Kafka. The worker supplies the committed offsets (read from the group) when it first sees a
partition after an assignment.
"""

from __future__ import annotations

from collections.abc import Container, Hashable, Sequence
from dataclasses import dataclass, field
from enum import Enum

__all__ = ["OffsetGuard", "Position", "Triage"]


class Position(str, Enum):
    """Where a delivered offset stands against the next offset to process."""

    NEXT = "NEXT"  # process it
    REDELIVERED = "REDELIVERED"  # already processed in this assignment: acknowledge, do nothing else
    AHEAD = "AHEAD"  # records before it were not delivered: seek back, do not process or acknowledge


@dataclass(frozen=True)
class Triage:
    """What to do with each record of a delivered batch (indices into it, in delivery order)."""

    ready: list[int] = field(default_factory=list)  # process (the guard already counts them done, provisionally)
    redelivered: list[int] = field(default_factory=list)  # acknowledge only
    stale: list[int] = field(default_factory=list)  # a partition no longer assigned: neither process nor acknowledge
    seeks: dict[Hashable, int] = field(default_factory=dict)  # partition -> the offset to seek back to


@dataclass
class OffsetGuard:
    """Next offset to process per partition (`tp` is any hashable partition id)."""

    _next: dict[Hashable, int] = field(default_factory=dict)
    _seeking: dict[Hashable, int] = field(default_factory=dict)

    def knows(self, tp: Hashable) -> bool:
        """Whether the partition's starting offset is known (else call `start` first)."""
        return tp in self._next

    def start(self, tp: Hashable, committed: int) -> None:
        """Begin tracking a partition at its committed offset (the next offset to read)."""
        self._next[tp] = committed
        self._seeking.pop(tp, None)

    def place(self, tp: Hashable, offset: int) -> Position:
        """Classify a delivered offset; a NEXT clears any pending seek."""
        expected = self._next[tp]
        if offset == expected:
            self._seeking.pop(tp, None)
            return Position.NEXT
        return Position.REDELIVERED if offset < expected else Position.AHEAD

    def needs_seek(self, tp: Hashable) -> int | None:
        """The offset to seek back to after an AHEAD, once per hole (None when already asked)."""
        target = self._next[tp]
        if self._seeking.get(tp) == target:
            return None
        self._seeking[tp] = target
        return target

    def done(self, tp: Hashable, offset: int) -> None:
        """The record at `offset` has its outcome recorded: the next one may be processed."""
        self._next[tp] = offset + 1

    def triage(self, records: Sequence[tuple[Hashable, int]], assigned: Container[Hashable]) -> Triage:
        """Classify a batch of (partition, offset), every assigned partition known (`start`ed). A record of a
        partition revoked since it was fetched is stale: its new owner reads it from the group's commit, so it
        is neither processed nor acknowledged here (nor sought: the partition is not ours to seek)."""
        out = Triage()
        for i, (tp, offset) in enumerate(records):
            if tp not in assigned:
                out.stale.append(i)
                continue
            place = self.place(tp, offset)
            if place is Position.REDELIVERED:
                out.redelivered.append(i)
            elif place is Position.AHEAD:
                target = self.needs_seek(tp)
                if target is not None:
                    out.seeks[tp] = target
            else:
                self.done(tp, offset)  # provisionally: if settling fails the process exits, unacknowledged
                out.ready.append(i)
        return out

    def position(self, tp: Hashable) -> int | None:
        """The next offset to process, when known."""
        return self._next.get(tp)

    def forget(self, tps: object = None) -> None:
        """Stop tracking some partitions (all when None): after a rebalance they restart from the commit."""
        if tps is None:
            self._next.clear()
            self._seeking.clear()
            return
        for tp in tps:  # type: ignore[attr-defined]
            self._next.pop(tp, None)
            self._seeking.pop(tp, None)
