"""The local authority's views in one place: which topics they are built from, how one record is applied
(dispatching to the front door, triage and emergency duty views), and which rows a rebuild empties."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete
from sqlalchemy.orm import Session

from broker.topics import catalogue
from consumers import edt_view, frontdoor_view, triage_view
from consumers.tables import (
    CumulativeAlert,
    Decision,
    EmergencyAlert,
    MaracFlag,
    Referral,
    ReferralChildRow,
    TriageDiscussion,
    TriageItem,
)
from schemas import models as m

__all__ = ["ACK_RECORDS", "ROUTES", "apply_record", "authority_topics", "empty_rebuildable"]

#: Short topic name -> the records the views read from it.
ROUTES: dict[str, list[type[m.Record]]] = {
    "route.frontdoor": [m.FrontDoorReferral, m.Recall],
    "route.cumulative-concern": [m.CumulativeConcernAlert, m.Recall],
    "route.dvtriage": [m.DvTriageItem, m.Recall],
    "route.marac": [m.MaracReferral, m.Recall],
    "route.emergency-duty": [m.EmergencyDutyAlert, m.Recall],
}
#: Every acknowledgement record the app writes to (and the views read from) feedback.acknowledgements.
ACK_RECORDS: list[type[m.Record]] = [m.EncompassAcknowledgement, m.FrontDoorDecision, m.TriageItemDiscussed,
                                     m.ItemAcknowledgement]


def authority_topics(prefix: str) -> dict[str, list[type[m.Record]]]:
    """Full topic name -> records, for the authority views' route topics."""
    cat = catalogue(prefix)
    return {cat.name(short): records for short, records in ROUTES.items()}


def apply_record(session: Session, record: m.Record, received: datetime) -> None:
    """Apply one record to the authority views (records of other views, e.g. Encompass notices, are ignored)."""
    handlers: dict[type[Any], Any] = {
        m.FrontDoorReferral: frontdoor_view.apply_referral,
        m.CumulativeConcernAlert: frontdoor_view.apply_alert,
        m.DvTriageItem: triage_view.apply_item,
        m.MaracReferral: triage_view.apply_marac,
        m.EmergencyDutyAlert: edt_view.apply_alert,
    }
    handler = handlers.get(type(record))
    if handler is not None:
        handler(session, record, received)
    elif isinstance(record, m.Recall):
        frontdoor_view.apply_recall(session, record, received)
        triage_view.apply_recall(session, record, received)
        edt_view.apply_recall(session, record, received)
    elif isinstance(record, m.FrontDoorDecision):
        frontdoor_view.record_decision(session, record)
    elif isinstance(record, m.TriageItemDiscussed):
        triage_view.record_discussion(session, record)


def empty_rebuildable(session: Session) -> None:
    """Delete what a rebuild re-reads from Kafka (decisions and discussions the app recorded itself stay)."""
    for table in (ReferralChildRow, Referral, CumulativeAlert, TriageItem, MaracFlag, EmergencyAlert):
        session.execute(delete(table))
    session.execute(delete(Decision).where(Decision.account_id.is_(None)))
    session.execute(delete(TriageDiscussion).where(TriageDiscussion.account_id.is_(None)))
