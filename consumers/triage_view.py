"""The DV triage views: items (route.dvtriage), MARAC referrals (route.marac), their recalls, and discussions
read back from feedback.acknowledgements; and the agenda the triage chair works.

An item is MARAC-flagged when it says so itself or when a MARAC referral names it (`triage_item_id`): a late
incident can make an item already on the agenda MARAC-flagged, and the referral may be read before or after
the item, with the same result. A recalled item leaves the agenda (shown as withdrawn); a recalled MARAC
referral no longer flags its item. The agenda of a meeting date is every item whose `meeting_at` (the broker
put each item on the next meeting whose cut-off is after receipt) falls on that London date.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from consumers.frontdoor_view import caveats_of, mark_withdrawn, short_ref
from consumers.tables import MaracFlag, Referral, ReferralChildRow, TriageDiscussion, TriageItem
from schemas import models as m

__all__ = [
    "AgendaItem",
    "agenda",
    "apply_item",
    "apply_marac",
    "apply_recall",
    "find_item",
    "meeting_dates",
    "record_discussion",
]

LONDON = ZoneInfo("Europe/London")
_RISK_ORDER = {"VERY_HIGH": 0, "HIGH": 1, "MEDIUM": 2, "STANDARD": 3, "LOW": 4, "UNKNOWN": 5}


def apply_item(session: Session, item: m.DvTriageItem, seen: datetime) -> None:
    """Insert or refresh a triage item (a withdrawn one stays withdrawn)."""
    row = session.get(TriageItem, str(item.item_id))
    if row is None:
        row = TriageItem(item_id=str(item.item_id), authority=item.authority, first_seen_at=seen, withdrawn=False)
        session.add(row)
    row.first_seen_at = min(row.first_seen_at, seen)
    row.authority, row.notification_id = item.authority, str(item.notification_id)
    row.agency_type, row.source_reference = item.agency_type.value, item.source_reference
    row.risk_level, row.ticks, row.meeting_at, row.occurred = item.risk_level.value, item.ticks, item.meeting_at, \
        item.occurred
    row.marac, row.marac_criteria = item.marac, json.dumps([c.value for c in item.marac_criteria])
    if not row.withdrawn:
        row.victim_key, row.perpetrator_key = item.victim_key, item.perpetrator_key
        row.child_keys = json.dumps(list(item.child_keys))


def apply_marac(session: Session, referral: m.MaracReferral, seen: datetime) -> None:
    """Insert or refresh a MARAC referral (it flags the triage item it names)."""
    row = session.get(MaracFlag, str(referral.referral_id))
    if row is None:
        row = MaracFlag(referral_id=str(referral.referral_id), authority=referral.authority, first_seen_at=seen,
                        withdrawn=False)
        session.add(row)
    row.first_seen_at = min(row.first_seen_at, seen)
    row.authority, row.triage_item_id = referral.authority, str(referral.triage_item_id)
    row.notification_id, row.occurred = str(referral.notification_id), referral.occurred
    row.criteria = json.dumps([c.value for c in referral.criteria])


def apply_recall(session: Session, recall: m.Recall, seen: datetime) -> None:
    """Withdraw a recalled triage item or MARAC referral (other routes are not this view's)."""
    oid = str(recall.recalled_output_id)
    if recall.route is m.Route.DV_TRIAGE:
        item = session.get(TriageItem, oid)
        if item is None:
            item = TriageItem(item_id=oid, authority=recall.recipient, first_seen_at=seen, withdrawn=True)
            session.add(item)
        mark_withdrawn(item, recall.issued, recall.reason.value)
        item.victim_key = item.perpetrator_key = item.child_keys = None
    elif recall.route is m.Route.MARAC:
        flag = session.get(MaracFlag, oid)
        if flag is None:
            flag = MaracFlag(referral_id=oid, authority=recall.recipient, first_seen_at=seen, withdrawn=True)
            session.add(flag)
        if not flag.withdrawn or flag.withdrawn_at is None or recall.issued < flag.withdrawn_at:
            flag.withdrawn_at = recall.issued
        flag.withdrawn = True


def record_discussion(session: Session, discussed: m.TriageItemDiscussed, account_id: int | None = None) -> bool:
    """Keep the first discussion of an item; False when it was already marked discussed, or when the item is
    another authority's."""
    if session.get(TriageDiscussion, str(discussed.item_id)) is not None:
        return False
    item = session.get(TriageItem, str(discussed.item_id))
    if item is not None and item.authority != discussed.authority:
        return False
    try:
        with session.begin_nested():
            session.add(TriageDiscussion(item_id=str(discussed.item_id), authority=discussed.authority,
                                         marac_referred=discussed.marac_referred, discussed_at=discussed.discussed,
                                         account_id=account_id))
    except IntegrityError:
        return False
    return True


# ------------------------------------------------------------------------------------------ read
@dataclass(frozen=True)
class SharedBy:
    """What the agency shared, as the front door referral of the same notification carries it."""

    organisation_code: str | None
    kind: str | None
    summary: str | None
    lawful_basis: str | None
    consent: str | None
    caveats: tuple[tuple[str, str], ...]
    children: tuple[tuple[str | None, str | None, date | None], ...]


@dataclass(frozen=True)
class AgendaItem:
    """An item on a meeting's agenda."""

    item_id: str
    meeting_at: datetime | None
    agency_type: str | None
    source_reference: str | None
    risk_level: str | None
    ticks: int | None
    occurred: datetime | None
    marac: bool
    criteria: tuple[str, ...]
    flagged_late: bool  # flagged by a MARAC referral that came after the item was listed
    victim_ref: str
    perpetrator_ref: str
    children: int
    shared: SharedBy | None
    related: tuple[tuple[str, str | None], ...]  # (agency, reference) of other items for the same people
    withdrawn: bool
    withdrawn_at: datetime | None
    discussed_at: datetime | None
    marac_referred: bool | None

    @property
    def ref(self) -> str:
        """A short reference for the item."""
        return "T-" + self.item_id[:8].upper()


def _day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(0), tzinfo=LONDON)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=LONDON)
    return start, end


