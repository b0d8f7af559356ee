"""The operations dashboard's views: SLA events from sla.events and dead letters from deadletter, and what the
dashboard reads from them (compliance per route per day, items at risk, breaches today, dead letters by reason,
calendar-unverified deadlines per authority), plus the once-only redrive claim.

Applying a record twice, or re-reading the topics from the start, gives the same rows: an SLA event is keyed by
its derived id, a dead letter by its derived id (uuid5 of its source coordinates). Compliance is computed with
`mash.sla`'s own rules (one clock's events folded into a `History`, met / (met + breached)).
"""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cache
from uuid import UUID
from zoneinfo import ZoneInfo

from argon2 import PasswordHasher
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from broker.topics import catalogue
from consumers.auth import create_account
from consumers.database import Database
from consumers.roles import Role
from consumers.tables import Account, OpsDeadLetter, OpsRedrive, OpsSlaEvent
from mash.sla import History, Row, collect, default_authority
from schemas.models import DeadLetter, Record, Route, SlaEvent, SlaState

__all__ = [
    "Dashboard",
    "DeadLetterView",
    "RedriveClaim",
    "apply_record",
    "claim_redrive",
    "dashboard",
    "empty_rebuildable",
    "finish_redrive",
    "make_ops_account",
    "ops_topics",
    "release_redrive",
]

LONDON = ZoneInfo("Europe/London")
DAYS = 7  # compliance chart: today and the six days before
RECENT_DEAD_LETTERS = 50


def ops_topics(prefix: str) -> dict[str, list[type[Record]]]:
    """The topics the operations views are built from, and the records on them."""
    cat = catalogue(prefix)
    return {cat.name("sla.events"): [SlaEvent], cat.name("deadletter"): [DeadLetter]}


# ------------------------------------------------------------------------------------------------ the view
def _apply_sla(session: Session, event: SlaEvent) -> None:
    if session.get(OpsSlaEvent, str(event.sla_event_id)) is not None:
        return
    session.add(OpsSlaEvent(sla_event_id=str(event.sla_event_id), output_id=str(event.output_id),
                            route=event.route.value, recipient=event.recipient, state=event.state.value,
                            due=event.due, at=event.at, calendar_verified=event.calendar_verified))
    session.flush()


def _apply_dead_letter(session: Session, dl: DeadLetter) -> None:
    if session.get(OpsDeadLetter, str(dl.dead_letter_id)) is not None:
        return
    whole = dl.raw_value is not None and not dl.raw_truncated
    session.add(OpsDeadLetter(
        dead_letter_id=str(dl.dead_letter_id), source_topic=dl.source_topic, source_partition=dl.source_partition,
        source_offset=dl.source_offset, reason=dl.reason, stage=dl.stage,
        notification_id=str(dl.notification_id) if dl.notification_id else None,
        raw_key=dl.raw_key if whole else None, raw_value=dl.raw_value if whole else None,
        raw_size=dl.raw_size if dl.raw_size is not None else (len(dl.raw_value) if dl.raw_value else None),
        raw_truncated=not whole, at=dl.at))
    session.flush()


def apply_record(session: Session, record: Record, received: datetime) -> None:
    """Apply one record read from sla.events or deadletter (others are ignored); idempotent."""
    if isinstance(record, SlaEvent):
        _apply_sla(session, record)
    elif isinstance(record, DeadLetter):
        _apply_dead_letter(session, record)


def empty_rebuildable(session: Session) -> None:
    """Empty the views a rebuild re-reads (redrives are the app's own and stay)."""
    session.execute(delete(OpsSlaEvent))
    session.execute(delete(OpsDeadLetter))


# ------------------------------------------------------------------------------------------- the dashboard
@cache
def _school_authorities() -> dict[str, str]:
    from broker.reference import DEFAULT_SCHOOLS, load_schools

    try:
        return {urn: s.authority for urn, s in load_schools(DEFAULT_SCHOOLS).items()}
    except Exception:  # no directory: Encompass clocks show 'unknown'
        return {}


def authority_of() -> Callable[[History], str]:
    """The authority of a clock, as `mash sla report` finds it."""
    return default_authority(_school_authorities())


@dataclass(frozen=True)
class DayCompliance:
    """One route's clocks due on one day: met in time, breached (late ones included), compliance."""

    day: date
    met: int
    breached: int
    open: int
    pct: float | None


