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
does both). A codec built without a registry decodes only the ids it was given (`remember`), e.g. by the
topic reader, which fetches every id it reads.

`codec_for(registry_url, {topic: [Record types]})` builds a codec with its own registry client, prepared for
those topics; `await codec.aclose()` closes that client.

This is the product's one codec; `schemas.codec.Codec` is this class.
"""

from __future__ import annotations

import io
import re
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from fastavro import parse_schema, schemaless_reader, schemaless_writer
from pydantic import ValidationError

from schemas._avro import avro_schema
from schemas.catalogue import SchemaCatalogue, SchemaVersion, default_catalogue, schema_fingerprint
from schemas.errors import RegistryError, SchemaError
from schemas.models import ALL_RECORDS, TRUSTED, Record
from schemas.registry import Registry, SchemaRegistry

__all__ = ["HEADER_SIZE", "MAGIC", "ConfluentCodec", "InvalidPayload", "NotPrepared", "UnknownSchemaId", "codec_for",
           "field_errors", "frame", "full_name", "schema_id_of", "subject_name"]

MAGIC = b"\x00"
HEADER_SIZE = 5
_HEADER = struct.Struct(">bI")
_RULE = "the Confluent wire format: magic byte 0x00, 4-byte big-endian schema id, Avro binary body"
_MODELS: dict[str, type[Record]] = {m.__name__: m for m in ALL_RECORDS}
_FOUND = re.compile(r"found `[^`]*`")  # pydantic's UUID errors quote a character of the input
_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*")  # a field path a validator puts first


class InvalidPayload(SchemaError):
    """The bytes decoded, but the record breaks a field rule; `errors` holds (field path, rule) pairs."""

    def __init__(self, record: str, errors: list[tuple[str, str]]) -> None:
        super().__init__(f"{record}: " + "; ".join(f"{f}: {r}" for f, r in errors))
        self.record = record
        self.errors = errors


def field_errors(exc: ValidationError, data: object = None) -> list[tuple[str, str]]:
    """(field path, rule) pairs from a pydantic error, never the input value nor an unexpected key's name.

    An unexpected key is named by its parent's path and its position among the parent's keys when `data`
    (the validated input, parsed) is given: ("envelope", "unexpected key #3: extra inputs are not permitted").
    """
    out = []
    for err in exc.errors(include_input=False, include_url=False):
        loc = list(err["loc"])
        msg = _FOUND.sub("found an unexpected character", str(err["msg"]).removeprefix("Value error, "))
        if err["type"] == "extra_forbidden" and loc:
            parent = ".".join(str(p) for p in loc[:-1]) or "(record)"
            out.append((parent, f"unexpected key{_position(data, loc)}: extra inputs are not permitted"))
            continue
        path = ".".join(str(p) for p in loc)
        if ": " in msg and _PATH.fullmatch(msg.split(": ", 1)[0]):
            head, msg = msg.split(": ", 1)
            path = f"{path}.{head}" if path else head
        out.append((path or "(record)", msg))
    return out


def _length(data: object) -> int:
    return len(data) if isinstance(data, list) else -1


def _position(data: object, loc: list[int | str]) -> str:
    """' #N' (1-based) of the key `loc[-1]` among its parent's keys in `data`, or '' when it cannot be found."""
    for part in loc[:-1]:
        found = part in data if isinstance(data, dict) else isinstance(part, int) and 0 <= part < _length(data)
        if not found:
            return ""
        data = data[part]  # type: ignore[index]
    if isinstance(data, dict) and loc[-1] in data:
        return f" #{list(data).index(loc[-1]) + 1}"
    return ""


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


