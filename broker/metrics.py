"""The worker's metrics in the Prometheus text format (prometheus_client), on a registry of their own.

Base units and the usual suffixes: counters end in `_total`, durations are `_seconds`, lag is in records.
Every name starts with `mash_`. Labels carry codes only (agency type, record kind, route, reason, authority
code, topic, partition): never a person, a name or a date of birth.

| metric | type | labels |
| --- | --- | --- |
| `mash_notifications_in_total` | counter | agency, kind |
| `mash_outputs_total` | counter | route |
| `mash_dead_letters_total` | counter | reason, stage |
| `mash_sla_events_total` | counter | route, state |
| `mash_sla_met_late_total` | counter | route (MET after the deadline; met in time = MET - late) |
| `mash_sla_open_clocks` | gauge | route |
| `mash_sla_at_risk_clocks` | gauge | route (open clocks past their at-risk instant, breached ones included) |
| `mash_sla_oldest_open_age_seconds` | gauge | route (age of the oldest open item, to within the hour; 0 when none) |
| `mash_end_to_end_latency_seconds` | histogram | (intake append -> routed) |
| `mash_consumer_lag_records` | gauge | group, topic, partition |
| `mash_consumer_lag_status` | gauge, a state set (1: current status) | group, topic, partition, status |
| `mash_calendar_unverified_deadlines_total` | counter | authority, route |
| `mash_worker_up` | gauge | worker |

Each worker serves its own partitions' figures; sum (or max, for ages) across instances in queries.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, start_http_server

from broker.lag import Evaluation, LagStatus
from schemas.models import Route, SlaState

__all__ = ["LATENCY_BUCKETS", "Metrics", "OpenClocks"]

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0)
_CLOCK_ROUTES = tuple(r for r in Route if r is not Route.UNKNOWN)


class OpenClocks(NamedTuple):
    """Open clocks of one route: how many, how many at risk, the age of the oldest (seconds)."""

    open: int
    at_risk: int
    oldest_age_seconds: float


class Metrics:
    """The metric objects and the helpers the worker calls to record them."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.notifications_in = Counter("mash_notifications_in", "Notifications accepted at intake",
                                        ["agency", "kind"], registry=r)
        self.outputs = Counter("mash_outputs", "Outputs routed (recalls included)", ["route"], registry=r)
        self.dead_letters = Counter("mash_dead_letters", "Records dead-lettered", ["reason", "stage"], registry=r)
        self.sla_events = Counter("mash_sla_events", "SLA clock events emitted", ["route", "state"], registry=r)
        self.sla_late = Counter("mash_sla_met_late", "SLA clocks acknowledged after their deadline", ["route"],
                                registry=r)
        self.sla_open = Gauge("mash_sla_open_clocks", "Open SLA clocks", ["route"], registry=r)
        self.sla_at_risk = Gauge("mash_sla_at_risk_clocks", "Open SLA clocks past their at-risk instant", ["route"],
                                 registry=r)
        self.sla_oldest = Gauge("mash_sla_oldest_open_age_seconds", "Age of the oldest open item", ["route"],
                                registry=r)
        self.latency = Histogram("mash_end_to_end_latency_seconds", "Intake append to routed",
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.lag_records = Gauge("mash_consumer_lag_records", "Consumer group lag",
                                 ["group", "topic", "partition"], registry=r)
        self.lag_status = Gauge("mash_consumer_lag_status", "Burrow-style lag status (1 = current)",
                                ["group", "topic", "partition", "status"], registry=r)
        self.unverified = Counter("mash_calendar_unverified_deadlines",
                                  "Deadlines computed without a verified school calendar", ["authority", "route"],
                                  registry=r)
        self.up = Gauge("mash_worker_up", "1 while the worker runs", ["worker"], registry=r)

    # ------------------------------------------------------------------------------------- recording
    def notification_in(self, agency: str, kind: str) -> None:
        """One notification accepted at intake."""
        self.notifications_in.labels(agency=agency, kind=kind).inc()

    def output_routed(self, route: Route | str, *, calendar_verified: bool = True, authority: str = "") -> None:
        """One output sent to a route; a calendar-unverified deadline is counted per authority."""
        name = _route(route)
        self.outputs.labels(route=name).inc()
        if not calendar_verified:
            self.unverified.labels(authority=authority or "unknown", route=name).inc()

    def dead_lettered(self, reason: str, stage: str) -> None:
        """One record dead-lettered."""
        self.dead_letters.labels(reason=reason, stage=stage).inc()

    def sla_event(self, route: Route | str, state: SlaState | str, *, late: bool = False) -> None:
        """One SLA event emitted (`late`: a MET after the deadline)."""
        self.sla_events.labels(route=_route(route), state=state.value if isinstance(state, SlaState) else state).inc()
        if late:
            self.sla_late.labels(route=_route(route)).inc()

    def open_clocks(self, by_route: Mapping[Route, OpenClocks]) -> None:
        """Set the open-clock gauges of every route (routes without open clocks read 0)."""
        for route in _CLOCK_ROUTES:
            summary = by_route.get(route, OpenClocks(0, 0, 0.0))
            self.sla_open.labels(route=route.value).set(summary.open)
            self.sla_at_risk.labels(route=route.value).set(summary.at_risk)
            self.sla_oldest.labels(route=route.value).set(summary.oldest_age_seconds)

    def routed_latency(self, seconds: float) -> None:
        """One notification's time from intake append to routed."""
        self.latency.observe(max(0.0, seconds))

    def lag(self, evaluations: Mapping[tuple[str, str, int], Evaluation]) -> None:
        """Set lag and status (a state set over OK / WARN / STALLED / STOPPED) for each evaluated partition."""
        for (group, topic, partition), result in evaluations.items():
            labels = {"group": group, "topic": topic, "partition": str(partition)}
            self.lag_records.labels(**labels).set(result.lag)
            for status in LagStatus:
                self.lag_status.labels(**labels, status=status.value).set(1 if status is result.status else 0)

    def worker_up(self, worker: str, up: bool = True) -> None:
        """Mark the worker up (or down, on an orderly stop)."""
        self.up.labels(worker=worker).set(1 if up else 0)

    # ------------------------------------------------------------------------------------- serving
    def exposition(self) -> bytes:
        """The registry in the Prometheus text format."""
        return generate_latest(self.registry)

    def serve(self, port: int, addr: str = "127.0.0.1") -> None:
        """Serve `/metrics` on a background thread (prometheus_client's own HTTP server)."""
        start_http_server(port, addr=addr, registry=self.registry)


def _route(route: Route | str) -> str:
    return route.value if isinstance(route, Route) else route
