"""Consumer lag evaluated, not only counted: Burrow's rules as pure functions (no Kafka, no clock reads).

Per consumer group and partition, over a sliding window of the group's commits (each: when, the committed
offset, the partition's high-water mark then; its lag is the difference), and the latest high-water mark:

1. current lag (latest high-water mark - last committed offset) is zero -> OK;
2. the last commit is older than the window is long (now - last commit > last commit - first commit, and
   more than `patience`) -> STOPPED: the consumer no longer commits while there is work;
3. the lag was zero at some commit in the window -> OK;
4. a committed offset went backwards -> WARN (Burrow's REWIND: a reset or a replay; `reason` says so);
5. the committed offset did not move over the window while there is lag -> STALLED;
6. offsets move but the lag did not shrink in any interval -> WARN;
7. otherwise OK.

Rules 4-6 need a trend: with fewer than two commits only 1-3 apply. Burrow reads each commit from
`__consumer_offsets`; a sampler that only sees committed offsets (the admin API has no commit times) records a
commit when the offset moved or the group is caught up (`LagWindow.observe`), so a consumer that commits the
same offset again and again shows as STOPPED rather than STALLED: the more severe, as neither is progress.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from itertools import pairwise

__all__ = ["Commit", "Evaluation", "LagBook", "LagStatus", "LagWindow", "evaluate"]


class LagStatus(str, Enum):
    """Burrow-style status of one partition of a consumer group."""

    OK = "OK"
    WARN = "WARN"
    STALLED = "STALLED"
    STOPPED = "STOPPED"


@dataclass(frozen=True)
class Commit:
    """One commit of a group on a partition: when, the offset committed, the high-water mark then."""

    at: datetime
    offset: int
    high_water: int

    @property
    def lag(self) -> int:
        """Records the group had still to read when it committed."""
        return max(0, self.high_water - self.offset)


@dataclass(frozen=True)
class Evaluation:
    """A partition's status, its current lag and why."""

    status: LagStatus
    lag: int
    reason: str


def _stopped(commits: Sequence[Commit], now: datetime, patience: timedelta) -> bool:
    first, last = commits[0], commits[-1]
    quiet = now - last.at
    return quiet > last.at - first.at and quiet > patience


def _trend(commits: Sequence[Commit]) -> tuple[LagStatus, str]:
    pairs = list(pairwise(commits))
    if any(later.offset < earlier.offset for earlier, later in pairs):
        return LagStatus.WARN, "committed offset went backwards (rewind)"
    if all(later.offset == earlier.offset for earlier, later in pairs):
        return LagStatus.STALLED, "committed offset not moving while there is lag"
    if all(later.lag >= earlier.lag for earlier, later in pairs):
        return LagStatus.WARN, "offsets moving but the lag is not shrinking"
    return LagStatus.OK, "lag shrinking"


def evaluate(commits: Sequence[Commit], *, high_water: int, now: datetime,
             patience: timedelta = timedelta(0)) -> Evaluation:
    """Burrow's evaluation of one partition (see the module docstring); `commits` oldest first."""
    if not commits:
        if high_water <= 0:
            return Evaluation(LagStatus.OK, 0, "nothing to read")
        return Evaluation(LagStatus.STOPPED, high_water, "no commit seen")
    lag = max(0, high_water - commits[-1].offset)
    if lag == 0:
        return Evaluation(LagStatus.OK, 0, "caught up")
    if _stopped(commits, now, patience):
        return Evaluation(LagStatus.STOPPED, lag, "no commit for longer than the window")
    if any(c.lag == 0 for c in commits):
        return Evaluation(LagStatus.OK, lag, "lag was zero within the window")
    if len(commits) < 2:
        return Evaluation(LagStatus.OK, lag, "too few commits to judge a trend")
    status, reason = _trend(commits)
    return Evaluation(status, lag, reason)


@dataclass
class LagWindow:
    """The last `size` commits of one group on one partition, and the latest high-water mark.

    `min_distance`: a commit closer than this to the previous one replaces it (Burrow's min-distance), so a
    fast committer does not shrink the window to seconds."""

    size: int = 10
    min_distance: timedelta = timedelta(seconds=0)
    high_water: int = 0
    commits: deque[Commit] = field(default_factory=deque)

    def observe(self, at: datetime, committed: int | None, high_water: int, *,
                committed_at: datetime | None = None) -> None:
        """One sample. A commit is recorded when `committed_at` is new (when the caller knows commit times) or,
        without it, when the committed offset moved or the group is caught up; the high-water mark is always
        kept."""
        self.high_water = high_water
        if committed is None:
            return
        last = self.commits[-1] if self.commits else None
        when = committed_at or at
        if last is not None and (when <= last.at if committed_at else not self._moved(last, committed, high_water)):
            return
        if last is not None and when - last.at < self.min_distance:
            self.commits.pop()
        self.commits.append(Commit(when, committed, high_water))
        while len(self.commits) > self.size:
            self.commits.popleft()

    @staticmethod
    def _moved(last: Commit, committed: int, high_water: int) -> bool:
        """Without commit times: the offset moved, or the group is caught up (an idle group is not stopped)."""
        return committed != last.offset or high_water <= committed

    def evaluate(self, now: datetime, *, patience: timedelta = timedelta(0)) -> Evaluation:
        """The partition's status now."""
        return evaluate(list(self.commits), high_water=self.high_water, now=now, patience=patience)


PartitionKey = tuple[str, str, int]  # (group, topic, partition)


@dataclass
class LagBook:
    """Windows for every (group, topic, partition) a sampler watches."""

    size: int = 10
    min_distance: timedelta = timedelta(seconds=0)
    patience: timedelta = timedelta(minutes=1)
    windows: dict[PartitionKey, LagWindow] = field(default_factory=dict)

    def observe(self, key: PartitionKey, at: datetime, committed: int | None, high_water: int, *,
                committed_at: datetime | None = None) -> None:
        """Record one sample of a partition."""
        window = self.windows.get(key)
        if window is None:
            window = self.windows[key] = LagWindow(self.size, self.min_distance)
        window.observe(at, committed, high_water, committed_at=committed_at)

    def evaluate(self, now: datetime) -> Mapping[PartitionKey, Evaluation]:
        """Every watched partition's status now."""
        return {key: w.evaluate(now, patience=self.patience) for key, w in sorted(self.windows.items())}

    def forget(self, keys: Sequence[PartitionKey]) -> None:
        """Stop watching partitions (e.g. revoked or deleted)."""
        for key in keys:
            self.windows.pop(key, None)
