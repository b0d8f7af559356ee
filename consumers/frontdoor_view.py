"""The front door's views: referrals (route.frontdoor), cumulative-concern alerts (route.cumulative-concern),
their recalls, and decisions read back from feedback.acknowledgements; and what the front door pages read.

Applying a record twice, or re-reading the topics from the start in any order, gives the same rows. A recall,
or a referral that replaces another (`supersedes_referral`, an AMEND to the same authority), withdraws the
earlier referral and erases what it said about the children (their rows are deleted, so they leave every
chronology) and its narrative; a recall or replacement read first leaves a withdrawn placeholder that the
late referral cannot fill in. Every read is scoped by the signed-in authority.

The child's chronology is built from the referrals: each referral lists its children by identity key, so the
referrals this authority received about a child (agency, kind, when, and what the front door decided) are one
query. The key is a keyed hash (or an NHS-number hash); pages show only `short_ref`, never the key.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from broker.authority import authority_or_default
from broker.deadline import frontdoor_deadline
from consumers.tables import (
    CumulativeAlert,
    Decision,
    EmergencyAlert,
    MaracFlag,
    Referral,
    ReferralChildRow,
    TriageItem,
)
from schemas import models as m

__all__ = [
    "ASSESSMENTS",
    "ChildView",
    "Chronology",
    "DecisionView",
    "WorkItem",
    "apply_alert",
    "apply_recall",
    "apply_referral",
    "caveats_of",
    "chronology",
    "decision_for",
    "decisions_for",
    "find_alert",
    "find_referral",
    "key_digest",
    "mark_withdrawn",
    "record_decision",
    "short_ref",
    "worklist",
]

#: Responses that are an assessment or more (the "fourth referral before an assessment" is the opposite).
ASSESSMENTS = frozenset({"CHILD_IN_NEED_ASSESSMENT", "STRATEGY_DISCUSSION_S47", "IMMEDIATE_PROTECTION"})


def key_digest(child_key: str) -> str:
    """A SHA-256 of an identity key (what the audit records as the subject of a chronology view)."""
    return hashlib.sha256(child_key.encode()).hexdigest()


def short_ref(key: str | None) -> str:
    """A short reference for an identity key, for people to tell children apart (never the key itself)."""
    return "" if not key else "C-" + key_digest(key)[:8].upper()


def caveats_of(raw: str | None) -> tuple[tuple[str, str], ...]:
    """(type, applies_to_role) pairs from a stored caveat list."""
    return tuple((c["type"], c["applies_to_role"]) for c in json.loads(raw)) if raw else ()


def _caveats_json(caveats: Iterable[m.SafetyCaveat]) -> str:
    return json.dumps([{"type": c.type.value, "applies_to_role": c.applies_to_role.value} for c in caveats])


def mark_withdrawn(row: Referral | CumulativeAlert | TriageItem | EmergencyAlert, at: datetime, reason: str) -> None:
    """Mark withdrawn; the earliest withdrawal's instant and reason win, whatever order they are read in."""
    if not row.withdrawn or row.withdrawn_at is None or at < row.withdrawn_at:
        row.withdrawn_at, row.withdrawn_reason = at, reason
    row.withdrawn = True


# ------------------------------------------------------------------------------------------ apply
def _erase_referral(session: Session, row: Referral) -> None:
    for child in session.scalars(select(ReferralChildRow).where(ReferralChildRow.referral_id == row.referral_id)):
        session.delete(child)
    row.summary = None
    row.safety_caveats = None


def _placeholder_referral(session: Session, referral_id: str, authority: str, seen: datetime) -> Referral:
    row = session.get(Referral, referral_id)
    if row is None:
        row = Referral(referral_id=referral_id, authority=authority, first_seen_at=seen, withdrawn=False)
        session.add(row)
    return row


