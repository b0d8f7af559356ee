"""Acknowledgements to `feedback.acknowledgements`: acks=all, idempotent producer, awaited before confirming."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Protocol

from aiokafka import AIOKafkaProducer

from consumers.codec import RecordCodec, close, encode
from schemas.kafka_auth import KafkaAuth
from schemas.models import EncompassAcknowledgement

__all__ = ["AckSink", "AckUnavailable", "KafkaAckSink"]


class AckUnavailable(Exception):
    """Kafka did not take the acknowledgement (the page must not say it is done)."""


class AckSink(Protocol):
    """Where the page sends acknowledgements (Kafka in production, a list in unit tests)."""

    async def start(self) -> None:
        """Connect."""
        ...

    async def stop(self) -> None:
        """Flush and disconnect."""
        ...

    async def send(self, ack: EncompassAcknowledgement) -> None:
        """Return only once the acknowledgement is durably on the topic; AckUnavailable otherwise."""
        ...


class KafkaAckSink:
    """An aiokafka producer (acks=all, enable_idempotence) keyed by notice id."""

    def __init__(self, bootstrap: str, topic: str, codec: Callable[[], Awaitable[RecordCodec]],
                 timeout_s: float, auth: KafkaAuth | None = None) -> None:
        self.topic = topic
        self.auth = auth or KafkaAuth()
        self.make_codec = codec
        self.codec: RecordCodec = None
        self.timeout_s = timeout_s
        self.bootstrap = bootstrap
        self.producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        """Build the codec (registering the acknowledgement's schema) and connect the producer."""
        self.codec = await self.make_codec()
        self.producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all", enable_idempotence=True,
                                         request_timeout_ms=int(self.timeout_s * 1000), **self.auth.aiokafka())
        await self.producer.start()

    async def stop(self) -> None:
        """Flush and close the producer, then the codec's registry client."""
        if self.producer is not None:
            await self.producer.stop()
        if self.codec is not None:
            await close(self.codec)

    async def send(self, ack: EncompassAcknowledgement) -> None:
        """Send and await the broker's acknowledgement of all in-sync replicas."""
        value = encode(self.codec, ack, self.topic)
        if self.producer is None:
            raise AckUnavailable("not started")
        try:
            await asyncio.wait_for(
                self.producer.send_and_wait(self.topic, value=value, key=str(ack.notice_id).encode()), self.timeout_s
            )
        except Exception as exc:  # any failure (timeout, broker, not connected) means: not recorded
            raise AckUnavailable(type(exc).__name__) from exc
