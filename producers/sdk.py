"""Async SDK for agency systems: validates, encodes (Confluent wire format, schema ids from the registry) and
publishes a notification.

    async with AgencyClient(settings, AgencyType.POLICE) as client:
        receipt = await client.publish(notification)   # -> topic, partition, offset

`start()` registers (or finds) the writer schema of each notification kind of the agency under its intake
topic's subjects in the schema registry (`settings.registry_url`), once; every send then encodes from cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Protocol
from uuid import UUID

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from schemas.codec import Codec, NotPrepared, codec_for
from schemas.errors import BrokerError, TransportError
from schemas.kafka_auth import KafkaAuth
from schemas.models import AGENCY_BODIES, AgencyType, Record
from schemas.rules import notification_errors
from schemas.topics import intake_topic

__all__ = ["AgencyClient", "KafkaTarget", "NotificationRejected", "Receipt"]


class KafkaTarget(Protocol):
    """Where to publish: the broker's `Settings` satisfies it, so does any object with these two attributes."""

    @property
    def kafka_bootstrap(self) -> str:
        """Kafka bootstrap servers."""
        ...

    @property
    def topic_prefix(self) -> str:
        """Prefix of every topic name."""
        ...

    @property
    def registry_url(self) -> str:
        """The schema registry's Confluent-compatible API, e.g. http://127.0.0.1:8081/apis/ccompat/v7."""
        ...


class NotificationRejected(BrokerError):
    """The notification breaks a rule; nothing was published. `errors` holds (field path, rule)."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{f}: {r}" for f, r in errors))
        self.errors = errors


@dataclass(frozen=True)
class Receipt:
    """Where a notification landed."""

    notification_id: UUID
    topic: str
    partition: int
    offset: int


class AgencyClient:
    """An idempotent, acks=all producer for one agency's intake topic.

    `codec`: a codec with a registry to prepare (by default one of its own, on `settings.registry_url`).
    """

    def __init__(self, settings: KafkaTarget, agency: AgencyType, *, codec: Codec | None = None) -> None:
        self._settings = settings
        self.agency = agency
        self.topic = intake_topic(settings.topic_prefix, agency)
        self._codec = codec
        self._own_codec = codec is None
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        """Register (or find) the agency's schemas in the registry, then connect to Kafka."""
        if self._producer is not None:
            return
        kinds = {self.topic: AGENCY_BODIES[self.agency]}
        if self._codec is None:
            self._codec = await codec_for(self._settings.registry_url, kinds)
        else:
            await self._codec.prepare(kinds)
        producer = AIOKafkaProducer(
            bootstrap_servers=self._settings.kafka_bootstrap,
            acks="all",
            enable_idempotence=True,
            client_id=f"mash-sdk-{self.agency.value.lower()}",
            linger_ms=5,
            **KafkaAuth.of(self._settings).aiokafka(),
        )
        try:
            await producer.start()
        except KafkaError as exc:
            await producer.stop()
            await self.stop()
            raise TransportError(f"Kafka unreachable at {self._settings.kafka_bootstrap}: {exc}") from exc
        self._producer = producer

    async def stop(self) -> None:
        """Flush and disconnect (and close the registry client of its own codec); safe to call twice."""
        try:
            if self._producer is not None:
                producer, self._producer = self._producer, None
                await producer.stop()
        finally:
            if self._own_codec and self._codec is not None:
                codec, self._codec = self._codec, None
                await codec.aclose()

    async def __aenter__(self) -> AgencyClient:
        await self.start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    def check(self, notification: Record, *, now: datetime | None = None) -> None:
        """Raise NotificationRejected naming each field and rule the notification breaks (nothing is sent)."""
        errors = notification_errors(notification, self.agency, now or datetime.now(UTC))
        if errors:
            raise NotificationRejected(errors)

    def encode(self, notification: Record, *, now: datetime | None = None) -> tuple[bytes, bytes]:
        """Check and encode (after `start()`): (key, value). Raises NotificationRejected naming each field and rule."""
        self.check(notification, now=now)
        if self._codec is None:
            raise NotPrepared("AgencyClient.encode() before start(): no schema ids yet")
        key = str(notification.envelope.notification_id).encode()  # type: ignore[attr-defined]
        return key, self._codec.encode(notification, self.topic)

    async def publish(self, notification: Record) -> Receipt:
        """Publish one notification and wait for the broker's acknowledgement."""
        fut = await self.send(notification)
        receipt: Receipt = await fut
        return receipt

    async def send(self, notification: Record) -> _Pending:
        """Queue one notification; await the result for its receipt (lets callers pipeline sends)."""
        self.check(notification)
        if self._producer is None:
            await self.start()
        assert self._producer is not None
        key, value = self.encode(notification)
        try:
            fut = await self._producer.send(self.topic, key=key, value=value)
        except KafkaError as exc:
            raise TransportError(f"publish to {self.topic} failed: {exc}") from exc
        return _Pending(fut, notification.envelope.notification_id)  # type: ignore[attr-defined]


class _Pending:
    def __init__(self, fut: object, notification_id: UUID) -> None:
        self._fut = fut
        self._id = notification_id

    def __await__(self):  # type: ignore[no-untyped-def]
        return self._wait().__await__()

    async def _wait(self) -> Receipt:
        try:
            md = await self._fut  # type: ignore[misc]
        except KafkaError as exc:
            raise TransportError(f"publish failed: {exc}") from exc
        return Receipt(self._id, md.topic, md.partition, md.offset)
