"""The SLA tracker stage: routed items open clocks, recalls cancel them, acknowledgements stop them, and `tick`
emits the AT_RISK / BREACHED that fall due (rules: `broker.sla`; this module only reads, sends and writes).

Partitioning. Inputs are the six route topics (keyed by recipient: school URN or authority code) and
`feedback.acknowledgements`; all have the same number of partitions. A clock lives in the partition its item
was read from, i.e. the partition of its recipient. An acknowledgement names its sender as recipient
(`school_urn`, `authority`): read in that recipient's partition, it meets the clock there; read anywhere else
(a producer that keys acknowledgements by the acknowledged id, as the school pages do today), it is re-sent
once to `feedback.acknowledgements` with the partition of its recipient (FORWARDED) and handled when read
there. Producers should key acknowledgements by recipient, which saves the hop. A `FrontDoorDecision` read in
its recipient's partition is also re-sent to the router's input (`internal.accepted`, keyed by the authority,
with the SLA events: at least once) unless it decides a cumulative-concern alert: the router closes the
referral there (`broker.casebook.on_decision`, idempotent). The worker subscribes to all
the input topics in one agent; faust assigns co-partitioned topics' partitions together, so one worker holds
both the clock and the acknowledgements of a recipient. An acknowledgement sent by another school arrives in
that school's partition: there the clock is unknown, so it is held, never closes anything, and expires
(audited) after `SlaRules.hold_for`; when both schools share a partition, it is refused (audited).

Order per batch (as the router): decide every record against the state the earlier ones leave -> send the
SLA events and audit records, await their acknowledgements -> write the clocks, await their changelog ->
return (the worker then acknowledges the records). `tick(now, partitions)` does the same for the clocks of
the partitions this worker owns (every worker ticks its own; a leader-only timer would not see them).
Events carry ids derived from (output id, state) and instants derived from the clock, so a crash anywhere,
a redelivery or a second tick re-emits the same records at most, never a second event.
"""

from __future__ import annotations

import asyncio
import contextvars
import heapq
import weakref
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import Enum
from functools import cached_property, partial
from types import SimpleNamespace
from typing import Any
from uuid import UUID

from broker import sla
from broker._tally import OpenTally
from broker.batch import Overlay, Received, Runner, direct
from broker.dead_letters import dead_letter, shrinking
from broker.failure import StageFailed, persist
from broker.faults import Faults
from broker.intake_stage import audit_record, instant
from broker.logs import get_logger
from broker.metrics import Metrics, OpenClocks
from broker.outlet import Inbound, Outlet, Send, StateWriter, partition_of, prefetch_schemas
from broker.topics import ROUTE_TOPICS
from schemas.codec import Codec
from schemas.models import AuditEvent, FieldError, FrontDoorDecision, Recall, Record, Route, SlaEvent, SlaState

__all__ = [
    "ACK_TOPIC",
    "CLOCKS_TABLE",
    "EVENTS_TOPIC",
    "HELD_TABLE",
    "INPUT_TOPICS",
    "TABLES",
    "SlaOutcome",
    "SlaStage",
    "partition_runner",
]

CLOCKS_TABLE = "sla-clocks"
HELD_TABLE = "sla-held-acks"
TABLES = (CLOCKS_TABLE, HELD_TABLE)
ACK_TOPIC = "feedback.acknowledgements"
EVENTS_TOPIC = "sla.events"
ROUTER_TOPIC = "internal.accepted"  # where front door decisions are re-sent for the router
INPUT_TOPICS = (*ROUTE_TOPICS.values(), ACK_TOPIC)
_log = get_logger("sla")

_PURPOSE = {
    sla.Verdict.MET: "acknowledged in time: clock stopped (MET)",
    sla.Verdict.MET_LATE: "acknowledged after the deadline: clock stopped (MET, late)",
    sla.Verdict.HELD: "acknowledgement for an item not known in this partition (yet): held",
    sla.Verdict.REFUSED_RECIPIENT: "acknowledgement refused: not the item's recipient",
    sla.Verdict.REFUSED_KIND: "acknowledgement refused: this record cannot acknowledge this route",
    sla.Verdict.IGNORED_RECALLED: "acknowledgement ignored: the item was recalled",
    sla.Verdict.IGNORED_CLOSED: "acknowledgement ignored: the clock is already closed",
    sla.Verdict.EXPIRED: "held acknowledgement ignored: no such item arrived",
}


