"""The router's state rules: one identity per person, chronologies, victim histories, what was raised,
and what each notification produced.  PURE: no Kafka, no clock reads, no I/O.

The worker and the tests call the same four functions with the same tables (`TABLES`, each a mapping of
str -> JSON-ready value, partition-local: the router's input is keyed by home authority):
`on_notification`, `on_supersede` and `on_decision` read a view of the tables and return a `Step` (outputs to
send, then writes to apply once the outputs are acknowledged); `apply_writes` applies them.

Table values
------------
people[f"{authority}|{person key}"]: either an alias pointer `{"root": "<person key>"}` or a person record
  `{"chronology": [ChronologyEntry], "incidents": [VictimIncident], "raised": [Raised]}` (JSON of the
  dataclasses).  Children and adults share it.  Keys a notification links (NHS, demographic, unborn) are
  resolved by following pointers to their roots; roots that differ are merged into one canonical root, the
  least key by `_rank` (hashed NHS keys first, then the rest, by text), which is the least key of the joined
  set whatever the order of arrival; every other linked key and path is pointed straight at it.
notifications[str(notification id)]: a `NotificationRecord`: status routed / superseded /
  pending-supersede, authority, the outputs produced (for recall), the people keys it is about, and the
  people keys and other notifications its step wrote (for rewriting on redelivery).
referrals[str(front door referral id)]: a `ReferralRecord`: the authority, the notification that made it,
  and when the front door decided it (None: open).  referrals[`held_key(authority, id)`]: a decision by that
  authority for a referral not routed here (yet), applied when it is routed.

Rules
-----
* Redelivery: a notification whose record says routed (or superseded) produces nothing and re-writes the
  stored values its step wrote (a SIGKILL can leave a local write that never reached the changelog).  The
  notification's own record is the last write of every step, so a partial step is simply routed again:
  the same output ids, and nothing already remembered as raised is raised twice.
* History decisions are taken from each person's LIVE record by occurred instant (see
  `broker.routing.marac_criteria`, `threshold_quarters`, `significant_events`).  After every change to a
  person, `_settle` compares what the record calls for with what it remembers as `raised`: anything new is
  emitted now, whichever notification's arrival completed the picture (a late earlier incident can make an
  already routed incident meet MARAC: its MaracReferral is emitted then, with the incident's own derived id
  and its triage item's id; the triage item already sent is NOT re-sent: the MARAC referral that names its
  `triage_item_id` is the update, and the triage agenda joins the two).  Anything raised whose basis has
  gone (the notification it rested on was amended or withdrawn) is recalled.  Additions never remove a
  basis, so the same notifications in any order raise the same MARAC referral and alert ids.
* Cumulative concern: at most one THRESHOLD alert per child root per London quarter (id from authority,
  root key and quarter); a SIGNIFICANT_EVENT alert per qualifying event (id from the event notification and
  the child key it gave).  MARAC referrals and significant-event alerts are also added to the `produced`
  of the notification they are about, so its AMEND / WITHDRAW recalls them.
* AMEND / WITHDRAW: a predecessor routed here is recalled locally (`route` keeps a same-authority front door
  referral by `supersedes_referral`), marked superseded and dropped from its people's records.  A
  predecessor not routed here: the content is routed as usual and `Step.broadcast` carries a
  SupersedeRequest for every partition; `on_supersede` recalls it where it was routed (the same recall ids
  the local path gives), or leaves a pending marker so that it is never routed if it arrives later (a
  pending notification that is itself an AMEND / WITHDRAW still supersedes its own predecessor).
* Front door decisions (`on_decision`, a `FrontDoorDecision` re-sent by the SLA tracker onto the router's
  input, keyed by the deciding authority): the referral is closed, i.e. its notification's chronology
  entries get `decided`; a significant event that occurs after that instant no longer counts the referral
  as open (`broker.routing.significant_events`), so it raises no alert unless another referral is open (the
  event's own notification makes a new referral, as every notification does).  An alert already raised is
  never recalled by a decision.  A decision for a referral not routed here yet is remembered and applied
  when the referral is routed; a repeated one changes nothing (the earliest instant wins); one for a
  recalled referral is ignored; one from another authority than the referral's is refused.  Every verdict
  is a `Closure` on the step (the stage audits it); none is an error.

Faust keeps one table per name for all the partitions a worker holds, so a lookup can see another
partition's records.  Pass `owns` (is this authority's state in the partition the record was read from?)
so that a predecessor held by another partition is left to that partition's copy of the request.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import Enum
from functools import partial
from typing import Any

from pydantic import TypeAdapter

from broker.errors import BrokerError
from broker.identity import AgencyNotification, PersonKeys, Subjects, subjects
from broker.reference import School
from broker.routing import (
    HISTORY_CRITERIA,
    OUTPUT_NAMESPACE,
    ChronologyEntry,
    DeadlineCalculator,
    PriorOutput,
    RoutedOutput,
    RoutingContext,
    RoutingError,
    VictimIncident,
    cumulative_alert_id,
    domestic_abuse,
    intrinsic_criteria,
    marac_criteria,
    marac_referral,
    output_id,
    recall,
    route,
    significant_alert,
    significant_event,
    significant_events,
    threshold_alert,
    threshold_quarters,
    victim_keys,
)
from schemas.models import (
    Action,
    FrontDoorDecision,
    LawfulBasis,
    MaracCriterion,
    Recall,
    RecallReason,
    Route,
    SupersedeRequest,
)

__all__ = [
    "NOTIFICATIONS",
    "PEOPLE",
    "REFERRALS",
    "TABLES",
    "CasebookError",
    "Closing",
    "Closure",
    "NotificationRecord",
    "Person",
    "Raised",
    "ReferralRecord",
    "Status",
    "Step",
    "Tables",
    "apply_writes",
    "held_key",
    "load_notification",
    "load_person",
    "load_referral",
    "on_decision",
    "on_notification",
    "on_supersede",
    "supersede_request_id",
]

PEOPLE = "people"
NOTIFICATIONS = "notifications"
REFERRALS = "referrals"
#: The faust table names the worker creates.
TABLES: tuple[str, ...] = (PEOPLE, NOTIFICATIONS, REFERRALS)
#: Table name -> key -> stored JSON-ready value (a read view).
Tables = Mapping[str, Mapping[str, Any]]
Write = tuple[str, str, Any]
Owns = Callable[[str], bool]


class CasebookError(BrokerError):
    """The stored state breaks a rule (e.g. alias pointers in a cycle); names the table and rule only."""


class Status(str, Enum):
    """Where a notification stands in this partition."""

    ROUTED = "routed"
    SUPERSEDED = "superseded"
    PENDING = "pending-supersede"


class Trigger(str, Enum):
    """What a remembered consequence is."""

    MARAC = "marac"
    THRESHOLD = "threshold"
    SIGNIFICANT = "significant"


@dataclass(frozen=True)
class Raised:
    """A consequence raised from a person's record; `basis` is its notification id, or its quarter."""

    output_id: uuid.UUID
    route: Route
    recipient: str
    payload_key: str | None
    trigger: Trigger
    basis: str

    @property
    def prior(self) -> PriorOutput:
        """As a produced output (what a recall needs)."""
        return PriorOutput(self.output_id, self.route, self.recipient, self.payload_key)


