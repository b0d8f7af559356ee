"""The router stage: one record from `internal.accepted` to routed outputs, or to the dead letter.

A record is an accepted notification (routed by `broker.casebook.on_notification`) or an internal
`SupersedeRequest` (a recall broadcast by another partition, `broker.casebook.on_supersede`). Order per
record: compute the step (pure) -> send every output and its audit record and any broadcast, await their
acknowledgements -> write the state the step derived, await its changelog -> return (the caller then
acknowledges the record). A crash anywhere re-reads the record; the casebook re-derives the same output ids
and never a second alert. A deterministic failure at any stage dead-letters the record with that stage
(`router.decode`, `router.route`, `router.emit`, `router.record`) so it can be redriven after a fix.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import datetime
from enum import Enum
from typing import Any, cast
from uuid import UUID

from aiokafka.partitioner import murmur2

from broker import casebook
from broker.dead_letters import dead_letter, shrinking
from broker.failure import StageFailed, persist
from broker.faults import Faults
from broker.identity import AgencyNotification
from broker.intake_stage import audit_record, instant
from broker.logs import get_logger
from broker.outlet import Inbound, Outlet, StateWriter
from broker.reference import School
from broker.routing import DeadlineCalculator
from broker.topics import ROUTE_TOPICS
from schemas.codec import Codec
from schemas.models import AuditEvent, FieldError, Recall, SupersedeRequest

__all__ = ["RouterOutcome", "RouterStage"]

_log = get_logger("router")


def partition_of(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner (murmur2, as aiokafka and the Java client) gives a key."""
    return int(murmur2(key) & 0x7FFFFFFF) % partitions


class RouterOutcome(str, Enum):
    """The one outcome each router record ends in."""

    ROUTED = "ROUTED"
    SKIPPED = "SKIPPED"  # already routed (a redelivery) or superseded before routing: state rewritten
    DEAD_LETTERED = "DEAD_LETTERED"


class RouterStage:
    """Routes records of `internal.accepted` (see the module docstring)."""

    def __init__(self, *, codec: Codec, secret: bytes, schools: Mapping[str, School],
                 deadlines: DeadlineCalculator, outlet: Outlet, state: StateWriter,
                 faults: Faults | None = None) -> None:
        self.faults = faults or Faults()
        self.codec = codec
        self.secret = secret
        self.schools = schools
        self.deadlines = deadlines
        self.outlet = outlet
        self.state = state

    async def handle(self, msg: Inbound) -> RouterOutcome:
        """Process one record to its outcome; returns only when the outcome is durable."""
        try:
            step, received, nid = self._step(msg)

            async def emit() -> None:
                self.faults.check("router.emit", nid)
                await self._emit(step, received)

            async def record() -> None:
                self.faults.check("router.record", nid)
                await self.state.write(msg.partition, step.writes)

            await persist("router.emit", emit)
            await persist("router.record", record)
        except StageFailed as exc:
            await self._dead_letter(msg, exc)
            return RouterOutcome.DEAD_LETTERED
        _log.info("skipped" if step.skipped else "routed", topic=msg.topic, partition=msg.partition,
                  offset=msg.offset, notification_id=nid, why=step.skipped, outputs=len(step.outputs),
                  broadcast=step.broadcast is not None)
        return RouterOutcome.SKIPPED if step.skipped else RouterOutcome.ROUTED

    def _step(self, msg: Inbound) -> tuple[casebook.Step, datetime, str]:
        try:
            record = self.codec.decode(msg.value)
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
                step = casebook.on_supersede(record, tables=self.state.view(), owns=owns)
                return step, record.issued, str(record.superseded_id)
            n = cast(AgencyNotification, record)
            step = casebook.on_notification(n, received=received, tables=self.state.view(), schools=self.schools,
                                            secret=self.secret, deadlines=self.deadlines, owns=owns)
            return step, received, str(n.envelope.notification_id)
        except Exception as exc:
            raise StageFailed("router.route", exc) from exc

    async def _emit(self, step: casebook.Step, received: datetime) -> None:
        futures: list[Any] = []
        for out in step.outputs:
            notification_id = getattr(out.payload, "notification_id", None)
            futures.append(await self.outlet.send(ROUTE_TOPICS[out.route], out.recipient, out.payload))
            event = AuditEvent.RECALLED if isinstance(out.payload, Recall) else AuditEvent.DISCLOSED
            audit = audit_record(event, received, notification_id=notification_id, purpose=out.purpose,
                                 output_id=out.output_id, route=out.route, recipient=out.recipient,
                                 lawful_basis=out.lawful_basis)
            futures.append(await self.outlet.send("audit", str(notification_id), audit))
        if step.broadcast is not None:
            for p in range(self.outlet.partitions("internal.accepted")):
                futures.append(await self.outlet.send("internal.accepted", step.broadcast.authority, step.broadcast,
                                                      partition=p))
        await asyncio.gather(*futures)

    def _notification_id(self, msg: Inbound) -> UUID | None:
        """The notification id of a record, when it can be decoded at all."""
        try:
            record = self.codec.decode(msg.value)
        except Exception:
            return None
        if isinstance(record, SupersedeRequest):
            return record.by_notification_id
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
            futures = [await self.outlet.send("deadletter", key, letters[-1]),
                       await self.outlet.send("audit", key, audit)]
            await asyncio.gather(*futures)

        letters = [letter]
        await shrinking("router.deadletter", letters, send_both)
        _log.error("dead-lettered", topic=msg.topic, partition=msg.partition, offset=msg.offset, stage=exc.stage,
                   error=type(exc.cause).__name__)
