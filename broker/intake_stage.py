"""The intake stage: one record from an intake topic to exactly one recorded outcome.

Outcomes: ACCEPTED (forwarded to `internal.accepted` keyed by home authority, audited, remembered),
REDELIVERED (our own re-read after a restart: the acceptance is completed again, idempotently, with the
same derived ids), DUPLICATE (the sender resent identical content: audited and dropped), or REFUSED (dead
letter with the reason and stage, a rejection keyed by the sender's source reference, an audit record).

Transient failures are retried until they pass (`broker.failure.persist`); the caller acknowledges the
record only after `handle` returns. If even the dead letter cannot be written, `handle` raises and the
record stays unacknowledged (the worker exits for its supervisor; nothing is skipped).
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from functools import partial
from typing import Any, cast
from uuid import UUID

from broker.batch import Overlay, Received
from broker.dead_letters import dead_letter, shrinking
from broker.errors import BrokerError, SchemaError
from broker.failure import StageFailed, persist
from broker.faults import Faults
from broker.identity import AgencyNotification, subjects
from broker.intake import Seen, Verdict, admit, content_hash, derived_id
from broker.logs import debug_enabled, get_logger, offset_span
from broker.metrics import Metrics
from broker.outlet import Encoded, Inbound, Outlet, StateWriter, prefetch_schemas
from broker.state import dump as dump_seen
from broker.state import load_seen
from schemas.codec import Codec, InvalidPayload
from schemas.codes import is_reference
from schemas.models import AgencyType, AuditEvent, AuditRecord, DeadLetter, FieldError, Record, Rejection

__all__ = ["IntakeOutcome", "IntakeStage", "audit_record", "instant"]

SEEN_TABLE = "intake-seen"
#: (topic short name, key, record or the bytes it was read from, headers): what a plan sends
_Send = tuple[str, str | None, Record | Encoded, dict[str, bytes] | None]
_log = get_logger("intake")


class IntakeOutcome(str, Enum):
    """The one outcome each intake record ends in."""

    ACCEPTED = "ACCEPTED"
    REDELIVERED = "REDELIVERED"
    DUPLICATE = "DUPLICATE"
    REFUSED = "REFUSED"


def instant(ms: int) -> datetime:
    """An instant from epoch milliseconds (Kafka timestamps), exactly."""
    return datetime.fromtimestamp(ms // 1000, UTC).replace(microsecond=(ms % 1000) * 1000)


def audit_record(event: AuditEvent, at: datetime, *, notification_id: UUID | None, purpose: str,
                 **extra: Any) -> AuditRecord:
    """An audit record with an id derived from what it records (a redelivery makes the same one)."""
    return AuditRecord(
        audit_id=derived_id("audit", event.value, notification_id, extra.get("output_id"), purpose),
        event=event, notification_id=notification_id, purpose=purpose, at=at, **extra,
    )


@dataclass
class _Plan:
    """What one record will send and write, decided before anything is sent."""

    item: Received
    outcome: IntakeOutcome
    nid: UUID | None
    sends: list[_Send] = field(default_factory=list)
    writes: list[tuple[str, str, Any]] = field(default_factory=list)
    forward: bool = False  # the sends forward the notification (a fault drill's intake.forward applies)
    refusal: _Refusal | None = None


class IntakeStage:
    """Decides and records the outcome of intake records (see the module docstring)."""

    def __init__(self, *, codec: Codec, secret: bytes, agencies: Mapping[str, AgencyType], outlet: Outlet,
                 state: StateWriter, faults: Faults | None = None, metrics: Metrics | None = None) -> None:
        self.faults = faults or Faults()
        self.metrics = metrics
        self.codec = codec
        self.secret = secret
        self.agencies = dict(agencies)
        self.outlet = outlet
        self.state = state

    async def handle(self, msg: Inbound) -> IntakeOutcome:
        """Process one record to its outcome; returns only when the outcome is durable."""
        return (await self.handle_batch([Received(msg)]))[0]

    async def handle_batch(self, items: Sequence[Received]) -> list[IntakeOutcome]:
        """Process records (in offset order per partition): decide each against the state as the earlier ones
        leave it, send everything and await the acks once, write the state and await its changelog once. On a
        deterministic failure the batch is redone one record at a time (every send and write is idempotent),
        so each record still ends in its own outcome."""
        await persist("intake.decode", partial(prefetch_schemas, self.codec, [i.msg.value for i in items]))
        overlay = Overlay(self.state.view())
        plans = []
        t0 = time.perf_counter()
        for item in items:
            view = overlay.view(item.msg.partition)
            plan: _Plan = item.run(partial(self._plan, item, view))
            overlay.stage(item.msg.partition, plan.writes)
            plans.append(plan)
        t1 = time.perf_counter()
        sent = False
        try:
            await persist("intake.forward", partial(self._send, plans))
            sent, t2 = True, time.perf_counter()
            await persist("intake.record", partial(self._write, plans))
        except StageFailed:  # one at a time; what the batch already sent (acknowledged) is not sent again
            return [await self._one(item, sent=sent) for item in items]
        for plan in plans:
            self._log(plan)
        _log.info("batch settled", records=len(items), offsets=offset_span(i.msg for i in items),
                  decide_ms=round(1000 * (t1 - t0)), send_ms=round(1000 * (t2 - t1)),
                  record_ms=round(1000 * (time.perf_counter() - t2)),
                  **Counter(p.outcome.value.lower() for p in plans))
        return [p.outcome for p in plans]

    def _count(self, plan: _Plan) -> None:
        """Metrics of one settled record (notifications in by agency and kind; dead letters by reason)."""
        if self.metrics is None:
            return
        if plan.refusal is not None:
            self.metrics.dead_lettered(plan.refusal.reason, plan.refusal.stage)
        elif plan.outcome is IntakeOutcome.ACCEPTED and plan.sends:
            sent = plan.sends[0][2]
            record = sent.record if isinstance(sent, Encoded) else sent
            self.metrics.notification_in(self.agencies[plan.item.msg.topic].value, type(record).__name__)

    # ----------------------------------------------------------------------------------- deciding
    def _plan(self, item: Received, view: Mapping[str, Any]) -> _Plan:
        msg = item.msg
        agency = self.agencies[msg.topic]
        received = instant(msg.timestamp_ms)
        try:
            record, verdict = self._decide(msg, agency, received, view)
        except _Refusal as refusal:
            return self._refusal_plan(item, agency, refusal)
        env = record.envelope  # type: ignore[attr-defined]
        nid = env.notification_id
        if verdict is Verdict.DUPLICATE:
            audit = audit_record(AuditEvent.DUPLICATE_DROPPED, received, notification_id=nid,
                                 purpose="resent by the sender with identical content: dropped")
            return _Plan(item, IntakeOutcome.DUPLICATE, nid, [("audit", str(nid), audit, None)])
        audit = audit_record(AuditEvent.ACCEPTED, received, notification_id=nid,
                             purpose=f"{type(record).__name__} accepted from {agency.value}",
                             lawful_basis=env.lawful_basis)
        headers = {"received-ms": str(msg.timestamp_ms).encode(), "source": msg.coordinates.encode()}
        seen = Seen(content_hash(record), env.home_local_authority, msg.timestamp_ms, msg.coordinates)
        outcome = IntakeOutcome.ACCEPTED if verdict is Verdict.ACCEPT else IntakeOutcome.REDELIVERED
        # The bytes it was read from and checked in (any registered version of its schema), not a second encoding.
        assert msg.value is not None  # it was decoded above (an empty value is refused there)
        forward = Encoded(record, msg.value)
        sends: list[_Send] = [
            ("internal.accepted", env.home_local_authority, forward, headers), ("audit", str(nid), audit, None)]
        return _Plan(item, outcome, nid, sends, [(SEEN_TABLE, str(nid), dump_seen(seen))],
                     forward=True)

    def _decide(self, msg: Inbound, agency: AgencyType, received: datetime,
                view: Mapping[str, Any]) -> tuple[Record, Verdict]:
        try:
            record = self.codec.decode(msg.value)
            self.faults.check("intake.decode", getattr(getattr(record, "envelope", None), "notification_id", None))
        except InvalidPayload as exc:
            raise _Refusal("INVALID", exc.errors) from exc
        except SchemaError as exc:
            raise _Refusal("UNDECODABLE", [("(message)", str(exc))]) from exc
        except Exception as exc:  # a bug in decoding: deterministic, dead-lettered for redrive
            raise _Refusal("FAILED", [("(message)", f"decoding failed: {type(exc).__name__}")],
                           stage="intake.decode") from exc
        try:
            nid = str(record.envelope.notification_id)  # type: ignore[attr-defined]
            self.faults.check("intake.admit", nid)
            prior = view[SEEN_TABLE].get(nid)
            seen = load_seen(prior) if prior is not None else None
            outcome = admit(record, agency=agency, seen=seen, received=received, source=msg.coordinates)
        except Exception as exc:
            raise _Refusal("FAILED", [("(record)", f"admission failed: {type(exc).__name__}")], record,
                           stage="intake.admit") from exc
        if outcome.verdict in (Verdict.INVALID, Verdict.CONFLICT):
            raise _Refusal(outcome.verdict.value, list(outcome.errors), record)
        if outcome.verdict is Verdict.ACCEPT:
            try:
                subjects(cast(AgencyNotification, record), self.secret)  # every subject identifiable
            except BrokerError as exc:
                field = getattr(exc, "field", "(record)")
                raise _Refusal("INVALID", [(field, str(exc).split(": ", 1)[-1])], record) from exc
        return record, outcome.verdict

    def _refusal_plan(self, item: Received, agency: AgencyType, refusal: _Refusal, *, reject: bool = True) -> _Plan:
        """Dead letter + audit (+ rejection to the sender unless `reject` is false)."""
        msg = item.msg
        nid, sref = self._identify(msg, refusal.record)
        at = instant(msg.timestamp_ms)
        errors = [FieldError(field=f, rule=r) for f, r in refusal.errors]
        letter = dead_letter(msg, reason=refusal.reason, errors=errors, notification_id=nid, stage=refusal.stage,
                             at=at)
        what = "rejected" if reject else "dead-lettered"
        audit = audit_record(AuditEvent.REJECTED if reject else AuditEvent.DEAD_LETTERED, at, notification_id=nid,
                             purpose=f"{what} at {refusal.stage}: {refusal.reason}")
        key = str(nid) if nid else None
        sends: list[_Send] = [
            ("deadletter", key, letter, None), ("audit", key, audit, None)]
        if reject:
            rejection = Rejection(
                rejection_id=derived_id("rejection", msg.topic, msg.partition, msg.offset), agency_type=agency,
                source_reference=sref, notification_id=nid, errors=errors, rejected=at,
            )
            sends.append(("feedback.rejections", sref or (msg.key or b"").decode(errors="replace")[:64], rejection,
                          None))
        return _Plan(item, IntakeOutcome.REFUSED, nid, sends, refusal=refusal)

    # ---------------------------------------------------------------------------------- recording
    async def _send(self, plans: Sequence[_Plan]) -> None:
        for plan in plans:
            if plan.forward:
                self.faults.check("intake.forward", plan.nid)
        await self.outlet.send_all([(short, key, record, headers, None) for plan in plans
                                    for short, key, record, headers in plan.sends])

    async def _write(self, plans: Sequence[_Plan]) -> None:
        for plan in plans:
            if plan.writes:
                self.faults.check("intake.record", plan.nid)
        await self.state.write([(p.item.msg.partition, p.writes, p.item.run) for p in plans if p.writes])

    async def _one(self, item: Received, *, sent: bool = False) -> IntakeOutcome:
        """One record on its own, each failure handled where it happens (the careful path). `sent`: the batch's
        sends (forwards, audits, refusals) are already acknowledged, so only the state is left to write (sending
        again would put a second copy of every forward on `internal.accepted`)."""
        plan: _Plan = item.run(partial(self._plan, item, self.state.view()))
        agency = self.agencies[item.msg.topic]
        if plan.outcome is IntakeOutcome.REFUSED:
            if sent:
                self._log(plan)
            else:
                await self._refuse(plan)
            return plan.outcome
        try:
            if not sent:
                await persist("intake.forward", partial(self._send, [plan]))
        except StageFailed as exc:  # not forwarded: refused like invalid data
            await self._refuse(self._failed(item, agency, exc, reject=True))
            return IntakeOutcome.REFUSED
        try:
            await persist("intake.record", partial(self._write, [plan]))
        except StageFailed as exc:  # forwarded (it will be routed) but not remembered: dead letter, no rejection
            await self._refuse(self._failed(item, agency, exc, reject=False))
            return IntakeOutcome.REFUSED
        self._log(plan)
        return plan.outcome

    def _failed(self, item: Received, agency: AgencyType, exc: StageFailed, *, reject: bool) -> _Plan:
        record = None
        with contextlib.suppress(Exception):
            record = self.codec.decode(item.msg.value)
        refusal = _Refusal("FAILED", [("(record)", f"{exc.stage} failed: {type(exc.cause).__name__}")], record,
                           stage=exc.stage)
        return self._refusal_plan(item, agency, refusal, reject=reject)

    async def _refuse(self, plan: _Plan) -> None:
        """Send a refusal, shrinking its dead letter if the producer refuses it (e.g. too large)."""
        letters = [cast(DeadLetter, plan.sends[0][2])]

        async def send_all() -> None:
            plan.sends[0] = (plan.sends[0][0], plan.sends[0][1], letters[-1], None)
            await self._send([plan])

        await shrinking("intake.refuse", letters, send_all)
        self._log(plan)

    def _log(self, plan: _Plan) -> None:
        """Count a settled record and log it: a refusal at WARNING, a redelivery or a duplicate at INFO, an
        acceptance (routine, one per notification) at DEBUG, summed up in the batch's INFO line (all audited)."""
        self._count(plan)
        msg = plan.item.msg
        if plan.refusal is not None:
            _log.warning("rejected", topic=msg.topic, partition=msg.partition, offset=msg.offset,
                         notification_id=str(plan.nid) if plan.nid else None, stage=plan.refusal.stage,
                         reason=plan.refusal.reason, fields=[f for f, _ in plan.refusal.errors])
        elif plan.outcome is not IntakeOutcome.ACCEPTED or debug_enabled(_log):
            say = _log.debug if plan.outcome is IntakeOutcome.ACCEPTED else _log.info
            say(plan.outcome.value.lower(), topic=msg.topic, partition=msg.partition, offset=msg.offset,
                notification_id=str(plan.nid) if plan.nid else None)

    def _identify(self, msg: Inbound, record: Record | None) -> tuple[UUID | None, str | None]:
        """Notification id and source reference, from the record or, failing that, a lenient peek."""
        if record is not None:
            env = record.envelope  # type: ignore[attr-defined]
            return env.notification_id, env.source_reference
        try:
            datum = self.codec.peek(msg.value)
        except Exception:
            return None, None
        env_d = datum.get("envelope") if datum else None
        if not isinstance(env_d, dict):
            return None, None
        ref = env_d.get("source_reference")
        raw_id = env_d.get("notification_id")
        return (raw_id if isinstance(raw_id, UUID) else None,
                ref if isinstance(ref, str) and is_reference(ref) else None)


class _Refusal(Exception):
    """Control signal inside the stage: refuse this record (not an error)."""

    def __init__(self, reason: str, errors: list[tuple[str, str]], record: Record | None = None, *,
                 stage: str = "intake") -> None:
        super().__init__(reason)
        self.reason, self.errors, self.record, self.stage = reason, errors, record, stage
