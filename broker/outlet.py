"""The worker's side of Kafka: records in (`Inbound`), records out (`Outlet`), state out (`DurableTables`).

Thin adapters over faust: the stages (`broker.intake_stage`, `broker.router_stage`) talk to these
protocols, so a test can hand them a recording fake of the same shape, and the worker hands them faust.
Every send returns an awaitable that resolves when the broker has acknowledged it (acks=all); a state write
resolves when its changelog record is acknowledged, not when the local store has it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from schemas.codec import Codec
from schemas.models import Record

__all__ = ["DurableTables", "FaustOutlet", "Inbound", "Outlet", "StateWriter"]


@dataclass(frozen=True)
class Inbound:
    """One consumed record, as the stages see it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int
    headers: Mapping[str, bytes]

    @classmethod
    def of(cls, message: Any) -> Inbound:
        """From a faust message (timestamps are float seconds there)."""
        return cls(
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            key=message.key,
            value=message.value,
            timestamp_ms=round(message.timestamp * 1000),
            headers=dict(message.headers or []),
        )

    @property
    def coordinates(self) -> str:
        """`topic/partition/offset`: where the record sits (no personal data)."""
        return f"{self.topic}/{self.partition}/{self.offset}"


class Outlet(Protocol):
    """Sends records to topics (short catalogue names); the returned awaitable resolves on acknowledgement."""

    async def send(
        self,
        short: str,
        key: str | bytes | None,
        record: Record,
        *,
        headers: Mapping[str, bytes] | None = None,
        partition: int | None = None,
    ) -> Awaitable[Any]: ...

    def partitions(self, short: str) -> int: ...


class StateWriter(Protocol):
    """Writes table values durably: returns once the changelog has acknowledged them."""

    def view(self) -> Mapping[str, Mapping[str, Any]]: ...

    async def write(self, partition: int, writes: Iterable[tuple[str, str, Any]]) -> None: ...


class FaustOutlet:
    """`Outlet` over a faust app: one raw-bytes topic per catalogue name, Avro through the codec."""

    def __init__(self, app: Any, names: Mapping[str, str], partitions: Mapping[str, int], codec: Codec) -> None:
        self._codec = codec
        self._partitions = dict(partitions)
        self._topics = {
            short: app.topic(name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
            for short, name in names.items()
        }

    def partitions(self, short: str) -> int:
        """Partition count of a topic."""
        return self._partitions[short]

    async def send(
        self,
        short: str,
        key: str | bytes | None,
        record: Record,
        *,
        headers: Mapping[str, bytes] | None = None,
        partition: int | None = None,
    ) -> Awaitable[Any]:
        """Encode and hand to the producer; await the result for the broker's acknowledgement."""
        raw_key = key.encode() if isinstance(key, str) else key
        fut: Awaitable[Any] = await self._topics[short].send(
            key=raw_key, value=self._codec.encode(record), headers=dict(headers or {}), partition=partition
        )
        return fut


class DurableTables:
    """`StateWriter` over faust tables: local store write, then the changelog send whose ack we await.

    faust's own `table[key] = value` sends the changelog record through a buffer and forgets the future; a
    producer flush can return with that buffer not yet drained. Here each changelog future is awaited, so a
    record is acknowledged only after every state write it caused is in the changelog.
    """

    def __init__(self, tables: Mapping[str, Any], *, timeout: float = 60.0) -> None:
        self._tables = dict(tables)
        self._timeout = timeout

    def view(self) -> Mapping[str, Mapping[str, Any]]:
        """The tables as read-only mappings."""
        return self._tables

    async def write(self, partition: int, writes: Iterable[tuple[str, str, Any]]) -> None:
        """Write each (table, key, value) into `partition`'s store and changelog; wait for the changelog."""
        futures = []
        for name, key, value in writes:
            table = self._tables[name]
            table.data[key] = value
            futures.append(table.send_changelog(partition, key, value))
        if futures:
            await asyncio.wait_for(asyncio.gather(*futures), timeout=self._timeout)
