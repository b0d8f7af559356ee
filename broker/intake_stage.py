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

import asyncio
from collections.abc import Awaitable, Mapping
from datetime import UTC, datetime
from enum import Enum
from typing import Any, cast
from uuid import UUID

from pydantic import TypeAdapter

from broker.dead_letters import dead_letter, shrinking
from broker.errors import BrokerError, SchemaError
from broker.failure import StageFailed, persist
from broker.faults import Faults
from broker.identity import AgencyNotification, subjects
from broker.intake import Seen, Verdict, admit, content_hash, derived_id
from broker.logs import get_logger
from broker.outlet import Inbound, Outlet, StateWriter
from schemas.codec import Codec, InvalidPayload
from schemas.models import REFERENCE, AgencyType, AuditEvent, AuditRecord, FieldError, Record, Rejection

__all__ = ["IntakeOutcome", "IntakeStage", "audit_record", "instant"]

SEEN_TABLE = "intake-seen"
_SEEN = TypeAdapter(Seen)
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


class IntakeStage:
    """Decides and records the outcome of intake records (see the module docstring)."""

    def __init__(self, *, codec: Codec, secret: bytes, agencies: Mapping[str, AgencyType], outlet: Outlet,
                 state: StateWriter, faults: Faults | None = None) -> None:
        self.faults = faults or Faults()
        self.codec = codec
        self.secret = secret
        self.agencies = dict(agencies)
        self.outlet = outlet
        self.state = state

    async def handle(self, msg: Inbound) -> IntakeOutcome:
        """Process one record to its outcome; returns only when the outcome is durable."""
        agency = self.agencies[msg.topic]
        received = instant(msg.timestamp_ms)
        try:
            record, outcome = self._decide(msg, agency, received)
        except _Refusal as refusal:
            await self.refuse(msg, agency, refusal.reason, refusal.errors, refusal.record, stage=refusal.stage)
            return IntakeOutcome.REFUSED
        env = record.envelope  # type: ignore[attr-defined]
        if outcome is Verdict.DUPLICATE:
            await self._drop_duplicate(env.notification_id, received)
            _log.info("duplicate dropped", topic=msg.topic, partition=msg.partition, offset=msg.offset,
                      notification_id=str(env.notification_id))
            return IntakeOutcome.DUPLICATE
        try:
            await self._accept(msg, record, agency, received)
        except StageFailed as exc:
            # Not forwarded: refused like invalid data. Forwarded but not remembered: dead letter only (the
            # notification was accepted and will be routed; a redrive forwards it again, idempotently).
            await self.refuse(msg, agency, "FAILED", [("(record)", f"{exc.stage} failed: {type(exc.cause).__name__}")],
                              record, stage=exc.stage, reject=exc.stage != "intake.record")
            return IntakeOutcome.REFUSED
        _log.info("accepted" if outcome is Verdict.ACCEPT else "accepted again (redelivery)", topic=msg.topic,
                  partition=msg.partition, offset=msg.offset, notification_id=str(env.notification_id))
        return IntakeOutcome.ACCEPTED if outcome is Verdict.ACCEPT else IntakeOutcome.REDELIVERED

    # ----------------------------------------------------------------------------------- deciding
    def _decide(self, msg: Inbound, agency: AgencyType, received: datetime) -> tuple[Record, Verdict]:
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
            prior = self.state.view()[SEEN_TABLE].get(nid)
            seen = _SEEN.validate_python(prior) if prior is not None else None
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

    # ---------------------------------------------------------------------------------- recording
    async def _accept(self, msg: Inbound, record: Record, agency: AgencyType, received: datetime) -> None:
        env = record.envelope  # type: ignore[attr-defined]
        ms = str(msg.timestamp_ms).encode()
        audit = audit_record(AuditEvent.ACCEPTED, received, notification_id=env.notification_id,
                             purpose=f"{type(record).__name__} accepted from {agency.value}",
                             lawful_basis=env.lawful_basis)

        async def forward() -> None:
            self.faults.check("intake.forward", env.notification_id)
            futures = [
                await self.outlet.send("internal.accepted", env.home_local_authority, record,
                                       headers={"received-ms": ms, "source": msg.coordinates.encode()}),
                await self.outlet.send("audit", str(env.notification_id), audit),
            ]
            await asyncio.gather(*futures)

        await persist("intake.forward", forward)
        seen = Seen(content_hash(record), env.home_local_authority, msg.timestamp_ms, msg.coordinates)
        value = _SEEN.dump_python(seen, mode="json")

        async def remember() -> None:
            self.faults.check("intake.record", env.notification_id)
            await self.state.write(msg.partition, [(SEEN_TABLE, str(env.notification_id), value)])

        await persist("intake.record", remember)

    async def _drop_duplicate(self, nid: UUID, received: datetime) -> None:
        audit = audit_record(AuditEvent.DUPLICATE_DROPPED, received, notification_id=nid,
                             purpose="resent by the sender with identical content: dropped")
        await persist("intake.duplicate", lambda: self._sent(self.outlet.send("audit", str(nid), audit)))

    @staticmethod
    async def _sent(sending: Awaitable[Awaitable[Any]]) -> None:
        await (await sending)

    async def refuse(self, msg: Inbound, agency: AgencyType, reason: str, errors: list[tuple[str, str]],
                     record: Record | None, *, stage: str = "intake", reject: bool = True) -> None:
        """Dead letter + rejection (unless `reject` is false) + audit; a dead letter too large for the producer
        is retried as a bounded preview."""
        nid, sref = self._identify(msg, record)
        at = instant(msg.timestamp_ms)
        field_errors = [FieldError(field=f, rule=r) for f, r in errors]
        letter = dead_letter(msg, reason=reason, errors=field_errors, notification_id=nid, stage=stage, at=at)
        rejection = Rejection(
            rejection_id=derived_id("rejection", msg.topic, msg.partition, msg.offset), agency_type=agency,
            source_reference=sref, notification_id=nid, errors=field_errors, rejected=at,
        )
        audit = audit_record(AuditEvent.REJECTED if reject else AuditEvent.DEAD_LETTERED, at, notification_id=nid,
                             purpose=f"{'rejected' if reject else 'dead-lettered'} at {stage}: {reason}")
        reject_key = sref or (msg.key or b"").decode(errors="replace")[:64]

        async def send_all() -> None:
            futures = [
                await self.outlet.send("deadletter", str(nid) if nid else None, letters[-1]),
                await self.outlet.send("audit", str(nid) if nid else None, audit),
            ]
            if reject:
                futures.append(await self.outlet.send("feedback.rejections", reject_key, rejection))
            await asyncio.gather(*futures)

        letters = [letter]
        await shrinking("intake.refuse", letters, send_all)
        _log.warning("rejected", topic=msg.topic, partition=msg.partition, offset=msg.offset, stage=stage,
                     notification_id=str(nid) if nid else None, reason=reason, fields=[f for f, _ in errors])

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
                ref if isinstance(ref, str) and REFERENCE.fullmatch(ref) else None)


class _Refusal(Exception):
    """Control signal inside the stage: refuse this record (not an error)."""

    def __init__(self, reason: str, errors: list[tuple[str, str]], record: Record | None = None, *,
                 stage: str = "intake") -> None:
        super().__init__(reason)
        self.reason, self.errors, self.record, self.stage = reason, errors, record, stage