@dataclass(frozen=True)
class Person:
    """One person's live record: chronology (as a child), incidents (as a victim), consequences raised."""

    chronology: tuple[ChronologyEntry, ...] = ()
    incidents: tuple[VictimIncident, ...] = ()
    raised: tuple[Raised, ...] = ()


@dataclass(frozen=True)
class NotificationRecord:
    """What the router remembers of a notification id (see the module docstring)."""

    status: Status
    authority: str | None = None
    produced: tuple[PriorOutput, ...] = ()
    keys: tuple[str, ...] = ()
    touched: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    supersedes: uuid.UUID | None = None
    superseded_by: uuid.UUID | None = None
    supersede_action: Action | None = None
    lawful_basis: LawfulBasis = LawfulBasis.UNKNOWN


@dataclass(frozen=True)
class ReferralRecord:
    """What the router remembers of a front door referral id (see the module docstring)."""

    authority: str
    notification_id: uuid.UUID | None = None
    decided: datetime | None = None


class Closure(str, Enum):
    """What a front door decision did to the router's state (each is audited by the stage)."""

    CLOSED = "closed"  # the referral is closed from the decision's instant
    HELD = "held"  # the referral is not routed here (yet): remembered, applied when it is
    DUPLICATE = "already-closed"  # decided before at the same or an earlier instant: nothing changes
    RECALLED = "ignored-recalled"  # its notification was amended or withdrawn: the referral is gone
    REFUSED = "refused-authority"  # the deciding authority is not the referral's
    ELSEWHERE = "ignored-partition"  # read in a partition that does not hold the deciding authority