def schema_id_of(data: bytes | None) -> int | None:
    """The schema id in a Confluent wire-format header, or None when the framing is wrong (nothing decoded)."""
    if _framing_error(data) is not None:
        return None
    assert data is not None
    return int(_HEADER.unpack_from(data)[1])


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

    def __init__(self, registry: Registry | None = None, catalogue: SchemaCatalogue | None = None) -> None:
        self.registry = registry
        self.catalogue = catalogue or default_catalogue()
        self._ids: dict[tuple[str, str], int] = {}  # (topic, record name) -> writer schema id
        self._writers: dict[int, _Writer] = {}  # schema id -> writer schema
        self._readers: dict[str, Any] = {}  # record name -> parsed latest local version
        self._resolve: dict[int, Any] = {}  # schema id -> the reader schema to resolve to, None if the same
        self._owned: SchemaRegistry | None = None  # the client codec_for() made, closed by aclose()
        self._missing: set[int] = set()  # ids the registry answered 404 for

    def _registry(self) -> Registry:
        if self.registry is None:
            raise SchemaError("this codec has no schema registry: it decodes only the schema ids it was given")
        return self.registry

    async def aclose(self) -> None:
        """Close the registry client `codec_for` created (a registry passed in is the caller's to close)."""
        if self._owned is not None:
            owned, self._owned = self._owned, None
            await owned.aclose()

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
                schema_id = await self._registry().register(subject_name(topic, version.schema), version.schema)
                self._ids[(topic, name)] = schema_id
                self.remember(schema_id, dict(version.schema))

    async def fetch(self, schema_id: int) -> None:
        """Fetch a writer schema by id (once: later calls for the same id ask nothing). RegistryError when the
        registry has no such id (status 404: not retriable) or cannot be reached (retriable)."""
        if schema_id not in self._writers:
            try:
                schema = await self._registry().get_schema(schema_id)
            except RegistryError as exc:
                if exc.status == 404:
                    self._missing.add(schema_id)  # decode now says so, instead of "not fetched yet"
                raise
            self._missing.discard(schema_id)
            self.remember(schema_id, schema)

    def knows(self, schema_id: int) -> bool:
        """True when the writer schema of this id is cached (decode needs no fetch)."""
        return schema_id in self._writers

    async def decode_async(self, data: bytes | None) -> Record:
        """decode(), fetching an unknown writer schema id first."""
        try:
            return self.decode(data)
        except UnknownSchemaId as exc:
            await self.fetch(exc.schema_id)
        return self.decode(data)

    def remember(self, schema_id: int, schema: Mapping[str, Any]) -> None:
        """Cache the writer schema of an id (as fetched from the registry). SchemaError if it is no Avro record."""
        schema = dict(schema)
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
        # pydantic's dump as it is: every enum of ours is a str enum whose members fastavro writes as their
        # symbols, so `to_datum`'s walk turning them into plain strings is not needed (tests/schemas prove the
        # bytes the same for every record the worker writes)
        return self.encode_datum(type(record), record.model_dump(mode="python"), topic)

    def encode_datum(self, model: type[Record], datum: Mapping[str, Any], topic: str) -> bytes:
        """Wire-format bytes of a raw Avro datum of `model` on `topic`, NOT validated (tests, fuzzing)."""
        schema_id = self.schema_id(topic, model)
        buf = io.BytesIO()
        buf.write(_HEADER.pack(0, schema_id))
        schemaless_writer(buf, self._writers[schema_id].parsed, dict(datum))
        return buf.getvalue()

    def _reader(self, name: str) -> Any:
        reader = self._readers.get(name)
        if reader is None:
            reader = self._readers[name] = parse_schema(dict(self.latest(name).schema))
        return reader

    def _resolution(self, schema_id: int, writer: _Writer) -> Any:
        """The reader schema a writer id is read into, or None when it is the latest local version itself
        (worked out once per id: fastavro's schema resolution costs more than the read it guards)."""
        try:
            return self._resolve[schema_id]
        except KeyError:
            reader = self._reader(writer.name)
            resolved = self._resolve[schema_id] = None if writer.parsed == reader else reader
            return resolved

    def _header(self, data: bytes | None) -> tuple[int, _Writer]:
        why = _framing_error(data)
        if why is not None:
            raise SchemaError(why)
        assert data is not None
        _, schema_id = _HEADER.unpack_from(data)
        writer = self._writers.get(schema_id)
        if writer is None:
            if schema_id in self._missing:
                raise SchemaError(f"schema id {schema_id} is not in the schema registry: expected {_RULE}"
                                  " with a registered schema id")
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

    def decode(self, data: bytes | None, *, trusted: bool = False) -> Record:
        """Decode and validate. SchemaError for bad framing or body, UnknownSchemaId for an id not fetched yet,
        InvalidPayload for broken field rules. `trusted`: a record the worker wrote itself after intake checked
        it (see `schemas.models.TRUSTED`): the text rules are not run again."""
        schema_id, writer = self._header(data)
        assert data is not None
        model = _MODELS.get(writer.name)
        local = self.catalogue.versions(writer.name)
        if model is None or not local or full_name(local[-1].schema) != writer.full_name:
            raise SchemaError(f"schema id {schema_id}: no local record {writer.full_name} to read it as")
        body = io.BytesIO(data[HEADER_SIZE:])
        try:
            datum = schemaless_reader(body, writer.parsed, self._resolution(schema_id, writer))
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
            return model.model_validate(datum, context=TRUSTED if trusted else None)
        except ValidationError as exc:
            raise InvalidPayload(writer.name, field_errors(exc)) from exc


async def codec_for(registry_url: str, topics: Mapping[str, Iterable[type[Record]]],
                    catalogue: SchemaCatalogue | None = None) -> ConfluentCodec:
    """A codec with its own registry client at `registry_url`, prepared for `{topic: [Record types]}` (every
    writer schema registered or found). `await codec.aclose()` closes the client. RegistryError (retriable
    when the registry is unreachable) if a schema cannot be registered; the client is closed then."""
    registry = SchemaRegistry(registry_url)
    codec = ConfluentCodec(registry, catalogue)
    codec._owned = registry
    try:
        await codec.prepare(topics)
    except BaseException:
        await codec.aclose()
        raise
    return codec