def _shared(session: Session, authority: str, notification_ids: list[str]) -> dict[str, SharedBy]:
    if not notification_ids:
        return {}
    referrals = session.scalars(select(Referral).where(
        Referral.authority == authority, Referral.notification_id.in_(notification_ids),
        Referral.withdrawn.is_(False))).all()
    kids: dict[str, list[ReferralChildRow]] = {}
    for c in session.scalars(select(ReferralChildRow).where(
            ReferralChildRow.referral_id.in_([r.referral_id for r in referrals])).order_by(ReferralChildRow.position)):
        kids.setdefault(c.referral_id, []).append(c)
    return {r.notification_id or "": SharedBy(
        r.organisation_code, r.kind, r.summary, r.lawful_basis, r.consent, caveats_of(r.safety_caveats),
        tuple((c.given_name, c.family_name, c.date_of_birth) for c in kids.get(r.referral_id, [])),
    ) for r in referrals}


def _people(row: TriageItem) -> set[str]:
    keys = set(json.loads(row.child_keys or "[]"))
    return keys | {k for k in (row.victim_key, row.perpetrator_key) if k}


def _items(session: Session, authority: str, rows: list[TriageItem]) -> list[AgendaItem]:
    ids = [r.item_id for r in rows]
    flags: dict[str, list[MaracFlag]] = {}
    for f in session.scalars(select(MaracFlag).where(
            MaracFlag.authority == authority, MaracFlag.triage_item_id.in_(ids), MaracFlag.withdrawn.is_(False))):
        flags.setdefault(f.triage_item_id or "", []).append(f)
    talks = {d.item_id: d for d in session.scalars(select(TriageDiscussion).where(
        TriageDiscussion.authority == authority, TriageDiscussion.item_id.in_(ids)))}
    shared = _shared(session, authority, [r.notification_id for r in rows if r.notification_id])
    live = [r for r in rows if not r.withdrawn]
    out = []
    for r in rows:
        own = list(json.loads(r.marac_criteria or "[]")) if r.marac else []
        later = [c for f in flags.get(r.item_id, []) for c in json.loads(f.criteria or "[]")]
        criteria = tuple(c for c in m.MaracCriterion if c.value in set(own) | set(later))
        people = _people(r)
        related = tuple((o.agency_type or "", o.source_reference) for o in live
                        if o.item_id != r.item_id and people & _people(o))
        talk = talks.get(r.item_id)
        out.append(AgendaItem(
            item_id=r.item_id, meeting_at=r.meeting_at, agency_type=r.agency_type, source_reference=r.source_reference,
            risk_level=r.risk_level, ticks=r.ticks, occurred=r.occurred,
            marac=not r.withdrawn and (r.marac or bool(flags.get(r.item_id))),
            criteria=tuple(c.value for c in criteria), flagged_late=not r.marac and bool(flags.get(r.item_id)),
            victim_ref=short_ref(r.victim_key), perpetrator_ref=short_ref(r.perpetrator_key),
            children=len(json.loads(r.child_keys or "[]")), shared=shared.get(r.notification_id or ""),
            related=related, withdrawn=r.withdrawn, withdrawn_at=r.withdrawn_at,
            discussed_at=talk.discussed_at if talk else None, marac_referred=talk.marac_referred if talk else None,
        ))
    return out


def agenda(session: Session, authority: str, day: date) -> list[AgendaItem]:
    """The meeting's agenda: MARAC-flagged first, then by risk, then oldest incident first; withdrawn last."""
    start, end = _day_bounds(day)
    rows = session.scalars(select(TriageItem).where(
        TriageItem.authority == authority, TriageItem.meeting_at >= start, TriageItem.meeting_at < end)).all()
    items = _items(session, authority, list(rows))
    epoch = datetime.min.replace(tzinfo=LONDON)
    return sorted(items, key=lambda i: (i.withdrawn, not i.marac, _RISK_ORDER.get(i.risk_level or "UNKNOWN", 5),
                                        i.occurred or epoch, i.item_id))


def meeting_dates(session: Session, authority: str) -> list[date]:
    """The London dates of the authority's meetings that have items, oldest first."""
    instants = session.scalars(select(TriageItem.meeting_at).where(
        TriageItem.authority == authority, TriageItem.meeting_at.is_not(None)).distinct()).all()
    return sorted({i.astimezone(LONDON).date() for i in instants if i is not None})


def find_item(session: Session, authority: str, item_id: str) -> AgendaItem | None:
    """The authority's item with this id (None when missing, a placeholder, or another authority's)."""
    try:
        key = str(UUID(item_id))
    except ValueError:
        return None
    row = session.get(TriageItem, key)
    if row is None or row.authority != authority or row.meeting_at is None:
        return None
    return _items(session, authority, [row])[0]