@dataclass(frozen=True)
class Closing:
    """A decision's verdict, with what its audit record names (ids and authority only)."""

    verdict: Closure
    referral_id: uuid.UUID
    authority: str
    decided: datetime
    notification_id: uuid.UUID | None = None


@dataclass(frozen=True)
class Step:
    """What one record makes the worker do.

    outputs: to send (and audit), in this order.  writes: (table, key, JSON value), applied only after the
    outputs are acknowledged, in this order (the notification's own record last).  broadcast: send to every
    partition of the router input.  skipped: why nothing was routed.  notes: field paths and rules only.
    closing: a front door decision's verdict (None for any other record).
    """

    outputs: tuple[RoutedOutput, ...]
    writes: tuple[Write, ...]
    broadcast: SupersedeRequest | None = None
    skipped: str | None = None
    notes: tuple[str, ...] = ()
    closing: Closing | None = None

    def of_route(self, route: Route) -> tuple[RoutedOutput, ...]:
        """The outputs on one route (recalls are on the route of what they recall)."""
        return tuple(o for o in self.outputs if o.route is route)


_PERSON = TypeAdapter(Person)
_RECORD = TypeAdapter(NotificationRecord)
_REFERRAL = TypeAdapter(ReferralRecord)


def load_person(data: Any) -> Person:
    """A person record from its stored JSON (not an alias pointer)."""
    return _PERSON.validate_python(data)


def load_notification(data: Any) -> NotificationRecord:
    """A notification record from its stored JSON."""
    return _RECORD.validate_python(data)


def load_referral(data: Any) -> ReferralRecord:
    """A referral record from its stored JSON."""
    return _REFERRAL.validate_python(data)


def supersede_request_id(by: uuid.UUID, superseded: uuid.UUID) -> uuid.UUID:
    """uuid5 over (superseding notification, superseded notification)."""
    return uuid.uuid5(OUTPUT_NAMESPACE, f"{by}|supersede|{superseded}")


def apply_writes(tables: Mapping[str, MutableMapping[str, Any]], writes: Iterable[Write]) -> None:
    """Apply a step's writes, in order."""
    for table, key, value in writes:
        tables[table][key] = value


def _rank(table_key: str) -> tuple[int, str]:
    """Canonical order of people keys: hashed NHS keys first (the most stable identifier), then by text."""
    person = table_key.split("|", 1)[1]
    return (0 if person.startswith("nhs:") else 1, person)


def _by_occurred(items: Iterable[Any]) -> tuple[Any, ...]:
    unique = {item.notification_id: item for item in items}
    return tuple(sorted(unique.values(), key=lambda i: (i.occurred, str(i.notification_id))))


def _merge(people: Iterable[Person]) -> Person:
    """The union of several records of one person (entries and incidents by notification id)."""
    chronology: list[ChronologyEntry] = []
    incidents: list[VictimIncident] = []
    raised: dict[uuid.UUID, Raised] = {}
    for p in people:
        chronology.extend(p.chronology)
        incidents.extend(p.incidents)
        for r in p.raised:
            raised.setdefault(r.output_id, r)
    # one notification's entries from two roots: the decided one wins (the earliest decision, placed last)
    chronology.sort(key=lambda e: (e.decided is not None, -e.decided.timestamp() if e.decided else 0.0))
    return Person(_by_occurred(chronology), _by_occurred(incidents), tuple(raised.values()))