def apply_referral(session: Session, referral: m.FrontDoorReferral, seen: datetime) -> None:
    """Insert or refresh a referral and its children; a withdrawn one stays erased. Withdraws what it replaces."""
    rid = str(referral.referral_id)
    row = _placeholder_referral(session, rid, referral.authority, seen)
    row.first_seen_at = min(row.first_seen_at, seen)
    row.authority = referral.authority
    row.notification_id = str(referral.notification_id)
    row.supersedes_referral = str(referral.supersedes_referral) if referral.supersedes_referral else None
    row.agency_type = referral.agency_type.value
    row.organisation_code = referral.organisation_code
    row.source_reference = referral.source_reference
    row.kind = referral.kind
    row.occurred, row.received, row.decision_due = referral.occurred, referral.received, referral.decision_due
    row.adult_risk_only = referral.adult_risk_only
    row.risk_level, row.priority = referral.risk_level.value, referral.priority.value
    row.security_marking, row.lawful_basis = referral.security_marking.value, referral.lawful_basis.value
    row.consent = referral.consent.value
    row.rag, row.rag_reason = referral.rag.value, referral.rag_reason
    session.flush()
    if not row.withdrawn:
        row.summary = referral.summary
        row.safety_caveats = _caveats_json(referral.safety_caveats)
        _fill_children(session, row, referral.children)
    if referral.supersedes_referral is not None:
        old = _placeholder_referral(session, str(referral.supersedes_referral), referral.authority, seen)
        old.superseded_by = rid
        mark_withdrawn(old, referral.received, m.RecallReason.AMENDED.value)
        session.flush()
        _erase_referral(session, old)


def _fill_children(session: Session, row: Referral, children: list[m.ReferralChild]) -> None:
    existing = {c.position: c for c in session.scalars(
        select(ReferralChildRow).where(ReferralChildRow.referral_id == row.referral_id))}
    for position, child in enumerate(children):
        c = existing.pop(position, None)
        if c is None:
            c = ReferralChildRow(referral_id=row.referral_id, position=position)
            session.add(c)
        c.authority, c.child_key = row.authority, child.child_key
        c.given_name, c.family_name, c.date_of_birth = child.given_name, child.family_name, child.date_of_birth
        c.unborn, c.education_status, c.school_urn = child.unborn, child.education_status.value, child.school_urn
        c.education_contact_needed, c.present = child.education_contact_needed, child.present
    for stale in existing.values():
        session.delete(stale)


def _due_for_alert(alert: m.CumulativeConcernAlert) -> datetime:
    """One working day from when the alert was raised, as the SLA clock counts it."""
    try:
        return frontdoor_deadline(alert.raised, authority_or_default(alert.authority)).at
    except Exception:  # an authority code the deadline rules refuse: a calendar day
        return alert.raised + timedelta(days=1)


def apply_alert(session: Session, alert: m.CumulativeConcernAlert, seen: datetime) -> None:
    """Insert or refresh a cumulative-concern alert (a withdrawn one keeps its child key erased)."""
    row = session.get(CumulativeAlert, str(alert.alert_id))
    if row is None:
        row = CumulativeAlert(alert_id=str(alert.alert_id), authority=alert.authority, first_seen_at=seen,
                              withdrawn=False)
        session.add(row)
    row.first_seen_at = min(row.first_seen_at, seen)
    row.authority, row.trigger = alert.authority, alert.trigger.value
    row.notification_ids = json.dumps([str(n) for n in alert.notification_ids])
    row.agency_types = json.dumps([a.value for a in alert.agency_types])
    row.window_start, row.window_end, row.raised = alert.window_start, alert.window_end, alert.raised
    row.decision_due = _due_for_alert(alert)
    if not row.withdrawn:
        row.child_key = alert.child_key


def apply_recall(session: Session, recall: m.Recall, seen: datetime) -> None:
    """Withdraw a recalled referral or cumulative-concern alert (other routes are not this view's)."""
    oid, reason = str(recall.recalled_output_id), recall.reason.value
    if recall.route is m.Route.FRONT_DOOR:
        row = _placeholder_referral(session, oid, recall.recipient, seen)
        mark_withdrawn(row, recall.issued, reason)
        session.flush()
        _erase_referral(session, row)
    elif recall.route is m.Route.CUMULATIVE_CONCERN:
        alert = session.get(CumulativeAlert, oid)
        if alert is None:
            alert = CumulativeAlert(alert_id=oid, authority=recall.recipient, first_seen_at=seen, withdrawn=True)
            session.add(alert)
        mark_withdrawn(alert, recall.issued, reason)
        alert.child_key = None


def record_decision(session: Session, decision: m.FrontDoorDecision, *, reason: str | None = None,
                    previous_rag: str | None = None, rag_reason: str | None = None,
                    account_id: int | None = None) -> bool:
    """Keep the first decision on a referral or alert; False when it was already decided, or when it names
    another authority's referral or alert (only the item's recipient can decide it)."""
    sid = str(decision.referral_id)
    if session.get(Decision, sid) is not None:
        return False
    subject = session.get(Referral, sid) or session.get(CumulativeAlert, sid)
    if subject is not None and subject.authority != decision.authority:
        return False
    try:
        with session.begin_nested():
            session.add(Decision(subject_id=sid, authority=decision.authority, response=decision.response.value,
                                 rag=decision.rag.value, decided_at=decision.decided, reason=reason,
                                 previous_rag=previous_rag, rag_reason=rag_reason, account_id=account_id))
    except IntegrityError:  # the page and the consumer raced: the first one stands
        return False
    return True


