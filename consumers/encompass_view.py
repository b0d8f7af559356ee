"""The Encompass view: notices and recalls from route.encompass, acknowledgements from feedback.acknowledgements.

Applying a record twice, or re-reading the topics from the start, gives the same rows. A recall erases the
child's details (name, date of birth, when, police reference, caveats) and marks the notice withdrawn; a
recall read before its notice leaves a withdrawn placeholder that the notice cannot fill in.
"""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from consumers.tables import EncompassAck, EncompassNotice
from schemas.models import EncompassAcknowledgement, Recall, Record, Route
from schemas.models import EncompassNotice as NoticeRecord

__all__ = ["apply_record", "record_ack"]

_DETAILS = (
    "given_name",
    "family_name",
    "date_of_birth",
    "incident_occurred",
    "child_present",
    "police_reference",
    "welfare_check_made",
    "safety_caveats",
)


def _caveats(notice: NoticeRecord) -> str:
    caveats = notice.safety_caveats
    return json.dumps([{"type": c.type.value, "applies_to_role": c.applies_to_role.value} for c in caveats])


def _fill(row: EncompassNotice, notice: NoticeRecord) -> None:
    row.given_name = notice.given_name
    row.family_name = notice.family_name
    row.date_of_birth = notice.date_of_birth
    row.incident_occurred = notice.incident_occurred
    row.child_present = notice.child_present
    row.police_reference = notice.police_reference
    row.welfare_check_made = notice.welfare_check_made
    row.safety_caveats = _caveats(notice)


def apply_notice(session: Session, notice: NoticeRecord, received: datetime) -> None:
    """Insert or refresh a notice; a withdrawn one keeps its details erased."""
    row = session.get(EncompassNotice, str(notice.notice_id))
    if row is None:
        row = EncompassNotice(notice_id=str(notice.notice_id), school_urn=notice.school_urn, withdrawn=False,
                              received_at=received)
        session.add(row)
    row.received_at = min(row.received_at, received)
    row.authority = notice.authority
    row.notification_id = str(notice.notification_id)
    row.due = notice.due
    row.calendar_verified = notice.calendar_verified
    if not row.withdrawn:
        _fill(row, notice)


def apply_recall(session: Session, recall: Recall, received: datetime) -> None:
    """Withdraw the recalled notice (or leave a withdrawn placeholder) and erase its details."""
    if recall.route is not Route.ENCOMPASS:
        return
    row = session.get(EncompassNotice, str(recall.recalled_output_id))
    if row is None:
        row = EncompassNotice(notice_id=str(recall.recalled_output_id), school_urn=recall.recipient,
                              received_at=received, withdrawn=True)
        session.add(row)
    if not row.withdrawn or row.withdrawn_at is None or recall.issued < row.withdrawn_at:
        row.withdrawn_at = recall.issued
        row.withdrawn_reason = recall.reason.value
    row.withdrawn = True
    for name in _DETAILS:
        setattr(row, name, None)


def record_ack(session: Session, ack: EncompassAcknowledgement, account_id: int | None = None) -> bool:
    """Keep the first acknowledgement of a notice; False when it was already acknowledged."""
    if session.get(EncompassAck, str(ack.notice_id)) is not None:
        return False
    try:
        with session.begin_nested():
            session.add(EncompassAck(notice_id=str(ack.notice_id), school_urn=ack.school_urn,
                                     acknowledged_at=ack.acknowledged, by_role=ack.by_role, account_id=account_id))
    except IntegrityError:  # another writer (the page or the consumer) got there first
        return False
    return True


def apply_record(session: Session, record: Record, received: datetime) -> None:
    """Apply one record read from route.encompass or feedback.acknowledgements (others are ignored)."""
    if isinstance(record, NoticeRecord):
        apply_notice(session, record, received)
    elif isinstance(record, Recall):
        apply_recall(session, record, received)
    elif isinstance(record, EncompassAcknowledgement):
        record_ack(session, record)
