"""Dead letters: what could not be processed, with where it came from and (bounded) raw bytes to redrive.

A dead letter keeps the whole raw value when it is small enough to travel (the producer refuses records of
about 1 MB); otherwise a bounded preview, the full size and the source coordinates (topic, partition,
offset), from which an operator can redrive it within the source topic's retention.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from uuid import UUID

from broker.failure import StageFailed, persist
from broker.intake import derived_id
from broker.outlet import Inbound
from schemas.models import DeadLetter, FieldError

__all__ = ["MAX_RAW", "PREVIEW", "dead_letter", "shrink", "shrinking"]

#: Raw values up to this size travel whole; beyond it, only a preview.
MAX_RAW = 256 * 1024
#: Size of the preview kept of a larger value.
PREVIEW = 4 * 1024


def dead_letter(msg: Inbound, *, reason: str, errors: list[FieldError], notification_id: UUID | None, stage: str,
                at: datetime) -> DeadLetter:
    """The dead letter of one consumed record (id derived from its coordinates: one per record)."""
    raw = msg.value
    size = len(raw) if raw is not None else None
    truncated = raw is not None and len(raw) > MAX_RAW
    return DeadLetter(
        dead_letter_id=derived_id("deadletter", msg.topic, msg.partition, msg.offset),
        source_topic=msg.topic,
        source_partition=msg.partition,
        source_offset=msg.offset,
        reason=reason,
        errors=errors,
        notification_id=notification_id,
        raw_key=(msg.key or b"")[:1024] if msg.key is not None else None,
        raw_value=raw[:PREVIEW] if truncated and raw is not None else raw,
        at=at,
        stage=stage,
        raw_size=size,
        raw_truncated=truncated,
    )


def shrink(letter: DeadLetter) -> DeadLetter:
    """The same dead letter with at most a preview of the raw value (when the whole one cannot be sent)."""
    raw = letter.raw_value
    if raw is None or len(raw) <= PREVIEW:
        return letter.model_copy(update={"raw_value": None, "raw_truncated": raw is not None})
    return letter.model_copy(update={"raw_value": raw[:PREVIEW], "raw_truncated": True})


async def shrinking(stage: str, letters: list[DeadLetter], send: Callable[[], Awaitable[None]]) -> None:
    """Send (`send` sends `letters[-1]`), shrinking the dead letter up to twice if it is refused (e.g. too
    large for the producer): whole value -> preview -> none. Raises if even the smallest one fails."""
    for _ in range(2):
        try:
            await persist(stage, send)
            return
        except StageFailed:
            letters.append(shrink(letters[-1]))
    await persist(stage, send)
