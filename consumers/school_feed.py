"""What a school's pages read and write: its notices only, every query scoped by the school's URN."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from consumers.tables import EncompassAck, EncompassNotice, NoticeRead

__all__ = ["NoticeView", "find_notice", "mark_read", "notices_for"]


@dataclass(frozen=True)
class NoticeView:
    """One notice as a school's page shows it (details None once withdrawn)."""

    notice_id: str
    received_at: datetime
    withdrawn: bool
    withdrawn_at: datetime | None
    given_name: str | None
    family_name: str | None
    date_of_birth: date | None
    incident_occurred: datetime | None
    child_present: bool | None
    police_reference: str | None
    welfare_check_made: bool | None
    caveats: tuple[tuple[str, str], ...]
    due: datetime | None
    calendar_verified: bool | None
    read: bool
    acknowledged_at: datetime | None

    @property
    def new(self) -> bool:
        """Not yet opened by anyone at the school, and not withdrawn."""
        return not self.read and not self.withdrawn


def _caveats(raw: str | None) -> tuple[tuple[str, str], ...]:
    return tuple((c["type"], c["applies_to_role"]) for c in json.loads(raw)) if raw else ()


def _view(row: EncompassNotice, read: bool, ack: datetime | None) -> NoticeView:
    return NoticeView(
        notice_id=row.notice_id, received_at=row.received_at, withdrawn=row.withdrawn, withdrawn_at=row.withdrawn_at,
        given_name=row.given_name, family_name=row.family_name, date_of_birth=row.date_of_birth,
        incident_occurred=row.incident_occurred, child_present=row.child_present,
        police_reference=row.police_reference, welfare_check_made=row.welfare_check_made,
        caveats=_caveats(row.safety_caveats), due=None if row.withdrawn else row.due,
        calendar_verified=row.calendar_verified, read=read, acknowledged_at=ack,
    )


def _query(school_urn: str):  # type: ignore[no-untyped-def]
    return (
        select(EncompassNotice, NoticeRead.notice_id, EncompassAck.acknowledged_at)
        .outerjoin(NoticeRead, (NoticeRead.notice_id == EncompassNotice.notice_id)
                   & (NoticeRead.school_urn == EncompassNotice.school_urn))
        .outerjoin(EncompassAck, (EncompassAck.notice_id == EncompassNotice.notice_id)
                   & (EncompassAck.school_urn == EncompassNotice.school_urn))
        .where(EncompassNotice.school_urn == school_urn)
    )


def notices_for(session: Session, school_urn: str) -> list[NoticeView]:
    """The school's notices, newest first."""
    rows = session.execute(
        _query(school_urn).order_by(EncompassNotice.received_at.desc(), EncompassNotice.notice_id.desc())
    ).all()
    return [_view(n, read is not None, ack) for n, read, ack in rows]


def _notice_key(notice_id: str) -> str | None:
    try:
        return str(UUID(notice_id))
    except ValueError:
        return None


def find_notice(session: Session, school_urn: str, notice_id: str) -> NoticeView | None:
    """The school's own notice with this id, or None (whether it does not exist or is another school's)."""
    key = _notice_key(notice_id)
    if key is None:
        return None
    row = session.execute(_query(school_urn).where(EncompassNotice.notice_id == key)).first()
    return None if row is None else _view(row[0], row[1] is not None, row[2])


def mark_read(session: Session, school_urn: str, notice_id: str, account_id: int, at: datetime) -> None:
    """Remember the first opening of a school's own notice (later ones change nothing)."""
    if session.get(NoticeRead, notice_id) is not None:
        return
    try:
        with session.begin_nested():
            session.add(NoticeRead(notice_id=notice_id, school_urn=school_urn, first_read_at=at, account_id=account_id))
    except IntegrityError:
        pass