# ------------------------------------------------------------------------------------------- the book
class _Book:
    """A step's view of the tables: reads fall through staged writes to the tables."""

    def __init__(self, tables: Tables) -> None:
        self._tables = tables
        self._people: dict[str, Person | str] = {}  # staged: a record, or the root table key it points at
        self._records: dict[str, NotificationRecord] = {}
        self._referrals: dict[str, ReferralRecord] = {}
        self._read: dict[str, Person | str | None] = {}

    def raw(self, table: str, key: str) -> Any:
        """The stored value (unstaged)."""
        values = self._tables.get(table)
        return None if values is None else values.get(key)

    def stored(self, key: str) -> Person | str | None:
        """A people key's value: a record, the table key it points at, or None."""
        if key in self._people:
            return self._people[key]
        if key not in self._read:
            raw = self.raw(PEOPLE, key)
            value: Person | str | None = None
            if isinstance(raw, Mapping) and "root" in raw:
                value = f"{key.split('|', 1)[0]}|{raw['root']}"
            elif raw is not None:
                value = load_person(raw)
            self._read[key] = value
        return self._read[key]

    def root(self, key: str) -> tuple[str, list[str]]:
        """The root a people key resolves to, and the keys passed on the way."""
        path: list[str] = []
        while isinstance(target := self.stored(key), str):
            if key in path:
                raise CasebookError("people: alias pointers form a cycle")
            path.append(key)
            key = target
        return key, path

    def person(self, root: str) -> Person:
        value = self.stored(root)
        return value if isinstance(value, Person) else Person()

    def put(self, root: str, person: Person) -> None:
        """Stage a root's record (nothing for an empty record where none is stored, e.g. a suspect's)."""
        stored = self.stored(root)
        if stored != person and not (stored is None and person == Person()):
            self._people[root] = person

    def link(self, authority: str, person_keys: Iterable[str]) -> str:
        """Resolve keys of one person, merge their roots into the canonical one, and return it."""
        roots: set[str] = set()
        nodes: set[str] = set()
        for key in (f"{authority}|{k}" for k in person_keys):
            root, path = self.root(key)
            roots.add(root)
            nodes.update(path)
            nodes.add(key)
        canonical = min(roots, key=_rank)
        if len(roots) > 1:
            self.put(canonical, _merge(self.person(r) for r in sorted(roots, key=_rank)))
        for node in sorted((nodes | roots) - {canonical}):
            if self.stored(node) != canonical:
                self._people[node] = canonical
        return canonical

    def record(self, nid: str) -> NotificationRecord | None:
        if nid in self._records:
            return self._records[nid]
        raw = self.raw(NOTIFICATIONS, nid)
        return None if raw is None else load_notification(raw)

    def put_record(self, nid: str, rec: NotificationRecord) -> None:
        self._records[nid] = rec

    def referral(self, rid: str) -> ReferralRecord | None:
        if rid in self._referrals:
            return self._referrals[rid]
        raw = self.raw(REFERRALS, rid)
        return None if raw is None else load_referral(raw)

    def put_referral(self, rid: str, ref: ReferralRecord) -> None:
        self._referrals[rid] = ref

    def staged_people(self) -> tuple[str, ...]:
        return tuple(self._people)

    def staged_records(self) -> tuple[str, ...]:
        return tuple(self._records)

    def writes(self, last: str | None) -> tuple[Write, ...]:
        """Records before the pointers that lead to them; referrals; other notifications; then `last`."""
        records = [(PEOPLE, k, _PERSON.dump_python(v, mode="json")) for k, v in self._people.items()
                   if isinstance(v, Person)]
        pointers = [(PEOPLE, k, {"root": v.split("|", 1)[1]}) for k, v in self._people.items() if isinstance(v, str)]
        referrals = [(REFERRALS, k, _REFERRAL.dump_python(v, mode="json")) for k, v in self._referrals.items()]
        order = [k for k in self._records if k != last] + ([last] if last in self._records else [])
        notes = [(NOTIFICATIONS, k, _RECORD.dump_python(self._records[k], mode="json")) for k in order]
        return (*records, *pointers, *referrals, *notes)


# ---------------------------------------------------------------------------------------- settling
@dataclass
class _Effects:
    """What a step emits while settling people: outputs, ids already emitted or recalled, attributions."""

    by: uuid.UUID
    action: Action
    at: datetime
    lawful_basis: LawfulBasis
    routing: bool = False  # True while routing `by` itself: its own consequences go to `own`
    outputs: list[RoutedOutput] = field(default_factory=list)
    emitted: set[uuid.UUID] = field(default_factory=set)
    recalled: set[uuid.UUID] = field(default_factory=set)
    own: list[PriorOutput] = field(default_factory=list)

    def add(self, out: RoutedOutput) -> None:
        self.outputs.append(out)
        if isinstance(out.payload, Recall):
            self.recalled.add(out.payload.recalled_output_id)
        else:
            self.emitted.add(out.output_id)

    def recall(self, prior: PriorOutput, lawful_basis: LawfulBasis | None = None) -> None:
        if prior.output_id in self.recalled:
            return
        reason = RecallReason.WITHDRAWN if self.action is Action.WITHDRAW else RecallReason.AMENDED
        basis = lawful_basis or self.lawful_basis
        self.add(recall(prior, by=self.by, reason=reason, issued=self.at, lawful_basis=basis))


_Wanted = tuple[Raised, Callable[[], RoutedOutput]]