class SlaOutcome(str, Enum):
    """The one outcome each tracker record ends in."""

    OPENED = "OPENED"  # a clock started (and perhaps closed at once by a held acknowledgement)
    CANCELLED = "CANCELLED"
    ACKNOWLEDGED = "ACKNOWLEDGED"  # an acknowledgement with a verdict (see the audit record)
    FORWARDED = "FORWARDED"  # an acknowledgement read in another partition than its recipient's: sent there
    UNCHANGED = "UNCHANGED"  # a redelivery, a recall of a closed clock, a record without a clock
    DEAD_LETTERED = "DEAD_LETTERED"


_ROUTINE = frozenset({SlaOutcome.OPENED, SlaOutcome.UNCHANGED})


class _TickEvent:
    """Stands in for faust's current event outside a stream: all a table store reads of it is the message."""

    def __init__(self, message: SimpleNamespace) -> None:
        self.message = message


def partition_runner(partition: int, topic: str = "sla-tick") -> Runner:
    """A runner whose calls see faust's current event in `partition`: faust's table stores (rocksdict) pick the
    partition of a read or write from it, and a timer has no event of its own."""
    from faust.streams import _current_event  # faust's documented `current_event()` reads this variable

    event = _TickEvent(SimpleNamespace(partition=partition, topic=topic))  # kept alive by `run` (a weak ref)

    def run(fn: Callable[[], Any]) -> Any:
        ctx = contextvars.copy_context()
        ctx.run(_current_event.set, weakref.ref(event))  # type: ignore[arg-type]
        return ctx.run(fn)

    return run


def _next_due(clock: sla.Clock) -> datetime | None:
    """When a tick next has something to do for an open clock: its AT_RISK instant, then its deadline."""
    if not clock.open:
        return None
    if not clock.at_risk:
        return clock.at_risk_at
    return None if clock.breached else clock.due


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_Entry = tuple[int, int]  # (instant in microseconds, output id as an int): ~100 bytes a clock


def _micros(at: datetime) -> int:
    """An aware instant as whole microseconds since the epoch (exact; a heap key smaller than a datetime)."""
    return (at - _EPOCH) // _MICROSECOND


def _entry(clock: sla.Clock) -> _Entry | None:
    """The due heap's entry of an open clock (None: nothing left to fall due)."""
    at = _next_due(clock)
    return None if at is None else (_micros(at), clock.output_id.int)


@dataclass
class _Index:
    """What a tick needs of one owned partition's table, held small: when each open clock next falls due (a heap,
    so a tick reads from the table only the clocks falling due, and a breached clock, which has nothing left to
    fall due, leaves it); the open clocks counted per route and start hour for the gauges (`OpenTally`); the
    pending held acknowledgements; and the closed clocks by the instant they closed (candidates for `sla.purge`).
    Heap entries are checked against the table when taken: one superseded by a later state is skipped. (Keeping
    every open clock here instead grew the worker by ~700 bytes a clock: 4.8 million in a replayed year.)"""

    tally: OpenTally = field(default_factory=OpenTally)
    held: dict[UUID, sla.Held] = field(default_factory=dict)
    closed: list[_Entry] = field(default_factory=list)
    due: list[_Entry] = field(default_factory=list)

    def keep(self, step: sla.Step) -> None:
        """Take in the clocks and held acknowledgements a step wrote."""
        self.tally.keep(step)
        for clock in step.clocks:
            if clock.open:
                self.schedule(clock)
            elif clock.closed_at is not None:
                heapq.heappush(self.closed, (_micros(clock.closed_at), clock.output_id.int))
        if step.held is not None:
            if step.held.settled:
                self.held.pop(step.held.output_id, None)
            else:
                self.held[step.held.output_id] = step.held

    def schedule(self, clock: sla.Clock) -> None:
        """Remember when a tick next has work for this open clock (nothing when it is breached already)."""
        entry = _entry(clock)
        if entry is not None:
            heapq.heappush(self.due, entry)

    def falling_due(self, now: datetime, read: Callable[[UUID], sla.Clock | None]) -> list[sla.Step]:
        """The ticks at `now` of the open clocks that have something due (each clock once, `read` from the table);
        a clock whose entry is due but whose tick at `now` gives nothing yet (a deadline reached exactly at `now`
        breaches only after it) stays scheduled."""
        out: dict[UUID, sla.Step] = {}
        again, until = [], _micros(now)
        while self.due and self.due[0][0] <= until:
            entry = heapq.heappop(self.due)
            oid = UUID(int=entry[1])
            clock = None if oid in out else read(oid)
            at = None if clock is None else _next_due(clock)
            if clock is None or at is None or _micros(at) != entry[0]:
                continue  # closed, moved on, or already taken
            step = sla.tick(clock, now)
            if step.clocks:
                out[oid] = step
            else:
                again.append(entry)
        for entry in again:
            heapq.heappush(self.due, entry)
        return list(out.values())


