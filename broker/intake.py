"""Intake decisions, as pure functions: accept, drop a duplicate, refuse a conflict or an invalid record."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from schemas.models import AgencyType, Record
from schemas.rules import notification_errors

__all__ = ["Outcome", "Seen", "Verdict", "admit", "content_hash", "derived_id"]

# Namespace of every id the broker derives (uuid5), so a redelivery always yields the same id.
ID_NAMESPACE = uuid.UUID("6f1c1d2e-3b1a-5c6e-9a57-2f1b7c0d4e11")


def derived_id(*parts: object) -> uuid.UUID:
    """A stable id from its parts (e.g. notification id, route, recipient)."""
    return uuid.uuid5(ID_NAMESPACE, "|".join(str(p) for p in parts))


class Verdict(str, Enum):
    """What intake does with a decoded notification."""

    ACCEPT = "ACCEPT"
    REDELIVERED = "REDELIVERED"  # the same record read again (a restart): finish accepting it, idempotently
    DUPLICATE = "DUPLICATE"  # the sender sent the same content again (another record): dropped
    CONFLICT = "CONFLICT"
    INVALID = "INVALID"


@dataclass(frozen=True)
class Seen:
    """What intake remembers of a notification id (kept in a changelog-backed table)."""

    content_hash: str
    authority: str
    received_ms: int
    source: str = ""  # topic/partition/offset of the record accepted: tells a redelivery from a resend


@dataclass(frozen=True)
class Outcome:
    """The verdict and, when refused, the (field path, rule) pairs."""

    verdict: Verdict
    errors: tuple[tuple[str, str], ...] = ()


def content_hash(record: Record) -> str:
    """Hash of a notification's content (its canonical JSON), to tell a resend from a conflict."""
    return hashlib.sha256(record.model_dump_json().encode()).hexdigest()


def admit(
    record: Record, *, agency: AgencyType, seen: Seen | None, received: datetime, source: str = ""
) -> Outcome:
    """Decide intake for one decoded notification that arrived on `agency`'s topic at `received`, read
    from `source` (topic/partition/offset)."""
    errors = notification_errors(record, agency, received)
    if errors:
        return Outcome(Verdict.INVALID, tuple(errors))
    if seen is None:
        return Outcome(Verdict.ACCEPT)
    if seen.content_hash == content_hash(record):
        return Outcome(Verdict.REDELIVERED if source and seen.source == source else Verdict.DUPLICATE)
    return Outcome(
        Verdict.CONFLICT,
        (("envelope.notification_id", "already used for different content; send an AMEND with a new id"),),
    )