# ------------------------------------------------------------------------------------------ read
@dataclass(frozen=True)
class ChildView:
    """A child on a referral, as the front door sees it."""

    position: int
    ref: str
    given_name: str | None
    family_name: str | None
    date_of_birth: date | None
    unborn: bool
    education_status: str
    school_urn: str | None
    education_contact_needed: bool
    present: bool | None
    referrals: int  # referrals this authority received about the child (this one included)


@dataclass(frozen=True)
class DecisionView:
    """A decision recorded on a referral or alert."""

    response: str
    rag: str
    decided_at: datetime
    reason: str | None
    previous_rag: str | None
    rag_reason: str | None
    on_kafka_only: bool  # read back from Kafka: decided elsewhere, no reasons held here


@dataclass(frozen=True)
class WorkItem:
    """A referral or cumulative-concern alert on the worklist, or opened from it."""

    kind: str  # "referral" | "alert"
    item_id: str
    due: datetime | None
    rag: str
    rag_reason: str | None
    received: datetime | None
    agency_type: str | None
    organisation_code: str | None
    source_reference: str | None
    notice_kind: str | None
    occurred: datetime | None
    risk_level: str | None
    priority: str | None
    security_marking: str | None
    lawful_basis: str | None
    consent: str | None
    caveats: tuple[tuple[str, str], ...]
    summary: str | None
    adult_risk_only: bool
    children: tuple[ChildView, ...]
    withdrawn: bool
    withdrawn_at: datetime | None
    withdrawn_reason: str | None
    decision: DecisionView | None
    # cumulative-concern alerts only
    trigger: str | None = None
    agency_types: tuple[str, ...] = ()
    notifications: int = 0
    window_start: datetime | None = None
    window_end: datetime | None = None
    child_ref: str = ""

    @property
    def education_contact_needed(self) -> bool:
        """A school-age child with no setting: the authority must inform the family's education contact."""
        return any(c.education_contact_needed for c in self.children)

    @property
    def most_referred(self) -> int:
        """The most referrals any of its children has had here."""
        return max((c.referrals for c in self.children), default=0)


def _uuid(value: str) -> str | None:
    try:
        return str(UUID(value))
    except ValueError:
        return None


def _decision(row: Decision | None) -> DecisionView | None:
    if row is None:
        return None
    return DecisionView(row.response, row.rag, row.decided_at, row.reason, row.previous_rag, row.rag_reason,
                        row.account_id is None)


def _referral_counts(session: Session, authority: str, keys: set[str]) -> dict[str, int]:
    if not keys:
        return {}
    rows = session.execute(
        select(ReferralChildRow.child_key, func.count(func.distinct(ReferralChildRow.referral_id)))
        .join(Referral, Referral.referral_id == ReferralChildRow.referral_id)
        .where(ReferralChildRow.authority == authority, ReferralChildRow.child_key.in_(keys),
               Referral.withdrawn.is_(False))
        .group_by(ReferralChildRow.child_key)
    ).all()
    return {k: int(n) for k, n in rows}


def _children(session: Session, authority: str, referral_ids: list[str]) -> dict[str, list[ReferralChildRow]]:
    out: dict[str, list[ReferralChildRow]] = {r: [] for r in referral_ids}
    if referral_ids:
        for c in session.scalars(select(ReferralChildRow).where(ReferralChildRow.authority == authority,
                                                                ReferralChildRow.referral_id.in_(referral_ids))
                                 .order_by(ReferralChildRow.referral_id, ReferralChildRow.position)):
            out[c.referral_id].append(c)
    return out


def _referral_items(session: Session, authority: str, rows: list[Referral]) -> list[WorkItem]:
    ids = [r.referral_id for r in rows]
    kids = _children(session, authority, ids)
    counts = _referral_counts(session, authority, {c.child_key for cs in kids.values() for c in cs})
    decisions = {d.subject_id: d for d in session.scalars(select(Decision).where(
        Decision.authority == authority, Decision.subject_id.in_(ids)))} if ids else {}
    return [_referral_item(r, kids[r.referral_id], counts, decisions.get(r.referral_id)) for r in rows]


