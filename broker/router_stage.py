"""The router stage: one record from `internal.accepted` to routed outputs, or to the dead letter.

A record is an accepted notification (routed by `broker.casebook.on_notification`), an internal
`SupersedeRequest` (a recall broadcast by another partition, `broker.casebook.on_supersede`) or a
`FrontDoorDecision` the SLA tracker re-sent here keyed by the deciding authority (`broker.casebook.on_decision`:
closes the referral; one audit record per decision, outcome CLOSED / HELD / IGNORED). Order per
record: compute the step (pure) -> send every output and its audit record and any broadcast, await their
acknowledgements -> write the state the step derived, await its changelog -> return (the caller then
acknowledges the record). A crash anywhere re-reads the record; the casebook re-derives the same output ids
and never a second alert. A deterministic failure at any stage dead-letters the record with that stage
(`router.decode`, `router.route`, `router.emit`, `router.record`) so it can be redriven after a fix.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from functools import partial
from typing import Any, cast
from uuid import UUID

from broker import casebook
from broker.batch import Overlay, Received
from broker.dead_letters import dead_letter, shrinking
from broker.failure import StageFailed, persist
from broker.faults import Faults
from broker.identity import AgencyNotification
from broker.intake_stage import audit_record, instant
from broker.logs import debug_enabled, get_logger, offset_span
from broker.metrics import Metrics
from broker.outlet import Inbound, Outlet, Send, StateWriter, partition_of, prefetch_schemas
from broker.reference import School
from broker.routing import DeadlineCalculator
from broker.topics import ROUTE_TOPICS
from schemas.codec import Codec
from schemas.models import AuditEvent, FieldError, FrontDoorDecision, Recall, Route, SupersedeRequest

__all__ = ["RouterOutcome", "RouterStage"]

_log = get_logger("router")


class RouterOutcome(str, Enum):
    """The one outcome each router record ends in."""

    ROUTED = "ROUTED"
    SKIPPED = "SKIPPED"  # already routed (a redelivery) or superseded before routing: state rewritten
    DEAD_LETTERED = "DEAD_LETTERED"
    CLOSED = "CLOSED"  # a front door decision closed its referral
    HELD = "HELD"  # a front door decision for a referral not routed here (yet): remembered
    IGNORED = "IGNORED"  # a front door decision that changes nothing (repeated, recalled referral, refused)


def _outcome(step: casebook.Step) -> RouterOutcome:
    if step.closing is not None:
        verdict = step.closing.verdict
        return {casebook.Closure.CLOSED: RouterOutcome.CLOSED,
                casebook.Closure.HELD: RouterOutcome.HELD}.get(verdict, RouterOutcome.IGNORED)
    return RouterOutcome.SKIPPED if step.skipped else RouterOutcome.ROUTED


@dataclass(frozen=True)
class _Plan:
    """One record's routing step, decided before anything is sent."""

    item: Received
    step: casebook.Step
    received: datetime
    nid: str