@dataclass(frozen=True)
class _Plan:
    item: Received
    step: sla.Step
    outcome: SlaOutcome
    route: Route | None = None  # the route of the clock an acknowledgement names, when known here
    forward: Send | None = None  # an acknowledgement re-sent to its recipient's partition, or a decision to the router

    @cached_property
    def writes(self) -> list[tuple[str, str, Any]]:
        """The table writes of the step (serialised once: the overlay and the state writer both need them)."""
        return _writes(self.step)


class SlaStage:
    """Tracks SLA clocks (see the module docstring)."""

    def __init__(self, *, codec: Codec, outlet: Outlet, state: StateWriter, rules: sla.SlaRules | None = None,
                 runner_for: Callable[[int], Runner] = lambda _p: direct, metrics: Metrics | None = None,
                 faults: Faults | None = None) -> None:
        self.codec = codec
        self.outlet = outlet
        self.state = state
        self.rules = rules or sla.SlaRules()
        self.runner_for = runner_for
        self.metrics = metrics
        self.faults = faults or Faults()
        self._routes = {short: route for route, short in ROUTE_TOPICS.items()}
        self._index: dict[int, _Index] = {}
        self._lock = asyncio.Lock()

    # ------------------------------------------------------------------------------------------ records
    async def handle(self, msg: Inbound) -> SlaOutcome:
        """Process one record to its outcome; returns only when the outcome is durable."""
        return (await self.handle_batch([Received(msg)]))[0]

    async def handle_batch(self, items: Sequence[Received]) -> list[SlaOutcome]:
        """Process records (in offset order per partition) as the router does: decide all, send all, write all;
        on a deterministic failure, one record at a time, dead-lettering the one that fails."""
        await persist("sla.decode", partial(prefetch_schemas, self.codec, [i.msg.value for i in items]))
        async with self._lock:
            overlay = Overlay(self.state.view())
            plans: list[_Plan] = []
            sent = False
            try:
                for item in items:
                    plan: _Plan = item.run(partial(self._plan, item, overlay.view(item.msg.partition)))
                    overlay.stage(item.msg.partition, plan.writes)
                    plans.append(plan)
                await self._emit(plans)
                sent = True
                await self._record(plans)
            except StageFailed:  # one at a time; what the batch already sent (acknowledged) is not sent again
                return [await self._one(item, sent=sent) for item in items]
            return [p.outcome for p in plans]

    async def _one(self, item: Received, *, sent: bool = False) -> SlaOutcome:
        try:
            plan: _Plan = item.run(partial(self._plan, item, self.state.view()))
            if not sent:
                await self._emit([plan])
            await self._record([plan])
        except StageFailed as exc:
            await self._dead_letter(item.msg, exc)
            return SlaOutcome.DEAD_LETTERED
        return plan.outcome

    async def _emit(self, plans: Sequence[_Plan]) -> None:
        await persist("sla.emit", partial(self._send, [(p.step, p.route) for p in plans],
                                          [p.forward for p in plans if p.forward]))

    async def _record(self, plans: Sequence[_Plan]) -> None:
        await persist("sla.record", partial(self._write, plans))
        for plan in plans:
            self._after(plan.item.msg.partition, plan.step)
            # A clock opening (or nothing) is routine, one per routed output: debug; the rest is worth a line.
            say = _log.debug if plan.outcome in _ROUTINE else _log.info
            say(plan.outcome.value.lower(), topic=plan.item.msg.topic, partition=plan.item.msg.partition,
                offset=plan.item.msg.offset, events=[e.state.value for e in plan.step.events],
                verdicts=[v.value for _, v in plan.step.verdicts])
        if plans:
            counts = Counter(p.outcome.value.lower() for p in plans)
            _log.info("batch settled", records=len(plans), **counts)

    def _plan(self, item: Received, view: Mapping[str, Any]) -> _Plan:
        msg = item.msg
        try:  # routed outputs were written by the router (texts checked at intake); acknowledgements come from outside
            record = self.codec.decode(msg.value, trusted=not _is_ack_topic(msg.topic))
        except Exception as exc:
            raise StageFailed("sla.decode", exc) from exc
        try:
            if self.faults.rules:  # only a fault drill needs the id
                self.faults.check("sla.track", _record_id(record))
            return self._decide(item, record, view)
        except Exception as exc:
            raise StageFailed("sla.track", exc) from exc

    def _decide(self, item: Received, record: Record, view: Mapping[str, Any]) -> _Plan:
        msg = item.msg
        if _is_ack_topic(msg.topic):
            ack = sla.ack_of(record)
            if ack is None:
                raise ValueError(f"{type(record).__name__} is not an acknowledgement")
            home = partition_of(ack.by.encode(), self.outlet.partitions(ACK_TOPIC))
            if home != msg.partition:
                return _Plan(item, sla.Step(), SlaOutcome.FORWARDED, forward=(ACK_TOPIC, ack.by, record, None, home))
            clock = _clock(view, ack.output_id, msg.partition)
            step = sla.acknowledge(clock, ack, partition=msg.partition, held=_held(view, ack.output_id, msg.partition))
            relay = _relay(record, clock)
            return _Plan(item, step, SlaOutcome.ACKNOWLEDGED, clock.route if clock else None, forward=relay)
        if isinstance(record, Recall):
            step = sla.cancel(_clock(view, record.recalled_output_id, msg.partition), record.issued)
            return _Plan(item, step, SlaOutcome.CANCELLED if step.events else SlaOutcome.UNCHANGED)
        opened = sla.item_of(record, instant(msg.timestamp_ms), self.rules)
        if opened is None:
            return _Plan(item, sla.Step(), SlaOutcome.UNCHANGED)
        p = msg.partition
        step = sla.open_clock(opened, p, self.rules, existing=_clock(view, opened.output_id, p),
                              superseded=_clock(view, opened.supersedes, p) if opened.supersedes else None,
                              held=_held(view, opened.output_id, p))
        return _Plan(item, step, SlaOutcome.OPENED if step.events else SlaOutcome.UNCHANGED)

    # ------------------------------------------------------------------------------------------ ticks
    async def tick(self, now: datetime, partitions: Iterable[int]) -> list[SlaEvent]:
        """Emit the AT_RISK / BREACHED due by `now` for the clocks of `partitions` (those this worker owns),
        expire held acknowledgements and delete closed clocks past retention; durable when it returns. Returns the
        events emitted."""
        async with self._lock:
            owned = sorted(set(partitions))
            self._build([p for p in owned if p not in self._index])
            steps = [(p, s) for p in owned for s in self._due(p, now)]
            if not steps:
                return []
            try:
                await persist("sla.tick.emit", partial(self._send, [(s, None) for _, s in steps]))
                await persist("sla.tick.record", partial(self._write_ticks, steps))
            except BaseException:
                self.forget({p for p, _ in steps})  # due clocks and purge candidates taken: rebuilt at the next tick
                raise
            for p, step in steps:
                self._after(p, step)
            events = [e for _, s in steps for e in s.events]
            _log.info("ticked", partitions=owned, events=len(events), purged=sum(len(s.purged) for _, s in steps))
            return events

    def _due(self, partition: int, now: datetime) -> list[sla.Step]:
        index, view, run = self._index[partition], self.state.view(), self.runner_for(partition)
        steps = index.falling_due(now, lambda oid: run(partial(_clock, view, oid, partition)))
        steps += [sla.expire(h, now, self.rules) for h in list(index.held.values())]
        steps += self._purges(partition, now)
        return [s for s in steps if s.clocks or s.held is not None or s.purged]

    def _purges(self, partition: int, now: datetime) -> list[sla.Step]:
        """Deletions of the partition's closed clocks whose retention has passed (each checked in the table)."""
        closed, view, run = self._index[partition].closed, self.state.view(), self.runner_for(partition)
        out = []
        until = _micros(now - self.rules.retain_closed)
        while closed and closed[0][0] <= until:
            oid = UUID(int=heapq.heappop(closed)[1])
            step: sla.Step = run(partial(lambda oid: sla.purge(_clock(view, oid, partition), now, self.rules), oid))
            if step.purged:
                out.append(step)
        return out

    def _build(self, partitions: Sequence[int]) -> None:
        """Index the open clocks and pending held acknowledgements of newly owned partitions (one table scan)."""
        if not partitions:
            return
        fresh = {p: _Index() for p in partitions}
        view = self.state.view()
        for raw in _values(view.get(CLOCKS_TABLE)):
            index = fresh.get(int(raw["partition"]))
            if index is None:
                continue  # a partition not being indexed now: not decoded
            clock = sla.Clock.from_json(raw)
            if clock.open:
                index.tally.add(clock)
                entry = _entry(clock)
                if entry is not None:
                    index.due.append(entry)
            elif clock.closed_at is not None:
                index.closed.append((_micros(clock.closed_at), clock.output_id.int))
        for raw in _values(view.get(HELD_TABLE)):
            if int(raw["partition"]) not in fresh:
                continue
            held = sla.Held.from_json(raw)
            if not held.settled:
                fresh[held.partition].held[held.output_id] = held
        for index in fresh.values():
            heapq.heapify(index.closed)
            heapq.heapify(index.due)
        self._index.update(fresh)

    def forget(self, partitions: Iterable[int]) -> None:
        """Drop the cache of partitions revoked (or re-assigned: rebuilt from the table at the next tick)."""
        for p in partitions:
            self._index.pop(p, None)

    def open_clocks(self, now: datetime) -> dict[Route, OpenClocks]:
        """Open clocks per route in the partitions ticked so far: count, at risk (breached included), the oldest
        one's age in seconds (to within `BUCKET_SECONDS`: clocks are counted by the hour they started in)."""
        out: dict[Route, OpenClocks] = {}
        for index in self._index.values():
            for route, t in index.tally.totals().items():
                prior = out.get(route, OpenClocks(0, 0, 0.0))
                age = max(0.0, (now - t.earliest).total_seconds())
                out[route] = OpenClocks(prior.open + t.open, prior.at_risk + t.at_risk,
                                        max(prior.oldest_age_seconds, age))
        return out

    # ------------------------------------------------------------------------------------------ recording
    async def _send(self, steps: Sequence[tuple[sla.Step, Route | None]], forwards: Sequence[Send] = ()) -> None:
        sends: list[Send] = list(forwards)
        for step, route in steps:
            sends.extend((EVENTS_TOPIC, str(e.output_id), e, None, None) for e in step.events)
            sends.extend(("audit", str(ack.output_id), _audit(ack, verdict, route or _route_of(ack, step)), None, None)
                         for ack, verdict in step.verdicts)
        if sends:
            await self.outlet.send_all(sends)

    async def _write(self, plans: Sequence[_Plan]) -> None:
        await self.state.write([(p.item.msg.partition, p.writes, p.item.run) for p in plans if p.writes])

    async def _write_ticks(self, steps: Sequence[tuple[int, sla.Step]]) -> None:
        await self.state.write([(p, _writes(s), self.runner_for(p)) for p, s in steps])

    def _after(self, partition: int, step: sla.Step) -> None:
        """Keep the cache in step with what was written; count the events."""
        index = self._index.get(partition)
        if index is not None:
            index.keep(step)
        if self.metrics is not None:
            for event in step.events:
                late = event.state is SlaState.MET and event.at > event.due
                self.metrics.sla_event(event.route, event.state, late=late)

    async def _dead_letter(self, msg: Inbound, exc: StageFailed) -> None:
        at = instant(msg.timestamp_ms)
        rule = f"{exc.stage} failed: {type(exc.cause).__name__}"
        letter = dead_letter(msg, reason="SLA_FAILED", errors=[FieldError(field="(record)", rule=rule)],
                             notification_id=None, stage=exc.stage, at=at)
        audit = audit_record(AuditEvent.DEAD_LETTERED, at, notification_id=None,
                             purpose=f"SLA tracking failed at {exc.stage}; dead-lettered ({msg.coordinates})")
        letters = [letter]

        async def send_both() -> None:
            await self.outlet.send_all([("deadletter", None, letters[-1], None, None),
                                        ("audit", None, audit, None, None)])

        await shrinking("sla.deadletter", letters, send_both)
        if self.metrics is not None:
            self.metrics.dead_lettered("SLA_FAILED", exc.stage)
        _log.error("dead-lettered", topic=msg.topic, partition=msg.partition, offset=msg.offset, stage=exc.stage,
                   error=type(exc.cause).__name__)


