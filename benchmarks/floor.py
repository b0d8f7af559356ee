"""What one worker process cannot go below: the floor of CPU per notification from parts measured apart.

A notification costs the worker at least (a) the three stages' own Python, measured in-process with no I/O
(`benchmarks.micro`: decode, route, state JSON, the Avro and JSON encoding of every record it writes), and (b) what
a bare aiokafka client spends on the records the pipeline writes and reads for it (`benchmarks.raw`: CPU per record
produced, and per record consumed, in a tight loop on the same broker). On one core the floor is a ceiling of
notifications/s no tuning of the rest can pass. faust reads a record at a cost of its own
(`benchmarks.faust_floor`: the worker's faust app and serving loop with no work); with it in place of the bare
consumer's, the floor is what the chosen stack allows. What the worker spends above that is the rest of its
machinery: table stores, each batch's round trips, the event loop.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["CONSUMED_TOPICS", "Floor", "consumed_per_notification"]

CONSUMED_TOPICS = ("internal.accepted", "route.")  # the worker's own outputs it reads again (router, SLA tracker)


def consumed_per_notification(written: Mapping[str, int], count: int) -> float:
    """Records the worker reads per notification: its intake record, plus every record it wrote to a topic it
    also consumes (`internal.accepted` for the router, the route topics for the SLA tracker)."""
    again = sum(n for topic, n in written.items() if topic.startswith(CONSUMED_TOPICS))
    return 1.0 + again / count


@dataclass(frozen=True)
class Floor:
    """The floor of one notification's CPU in one worker process, against what the worker spent."""

    python_us: float  # the three stages in-process (micro)
    written: float  # records written per notification
    read: float  # records read per notification
    produce_us: float  # bare client CPU per record produced
    consume_us: float  # bare client CPU per record consumed
    measured_us: float  # the worker's CPU per notification, saturated
    faust_read_us: float = float("nan")  # CPU per record read through faust and the serving loop (faust_floor)

    @property
    def client_us(self) -> float:
        """A bare client's CPU for one notification's records."""
        return self.written * self.produce_us + self.read * self.consume_us

    @property
    def floor_us(self) -> float:
        """Our Python plus the bare client's share: the least one notification can cost."""
        return self.python_us + self.client_us

    @property
    def ceiling_per_s(self) -> float:
        """Notifications/s of one process at the floor, with a whole core to itself."""
        return 1e6 / self.floor_us if self.floor_us > 0 else float("inf")

    @property
    def faust_floor_us(self) -> float:
        """The floor with faust's cost of reading a record in place of the bare consumer's."""
        return self.python_us + self.written * self.produce_us + self.read * self.faust_read_us

    @property
    def machinery_us(self) -> float:
        """What the worker spent above the floor with faust's reading (above the bare floor if not measured)."""
        floor = self.faust_floor_us if self.faust_read_us == self.faust_read_us else self.floor_us
        return self.measured_us - floor

    def lines(self) -> list[str]:
        """The floor as printable lines."""
        share = self.machinery_us / self.measured_us if self.measured_us > 0 else float("nan")
        out = [
            f"floor of one worker process (CPU per notification, from parts measured apart): Python of the three "
            f"stages {self.python_us:,.0f} us + a bare client's share {self.client_us:,.0f} us ({self.written:.2f} "
            f"records written x {self.produce_us:.1f} us + {self.read:.2f} read x {self.consume_us:.1f} us) = "
            f"{self.floor_us:,.0f} us => at most {self.ceiling_per_s:,.0f} notifications/s on a whole core",
        ]
        if self.faust_read_us == self.faust_read_us:  # measured (not NaN)
            out.append(f"  with faust reading the records ({self.read:.2f} x {self.faust_read_us:.1f} us): "
                       f"{self.faust_floor_us:,.0f} us => at most {1e6 / self.faust_floor_us:,.0f} notifications/s")
        out.append(f"  the worker spent {self.measured_us:,.0f} us per notification saturated: {self.machinery_us:,.0f}"
                   f" us ({share:.0%}) above that is the rest of its machinery (table stores, each batch's round "
                   f"trips, the event loop); 1,000 notifications/s needs 1,000 us in all")
        return out