@dataclass(frozen=True)
class RouteCompliance:
    """A route's compliance per day, oldest first."""

    route: str
    days: list[DayCompliance]


@dataclass(frozen=True)
class ClockView:
    """An open clock at risk, or a breach."""

    output_id: str
    route: str
    recipient: str
    authority: str
    due: datetime
    at: datetime
    minutes_left: int


@dataclass(frozen=True)
class DeadLetterView:
    """A dead letter as the dashboard lists it (never its bytes)."""

    dead_letter_id: str
    reason: str
    stage: str
    source: str
    notification_id: str | None
    raw_size: int | None
    at: datetime
    redrivable: bool
    why_not: str
    redriven: str | None  # PENDING / DONE, or None


@dataclass
class Dashboard:
    """Everything the page shows except consumer lag."""

    compliance: list[RouteCompliance] = field(default_factory=list)
    days: list[date] = field(default_factory=list)
    at_risk: list[ClockView] = field(default_factory=list)
    breaches_today: list[ClockView] = field(default_factory=list)
    dead_letter_reasons: list[tuple[str, int]] = field(default_factory=list)
    dead_letters: list[DeadLetterView] = field(default_factory=list)
    dead_letter_total: int = 0
    unverified: list[tuple[str, int, int]] = field(default_factory=list)  # authority, open, all in the window


def _event(row: OpsSlaEvent) -> SlaEvent:
    return SlaEvent(sla_event_id=UUID(row.sla_event_id), output_id=UUID(row.output_id), route=Route(row.route),
                    recipient=row.recipient, state=SlaState(row.state), due=row.due, at=row.at,
                    calendar_verified=row.calendar_verified)


def redrive_problem(row: OpsDeadLetter, prefix: str) -> str:
    """Why a dead letter cannot be redriven ('' when it can)."""
    if row.raw_truncated or row.raw_value is None:
        return "only a preview of the record was kept"
    if not row.source_topic.startswith(f"{prefix}."):
        return "its source topic is not one of this deployment's"
    return ""


def _compliance(histories: Iterable[History], days: list[date]) -> list[RouteCompliance]:
    rows: dict[tuple[str, date], Row] = {}
    for h in histories:
        day = h.due.astimezone(LONDON).date()
        if days[0] <= day <= days[-1]:
            rows.setdefault((h.route.value, day), Row(h.route.value, day.isoformat())).add(h)
    out = []
    for route in sorted({r for r, _ in rows}):
        per_day = []
        for day in days:
            row = rows.get((route, day))
            c = row.counts if row else dict.fromkeys(("met", "breached", "open"), 0)
            judged = c["met"] + c["breached"]
            per_day.append(DayCompliance(day, c["met"], c["breached"], c["open"],
                                         round(100 * c["met"] / judged, 1) if judged else None))
        out.append(RouteCompliance(route, per_day))
    return out


def _dead_letters(session: Session, prefix: str) -> tuple[list[tuple[str, int]], list[DeadLetterView], int]:
    reasons = session.execute(select(OpsDeadLetter.reason, func.count()).group_by(OpsDeadLetter.reason)
                              .order_by(func.count().desc(), OpsDeadLetter.reason)).all()
    recent = session.scalars(select(OpsDeadLetter).order_by(OpsDeadLetter.at.desc(), OpsDeadLetter.dead_letter_id)
                             .limit(RECENT_DEAD_LETTERS)).all()
    done = dict(session.execute(select(OpsRedrive.dead_letter_id, OpsRedrive.status).where(
        OpsRedrive.dead_letter_id.in_([r.dead_letter_id for r in recent]))).tuples().all())
    views = []
    for r in recent:
        problem = redrive_problem(r, prefix)
        views.append(DeadLetterView(r.dead_letter_id, r.reason, r.stage,
                                    f"{r.source_topic}/{r.source_partition}@{r.source_offset}", r.notification_id,
                                    r.raw_size, r.at, not problem, problem, done.get(r.dead_letter_id)))
    return [(str(reason), int(n)) for reason, n in reasons], views, sum(int(n) for _, n in reasons)