# ---------------------------------------------------------------------------------------------- helpers
def _is_ack_topic(topic: str) -> bool:
    return topic.endswith("." + ACK_TOPIC) or topic == ACK_TOPIC


def _writes(step: sla.Step) -> list[tuple[str, str, Any]]:
    writes: list[tuple[str, str, Any]] = [(CLOCKS_TABLE, str(c.output_id), c.to_json()) for c in step.clocks]
    writes.extend((CLOCKS_TABLE, str(oid), None) for oid in step.purged)  # None: deleted (a changelog tombstone)
    if step.held is not None:
        writes.append((HELD_TABLE, _held_key(step.held.output_id, step.held.partition), step.held.to_json()))
    return writes


def _held_key(output_id: UUID, partition: int) -> str:
    """Held acknowledgements are per partition (an id can be held in several): `<partition>:<output id>`."""
    return f"{partition}:{output_id}"


def _clock(view: Mapping[str, Any], output_id: UUID, partition: int) -> sla.Clock | None:
    """The clock of an item in this partition (a store that shows every partition must not change decisions)."""
    raw = view[CLOCKS_TABLE].get(str(output_id))
    clock = None if raw is None else sla.Clock.from_json(raw)
    return clock if clock is not None and clock.partition == partition else None


def _held(view: Mapping[str, Any], output_id: UUID, partition: int) -> sla.Held | None:
    raw = view[HELD_TABLE].get(_held_key(output_id, partition))
    return None if raw is None else sla.Held.from_json(raw)