def _referral_item(r: Referral, kids: list[ReferralChildRow], counts: dict[str, int],
                   decision: Decision | None) -> WorkItem:
    children = tuple(ChildView(
        c.position, short_ref(c.child_key), c.given_name, c.family_name, c.date_of_birth, c.unborn,
        c.education_status, c.school_urn, c.education_contact_needed, c.present, counts.get(c.child_key, 1),
    ) for c in kids)
    return WorkItem(
        kind="referral", item_id=r.referral_id, due=r.decision_due, rag=r.rag or "UNKNOWN", rag_reason=r.rag_reason,
        received=r.received, agency_type=r.agency_type, organisation_code=r.organisation_code,
        source_reference=r.source_reference, notice_kind=r.kind, occurred=r.occurred, risk_level=r.risk_level,
        priority=r.priority, security_marking=r.security_marking, lawful_basis=r.lawful_basis, consent=r.consent,
        caveats=caveats_of(r.safety_caveats), summary=r.summary, adult_risk_only=bool(r.adult_risk_only),
        children=children, withdrawn=r.withdrawn, withdrawn_at=r.withdrawn_at, withdrawn_reason=r.withdrawn_reason,
        decision=_decision(decision),
    )


def _alert_item(a: CumulativeAlert, decision: Decision | None) -> WorkItem:
    return WorkItem(
        kind="alert", item_id=a.alert_id, due=a.decision_due, rag="UNKNOWN", rag_reason=None, received=a.raised,
        agency_type=None, organisation_code=None, source_reference=None, notice_kind="CumulativeConcernAlert",
        occurred=a.window_end, risk_level=None, priority=None, security_marking=None, lawful_basis=None,
        consent=None, caveats=(), summary=None, adult_risk_only=False, children=(), withdrawn=a.withdrawn,
        withdrawn_at=a.withdrawn_at, withdrawn_reason=a.withdrawn_reason, decision=_decision(decision),
        trigger=a.trigger, agency_types=tuple(json.loads(a.agency_types or "[]")),
        notifications=len(json.loads(a.notification_ids or "[]")), window_start=a.window_start,
        window_end=a.window_end, child_ref=short_ref(a.child_key),
    )


def worklist(session: Session, authority: str) -> list[WorkItem]:
    """The authority's open referrals and cumulative-concern alerts (not withdrawn, not decided), by deadline."""
    decided = select(Decision.subject_id).where(Decision.authority == authority)
    referrals = session.scalars(select(Referral).where(
        Referral.authority == authority, Referral.withdrawn.is_(False), Referral.decision_due.is_not(None),
        Referral.referral_id.not_in(decided))).all()
    alerts = session.scalars(select(CumulativeAlert).where(
        CumulativeAlert.authority == authority, CumulativeAlert.withdrawn.is_(False),
        CumulativeAlert.decision_due.is_not(None), CumulativeAlert.alert_id.not_in(decided))).all()
    items = _referral_items(session, authority, list(referrals)) + [_alert_item(a, None) for a in alerts]
    return sorted(items, key=lambda i: (i.due, i.rag != "RED", i.item_id))


def decisions_for(session: Session, authority: str, limit: int = 20) -> list[tuple[DecisionView, str, str]]:
    """The authority's latest decisions: (decision, kind, id), newest first."""
    rows = session.scalars(select(Decision).where(Decision.authority == authority)
                           .order_by(Decision.decided_at.desc(), Decision.subject_id).limit(limit)).all()
    alert_ids = set(session.scalars(select(CumulativeAlert.alert_id).where(
        CumulativeAlert.authority == authority, CumulativeAlert.alert_id.in_([r.subject_id for r in rows]))))
    out = []
    for r in rows:
        view = _decision(r)
        assert view is not None
        out.append((view, "alert" if r.subject_id in alert_ids else "referral", r.subject_id))
    return out


def decision_for(session: Session, authority: str, subject_id: str) -> DecisionView | None:
    """The decision on one of the authority's referrals or alerts."""
    row = session.get(Decision, subject_id)
    return _decision(row) if row is not None and row.authority == authority else None


def find_referral(session: Session, authority: str, referral_id: str) -> WorkItem | None:
    """The authority's referral with this id (None when it does not exist, is a placeholder, or is another's)."""
    key = _uuid(referral_id)
    row = None if key is None else session.get(Referral, key)
    if row is None or row.authority != authority or row.kind is None:
        return None
    return _referral_items(session, authority, [row])[0]


