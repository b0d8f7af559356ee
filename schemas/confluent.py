"""The Confluent wire format against a schema registry (no other framing is accepted).

Wire format (what every Confluent-compatible serialiser writes): byte 0 is the magic byte 0x00, bytes 1-4
the schema id (big-endian, unsigned), then the Avro binary body, which must be consumed exactly.

Subjects follow the TopicRecordNameStrategy, `<topic>-<record full name>` (a topic may carry several
record types). The writer schema of a record is the latest version in `schemas/avro/<Record>/`; readers
resolve any writer schema of the same record name to that latest local version, so a v2 writer's record is
read by a v1 reader and the other way round.

The registry is asynchronous and the codec is not: `await codec.prepare(topics)` registers (or finds)
every writer schema up front, then `encode` and `decode` run from caches. `decode` of a schema id it has
not seen raises `UnknownSchemaId`: `await codec.fetch(exc.schema_id)` and decode again (`decode_async`
does both).
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from fastavro import parse_schema, schemaless_reader, schemaless_writer
from pydantic import ValidationError

from schemas._avro import avro_schema, to_datum
from schemas.catalogue import SchemaCatalogue, SchemaVersion, default_catalogue, schema_fingerprint
from schemas.codec import InvalidPayload, field_errors
from schemas.errors import SchemaError
from schemas.models import ALL_RECORDS, Record
from schemas.registry import Registry

__all__ = ["HEADER_SIZE", "MAGIC", "ConfluentCodec", "NotPrepared", "UnknownSchemaId", "frame", "full_name",
           "subject_name"]

MAGIC = b"\x00"
HEADER_SIZE = 5
_HEADER = struct.Struct(">bI")
_RULE = "the Confluent wire format: magic byte 0x00, 4-byte big-endian schema id, Avro binary body"
_MODELS: dict[str, type[Record]] = {m.__name__: m for m in ALL_RECORDS}


class UnknownSchemaId(SchemaError):
    """The message names a schema id this codec has not fetched yet: `await codec.fetch(schema_id)`, retry."""

    retriable = True

    def __init__(self, schema_id: int) -> None:
        super().__init__(f"schema id {schema_id} not fetched yet: await codec.fetch({schema_id}) and decode again")
        self.schema_id = schema_id


class NotPrepared(SchemaError):
    """encode() for a (topic, record) whose schema id was not registered by `await codec.prepare(...)`."""


def full_name(schema: Mapping[str, Any]) -> str:
    """`<namespace>.<name>` of a named schema (the name alone when it has no namespace)."""
    name = str(schema["name"])
    namespace = schema.get("namespace")
    return name if "." in name or not namespace else f"{namespace}.{name}"


def subject_name(topic: str, schema: Mapping[str, Any]) -> str:
    """TopicRecordNameStrategy: `<topic>-<record full name>`, e.g. `mash.intake.police-uk.gov.mash.Recall`."""
    return f"{topic}-{full_name(schema)}"


def frame(schema_id: int, body: bytes) -> bytes:
    """Confluent wire-format bytes: magic byte, schema id, body (tests and tools)."""
    return _HEADER.pack(0, schema_id) + body


def _framing_error(data: bytes | None) -> str | None:
    """Why `data` is not Confluent wire-format framed, or None when the header is well formed."""
    if not data:
        return f"empty message: expected {_RULE}"
    if data[:2] == b"\xc3\x01":
        return f"Avro single-object encoding (header C3 01) is not accepted: expected {_RULE}"
    if data[0] != 0:
        return f"magic byte 0x{data[0]:02x} is not 0x00: expected {_RULE}"
    if len(data) < HEADER_SIZE:
        return f"{len(data)} bytes is too short: expected {_RULE}"
    return None


@dataclass(frozen=True)
class _Writer:
    """A writer schema known by id: its record's full and short names and fastavro-parsed form."""

    full_name: str
    name: str
    parsed: Any


@cache
def _current_fingerprint(model: type[Record]) -> bytes:
    return schema_fingerprint(avro_schema(model))


