"""`mash sla report`: SLA compliance per route and authority, computed from the `sla.events` topic.

A clock counts in the period when its deadline (`due`, Europe/London date) falls within `--from`..`--to`
(inclusive). Per clock, from its events (deduplicated by event id, so a re-emitted event counts once):
met = MET at or before the deadline; late = MET after it (these were breached first, so they count in
`breached` too); breached = the deadline passed unacknowledged (BREACHED, or a late MET) and no MET in time;
cancelled = recalled while open (left out of compliance); open = none of these yet. Compliance = met / (met +
breached). Time to acknowledgement = MET - STARTED, over met and late clocks; p95 is the nearest rank.
The authority of an Encompass clock (whose recipient is a school) comes from the schools directory.
"""

from __future__ import annotations

import asyncio
import csv
import io
import math
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from uuid import UUID
from zoneinfo import ZoneInfo

import typer

from broker.settings import Settings
from schemas.models import Route, SlaEvent, SlaState

__all__ = ["History", "Row", "collect", "register", "render_csv", "render_table", "report"]

LONDON = ZoneInfo("Europe/London")
COLUMNS = ("route", "authority", "clocks", "met", "late", "breached", "cancelled", "open", "compliance_pct",
           "median_ack_minutes", "p95_ack_minutes")


@dataclass
class History:
    """What the events say of one clock."""

    output_id: UUID
    route: Route
    recipient: str
    due: datetime
    started: datetime | None = None
    met: datetime | None = None
    breached: bool = False
    cancelled: bool = False

    def take(self, event: SlaEvent) -> None:
        """Fold one event in."""
        if event.state is SlaState.STARTED:
            self.started = event.at
        elif event.state is SlaState.MET:
            self.met = event.at
        elif event.state is SlaState.BREACHED:
            self.breached = True
        elif event.state is SlaState.CANCELLED:
            self.cancelled = True

    @property
    def outcome(self) -> str:
        """met, late, breached, cancelled or open."""
        if self.met is not None:
            return "met" if self.met <= self.due else "late"
        if self.breached:
            return "breached"
        return "cancelled" if self.cancelled else "open"

    @property
    def ack_seconds(self) -> float | None:
        """Time from STARTED to MET, when both are known."""
        if self.met is None or self.started is None:
            return None
        return (self.met - self.started).total_seconds()


def collect(events: Iterable[SlaEvent]) -> dict[UUID, History]:
    """Every clock's history, each event id counted once."""
    seen: set[UUID] = set()
    out: dict[UUID, History] = {}
    for event in sorted(events, key=lambda e: e.at):
        if event.sla_event_id in seen:
            continue
        seen.add(event.sla_event_id)
        history = out.get(event.output_id)
        if history is None:
            history = out[event.output_id] = History(event.output_id, event.route, event.recipient, event.due)
        history.take(event)
    return out


@dataclass
class Row:
    """One (route, authority) line of the report."""

    route: str
    authority: str
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(("met", "late", "breached",
                                                                            "cancelled", "open"), 0))
    ack_seconds: list[float] = field(default_factory=list)

    def add(self, history: History) -> None:
        """Count one clock."""
        outcome = history.outcome
        self.counts[outcome] += 1
        if outcome == "late":
            self.counts["breached"] += 1
        if history.ack_seconds is not None:
            self.ack_seconds.append(history.ack_seconds)

    def values(self) -> dict[str, object]:
        """The row's columns (minutes rounded to 0.1; empty when there is nothing to measure)."""
        c = self.counts
        judged = c["met"] + c["breached"]
        return {
            "route": self.route, "authority": self.authority, "clocks": sum(c.values()) - c["late"],
            "met": c["met"], "late": c["late"], "breached": c["breached"], "cancelled": c["cancelled"],
            "open": c["open"], "compliance_pct": round(100 * c["met"] / judged, 1) if judged else "",
            "median_ack_minutes": _minutes(statistics.median(self.ack_seconds)) if self.ack_seconds else "",
            "p95_ack_minutes": _minutes(_nearest_rank(self.ack_seconds, 95)) if self.ack_seconds else "",
        }


def _minutes(seconds: float) -> float:
    return round(seconds / 60, 1)


