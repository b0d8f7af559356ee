"""The worker's side of Kafka: records in (`Inbound`), records out (`Outlet`), state out (`DurableTables`).

Thin adapters over faust: the stages (`broker.intake_stage`, `broker.router_stage`) talk to these
protocols, so a test can hand them a recording fake of the same shape, and the worker hands them faust.
Every send returns an awaitable that resolves when the broker has acknowledged it (acks=all); a state write
resolves when its changelog record is acknowledged, not when the local store has it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Any, Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.errors import MessageSizeTooLargeError
from aiokafka.partitioner import murmur2
from faust.types import TP

from schemas.codec import Codec, schema_id_of
from schemas.errors import BrokerError
from schemas.kafka_auth import KafkaAuth
from schemas.models import Record

__all__ = [
    "DurableTables",
    "Encoded",
    "Inbound",
    "KafkaOutlet",
    "Outlet",
    "RawRecord",
    "Runner",
    "Send",
    "StateWriter",
    "WriteGroup",
    "encode_sends",
    "partition_of",
]


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


@dataclass(frozen=True)
class Encoded:
    """A record with the wire-format bytes it was read from and validated in: sent as those bytes (intake forwards
    what it checked, not a second encoding of it)."""

    record: Record
    value: bytes


#: (topic short name, key, record (or a record already encoded), headers, partition or None for the key's partition)
Send = tuple[str, str | bytes | None, Record | Encoded, Mapping[str, bytes] | None, int | None]
#: (topic, partition, key bytes, value bytes, headers): an encoded record
RawRecord = tuple[str, int, bytes | None, bytes | None, list[tuple[str, bytes]]]


async def prefetch_schemas(codec: Codec, values: Iterable[bytes | None]) -> None:
    """Fetch the writer schema of every schema id among `values` the codec does not know yet, so that the
    (synchronous) decoding that follows needs no registry call. A transient registry failure is retried by the
    caller (`persist`); an id the registry does not have is left unknown, and decoding then refuses it."""
    for sid in {schema_id_of(v) for v in values} - {None}:
        assert sid is not None
        if not codec.knows(sid):
            try:
                await codec.fetch(sid)
            except BrokerError as exc:  # RegistryError and friends: retriable ones go up for a retry
                if exc.retriable:
                    raise


class Outlet(Protocol):
    """Sends records to topics (short catalogue names) and returns once the broker acknowledged all of them."""

    async def send_all(self, items: Sequence[Send]) -> None: ...

    def partitions(self, short: str) -> int: ...


Runner = Callable[[Callable[[], Any]], Any]
#: (partition, writes, runner of a record's delivery context in that partition)
WriteGroup = tuple[int, Iterable[tuple[str, str, Any]], Runner]


class StateWriter(Protocol):
    """Writes table values durably: returns once the changelog has acknowledged them."""

    def view(self) -> Mapping[str, Mapping[str, Any]]: ...

    async def write(self, groups: Iterable[WriteGroup]) -> None: ...


@lru_cache(maxsize=8192)
def partition_of(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner (murmur2, as aiokafka and the Java client) gives a key. aiokafka's
    murmur2 is pure Python (~7 us); most keys recur (authority codes, school URNs), so answers are cached."""
    return int(murmur2(key) & 0x7FFFFFFF) % partitions


def encode_sends(codec: Codec, items: Iterable[Send], names: Mapping[str, str],
                 partitions: Mapping[str, int]) -> list[RawRecord]:
    """Sends as encoded records: the topic's name, the key's partition (Kafka's default partitioner; partition 0
    without a key), the wire-format value (an `Encoded` record's own bytes)."""
    raw: list[RawRecord] = []
    for short, key, record, headers, partition in items:
        raw_key = key.encode() if isinstance(key, str) else key
        if partition is None:
            partition = partition_of(raw_key, partitions[short]) if raw_key is not None else 0
        topic = names[short]
        value = record.value if isinstance(record, Encoded) else codec.encode(record, topic)
        raw.append((topic, partition, raw_key, value, list((headers or {}).items())))
    return raw