def _wanted(authority: str, root_key: str, person: Person, at: datetime) -> list[_Wanted]:
    """What the person's live record calls for, each with the builder of its output."""
    out: list[_Wanted] = []
    criteria = marac_criteria(person.incidents)
    for inc in person.incidents:
        if crit := criteria[inc.notification_id]:
            oid = output_id(inc.notification_id, Route.MARAC, authority)
            raised = Raised(oid, Route.MARAC, authority, None, Trigger.MARAC, str(inc.notification_id))
            out.append((raised, partial(marac_referral, authority, inc, crit)))
    entries = person.chronology
    for quarter, first in threshold_quarters(entries).items():
        oid = cumulative_alert_id(authority, root_key, quarter)
        raised = Raised(oid, Route.CUMULATIVE_CONCERN, authority, root_key, Trigger.THRESHOLD, quarter)
        out.append((raised, partial(threshold_alert, authority, root_key, quarter, first, entries, at)))
    for event in significant_events(entries):
        oid = output_id(event.notification_id, Route.CUMULATIVE_CONCERN, authority, event.child_key)
        basis = str(event.notification_id)
        raised = Raised(oid, Route.CUMULATIVE_CONCERN, authority, event.child_key, Trigger.SIGNIFICANT, basis)
        out.append((raised, partial(significant_alert, authority, event, entries, at)))
    return out


def _standing(authority: str, person: Person) -> set[uuid.UUID]:
    """Ids of the significant-event alerts the record supports when decisions are ignored: one raised before
    the front door's decision reached the router stays raised."""
    return {output_id(e.notification_id, Route.CUMULATIVE_CONCERN, authority, e.child_key)
            for e in significant_events(person.chronology, decisions=False)}


def _settle(book: _Book, root: str, fx: _Effects) -> None:
    """Raise what the person's record calls for and was not raised; recall what lost its basis."""
    authority, root_key = root.split("|", 1)
    person = book.person(root)
    wanted = _wanted(authority, root_key, person, fx.at)
    wanted_ids = {r.output_id for r, _ in wanted} | _standing(authority, person)  # decisions never recall
    wanted_quarters = {r.basis for r, _ in wanted if r.trigger is Trigger.THRESHOLD}
    kept: list[Raised] = []
    for r in person.raised:
        if r.output_id in wanted_ids or (r.trigger is Trigger.THRESHOLD and r.basis in wanted_quarters):
            kept.append(r)
        else:
            fx.recall(r.prior)
    have_ids = {r.output_id for r in kept}
    have_quarters = {r.basis for r in kept if r.trigger is Trigger.THRESHOLD}
    for r, build in wanted:
        if r.trigger is Trigger.THRESHOLD and r.basis in have_quarters:
            continue
        if r.output_id not in have_ids:
            if r.output_id not in fx.emitted:
                fx.add(build())
            kept.append(r)
        if r.trigger is not Trigger.THRESHOLD:
            _attribute(book, r, fx)
    book.put(root, replace(person, raised=tuple(kept)))


def _attribute(book: _Book, r: Raised, fx: _Effects) -> None:
    """Add a consequence to the produced outputs of the notification it is about."""
    if fx.routing and r.basis == str(fx.by):
        if r.prior not in fx.own:
            fx.own.append(r.prior)
        return
    rec = book.record(r.basis)
    if rec is not None and rec.status is Status.ROUTED and r.prior not in rec.produced:
        book.put_record(r.basis, replace(rec, produced=(*rec.produced, r.prior)))


def _retire(book: _Book, nid: str, rec: NotificationRecord, by: uuid.UUID, action: Action) -> list[str]:
    """Mark a routed notification superseded and drop it from its people's records; the roots touched."""
    roots: list[str] = []
    gone = uuid.UUID(nid)
    for key in rec.keys:
        root, _ = book.root(key)
        if root in roots:
            continue
        roots.append(root)
        person = book.person(root)
        book.put(root, replace(
            person,
            chronology=tuple(e for e in person.chronology if e.notification_id != gone),
            incidents=tuple(i for i in person.incidents if i.notification_id != gone),
        ))
    book.put_record(nid, replace(rec, status=Status.SUPERSEDED, superseded_by=by, supersede_action=action))
    return roots


def _redelivered(book: _Book, nid: str, rec: NotificationRecord, why: str) -> Step:
    """Nothing to send; re-write what the step wrote, so the changelog holds it."""
    writes: list[Write] = []
    for key in rec.touched:
        if (value := book.raw(PEOPLE, key)) is not None:
            writes.append((PEOPLE, key, value))
    for p in rec.produced:
        if p.route is Route.FRONT_DOOR and (value := book.raw(REFERRALS, str(p.output_id))) is not None:
            writes.append((REFERRALS, str(p.output_id), value))
    for other in rec.updated:
        if (value := book.raw(NOTIFICATIONS, other)) is not None:
            writes.append((NOTIFICATIONS, other, value))
    writes.append((NOTIFICATIONS, nid, book.raw(NOTIFICATIONS, nid)))
    return Step(outputs=(), writes=tuple(writes), skipped=why)


