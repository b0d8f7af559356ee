"""The open clocks of a partition, counted rather than kept: the gauges need only how many are open and at risk per
route and how old the oldest is, and a tick needs only when each falls due (the clocks themselves stay in the
table). Counting by the hour a clock started bounds the memory by the hours spanned, not by the clocks: a backlog or
a replay of a year opens millions at once, and a breached clock nobody acknowledges stays open for good."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from broker.sla import Clock, Step
from schemas.models import Route, SlaState

__all__ = ["BUCKET_SECONDS", "OpenTally", "Totals"]

BUCKET_SECONDS = 3600  # clocks are counted by the hour they started in: the oldest age is exact to within this


@dataclass
class _Bucket:
    open: int = 0
    at_risk: int = 0  # past the at-risk instant or breached
    earliest: float = float("inf")  # the earliest start (epoch seconds) counted here: never after any still open


@dataclass(frozen=True)
class Totals:
    """One route's open clocks: how many, how many at risk (breached included), the earliest start (or up to
    `BUCKET_SECONDS` before it)."""

    open: int
    at_risk: int
    earliest: datetime


@dataclass
class OpenTally:
    """Open clocks per route, counted by the hour they started in."""

    buckets: dict[Route, dict[int, _Bucket]] = field(default_factory=dict)

    def add(self, clock: Clock) -> None:
        """Count an open clock as it stands (an index built from the table)."""
        self._move(clock, 1, int(clock.at_risk or clock.breached))

    def keep(self, step: Step) -> None:
        """Take in what a step did to its clocks. A clock without a STARTED event in the step was open before it;
        it was at risk before unless its AT_RISK / BREACHED came in this step."""
        states = {(e.output_id, e.state) for e in step.events}
        for clock in step.clocks:
            oid = clock.output_id
            if (oid, SlaState.STARTED) not in states:  # open before this step: uncount it as it was
                risky = (clock.at_risk and (oid, SlaState.AT_RISK) not in states) or (
                    clock.breached and (oid, SlaState.BREACHED) not in states)
                self._move(clock, -1, -int(risky))
            if clock.open:
                self.add(clock)

    def totals(self) -> dict[Route, Totals]:
        """Per route with an open clock: the counts and the earliest start."""
        out = {}
        for route, hours in self.buckets.items():
            if hours:
                first = hours[min(hours)]
                out[route] = Totals(sum(b.open for b in hours.values()), sum(b.at_risk for b in hours.values()),
                                    datetime.fromtimestamp(first.earliest, UTC))
        return out

    def _move(self, clock: Clock, n: int, at_risk: int) -> None:
        start = clock.start.timestamp()
        hour = int(start // BUCKET_SECONDS)
        hours = self.buckets.setdefault(clock.route, {})
        bucket = hours.setdefault(hour, _Bucket())
        bucket.open += n
        bucket.at_risk = max(0, bucket.at_risk + at_risk)
        if n > 0:
            bucket.earliest = min(bucket.earliest, start)
        if bucket.open <= 0:
            del hours[hour]