class KafkaOutlet:
    """`Outlet` over one idempotent acks=all aiokafka producer, sending each call's records as one batch per
    partition (aiokafka's batch API): far fewer requests and futures than a send per record. Records of one
    partition keep their order. Keys are partitioned as Kafka's default partitioner does; a record without a
    key goes to partition 0. `async with`, or `start()` / idempotent `stop()`; `send_all` starts it if needed.
    """

    def __init__(self, bootstrap: str, names: Mapping[str, str], partitions: Mapping[str, int], codec: Codec,
                 records: Mapping[str, Sequence[type[Record]]] | None = None, *,
                 auth: KafkaAuth | None = None) -> None:
        self._codec = codec
        self._auth = auth or KafkaAuth()
        self._records = dict(records or {})  # short name -> record types written there (schemas to prepare)
        self._names = dict(names)
        self._partitions = dict(partitions)
        self._bootstrap = bootstrap
        self._producer: Any = None  # made in start(): aiokafka needs the running loop
        self._started = False
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        """Connect the producer (idempotent)."""
        async with self._lock:
            if not self._started:
                self._producer = AIOKafkaProducer(
                    bootstrap_servers=self._bootstrap, acks="all", enable_idempotence=True, linger_ms=5,
                    max_batch_size=512 * 1024, max_request_size=4 * 1024 * 1024, **self._auth.aiokafka())
                await self._producer.start()
                pairs = [(self._names[short], t) for short, types in self._records.items() for t in types]
                await asyncio.gather(*(self._codec.prepare({topic: [t]}) for topic, t in pairs))
                self._started = True

    async def stop(self) -> None:
        """Flush and close the producer (idempotent)."""
        async with self._lock:
            if self._started:
                self._started = False
                await self._producer.stop()

    async def __aenter__(self) -> KafkaOutlet:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    def partitions(self, short: str) -> int:
        """Partition count of a topic."""
        return self._partitions[short]

    async def send_all(self, items: Sequence[Send]) -> None:
        """Encode, batch per topic partition, send, and wait for every acknowledgement."""
        await self.start()  # prepares the codec's schema ids on first use
        await self.send_raw(encode_sends(self._codec, items, self._names, self._partitions))

    async def send_raw(self, records: Sequence[RawRecord]) -> dict[tuple[str, int], int]:
        """Send encoded records, one batch per topic partition at a time; returns the last offset written per
        topic partition once every batch is acknowledged."""
        await self.start()
        builders: dict[tuple[str, int], Any] = {}
        sent: list[tuple[tuple[str, int], int, Any]] = []
        for topic, partition, key, value, headers in records:
            where = (topic, partition)
            batch = builders.get(where) or builders.setdefault(where, self._producer.create_batch())
            if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
                sent.append((where, batch.record_count(), await self._producer.send_batch(batch, topic,
                                                                                          partition=partition)))
                batch = builders[where] = self._producer.create_batch()
                if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
                    raise MessageSizeTooLargeError(f"a record for {topic} is larger than a whole batch")
        for where, batch in builders.items():
            sent.append((where, batch.record_count(), await self._producer.send_batch(batch, where[0],
                                                                                      partition=where[1])))
        metas = await asyncio.gather(*(fut for _, _, fut in sent))
        last: dict[tuple[str, int], int] = {}
        for (where, count, _), meta in zip(sent, metas, strict=True):
            last[where] = max(last.get(where, -1), meta.offset + count - 1)
        return last


def _delete(store: Any, key: Any) -> None:
    """Delete a key from a table's local store (a value of None in a write); absent already is fine."""
    with contextlib.suppress(KeyError):
        del store[key]


class DurableTables:
    """`StateWriter` over faust tables (a write of None deletes the key: a tombstone in the changelog): the local
    store write, then the changelog record, sent by our own
    producer in batches and awaited, after which the store is told the changelog offset it holds (as faust
    does after its own sends). faust's `table[key] = value` sends through a buffer drained one record at a
    time and forgets the future; here a record is acknowledged only after every state write it caused is in
    the changelog.
    """

    def __init__(self, tables: Mapping[str, Any], sender: KafkaOutlet, *, timeout: float = 60.0) -> None:
        self._tables = dict(tables)
        self._views = {name: _StoreReader(table) for name, table in self._tables.items()}
        self._sender = sender
        self._timeout = timeout
        self._by_topic: dict[str, Any] = {}

    def view(self) -> Mapping[str, Any]:
        """The tables, read-only: `get(key, default)` and `values()`."""
        return self._views

    async def write(self, groups: Iterable[WriteGroup]) -> None:
        """Write each (table, key, value) into its partition's store (inside the record's delivery context,
        where faust's store looks for the partition) and changelog; wait once for every changelog ack."""
        raw: list[RawRecord] = []
        for partition, writes, run in groups:
            for name, key, value in writes:
                table = self._tables[name]
                run(partial(_delete, table.data, key) if value is None else partial(table.data.__setitem__, key, value))
                topic = table.changelog_topic
                k, _ = topic.prepare_key(key, table.key_serializer)
                v = None if value is None else topic.prepare_value(value, table.value_serializer)[0]  # None: tombstone
                name_of_topic = topic.get_topic_name()
                self._by_topic[name_of_topic] = table
                raw.append((name_of_topic, partition, k, v, []))
        if not raw:
            return
        last = await asyncio.wait_for(self._sender.send_raw(raw), timeout=self._timeout)
        for (topic, partition), offset in last.items():
            self._by_topic[topic].data.set_persisted_offset(TP(topic, partition), offset)


class _StoreReader:
    """A faust table read with one store lookup per key: `Table.get` looks a key up twice (`in`, then `[]`),
    each encoding the key and reading the store of the current event's partition."""

    __slots__ = ("_table",)

    def __init__(self, table: Any) -> None:
        self._table = table

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self._table.data[key]
        except KeyError:
            return default

    def values(self) -> Any:
        return self._table.values()
