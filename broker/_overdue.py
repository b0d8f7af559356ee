"""Open clocks past their deadline, counted rather than kept: a breached clock nobody acknowledges stays open for
good and no tick has anything left to do for it, so the tracker's cache needs only how many there are per route
and how old the oldest is, not the clocks themselves (which stay in the table)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from broker.sla import Clock
from schemas.models import Route

__all__ = ["BUCKET_SECONDS", "Overdue"]

BUCKET_SECONDS = 3600  # clocks are counted by the hour they started in: the oldest age is exact to within this


@dataclass
class _Bucket:
    count: int
    earliest: float  # the earliest start (epoch seconds) counted in this hour; never later than any still open


@dataclass
class Overdue:
    """Breached open clocks per route, counted by the hour they started in."""

    buckets: dict[Route, dict[int, _Bucket]] = field(default_factory=dict)

    def add(self, clock: Clock) -> None:
        """Count a clock that has just breached (or is found breached and open in the table)."""
        start = clock.start.timestamp()
        hours = self.buckets.setdefault(clock.route, {})
        bucket = hours.get(int(start // BUCKET_SECONDS))
        if bucket is None:
            hours[int(start // BUCKET_SECONDS)] = _Bucket(1, start)
        else:
            bucket.count += 1
            bucket.earliest = min(bucket.earliest, start)

    def remove(self, clock: Clock) -> None:
        """Uncount a breached clock that has closed (met late or cancelled)."""
        hours = self.buckets.get(clock.route, {})
        hour = int(clock.start.timestamp() // BUCKET_SECONDS)
        bucket = hours.get(hour)
        if bucket is None:
            return
        bucket.count -= 1
        if bucket.count <= 0:
            del hours[hour]

    def count(self, route: Route) -> int:
        """How many breached clocks of `route` are open."""
        return sum(b.count for b in self.buckets.get(route, {}).values())

    def oldest(self, route: Route) -> datetime | None:
        """The start of the oldest breached open clock of `route`, or at most an hour before it; None when none."""
        hours = self.buckets.get(route)
        if not hours:
            return None
        return datetime.fromtimestamp(hours[min(hours)].earliest, UTC)

    def routes(self) -> list[Route]:
        """The routes with a breached open clock."""
        return [route for route, hours in self.buckets.items() if hours]
