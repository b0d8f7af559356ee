"""Sending every kind of acknowledgement the pages make (a school's, a front door decision, a triage discussion)
to `feedback.acknowledgements`, awaited (acks=all) before the page confirms.

`KafkaFeedbackSink` is the school feed's `KafkaAckSink` with a codec for all three records; a school's
acknowledgement keeps its key (the notice id), the authority's records are keyed by their recipient (the
authority), as the SLA stage recommends: read in the partition of their clock, they need no forwarding hop.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from consumers.acknowledge import AckUnavailable, KafkaAckSink
from consumers.codec import encode
from schemas.models import (
    EncompassAcknowledgement,
    FrontDoorDecision,
    ItemAcknowledgement,
    Record,
    TriageItemDiscussed,
)

__all__ = ["FeedbackSink", "KafkaFeedbackSink", "feedback_key"]


class FeedbackSink(Protocol):
    """A sink that takes any acknowledgement record (the app's `AckSink`, widened)."""

    async def send(self, ack: Record) -> None:
        """Return only once the record is durably on the topic; AckUnavailable otherwise."""
        ...


def feedback_key(ack: Record) -> bytes:
    """The Kafka key of an acknowledgement record."""
    if isinstance(ack, EncompassAcknowledgement):
        return str(ack.notice_id).encode()
    if isinstance(ack, FrontDoorDecision | TriageItemDiscussed):
        return ack.authority.encode()
    if isinstance(ack, ItemAcknowledgement):
        return ack.recipient.encode()
    raise TypeError(f"{type(ack).__name__} is not an acknowledgement the pages send")


class KafkaFeedbackSink(KafkaAckSink):
    """`KafkaAckSink` for every acknowledgement record (build it with a codec prepared for all three)."""

    async def send(self, ack: Record) -> None:
        """Send and await the broker's acknowledgement of all in-sync replicas."""
        value = encode(self.codec, ack, self.topic)
        if self.producer is None:
            raise AckUnavailable("not started")
        try:
            await asyncio.wait_for(self.producer.send_and_wait(self.topic, value=value, key=feedback_key(ack)),
                                   self.timeout_s)
        except Exception as exc:  # any failure (timeout, broker, not connected) means: not recorded
            raise AckUnavailable(type(exc).__name__) from exc