class ConfluentCodec:
    """Encodes models to the Confluent wire format and decodes any registered writer version to the latest
    local version of the same record (see the module doc for the prepare / fetch protocol)."""

    def __init__(self, registry: Registry, catalogue: SchemaCatalogue | None = None) -> None:
        self.registry = registry
        self.catalogue = catalogue or default_catalogue()
        self._ids: dict[tuple[str, str], int] = {}  # (topic, record name) -> writer schema id
        self._writers: dict[int, _Writer] = {}  # schema id -> writer schema
        self._readers: dict[str, Any] = {}  # record name -> parsed latest local version

    # ------------------------------------------------------------------------------ async: the registry
    def latest(self, name: str) -> SchemaVersion:
        """The latest local version of a record (the writer schema; the reader schema of every version)."""
        versions = self.catalogue.versions(name)
        if not versions:
            raise SchemaError(f"no schema for record {name} in schemas/avro/")
        return versions[-1]

    async def prepare(self, topics: Mapping[str, Iterable[type[Record]]]) -> None:
        """Register (or find) the writer schema of every (topic, record) pair: `{topic: (Record types)}`.

        Idempotent; pairs already prepared are not asked again. RegistryError when the registry refuses one
        (e.g. 409: the local latest version is incompatible with what the subject already holds).
        """
        for topic, models in topics.items():
            for model in models:
                name = model.__name__
                if (topic, name) in self._ids:
                    continue
                version = self.latest(name)
                if version.fingerprint != _current_fingerprint(model):
                    raise SchemaError(f"{name}: schema not in the catalogue; run `mash schemas generate`")
                schema_id = await self.registry.register(subject_name(topic, version.schema), version.schema)
                self._ids[(topic, name)] = schema_id
                self._remember(schema_id, dict(version.schema))

    async def fetch(self, schema_id: int) -> None:
        """Fetch a writer schema by id (once: later calls for the same id ask nothing)."""
        if schema_id not in self._writers:
            self._remember(schema_id, await self.registry.get_schema(schema_id))

    async def decode_async(self, data: bytes | None) -> Record:
        """decode(), fetching an unknown writer schema id first."""
        try:
            return self.decode(data)
        except UnknownSchemaId as exc:
            await self.fetch(exc.schema_id)
        return self.decode(data)

    def _remember(self, schema_id: int, schema: dict[str, Any]) -> None:
        if schema.get("type") != "record" or not isinstance(schema.get("name"), str):
            raise SchemaError(f"schema id {schema_id} is not an Avro record schema")
        try:
            parsed = parse_schema(schema)
        except Exception as exc:  # fastavro raises several types on an invalid schema
            raise SchemaError(f"schema id {schema_id}: invalid Avro schema ({exc})") from exc
        full = full_name(schema)
        self._writers[schema_id] = _Writer(full, full.rsplit(".", 1)[-1], parsed)

    # ---------------------------------------------------------------------------------- sync: the codec
    def schema_id(self, topic: str, model: type[Record]) -> int:
        """The prepared writer schema id of a record on a topic."""
        try:
            return self._ids[(topic, model.__name__)]
        except KeyError:
            raise NotPrepared(
                f"{model.__name__} on topic {topic!r}: no schema id; await codec.prepare({{topic: [{model.__name__}]}})"
                " first"
            ) from None

    def encode(self, record: Record, topic: str) -> bytes:
        """Confluent wire-format bytes of `record` on `topic`, with the record's latest schema."""
        schema_id = self.schema_id(topic, type(record))
        buf = io.BytesIO()
        buf.write(_HEADER.pack(0, schema_id))
        schemaless_writer(buf, self._writers[schema_id].parsed, to_datum(record))
        return buf.getvalue()

    def _reader(self, name: str) -> Any:
        reader = self._readers.get(name)
        if reader is None:
            reader = self._readers[name] = parse_schema(dict(self.latest(name).schema))
        return reader

    def _header(self, data: bytes | None) -> tuple[int, _Writer]:
        why = _framing_error(data)
        if why is not None:
            raise SchemaError(why)
        assert data is not None
        _, schema_id = _HEADER.unpack_from(data)
        writer = self._writers.get(schema_id)
        if writer is None:
            raise UnknownSchemaId(schema_id)
        return schema_id, writer

    def peek(self, data: bytes | None) -> dict[str, object] | None:
        """The raw Avro datum (writer's schema, not validated) when the id is known, else None (best effort)."""
        try:
            _, writer = self._header(data)
            datum = schemaless_reader(io.BytesIO(data[HEADER_SIZE:]), writer.parsed, None)  # type: ignore[index]
        except Exception:  # a peek is best effort: any failure means "nothing to read"
            return None
        return datum if isinstance(datum, dict) else None

    def decode(self, data: bytes | None) -> Record:
        """Decode and validate. SchemaError for bad framing or body, UnknownSchemaId for an id not fetched yet,
        InvalidPayload for broken field rules."""
        schema_id, writer = self._header(data)
        assert data is not None
        model = _MODELS.get(writer.name)
        local = self.catalogue.versions(writer.name)
        if model is None or not local or full_name(local[-1].schema) != writer.full_name:
            raise SchemaError(f"schema id {schema_id}: no local record {writer.full_name} to read it as")
        body = io.BytesIO(data[HEADER_SIZE:])
        try:
            datum = schemaless_reader(body, writer.parsed, self._reader(writer.name))
        except Exception as exc:  # fastavro raises several types on truncated, corrupt or unresolvable bodies
            raise SchemaError(
                f"{writer.name} (schema id {schema_id}): undecodable body ({type(exc).__name__})"
            ) from exc
        trailing = len(data) - HEADER_SIZE - body.tell()
        if trailing:
            raise SchemaError(
                f"{writer.name} (schema id {schema_id}): (message): {trailing} trailing bytes after the Avro body"
                " (the body must be consumed exactly)"
            )
        try:
            return model.model_validate(datum)
        except ValidationError as exc:
            raise InvalidPayload(writer.name, field_errors(exc)) from exc
