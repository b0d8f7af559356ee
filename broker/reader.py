"""Read topics back from the beginning up to their current end (for summaries, tests and operations).

Values are in the Confluent wire format: `read_topics` fetches the writer schema of every schema id it reads
from the registry (once per process: an id never changes), so `Consumed.decode(codec)` stays synchronous,
with any codec, even one built without a registry.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from schemas.codec import Codec, UnknownSchemaId, schema_id_of
from schemas.errors import RegistryError
from schemas.kafka_auth import KafkaAuth
from schemas.models import Record
from schemas.registry import SchemaRegistry, default_url

__all__ = ["Consumed", "fetch_schemas", "read_topics"]

Schemas = Mapping[int, Mapping[str, Any]]
_KNOWN: dict[str, dict[int, Mapping[str, Any]]] = {}  # registry URL -> schema id -> writer schema


@dataclass(frozen=True)
class Consumed:
    """One record read back; `schemas` holds the writer schemas `read_topics` fetched for its read."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int
    schemas: Schemas = field(default_factory=dict, repr=False, compare=False)

    @property
    def schema_id(self) -> int | None:
        """The value's schema id (None when it is not Confluent wire-format framed)."""
        return schema_id_of(self.value)

    def decode(self, codec: Codec) -> Record:
        """The decoded record (SchemaError, or its InvalidPayload and UnknownSchemaId kinds, when it cannot be)."""
        try:
            return codec.decode(self.value)
        except UnknownSchemaId as exc:
            schema = self.schemas.get(exc.schema_id)
            if schema is None:
                raise
            codec.remember(exc.schema_id, schema)
        return codec.decode(self.value)


async def fetch_schemas(ids: Iterable[int], registry_url: str | None = None) -> Schemas:
    """The writer schemas of these ids, from the registry (cached per process). Ids the registry does not know,
    or everything when it cannot be reached, are left out: decoding those records raises UnknownSchemaId."""
    url = (registry_url or default_url()).rstrip("/")
    known = _KNOWN.setdefault(url, {})
    missing = sorted(set(ids) - set(known))
    if missing:
        async with SchemaRegistry(url, timeout=5.0, max_retries=0) as registry:
            for schema_id in missing:
                try:
                    known[schema_id] = await registry.get_schema(schema_id)
                except RegistryError as exc:
                    if exc.status is None:
                        break  # unreachable: do not wait on every id
    return known


async def read_topics(bootstrap: str, topics: Iterable[str], *, timeout_s: float = 30.0, auth: KafkaAuth | None = None,
                      registry_url: str | None = None) -> list[Consumed]:
    """Every record currently on the topics (no consumer group, nothing committed), with the writer schemas of
    their schema ids fetched from the registry at `registry_url` (default: `MASH_REGISTRY_URL` or the local one)."""
    out = await _read(bootstrap, topics, timeout_s, auth or KafkaAuth())
    ids = {i for i in (r.schema_id for r in out) if i is not None}
    if not ids:
        return out
    schemas = await fetch_schemas(ids, registry_url)
    return [Consumed(r.topic, r.partition, r.offset, r.key, r.value, r.timestamp_ms, schemas) for r in out]


async def _read(bootstrap: str, topics: Iterable[str], timeout_s: float, auth: KafkaAuth) -> list[Consumed]:
    # auto_offset_reset=earliest: the fetcher's own first reset must agree with the explicit seeks below
    # (with "latest" its reset can land after a seek and silently skip everything).
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None, auto_offset_reset="earliest",
        **auth.aiokafka(),
    )
    await consumer.start()
    out: list[Consumed] = []
    try:
        metadata = await consumer._client.fetch_all_metadata()  # partitions of topics not yet assigned
        tps = [
            TopicPartition(topic, p) for topic in topics for p in sorted(metadata.partitions_for_topic(topic) or ())
        ]
        if not tps:
            return out
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        starts = await consumer.beginning_offsets(tps)
        for tp in tps:
            consumer.seek(tp, starts[tp])
        remaining = {tp for tp in tps if ends[tp] > starts[tp]}
        for tp in tps:
            if ends[tp] <= starts[tp]:
                consumer.pause(tp)
        loop = asyncio.get_running_loop()
        give_up = loop.time() + timeout_s
        while remaining and loop.time() < give_up:
            batch = await consumer.getmany(timeout_ms=500)
            for tp, records in batch.items():
                for r in records:
                    if r.offset < ends[tp]:
                        out.append(Consumed(r.topic, r.partition, r.offset, r.key, r.value, r.timestamp))
                if records and records[-1].offset >= ends[tp] - 1:
                    remaining.discard(tp)
                    consumer.pause(tp)
    finally:
        await consumer.stop()
    return out