def _values(table: Any) -> Iterator[Mapping[str, Any]]:
    """The table's values one at a time (a year's clocks listed at once would be gigabytes); None: deleted."""
    return iter(()) if table is None else (v for v in table.values() if v is not None)


def _relay(record: Record, clock: sla.Clock | None) -> Send | None:
    """A front door decision re-sent to the router's input (keyed by the deciding authority), unless it names an
    item known here that is not a referral (a cumulative-concern alert)."""
    if not isinstance(record, FrontDoorDecision) or (clock is not None and clock.route is not Route.FRONT_DOOR):
        return None
    return (ROUTER_TOPIC, record.authority, record, None, None)


def _record_id(record: Record) -> object:
    """What a fault plan matches on: the output or acknowledged id."""
    ack = sla.ack_of(record)
    if ack is not None:
        return ack.output_id
    for name in ("recalled_output_id", "notice_id", "referral_id", "item_id", "alert_id"):
        if hasattr(record, name):
            return getattr(record, name)
    return None


def _route_of(ack: sla.Ack, step: sla.Step) -> Route:
    """The route of the clock an acknowledgement names (UNKNOWN when no clock is known, or several could be)."""
    known = next((c.route for c in step.clocks if c.output_id == ack.output_id), None)
    if known is not None:
        return known
    return next(iter(ack.routes)) if len(ack.routes) == 1 else Route.UNKNOWN


def _audit(ack: sla.Ack, verdict: sla.Verdict, route: Route) -> Record:
    purpose = f"{ack.kind} at {ack.at.isoformat()}: {_PURPOSE[verdict]}"
    return audit_record(AuditEvent.ACKNOWLEDGED, ack.at, notification_id=None, purpose=purpose,
                        output_id=ack.output_id, route=route, recipient=ack.by)