class RouterStage:
    """Routes records of `internal.accepted` (see the module docstring)."""

    def __init__(self, *, codec: Codec, secret: bytes, schools: Mapping[str, School],
                 deadlines: DeadlineCalculator, outlet: Outlet, state: StateWriter,
                 faults: Faults | None = None, metrics: Metrics | None = None) -> None:
        self.faults = faults or Faults()
        self.metrics = metrics
        self.codec = codec
        self.secret = secret
        self.schools = schools
        self.deadlines = deadlines
        self.outlet = outlet
        self.state = state

    async def handle(self, msg: Inbound) -> RouterOutcome:
        """Process one record to its outcome; returns only when the outcome is durable."""
        return (await self.handle_batch([Received(msg)]))[0]

    async def handle_batch(self, items: Sequence[Received]) -> list[RouterOutcome]:
        """Route records (in offset order per partition): each step sees the state the earlier ones leave; all
        outputs, audits and broadcasts are sent and acknowledged once, then all state is written and its
        changelog acknowledged once. On a deterministic failure the batch is redone one record at a time (all
        outputs have derived ids; the casebook re-derives them), so each record ends in its own outcome."""
        await persist("router.decode", partial(prefetch_schemas, self.codec, [i.msg.value for i in items]))
        overlay = Overlay(self.state.view())
        plans: list[_Plan] = []
        t0 = time.perf_counter()
        emitted = False
        try:
            for item in items:
                plan: _Plan = item.run(partial(self._plan, item, overlay.view(item.msg.partition)))
                overlay.stage(item.msg.partition, plan.step.writes)
                plans.append(plan)
            t1 = time.perf_counter()
            await persist("router.emit", partial(self._emit, plans))
            emitted, t2 = True, time.perf_counter()
            await persist("router.record", partial(self._write, plans))
        except StageFailed:  # one at a time; outputs the batch already emitted (acknowledged) are not sent again
            return [await self._one(item, emitted=emitted) for item in items]
        for plan in plans:
            self._log(plan)
        outcomes = [_outcome(p.step) for p in plans]
        _log.info("batch settled", records=len(items), offsets=offset_span(i.msg for i in items),
                  outputs=sum(len(p.step.outputs) for p in plans), route_ms=round(1000 * (t1 - t0)),
                  emit_ms=round(1000 * (t2 - t1)), record_ms=round(1000 * (time.perf_counter() - t2)),
                  **Counter(o.value.lower() for o in outcomes))
        return outcomes

    async def _one(self, item: Received, *, emitted: bool = False) -> RouterOutcome:
        """One record on its own; a deterministic failure dead-letters it with its stage. `emitted`: the batch's
        outputs, audits and broadcasts are already acknowledged (the same ones this step derives), so only the
        state is left to write."""
        try:
            plan: _Plan = item.run(partial(self._plan, item, self.state.view()))
            if not emitted:
                await persist("router.emit", partial(self._emit, [plan]))
            await persist("router.record", partial(self._write, [plan]))
        except StageFailed as exc:
            await self._dead_letter(item.msg, exc)
            return RouterOutcome.DEAD_LETTERED
        self._log(plan)
        return _outcome(plan.step)

    def _plan(self, item: Received, view: Mapping[str, Any]) -> _Plan:
        msg = item.msg
        try:
            record = self.codec.decode(msg.value, trusted=True)  # written by intake after it checked every text
            received = instant(int(msg.headers.get("received-ms", b"0")))
        except Exception as exc:
            raise StageFailed("router.decode", exc) from exc
        try:
            self.faults.check("router.route", getattr(getattr(record, "envelope", record), "notification_id", None))
            parts = self.outlet.partitions("internal.accepted")

            def owns(authority: str) -> bool:
                """Whether an authority's state lives in this record's partition (the router is keyed by it)."""
                return partition_of(authority.encode(), parts) == msg.partition

            if isinstance(record, SupersedeRequest):
                step = casebook.on_supersede(record, tables=view, owns=owns)
                return _Plan(item, step, record.issued, str(record.superseded_id))
            if isinstance(record, FrontDoorDecision):
                step = casebook.on_decision(record, tables=view, owns=owns)
                return _Plan(item, step, record.decided, str(record.referral_id))
            n = cast(AgencyNotification, record)
            step = casebook.on_notification(n, received=received, tables=view, schools=self.schools,
                                            secret=self.secret, deadlines=self.deadlines, owns=owns)
            return _Plan(item, step, received, str(n.envelope.notification_id))
        except Exception as exc:
            raise StageFailed("router.route", exc) from exc

    async def _emit(self, plans: Sequence[_Plan]) -> None:
        for plan in plans:
            self.faults.check("router.emit", plan.nid)
        sends: list[Send] = []
        for plan in plans:
            step, received = plan.step, plan.received
            for out in step.outputs:
                notification_id = getattr(out.payload, "notification_id", None)
                sends.append((ROUTE_TOPICS[out.route], out.recipient, out.payload, None, None))
                event = AuditEvent.RECALLED if isinstance(out.payload, Recall) else AuditEvent.DISCLOSED
                audit = audit_record(event, received, notification_id=notification_id, purpose=out.purpose,
                                     output_id=out.output_id, route=out.route, recipient=out.recipient,
                                     lawful_basis=out.lawful_basis)
                sends.append(("audit", str(notification_id), audit, None, None))
            if step.closing is not None:
                sends.append(("audit", str(step.closing.referral_id), _closing_audit(step), None, None))
            if step.broadcast is not None:
                for p in range(self.outlet.partitions("internal.accepted")):
                    sends.append(("internal.accepted", step.broadcast.authority, step.broadcast, None, p))
        await self.outlet.send_all(sends)

    async def _write(self, plans: Sequence[_Plan]) -> None:
        for plan in plans:
            self.faults.check("router.record", plan.nid)
        await self.state.write([(p.item.msg.partition, p.step.writes, p.item.run) for p in plans if p.step.writes])

    def _log(self, plan: _Plan) -> None:
        msg, step = plan.item.msg, plan.step
        if self.metrics is not None:
            for out in step.outputs:
                verified = getattr(out.payload, "calendar_verified", True)
                self.metrics.output_routed(out.route, calendar_verified=verified, authority=out.recipient)
            if step.outputs and not step.skipped:
                self.metrics.routed_latency(max(0.0, time.time() - plan.received.timestamp()))
        # Routed is routine, one per notification: a debug line, summed up in the batch's INFO line (every output
        # is audited); a skip says why at INFO.
        say = _log.info if step.skipped else _log.debug if debug_enabled(_log) else None
        if say is not None:
            say("skipped" if step.skipped else "routed", topic=msg.topic, partition=msg.partition, offset=msg.offset,
                notification_id=plan.nid, why=step.skipped, outputs=len(step.outputs),
                broadcast=step.broadcast is not None)

    def _notification_id(self, msg: Inbound) -> UUID | None:
        """The notification id of a record, when it can be decoded at all."""
        try:
            record = self.codec.decode(msg.value)
        except Exception:
            return None
        if isinstance(record, SupersedeRequest):
            return record.by_notification_id
        if isinstance(record, FrontDoorDecision):
            return None
        return cast(UUID, record.envelope.notification_id)  # type: ignore[attr-defined]

    async def _dead_letter(self, msg: Inbound, exc: StageFailed) -> None:
        at = instant(msg.timestamp_ms)
        rule = f"{exc.stage} failed: {type(exc.cause).__name__}"
        nid = self._notification_id(msg)
        letter = dead_letter(msg, reason="ROUTING_FAILED", errors=[FieldError(field="(record)", rule=rule)],
                             notification_id=nid, stage=exc.stage, at=at)
        audit = audit_record(AuditEvent.DEAD_LETTERED, at, notification_id=nid,
                             purpose=f"routing failed at {exc.stage}; dead-lettered for redrive ({msg.coordinates})")

        async def send_both() -> None:
            key = str(nid) if nid else None
            await self.outlet.send_all([("deadletter", key, letters[-1], None, None),
                                        ("audit", key, audit, None, None)])

        letters = [letter]
        await shrinking("router.deadletter", letters, send_both)
        if self.metrics is not None:
            self.metrics.dead_lettered("ROUTING_FAILED", exc.stage)
        _log.error("dead-lettered", topic=msg.topic, partition=msg.partition, offset=msg.offset, stage=exc.stage,
                   error=type(exc.cause).__name__)


def _closing_audit(step: casebook.Step) -> Any:
    """The audit record of a front door decision's verdict in the router (ids and authority only)."""
    c = step.closing
    assert c is not None
    purpose = f"front door decision in the router: {c.verdict.value}" + (f" ({step.skipped})" if step.skipped else "")
    return audit_record(AuditEvent.ACKNOWLEDGED, c.decided, notification_id=c.notification_id, purpose=purpose,
                        output_id=c.referral_id, route=Route.FRONT_DOOR, recipient=c.authority)