def _utc(value: datetime, argument: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise RoutingError(f"{argument}: must carry a UTC offset")
    return value.astimezone(UTC)


# --------------------------------------------------------------------------------------- supersede
def on_supersede(req: SupersedeRequest, *, tables: Tables, owns: Owns | None = None) -> Step:
    """Recall what a superseded notification produced if it was routed here; else remember it is superseded.

    Predecessor routed here: a Recall per produced output (AMENDED / WITHDRAWN by `req.action`, ids from
    (req.by_notification_id, route, recalled id)), marked superseded, dropped from its people's records
    (and whatever rested on it recalled).  Not here: a pending marker, so it is never routed.  Already
    superseded or pending: nothing new (the stored record is re-written).  `owns`: see the module docstring.
    """
    book = _Book(tables)
    nid = str(req.superseded_id)
    rec = book.record(nid)
    if rec is not None and rec.authority is not None and owns is not None and not owns(rec.authority):
        return Step(outputs=(), writes=(), skipped="predecessor held by another partition")
    if rec is None:
        pending = NotificationRecord(Status.PENDING, superseded_by=req.by_notification_id, supersede_action=req.action)
        book.put_record(nid, pending)
        return Step((), book.writes(nid), skipped="predecessor not routed here: remembered as superseded")
    if rec.status is not Status.ROUTED:
        return _redelivered(book, nid, rec, f"already {rec.status.value}")
    fx = _Effects(req.by_notification_id, req.action, _utc(req.issued, "issued"), rec.lawful_basis)
    _supersede_here(book, nid, rec, fx)
    return Step(tuple(fx.outputs), book.writes(nid))


def _supersede_here(book: _Book, nid: str, rec: NotificationRecord, fx: _Effects) -> None:
    for prior in rec.produced:
        fx.recall(prior, rec.lawful_basis)
    for root in _retire(book, nid, rec, fx.by, fx.action):
        _settle(book, root, fx)


# ------------------------------------------------------------------------------------- notification
def on_notification(
    n: AgencyNotification,
    *,
    received: datetime,
    tables: Tables,
    schools: Mapping[str, School],
    secret: bytes,
    deadlines: DeadlineCalculator,
    owns: Owns | None = None,
) -> Step:
    """Route one accepted notification against the tables (see the module docstring for the rules)."""
    received = _utc(received, "received")
    book = _Book(tables)
    nid = str(n.envelope.notification_id)
    rec = book.record(nid)
    if rec is not None and rec.status is not Status.PENDING:
        return _redelivered(book, nid, rec, "already routed" if rec.status is Status.ROUTED else "already superseded")
    step = _Routing(book, n, received, secret, owns)
    if rec is not None:
        return step.skip(rec)
    return step.run(schools, deadlines)


class _Routing:
    """One notification's step: link identities, handle the predecessor, route, record, settle."""

    def __init__(
        self, book: _Book, n: AgencyNotification, received: datetime, secret: bytes, owns: Owns | None
    ) -> None:
        self.book = book
        self.n = n
        self.env = n.envelope
        self.nid = str(self.env.notification_id)
        self.authority = self.env.home_local_authority
        self.received = received
        self.secret = secret
        self.owns = owns
        self.fx = _Effects(self.env.notification_id, self.env.action, received, self.env.lawful_basis, routing=True)
        self.notes: list[str] = []
        self.broadcast: SupersedeRequest | None = None
        self.prior: tuple[PriorOutput, ...] = ()
        self.roots: list[str] = []  # people roots to settle

    def skip(self, pending: NotificationRecord) -> Step:
        """Superseded before it arrived: route nothing, but still supersede its own predecessor."""
        self._predecessor(local_recall=True)
        rec = replace(pending, status=Status.SUPERSEDED, authority=self.authority, lawful_basis=self.env.lawful_basis)
        self._settle_all()
        return self._finish(rec, skipped="superseded before routing")

    def run(self, schools: Mapping[str, School], deadlines: DeadlineCalculator) -> Step:
        who = subjects(self.n, self.secret)
        children = [self.book.link(self.authority, keys.all) for keys in who.children]
        adults = [self.book.link(self.authority, keys.all) for _, keys in who.adults if keys is not None]
        self._predecessor(local_recall=False)
        withdraw = self.env.action is Action.WITHDRAW
        victim = None if withdraw else self._victim(who)
        ctx = RoutingContext(schools=schools, prior_outputs=self.prior, marac_history=victim[1] if victim else (),
                             subjects=who)
        decision = route(self.n, ctx=ctx, received=self.received, secret=self.secret, deadlines=deadlines)
        self.notes.extend(decision.notes)
        for out in decision.outputs:
            self.fx.add(out)
        decided = self._referral(decision.outputs)
        if not withdraw:
            self._chronology(children, decision.child_routes, decided)
        self.roots.extend([*children, *adults])
        self._settle_all()
        keys = [f"{self.authority}|{k}" for p in [*who.children, *(a for _, a in who.adults if a)] for k in p.all]
        rec = NotificationRecord(
            Status.ROUTED,
            authority=self.authority,
            produced=tuple(dict.fromkeys((*decision.produced, *self.fx.own))),
            keys=tuple(dict.fromkeys(keys)),
            supersedes=self.env.supersedes,
            lawful_basis=self.env.lawful_basis,
        )
        return self._finish(rec)

    def _finish(self, rec: NotificationRecord, skipped: str | None = None) -> Step:
        others = tuple(k for k in self.book.staged_records() if k != self.nid)
        self.book.put_record(self.nid, replace(rec, touched=self.book.staged_people(), updated=others))
        return Step(
            outputs=tuple(self.fx.outputs),
            writes=self.book.writes(self.nid),
            broadcast=self.broadcast,
            skipped=skipped,
            notes=tuple(self.notes),
        )

    def _settle_all(self) -> None:
        for root in dict.fromkeys(self.book.root(r)[0] for r in self.roots):
            _settle(self.book, root, self.fx)

    def _predecessor(self, *, local_recall: bool) -> None:
        """AMEND / WITHDRAW: retire a predecessor routed here, else broadcast a SupersedeRequest."""
        pred = self.env.supersedes
        if self.env.action is Action.NEW or pred is None:
            return
        rec = self.book.record(str(pred))
        mine = rec is not None and (self.owns is None or rec.authority is None or self.owns(rec.authority))
        if rec is not None and mine and rec.status is Status.ROUTED:
            if local_recall:
                _supersede_here(self.book, str(pred), rec, self.fx)
                return
            self.prior = rec.produced
            self.roots.extend(_retire(self.book, str(pred), rec, self.env.notification_id, self.env.action))
        elif rec is not None and mine and rec.status is Status.SUPERSEDED and rec.superseded_by == self.fx.by:
            self.prior = () if local_recall else rec.produced  # redelivered after the predecessor's record landed
        else:
            self.notes.append("envelope.supersedes: predecessor not routed here; supersede request broadcast")
            self.broadcast = SupersedeRequest(
                request_id=supersede_request_id(self.env.notification_id, pred),
                superseded_id=pred,
                by_notification_id=self.env.notification_id,
                action=self.env.action,
                authority=self.authority,
                issued=self.received,
            )

    def _referral(self, outputs: Iterable[RoutedOutput]) -> datetime | None:
        """Index this notification's front door referral; a decision that arrived first closes it (its instant)."""
        front = next((o for o in outputs if o.route is Route.FRONT_DOOR and not isinstance(o.payload, Recall)), None)
        if front is None:
            return None
        rid = str(front.output_id)
        known = self.book.referral(rid)
        held = self.book.referral(held_key(self.authority, rid))
        instants = [r.decided for r in (known, held) if r is not None and r.authority == self.authority and r.decided]
        decided = min(instants, default=None)
        ref = ReferralRecord(self.authority, self.env.notification_id, decided)
        if known != ref:
            self.book.put_referral(rid, ref)
        return decided

    def _victim(self, who: Subjects) -> tuple[str, tuple[MaracCriterion, ...]] | None:
        """Record this notification's incident on its victim; (victim root, history criteria it meets)."""
        keys: PersonKeys | None = victim_keys(self.n, who)
        if keys is None or not domestic_abuse(self.n):
            return None
        root = self.book.root(f"{self.authority}|{keys.primary}")[0]
        incident = VictimIncident(
            notification_id=self.env.notification_id,
            occurred=self.env.occurred,
            intrinsic=intrinsic_criteria(self.n),
            victim_key=keys.primary,
            triage_item_id=output_id(self.env.notification_id, Route.DV_TRIAGE, self.authority),
            lawful_basis=self.env.lawful_basis,
        )
        person = self.book.person(root)
        person = replace(person, incidents=_by_occurred((*person.incidents, incident)))
        self.book.put(root, person)
        self.roots.append(root)
        criteria = marac_criteria(person.incidents)[self.env.notification_id]
        return root, tuple(c for c in criteria if c in HISTORY_CRITERIA)

    def _chronology(self, children: list[str], routes: tuple[tuple[str, tuple[Route, ...]], ...],
                    decided: datetime | None) -> None:
        significant = significant_event(self.n)
        for root, (key, taken) in zip(children, routes, strict=True):
            root = self.book.root(root)[0]
            entry = ChronologyEntry(
                notification_id=self.env.notification_id,
                agency_type=self.env.source.agency_type,
                kind=type(self.n).__name__,
                occurred=self.env.occurred,
                routes=taken,
                child_key=key,
                significant=significant,
                lawful_basis=self.env.lawful_basis,
                decided=decided if Route.FRONT_DOOR in taken else None,
            )
            person = self.book.person(root)
            kept = [e for e in person.chronology if e.notification_id != entry.notification_id]
            self.book.put(root, replace(person, chronology=_by_occurred((*kept, entry))))


# ----------------------------------------------------------------------------------------- decision
def held_key(authority: str, referral_id: uuid.UUID | str) -> str:
    """Where a decision for a referral not routed here (yet) waits: per deciding authority, so that it can never
    overwrite (or be taken for) another authority's referral record, whichever partition's store it lands in."""
    return f"held|{authority}|{referral_id}"


def on_decision(d: FrontDoorDecision, *, tables: Tables, owns: Owns | None = None) -> Step:
    """Close the referral a front door decision names (see the module docstring); never raises for the state
    it finds.  Writes: the people records whose entries changed, then the referral record last."""
    book = _Book(tables)
    rid = str(d.referral_id)
    decided = _utc(d.decided, "decided")

    def verdict(closure: Closure, why: str, writes: tuple[Write, ...] = (), nid: uuid.UUID | None = None) -> Step:
        closing = Closing(closure, d.referral_id, d.authority, decided, nid)
        return Step(outputs=(), writes=writes, skipped=None if closure is Closure.CLOSED else why, closing=closing)

    def earliest(known: ReferralRecord | None) -> datetime:
        return decided if known is None or known.decided is None else min(known.decided, decided)

    if owns is not None and not owns(d.authority):
        return verdict(Closure.ELSEWHERE, "decision read outside its authority's partition")
    ref = book.referral(rid)
    if ref is not None and ref.authority != d.authority:
        return verdict(Closure.REFUSED, "the deciding authority is not the referral's", nid=ref.notification_id)
    nid = ref.notification_id if ref is not None else None
    rec = None if nid is None else book.record(str(nid))
    if rec is None:  # not routed here (yet): remembered; `_Routing._referral` applies it when it is
        key = held_key(d.authority, rid)
        held = book.referral(key)
        if held is not None and held.decided == earliest(held):
            return verdict(Closure.HELD, "already held", ((REFERRALS, key, book.raw(REFERRALS, key)),), nid)
        book.put_referral(key, ReferralRecord(d.authority, None, earliest(held)))
        return verdict(Closure.HELD, "referral not routed here (yet): decision remembered", book.writes(None), nid)
    assert ref is not None
    if rec.status is not Status.ROUTED:
        return verdict(Closure.RECALLED, f"referral's notification {rec.status.value}", nid=nid)
    if ref.decided == earliest(ref):
        rewrite = [(PEOPLE, root, v) for root in _roots_of(book, rec) if (v := book.raw(PEOPLE, root)) is not None]
        rewrite.append((REFERRALS, rid, book.raw(REFERRALS, rid)))
        return verdict(Closure.DUPLICATE, "already decided", tuple(rewrite), nid)
    closed = earliest(ref)
    for root in _roots_of(book, rec):
        person = book.person(root)
        entries = tuple(replace(e, decided=closed) if e.notification_id == nid else e for e in person.chronology)
        book.put(root, replace(person, chronology=entries))
    book.put_referral(rid, replace(ref, decided=closed))
    return verdict(Closure.CLOSED, "", book.writes(None), nid)


def _roots_of(book: _Book, rec: NotificationRecord) -> list[str]:
    """The people roots a notification's keys resolve to now."""
    return list(dict.fromkeys(book.root(key)[0] for key in rec.keys))
