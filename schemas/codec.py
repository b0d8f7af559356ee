"""Avro single-object encoding against the versioned catalogue (no other framing is accepted).

Wire format (Avro specification, "Single-object encoding"): 0xC3 0x01, then the 8-byte little-endian
CRC-64-AVRO fingerprint of the writer schema's parsing canonical form, then the Avro binary body.
Readers resolve the writer version to the reader's own (current) version of the same record.
"""

from __future__ import annotations

import io
import re
from functools import cache
from typing import Any

from fastavro import parse_schema, schemaless_reader, schemaless_writer
from pydantic import ValidationError

from schemas._avro import avro_schema, to_datum
from schemas.catalogue import SchemaCatalogue, default_catalogue, schema_fingerprint
from schemas.errors import SchemaError
from schemas.models import ALL_RECORDS, Record

__all__ = ["MAGIC", "Codec", "InvalidPayload", "encode_datum", "field_errors"]

MAGIC = b"\xc3\x01"
_FOUND = re.compile(r"found `[^`]*`")  # pydantic's UUID errors quote a character of the input
_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*")  # a field path a validator puts first
_MODELS: dict[str, type[Record]] = {m.__name__: m for m in ALL_RECORDS}


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


@cache
def _writer(model: type[Record]) -> tuple[bytes, Any]:
    schema = avro_schema(model)
    return MAGIC + schema_fingerprint(schema), parse_schema(schema)


def encode_datum(model: type[Record], datum: dict[str, Any]) -> bytes:
    """Single-object bytes of a raw datum with the model's current schema, NOT validated (tests, fuzzing)."""
    header, parsed = _writer(model)
    buf = io.BytesIO()
    buf.write(header)
    schemaless_writer(buf, parsed, datum)
    return buf.getvalue()


class Codec:
    """Encodes models to single-object Avro and decodes any known version back to the current model."""

    def __init__(self, catalogue: SchemaCatalogue | None = None) -> None:
        self.catalogue = catalogue or default_catalogue()

    def encode(self, record: Record) -> bytes:
        """Encode with the record's current schema (which must be in the catalogue)."""
        header, parsed = _writer(type(record))
        if self.catalogue.by_fingerprint(header[2:]) is None:
            raise SchemaError(f"{type(record).__name__}: schema not in the catalogue; run `mash schemas generate`")
        buf = io.BytesIO()
        buf.write(header)
        schemaless_writer(buf, parsed, to_datum(record))
        return buf.getvalue()

    def peek(self, data: bytes | None) -> dict[str, object] | None:
        """The raw Avro datum without validation (to find a source reference to reject), or None."""
        try:
            fp = data[2:10] if data and data[:2] == MAGIC else b""
            if self.catalogue.by_fingerprint(fp) is None:
                return None
            datum = schemaless_reader(io.BytesIO(data[10:]), self.catalogue.parsed(fp), None)  # type: ignore[index]
        except Exception:  # a peek is best effort: any failure means "nothing to read"
            return None
        return datum if isinstance(datum, dict) else None

    def decode(self, data: bytes | None) -> Record:
        """Decode and validate; SchemaError for bad framing, InvalidPayload for broken field rules."""
        if not data or len(data) < 10 or data[:2] != MAGIC:
            raise SchemaError("not Avro single-object encoding (expected header C3 01 + 8-byte fingerprint)")
        fp = data[2:10]
        version = self.catalogue.by_fingerprint(fp)
        if version is None:
            raise SchemaError(f"unknown schema fingerprint {fp.hex()}")
        model = _MODELS.get(version.name)
        if model is None:
            raise SchemaError(f"no model for record {version.name}")
        _, reader = _writer(model)
        body = io.BytesIO(data[10:])
        try:
            datum = schemaless_reader(body, self.catalogue.parsed(fp), reader)
        except Exception as exc:  # fastavro raises several types on truncated or corrupt bodies
            raise SchemaError(f"{version.name} v{version.version}: undecodable body ({type(exc).__name__})") from exc
        trailing = len(data) - 10 - body.tell()
        if trailing:
            raise SchemaError(
                f"{version.name} v{version.version}: (message): {trailing} trailing bytes after the Avro body"
                " (the body must be consumed exactly)"
            )
        try:
            return model.model_validate(datum)
        except ValidationError as exc:
            raise InvalidPayload(version.name, field_errors(exc)) from exc
