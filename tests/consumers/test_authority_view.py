"""The authority views: idempotent on re-read, recalls and replacements applied in either order, MARAC flags
from late referrals, the chronology built from referrals, decisions and discussions read back from Kafka, a
rebuild keeping what the app recorded; on SQLite and PostgreSQL."""

from __future__ import annotations

import random
import uuid
from datetime import timedelta
from pathlib import Path

from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import inspect as sa_inspect
from sqlalchemy import select

from consumers.authority_view import empty_rebuildable
from consumers.database import Database, alembic_config
from consumers.feedback import feedback_key
from consumers.frontdoor_view import chronology, find_referral, record_decision, short_ref, worklist
from consumers.tables import Decision, Referral, ReferralChildRow
from consumers.triage_view import agenda
from schemas import models as m
from tests.consumers.authority_data import (
    DORSET,
    MEETING,
    SHROPSHIRE,
    TABLES,
    apply,
    child,
    cumulative,
    edt_alert,
    marac,
    recall,
    referral,
    snapshot,
    triage_item,
)
from tests.consumers.conftest import NOW


def _everything() -> list[m.Record]:
    kid = child(key="dem:kid-one")
    first, second = referral(SHROPSHIRE, kid), referral(SHROPSHIRE, kid, occurred=NOW - timedelta(days=3))
    gone = referral(SHROPSHIRE, child(given="Gone"))
    amended = referral(SHROPSHIRE, child(given="Oldname"))
    fixed = referral(SHROPSHIRE, child(given="Newname"), supersedes_referral=amended.referral_id)
    item, late = triage_item(), triage_item(marac=True, marac_criteria=[m.MaracCriterion.DASH_HIGH])
    flag = marac(item)
    alert, edt = cumulative(key="dem:kid-one"), edt_alert()
    decision = m.FrontDoorDecision(referral_id=second.referral_id, authority=SHROPSHIRE,
                                   response=m.FrontDoorResponse.EARLY_HELP, rag=m.Rag.AMBER, decided=NOW)
    talk = m.TriageItemDiscussed(item_id=late.item_id, authority=SHROPSHIRE, marac_referred=True, discussed=NOW)
    return [first, second, gone, recall(gone, m.Route.FRONT_DOOR, SHROPSHIRE), amended, fixed, item, late, flag,
            alert, edt, recall(edt, m.Route.EMERGENCY_DUTY, SHROPSHIRE), decision, talk, referral(DORSET)]


def test_reapplying_everything_in_any_order_gives_the_same_rows(any_db: Database) -> None:
    """Re-reading the topics (again, later, or shuffled) leaves every table as the first read did."""
    records = _everything()
    apply(any_db, *records)
    first = snapshot(any_db)
    apply(any_db, *records, at=NOW + timedelta(days=1))
    assert snapshot(any_db) == first
    shuffled = list(records)
    random.Random(7).shuffle(shuffled)
    with any_db.session() as s, s.begin():
        empty_rebuildable(s)
    apply(any_db, *shuffled)
    assert snapshot(any_db) == first


def test_recall_before_or_after_the_referral_erases_the_children(any_db: Database) -> None:
    """A recalled referral keeps no child rows and no narrative, whichever arrives first."""
    early, late = referral(), referral()
    apply(any_db, recall(early, m.Route.FRONT_DOOR, SHROPSHIRE), early, late)
    apply(any_db, recall(late, m.Route.FRONT_DOOR, SHROPSHIRE))
    with any_db.session() as s:
        assert s.scalars(select(ReferralChildRow)).all() == []
        rows = s.scalars(select(Referral)).all()
        assert all(r.withdrawn and r.summary is None and r.safety_caveats is None for r in rows)
        assert worklist(s, SHROPSHIRE) == []


def test_replacement_withdraws_what_it_supersedes_in_either_order(any_db: Database) -> None:
    """An AMEND's referral withdraws its predecessor (AMENDED), even when the predecessor is read later."""
    old = referral(SHROPSHIRE, child(given="Oldname"))
    new = referral(SHROPSHIRE, child(given="Newname"), supersedes_referral=old.referral_id)
    apply(any_db, new, old)
    with any_db.session() as s:
        [open_item] = worklist(s, SHROPSHIRE)
        old_row = s.get(Referral, str(old.referral_id))
    assert open_item.item_id == str(new.referral_id) and open_item.children[0].given_name == "Newname"
    assert old_row is not None and old_row.withdrawn and old_row.withdrawn_reason == "AMENDED"


def test_late_marac_referral_flags_an_item_already_listed(any_db: Database) -> None:
    """A MARAC referral naming an item flags it with its criteria, before or after the item; a recall unflags."""
    listed, early = triage_item(), triage_item()
    flag_late, flag_early = marac(listed), marac(early, m.MaracCriterion.REPEAT_WITHIN_12_MONTHS_OF_MARAC)
    apply(any_db, flag_early, listed, early, flag_late)
    with any_db.session() as s:
        items = {i.item_id: i for i in agenda(s, SHROPSHIRE, MEETING.date())}
    assert items[str(listed.item_id)].marac and items[str(listed.item_id)].flagged_late
    assert items[str(listed.item_id)].criteria == ("ESCALATION_3_INCIDENTS_12_MONTHS",)
    assert items[str(early.item_id)].criteria == ("REPEAT_WITHIN_12_MONTHS_OF_MARAC",)
    apply(any_db, recall(flag_late, m.Route.MARAC, SHROPSHIRE))
    with any_db.session() as s:
        item = next(i for i in agenda(s, SHROPSHIRE, MEETING.date()) if i.item_id == str(listed.item_id))
    assert not item.marac and item.criteria == ()