def dashboard(session: Session, now: datetime, prefix: str) -> Dashboard:
    """What the operations page shows, from the views, as of `now`."""
    today = now.astimezone(LONDON).date()
    days = [today - timedelta(days=n) for n in range(DAYS - 1, -1, -1)]
    since = datetime.combine(days[0], datetime.min.time(), LONDON).astimezone(UTC) - timedelta(days=1)
    rows = session.scalars(select(OpsSlaEvent).where(OpsSlaEvent.output_id.in_(
        select(OpsSlaEvent.output_id).where(OpsSlaEvent.due >= since)))).all()
    histories = collect(_event(r) for r in rows)
    where = authority_of()
    at_risk_ids = {r.output_id: r.at for r in rows if r.state == SlaState.AT_RISK.value}
    unverified_ids = {r.output_id for r in rows if not r.calendar_verified}

    def view(h: History, at: datetime) -> ClockView:
        left = int((h.due - now).total_seconds() // 60)
        return ClockView(str(h.output_id), h.route.value, h.recipient, where(h), h.due, at, left)

    board = Dashboard(days=days, compliance=_compliance(histories.values(), days))
    board.at_risk = sorted((view(h, at_risk_ids[str(h.output_id)]) for h in histories.values()
                            if str(h.output_id) in at_risk_ids and h.outcome == "open"), key=lambda c: c.due)
    breached = {r.output_id: r.at for r in rows if r.state == SlaState.BREACHED.value
                and r.at.astimezone(LONDON).date() == today}
    board.breaches_today = sorted((view(h, breached[str(h.output_id)]) for h in histories.values()
                                   if str(h.output_id) in breached), key=lambda c: c.at, reverse=True)
    per_authority: Counter[str] = Counter()
    open_per_authority: Counter[str] = Counter()
    for h in histories.values():
        if str(h.output_id) in unverified_ids:
            per_authority[where(h)] += 1
            open_per_authority[where(h)] += h.outcome == "open"
    board.unverified = [(a, open_per_authority[a], n) for a, n in sorted(per_authority.items(),
                                                                          key=lambda kv: (-kv[1], kv[0]))]
    board.dead_letter_reasons, board.dead_letters, board.dead_letter_total = _dead_letters(session, prefix)
    return board


# ------------------------------------------------------------------------------------------------- redrive
@dataclass(frozen=True)
class RedriveClaim:
    """The outcome of claiming a redrive: 'claimed' (with what to send), 'already', 'refused' or 'missing'."""

    outcome: str
    topic: str = ""
    key: bytes | None = None
    value: bytes | None = None
    why: str = ""


def claim_redrive(db: Database, dead_letter_id: str, account_id: int, now: datetime, prefix: str) -> RedriveClaim:
    """Claim a dead letter's one redrive (committed before anything is sent, so two presses send once)."""
    with db.session() as s, s.begin():
        row = s.get(OpsDeadLetter, dead_letter_id)
        if row is None:
            return RedriveClaim("missing")
        problem = redrive_problem(row, prefix)
        if problem:
            return RedriveClaim("refused", why=problem)
        if s.get(OpsRedrive, dead_letter_id) is not None:
            return RedriveClaim("already")
        claim = RedriveClaim("claimed", row.source_topic, row.raw_key, row.raw_value)
    try:
        with db.session() as s, s.begin():
            s.add(OpsRedrive(dead_letter_id=dead_letter_id, status="PENDING", account_id=account_id,
                             requested_at=now, target_topic=claim.topic))
    except IntegrityError:  # another press got there first
        return RedriveClaim("already")
    return claim


def release_redrive(db: Database, dead_letter_id: str) -> None:
    """The send failed: drop the claim, so the button can be pressed again."""
    with db.session() as s, s.begin():
        s.execute(delete(OpsRedrive).where(OpsRedrive.dead_letter_id == dead_letter_id,
                                           OpsRedrive.status == "PENDING"))


def finish_redrive(session: Session, dead_letter_id: str, partition: int, offset: int, now: datetime) -> None:
    """Kafka has the record: mark the redrive DONE with where it went."""
    row = session.get(OpsRedrive, dead_letter_id)
    assert row is not None
    row.status, row.done_at, row.target_partition, row.target_offset = "DONE", now, partition, offset


# ------------------------------------------------------------------------------------------------ demo
def make_ops_account(db: Database, username: str = "ops-demo") -> tuple[str, str]:
    """A demo OPERATIONS account (never in production); an existing one gets a new password."""
    password = secrets.token_urlsafe(12)
    with db.session() as s, s.begin():
        account = s.scalar(select(Account).where(Account.username == username))
        if account is None:
            create_account(s, username, password, Role.OPERATIONS, "", None, datetime.now(UTC))
        else:
            account.password_hash, account.active = PasswordHasher().hash(password), True
    return username, password
