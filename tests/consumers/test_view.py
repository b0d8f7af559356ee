"""The Encompass view: idempotent on re-read, recalls erase details, in either order, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from broker.reader import Consumed
from consumers.database import Database
from consumers.school_feed import notices_for
from consumers.tables import EncompassAck, EncompassNotice, ViewSkip
from consumers.view_consumer import apply_batch
from schemas.models import EncompassAcknowledgement
from tests.consumers.conftest import NOW, SCHOOL_A, SCHOOL_B, notice, recall, store


def rows(db: Database) -> list[tuple[object, ...]]:
    """Every notice row as a tuple of its columns, sorted."""
    with db.session() as s:
        found = s.scalars(select(EncompassNotice).order_by(EncompassNotice.notice_id)).all()
        return [tuple(getattr(r, c.key) for c in EncompassNotice.__table__.columns) for r in found]


def test_notice_is_stored_with_what_it_carries(any_db: Database) -> None:
    """A notice's fields land in the view for its school only."""
    n = notice()
    store(any_db, n)
    with any_db.session() as s:
        [view] = notices_for(s, SCHOOL_A)
        assert notices_for(s, SCHOOL_B) == []
    assert (view.given_name, view.date_of_birth) == ("Alexa", n.date_of_birth)
    assert view.police_reference == n.police_reference
    assert view.due == n.due and view.caveats == (("DO_NOT_CONTACT_NAMED_PARENT", "SUSPECT"),)


def test_reapplying_everything_gives_the_same_rows(any_db: Database) -> None:
    """Re-reading the topic from the start (notices, a recall, an ack) changes nothing."""
    a, b = notice(), notice(given="Bea")
    records = [a, b, recall(a), EncompassAcknowledgement(notice_id=b.notice_id, school_urn=SCHOOL_A, acknowledged=NOW)]
    store(any_db, *records)
    first = rows(any_db)
    store(any_db, *records)
    store(any_db, *records, received=NOW + timedelta(days=1))
    assert rows(any_db) == first
    with any_db.session() as s:
        assert len(s.scalars(select(EncompassAck)).all()) == 1


def test_recall_marks_withdrawn_and_erases_details(any_db: Database) -> None:
    """After a recall nothing about the child is left in the row."""
    n = notice()
    store(any_db, n, recall(n))
    with any_db.session() as s:
        row = s.get(EncompassNotice, str(n.notice_id))
    assert row is not None and row.withdrawn and row.withdrawn_reason == "WITHDRAWN"
    assert (row.given_name, row.family_name, row.date_of_birth, row.police_reference, row.safety_caveats) == (
        None, None, None, None, None)


def test_recall_before_notice_keeps_it_withdrawn(any_db: Database) -> None:
    """A recall read first leaves a placeholder that the late notice cannot fill with details."""
    n = notice()
    store(any_db, recall(n), n)
    with any_db.session() as s:
        [view] = notices_for(s, SCHOOL_A)
    assert view.withdrawn and view.given_name is None and view.date_of_birth is None


def test_undecodable_record_is_kept_by_coordinates_once(db: Database) -> None:
    """A record that does not decode is recorded (topic, partition, offset, reason), once, without its bytes."""
    bad = Consumed("p.route.encompass", 2, 41, None, b"\x00garbage", 0)
    apply_batch(db, [(bad, "undecodable: SchemaError")])
    apply_batch(db, [(bad, "undecodable: SchemaError")])
    with db.session() as s:
        [skip] = s.scalars(select(ViewSkip)).all()
    assert (skip.partition, skip.offset, skip.reason) == (2, 41, "undecodable: SchemaError")