def test_chronology_is_built_from_the_referrals_of_one_authority(any_db: Database) -> None:
    """Four referrals about one child from three agencies, in occurred order, with decisions; Dorset's not shown."""
    key = "dem:chronology-child"
    made = [referral(SHROPSHIRE, child(key=key), agency_type=agency, occurred=NOW - timedelta(days=days))
            for agency, days in ((m.AgencyType.HEALTH, 60), (m.AgencyType.POLICE, 30), (m.AgencyType.POLICE, 2),
                                 (m.AgencyType.PROBATION, 1))]
    apply(any_db, *reversed(made), referral(DORSET, child(key=key)))
    with any_db.session() as s, s.begin():
        for r in made[:3]:
            record_decision(s, m.FrontDoorDecision(referral_id=r.referral_id, authority=SHROPSHIRE,
                                                   response=m.FrontDoorResponse.NO_FURTHER_ACTION, decided=NOW))
    with any_db.session() as s:
        history = chronology(s, SHROPSHIRE, key)
        view = find_referral(s, SHROPSHIRE, str(made[3].referral_id))
    assert [e.referral_id for e in history.entries] == [str(r.referral_id) for r in made]
    assert history.agencies == ("HEALTH", "POLICE", "PROBATION") and not history.assessed
    assert [e.decision.response if e.decision else None for e in history.entries] == ["NO_FURTHER_ACTION"] * 3 + [None]
    assert history.ref == short_ref(key) and key not in history.ref and len(history.ref) == 10
    assert view is not None and view.most_referred == 4


def test_decision_read_back_from_kafka_is_kept_and_rebuild_keeps_the_apps_own(any_db: Database) -> None:
    """A decision from the topic is recorded once; a rebuild drops it (to re-read) but keeps one the app made."""
    a, b = referral(), referral()
    from_kafka = m.FrontDoorDecision(referral_id=a.referral_id, authority=SHROPSHIRE,
                                     response=m.FrontDoorResponse.EARLY_HELP, decided=NOW)
    apply(any_db, a, b, from_kafka, from_kafka)
    with any_db.session() as s, s.begin():
        record_decision(s, m.FrontDoorDecision(referral_id=b.referral_id, authority=SHROPSHIRE,
                                               response=m.FrontDoorResponse.EARLY_HELP, decided=NOW),
                        reason="Synthetic reason", account_id=1)
        empty_rebuildable(s)
    with any_db.session() as s:
        assert [d.subject_id for d in s.scalars(select(Decision))] == [str(b.referral_id)]


def test_authority_migration_follows_the_school_feed_and_creates_the_tables(tmp_path: Path) -> None:
    """Migration 0002 sits on 0001 in one linear history, and upgrading a 0001 database to it adds the tables."""
    url = f"sqlite:///{tmp_path}/old.db"
    cfg = alembic_config(url)
    script = ScriptDirectory.from_config(cfg)
    assert len(script.get_heads()) == 1
    assert script.get_revision("0002").down_revision == "0001"  # type: ignore[union-attr]
    command.upgrade(cfg, "0001")
    command.upgrade(cfg, "0002")
    db = Database(url)
    try:
        names = set(sa_inspect(db.engine).get_table_names())
    finally:
        db.dispose()
    assert {t.__tablename__ for t in TABLES} <= names


def test_another_authoritys_decision_or_discussion_read_from_kafka_is_ignored(any_db: Database) -> None:
    """A FrontDoorDecision or TriageItemDiscussed naming Shropshire's item but sent as Dorset changes nothing."""
    r, item = referral(SHROPSHIRE), triage_item(SHROPSHIRE)
    apply(any_db, r, item,
          m.FrontDoorDecision(referral_id=r.referral_id, authority=DORSET, response=m.FrontDoorResponse.EARLY_HELP,
                              decided=NOW),
          m.TriageItemDiscussed(item_id=item.item_id, authority=DORSET, marac_referred=True, discussed=NOW))
    with any_db.session() as s:
        assert [i.item_id for i in worklist(s, SHROPSHIRE)] == [str(r.referral_id)]
        [listed] = agenda(s, SHROPSHIRE, MEETING.date())
    assert listed.discussed_at is None


def test_feedback_records_are_keyed_by_their_recipient() -> None:
    """Decisions and discussions are keyed by the authority; a school's acknowledgement keeps the notice id."""
    decision = m.FrontDoorDecision(referral_id=uuid.uuid4(), authority=DORSET, response=m.FrontDoorResponse.EARLY_HELP,
                                   decided=NOW)
    talk = m.TriageItemDiscussed(item_id=uuid.uuid4(), authority=SHROPSHIRE, discussed=NOW)
    ack = m.EncompassAcknowledgement(notice_id=uuid.uuid4(), school_urn="900028", acknowledged=NOW)
    assert (feedback_key(decision), feedback_key(talk)) == (DORSET.encode(), SHROPSHIRE.encode())
    assert feedback_key(ack) == str(ack.notice_id).encode()