def find_alert(session: Session, authority: str, alert_id: str) -> WorkItem | None:
    """The authority's cumulative-concern alert with this id (None when missing, a placeholder, or another's)."""
    key = _uuid(alert_id)
    row = None if key is None else session.get(CumulativeAlert, key)
    if row is None or row.authority != authority or row.raised is None:
        return None
    return _alert_item(row, session.get(Decision, row.alert_id))


def child_key_of(session: Session, authority: str, kind: str, item_id: str, position: int = 0) -> str | None:
    """The identity key of a referral's child (by position) or an alert's child, within the authority."""
    key = _uuid(item_id)
    if key is None:
        return None
    if kind == "alert":
        alert = session.get(CumulativeAlert, key)
        return alert.child_key if alert is not None and alert.authority == authority else None
    child = session.get(ReferralChildRow, (key, position))
    return child.child_key if child is not None and child.authority == authority else None


@dataclass(frozen=True)
class ChronologyEntry:
    """One referral about the child: which agency, what kind, when, what the front door decided."""

    referral_id: str
    occurred: datetime | None
    received: datetime | None
    agency_type: str | None
    organisation_code: str | None
    kind: str | None
    source_reference: str | None
    routes: tuple[str, ...]
    decision: DecisionView | None
    current: bool


@dataclass(frozen=True)
class Chronology:
    """A child's cross-agency chronology at one authority."""

    ref: str
    digest: str
    given_name: str | None
    family_name: str | None
    date_of_birth: date | None
    entries: tuple[ChronologyEntry, ...]
    alerts: tuple[WorkItem, ...]

    @property
    def agencies(self) -> tuple[str, ...]:
        """The agency types that referred the child."""
        return tuple(sorted({e.agency_type for e in self.entries if e.agency_type}))

    @property
    def assessed(self) -> bool:
        """Whether any referral led to an assessment or more."""
        return any(e.decision is not None and e.decision.response in ASSESSMENTS for e in self.entries)

    def within(self, now: datetime, days: int = 365) -> int:
        """Referrals that occurred within `days` before `now`."""
        return sum(1 for e in self.entries if e.occurred is not None and e.occurred >= now - timedelta(days=days))


def _routes(session: Session, authority: str, notification_ids: list[str]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {n: set() for n in notification_ids}
    for table, label in ((TriageItem, "DV triage"), (EmergencyAlert, "Emergency duty"), (MaracFlag, "MARAC")):
        for nid in session.scalars(select(table.notification_id).where(
                table.authority == authority, table.notification_id.in_(notification_ids),
                table.withdrawn.is_(False))):
            if nid is not None:
                out.setdefault(nid, set()).add(label)
    return out


def chronology(session: Session, authority: str, child_key: str, current: str | None = None) -> Chronology:
    """The referrals this authority received about the child, oldest first (by occurred), and its alerts."""
    rows = session.execute(
        select(Referral, ReferralChildRow)
        .join(ReferralChildRow, ReferralChildRow.referral_id == Referral.referral_id)
        .where(ReferralChildRow.authority == authority, ReferralChildRow.child_key == child_key,
               Referral.authority == authority, Referral.withdrawn.is_(False))
        .order_by(Referral.occurred, Referral.referral_id)
    ).all()
    decisions = {d.subject_id: d for d in session.scalars(select(Decision).where(
        Decision.authority == authority, Decision.subject_id.in_([r.referral_id for r, _ in rows])))}
    routes = _routes(session, authority, [r.notification_id for r, _ in rows if r.notification_id])
    entries = tuple(ChronologyEntry(
        r.referral_id, r.occurred, r.received, r.agency_type, r.organisation_code, r.kind, r.source_reference,
        ("Front door", *sorted(routes.get(r.notification_id or "", set()))), _decision(decisions.get(r.referral_id)),
        r.referral_id == current,
    ) for r, _ in rows)
    latest = rows[-1][1] if rows else None
    alert_rows = session.scalars(select(CumulativeAlert).where(
        CumulativeAlert.authority == authority, CumulativeAlert.child_key == child_key,
        CumulativeAlert.withdrawn.is_(False)).order_by(CumulativeAlert.raised)).all()
    alerts = tuple(_alert_item(a, session.get(Decision, a.alert_id)) for a in alert_rows)
    return Chronology(short_ref(child_key), key_digest(child_key), latest.given_name if latest else None,
                      latest.family_name if latest else None, latest.date_of_birth if latest else None,
                      entries, alerts)