def _nearest_rank(values: Sequence[float], percent: int) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(percent / 100 * len(ordered)) - 1)]


def report(histories: Iterable[History], *, start: date, end: date, route: str | None = None,
           authority: str | None = None, authority_of: Callable[[History], str] | None = None) -> list[Row]:
    """Rows per (route, authority) of the clocks due within start..end (local dates, inclusive)."""
    where = authority_of or default_authority({})
    rows: dict[tuple[str, str], Row] = {}
    for h in histories:
        day = h.due.astimezone(LONDON).date()
        la = where(h)
        if not start <= day <= end or (route and h.route.value != route) or (authority and la != authority):
            continue
        rows.setdefault((h.route.value, la), Row(h.route.value, la)).add(h)
    return [rows[k] for k in sorted(rows)]


def default_authority(school_authority: Mapping[str, str]) -> Callable[[History], str]:
    """The authority of a clock: the school's (from the directory) for Encompass, else its recipient."""

    def of(history: History) -> str:
        if history.route is Route.ENCOMPASS:
            return school_authority.get(history.recipient, "unknown")
        return history.recipient

    return of


def render_table(rows: Sequence[Row]) -> str:
    """A plain text table."""
    lines = [[str(c) for c in COLUMNS]] + [[str(v) for v in r.values().values()] for r in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
                     for line in lines)


def render_csv(rows: Sequence[Row]) -> str:
    """CSV with a header line."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(COLUMNS), lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow(r.values())
    return out.getvalue()


# ---------------------------------------------------------------------------------------------- command
def _date(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        typer.echo(f"error: {option} must be a date, YYYY-MM-DD", err=True)
        raise typer.Exit(2) from None


async def read_events(settings: Settings) -> list[SlaEvent]:
    """Every SLA event on the topic (records that are not SLA events are skipped)."""
    from broker.reader import read_topics
    from broker.topics import catalogue
    from schemas.codec import Codec

    cat = catalogue(settings.topic_prefix)
    consumed = await read_topics(settings.kafka_bootstrap, [cat.name("sla.events")],
                                 registry_url=settings.registry_url, auth=settings.kafka_auth())
    codec, out = Codec(), []
    for rec in consumed:
        try:
            record = rec.decode(codec)
        except Exception:
            continue
        if isinstance(record, SlaEvent):
            out.append(record)
    return out


def _school_authorities() -> dict[str, str]:
    from broker.reference import DEFAULT_SCHOOLS, load_schools

    try:
        return {urn: s.authority for urn, s in load_schools(DEFAULT_SCHOOLS).items()}
    except Exception:  # no directory: Encompass clocks report 'unknown'
        return {}


def sla_report(
    from_: str = typer.Option(..., "--from", help="first deadline date (YYYY-MM-DD, Europe/London)"),
    to: str = typer.Option(..., "--to", help="last deadline date (YYYY-MM-DD, inclusive)"),
    route: str | None = typer.Option(None, "--route", help="one route, e.g. ENCOMPASS"),
    authority: str | None = typer.Option(None, "--authority", help="one authority's ONS code"),
    as_csv: bool = typer.Option(False, "--csv", help="CSV instead of a table"),
) -> None:
    """Met, breached, late, median and p95 time to acknowledgement per route and authority."""
    start, end = _date(from_, "--from"), _date(to, "--to")
    if end < start:
        typer.echo("error: --to is before --from", err=True)
        raise typer.Exit(2)
    if route is not None and route not in {r.value for r in Route}:
        typer.echo(f"error: --route must be one of {', '.join(r.value for r in Route if r is not Route.UNKNOWN)}",
                   err=True)
        raise typer.Exit(2)
    events = asyncio.run(read_events(Settings()))
    rows = report(collect(events).values(), start=start, end=end, route=route, authority=authority,
                  authority_of=default_authority(_school_authorities()))
    typer.echo(render_csv(rows) if as_csv else render_table(rows), nl=not as_csv)


def register(app: typer.Typer) -> None:
    """Add `mash sla report` to a CLI."""
    sla_app = typer.Typer(help="SLA clocks: compliance reports", no_args_is_help=True)
    sla_app.command("report")(sla_report)
    app.add_typer(sla_app, name="sla")

