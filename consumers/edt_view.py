"""The emergency duty view: out-of-hours alerts (route.emergency-duty) and their recalls; the team's page reads
them newest first, with the children as the front door referral of the same notification lists them.

Acknowledgement: the page sends an `ItemAcknowledgement` to `feedback.acknowledgements` (which stops the alert's
SLA clock), then keeps it in `emergency_duty_acks` (the first one stands).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from broker.sla import SlaRules
from consumers.frontdoor_view import caveats_of, mark_withdrawn
from consumers.tables import EmergencyAck, EmergencyAlert, Referral, ReferralChildRow
from schemas import models as m

__all__ = ["AlertView", "alerts_for", "apply_alert", "apply_recall", "find_alert", "record_ack"]


def apply_alert(session: Session, alert: m.EmergencyDutyAlert, seen: datetime) -> None:
    """Insert or refresh an alert (a withdrawn one keeps its keys and caveats erased)."""
    row = session.get(EmergencyAlert, str(alert.alert_id))
    if row is None:
        row = EmergencyAlert(alert_id=str(alert.alert_id), authority=alert.authority, first_seen_at=seen,
                             withdrawn=False)
        session.add(row)
    row.first_seen_at = min(row.first_seen_at, seen)
    row.authority, row.notification_id = alert.authority, str(alert.notification_id)
    row.agency_type, row.source_reference = alert.agency_type.value, alert.source_reference
    row.reason, row.received = alert.reason, alert.received
    if not row.withdrawn:
        row.child_keys = json.dumps(list(alert.child_keys))
        row.safety_caveats = json.dumps([{"type": c.type.value, "applies_to_role": c.applies_to_role.value}
                                         for c in alert.safety_caveats])


def apply_recall(session: Session, recall: m.Recall, seen: datetime) -> None:
    """Withdraw a recalled alert (other routes are not this view's)."""
    if recall.route is not m.Route.EMERGENCY_DUTY:
        return
    oid = str(recall.recalled_output_id)
    row = session.get(EmergencyAlert, oid)
    if row is None:
        row = EmergencyAlert(alert_id=oid, authority=recall.recipient, first_seen_at=seen, withdrawn=True)
        session.add(row)
    mark_withdrawn(row, recall.issued, recall.reason.value)
    row.child_keys = row.safety_caveats = None


def record_ack(session: Session, alert_id: str, authority: str, at: datetime, account_id: int) -> bool:
    """Keep the first acknowledgement of an alert; False when it was already acknowledged."""
    if session.get(EmergencyAck, alert_id) is not None:
        return False
    try:
        with session.begin_nested():
            session.add(EmergencyAck(alert_id=alert_id, authority=authority, acknowledged_at=at,
                                     by_role="EMERGENCY_DUTY", account_id=account_id))
    except IntegrityError:
        return False
    return True


@dataclass(frozen=True)
class AlertView:
    """An alert as the emergency duty team sees it."""

    alert_id: str
    received: datetime | None
    due: datetime | None
    agency_type: str | None
    source_reference: str | None
    reason: str | None
    caveats: tuple[tuple[str, str], ...]
    children: tuple[tuple[str | None, str | None, date | None, bool | None], ...]
    child_count: int
    referral_id: str | None
    withdrawn: bool
    withdrawn_at: datetime | None
    acknowledged_at: datetime | None


def _views(session: Session, authority: str, rows: list[EmergencyAlert]) -> list[AlertView]:
    rules = SlaRules()
    nids = [r.notification_id for r in rows if r.notification_id]
    referrals = {r.notification_id: r for r in session.scalars(select(Referral).where(
        Referral.authority == authority, Referral.notification_id.in_(nids), Referral.withdrawn.is_(False)))}
    kids: dict[str, list[ReferralChildRow]] = {}
    for c in session.scalars(select(ReferralChildRow).where(
            ReferralChildRow.referral_id.in_([r.referral_id for r in referrals.values()]))
            .order_by(ReferralChildRow.position)):
        kids.setdefault(c.referral_id, []).append(c)
    acks = {a.alert_id: a for a in session.scalars(select(EmergencyAck).where(
        EmergencyAck.authority == authority, EmergencyAck.alert_id.in_([r.alert_id for r in rows])))}
    out = []
    for r in rows:
        ref = referrals.get(r.notification_id)
        children = tuple((c.given_name, c.family_name, c.date_of_birth, c.present)
                         for c in kids.get(ref.referral_id, [])) if ref and not r.withdrawn else ()
        within: timedelta = rules.emergency_duty(authority)
        ack = acks.get(r.alert_id)
        out.append(AlertView(
            alert_id=r.alert_id, received=r.received, due=r.received + within if r.received else None,
            agency_type=r.agency_type, source_reference=r.source_reference, reason=r.reason,
            caveats=caveats_of(r.safety_caveats), children=children,
            child_count=len(json.loads(r.child_keys or "[]")), referral_id=ref.referral_id if ref else None,
            withdrawn=r.withdrawn, withdrawn_at=r.withdrawn_at, acknowledged_at=ack.acknowledged_at if ack else None,
        ))
    return out


def alerts_for(session: Session, authority: str, limit: int = 200) -> list[AlertView]:
    """The authority's alerts, newest first."""
    rows = session.scalars(select(EmergencyAlert).where(
        EmergencyAlert.authority == authority, EmergencyAlert.received.is_not(None))
        .order_by(EmergencyAlert.received.desc(), EmergencyAlert.alert_id).limit(limit)).all()
    return _views(session, authority, list(rows))


def find_alert(session: Session, authority: str, alert_id: str) -> AlertView | None:
    """The authority's alert with this id (None when missing, a placeholder, or another authority's)."""
    try:
        key = str(UUID(alert_id))
    except ValueError:
        return None
    row = session.get(EmergencyAlert, key)
    if row is None or row.authority != authority or row.received is None:
        return None
    return _views(session, authority, [row])[0]
