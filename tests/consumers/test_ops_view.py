"""The operations views: SLA events and dead letters applied idempotently, and what the dashboard reads."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import func, select

from consumers.database import Database
from consumers.ops_view import apply_record, claim_redrive, dashboard, empty_rebuildable, release_redrive
from consumers.tables import OpsDeadLetter, OpsSlaEvent
from schemas.models import DeadLetter, Route, SlaEvent, SlaState
from tests.consumers.conftest import NOW

PREFIX = "mash"


def sla(output: uuid.UUID, state: SlaState, at: datetime, due: datetime, route: Route = Route.FRONT_DOOR,
        recipient: str = "E06000051", verified: bool = True) -> SlaEvent:
    """An SLA event with its derived id (uuid5 of output and state)."""
    return SlaEvent(sla_event_id=uuid.uuid5(output, state.value), output_id=output, route=route,
                    recipient=recipient, state=state, due=due, at=at, calendar_verified=verified)


def dead_letter(offset: int = 7, reason: str = "INVALID", truncated: bool = False,
                topic: str = f"{PREFIX}.intake.police") -> DeadLetter:
    """A dead letter of an intake record (whole raw value unless truncated)."""
    return DeadLetter(dead_letter_id=uuid.uuid5(uuid.NAMESPACE_URL, f"{topic}/0/{offset}"), source_topic=topic,
                      source_partition=0, source_offset=offset, reason=reason, raw_key=b"k",
                      raw_value=b"\x00\x00\x00\x00\x01body", at=NOW - timedelta(minutes=offset),
                      raw_truncated=truncated, raw_size=9)


def apply(db: Database, *records: object) -> None:
    """Apply records as the view consumer does."""
    with db.session() as s, s.begin():
        for r in records:
            apply_record(s, r, NOW)  # type: ignore[arg-type]


def test_applying_twice_or_rebuilding_gives_the_same_rows(db: Database) -> None:
    """Re-reading sla.events and deadletter adds nothing; a rebuild empties and refills the same rows."""
    out = uuid.uuid4()
    records = [sla(out, SlaState.STARTED, NOW - timedelta(hours=2), NOW + timedelta(hours=1)),
               sla(out, SlaState.AT_RISK, NOW - timedelta(minutes=5), NOW + timedelta(hours=1)), dead_letter()]
    apply(db, *records)
    apply(db, *records)
    with db.session() as s:
        counts = (s.scalar(select(func.count()).select_from(OpsSlaEvent)),
                  s.scalar(select(func.count()).select_from(OpsDeadLetter)))
    assert counts == (2, 1)
    with db.session() as s, s.begin():
        empty_rebuildable(s)
    apply(db, *records)
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(OpsSlaEvent)) == 2


def test_dashboard_compliance_at_risk_breaches_and_unverified(db: Database) -> None:
    """Met in time, breached, late and at-risk clocks land in the right charts and lists."""
    met, breached, late, risky, closed_risky = (uuid.uuid4() for _ in range(5))
    due = NOW - timedelta(hours=1)
    apply(db,
          sla(met, SlaState.STARTED, due - timedelta(hours=4), due),
          sla(met, SlaState.MET, due - timedelta(hours=2), due),
          sla(breached, SlaState.STARTED, due - timedelta(hours=4), due, verified=False),
          sla(breached, SlaState.BREACHED, due, due, verified=False),
          sla(late, SlaState.BREACHED, due, due), sla(late, SlaState.MET, due + timedelta(minutes=20), due),
          sla(risky, SlaState.AT_RISK, NOW - timedelta(minutes=10), NOW + timedelta(minutes=25), Route.EMERGENCY_DUTY),
          sla(closed_risky, SlaState.AT_RISK, NOW - timedelta(minutes=30), NOW + timedelta(hours=1)),
          sla(closed_risky, SlaState.MET, NOW - timedelta(minutes=1), NOW + timedelta(hours=1)))
    with db.session() as s:
        board = dashboard(s, NOW, PREFIX)
    frontdoor = next(r for r in board.compliance if r.route == "FRONT_DOOR")
    today = frontdoor.days[-1]
    assert (today.met, today.breached, today.pct) == (2, 2, 50.0)  # closed_risky met in time too
    assert [c.output_id for c in board.at_risk] == [str(risky)]
    assert board.at_risk[0].minutes_left == 25
    assert {c.output_id for c in board.breaches_today} == {str(breached), str(late)}
    assert board.unverified == [("E06000051", 0, 1)]


def test_dead_letters_by_reason_and_redrive_claimed_once(db: Database) -> None:
    """Reasons are counted; a whole record is claimed once, a truncated or foreign one is refused."""
    apply(db, dead_letter(1), dead_letter(2, "UNDECODABLE"), dead_letter(3, "INVALID", truncated=True),
          dead_letter(4, topic="other.intake.police"))
    with db.session() as s:
        board = dashboard(s, NOW, PREFIX)
    assert board.dead_letter_reasons == [("INVALID", 3), ("UNDECODABLE", 1)]
    ids = {d.source: d for d in board.dead_letters}
    assert not ids[f"{PREFIX}.intake.police/0@3"].redrivable and not ids["other.intake.police/0@4"].redrivable
    whole = ids[f"{PREFIX}.intake.police/0@1"].dead_letter_id
    first = claim_redrive(db, whole, 1, NOW, PREFIX)
    assert (first.outcome, first.topic, first.key, first.value) == (
        "claimed", f"{PREFIX}.intake.police", b"k", b"\x00\x00\x00\x00\x01body")
    assert claim_redrive(db, whole, 2, NOW, PREFIX).outcome == "already"
    release_redrive(db, whole)
    assert claim_redrive(db, whole, 2, NOW, PREFIX).outcome == "claimed"
    truncated = ids[f"{PREFIX}.intake.police/0@3"].dead_letter_id
    assert claim_redrive(db, truncated, 1, NOW, PREFIX).outcome == "refused"
    assert claim_redrive(db, str(uuid.uuid4()), 1, NOW, PREFIX).outcome == "missing"
