"""The versioned schema catalogue: `schemas/avro/<Record>/v<N>.avsc`, fingerprints and compatibility.

Every version of every record schema is kept. A new version is accepted only when it is FULL_TRANSITIVE
compatible with every earlier one (each can read the other's data), checked with Apache Avro's checker.
Apache `avro` is a development tool (the dev extra): it is imported only when a compatibility check runs
(`mash schemas generate`), so an installed product without the extra reads the catalogue fine. The registry
checks FULL_TRANSITIVE again on every registration.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from fastavro import parse_schema
from fastavro.schema import fingerprint, to_parsing_canonical_form

from schemas._avro import avro_schema
from schemas.errors import SchemaError
from schemas.models import ALL_RECORDS, Record

__all__ = ["AVRO_DIR", "IncompatibleSchema", "SchemaCatalogue", "SchemaVersion", "check_full_transitive"]

AVRO_DIR = Path(__file__).parent / "avro"


class IncompatibleSchema(SchemaError):
    """A new schema version cannot read, or cannot be read by, an earlier version."""


@dataclass(frozen=True)
class SchemaVersion:
    """One version of one record schema."""

    name: str
    version: int
    schema: Mapping[str, Any]
    fingerprint: bytes

    @property
    def canonical(self) -> str:
        """Parsing Canonical Form (what the fingerprint is taken of)."""
        return str(to_parsing_canonical_form(dict(self.schema)))


def schema_fingerprint(schema: Mapping[str, Any]) -> bytes:
    """CRC-64-AVRO fingerprint of the parsing canonical form, 8 bytes little-endian (single-object header)."""
    return bytes.fromhex(fingerprint(to_parsing_canonical_form(dict(schema)), "CRC-64-AVRO"))


def _compatible(reader: Mapping[str, Any], writer: Mapping[str, Any]) -> tuple[bool, str]:
    try:
        import avro.schema
        from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType
    except ImportError:
        raise SchemaError(
            "checking schema compatibility needs Apache avro, a development tool: pip install 'mash-broker[dev]'"
        ) from None
    r = avro.schema.parse(json.dumps(reader))
    w = avro.schema.parse(json.dumps(writer))
    result = ReaderWriterCompatibilityChecker().get_compatibility(r, w)  # type: ignore[no-untyped-call]
    if result.compatibility is SchemaCompatibilityType.compatible:
        return True, ""
    detail = "; ".join(sorted(str(i) for i in result.incompatibilities)) or "incompatible"
    return False, f"{detail} at {','.join(result.locations) or '/'}"


def check_full_transitive(new: Mapping[str, Any], earlier: Iterable[Mapping[str, Any]]) -> None:
    """Raise IncompatibleSchema unless `new` reads every earlier version's data and vice versa."""
    for i, old in enumerate(earlier, start=1):
        ok, why = _compatible(new, old)
        if not ok:
            raise IncompatibleSchema(f"v{i} data cannot be read by the new schema (backward): {why}")
        ok, why = _compatible(old, new)
        if not ok:
            raise IncompatibleSchema(f"new data cannot be read by v{i} readers (forward): {why}")


class SchemaCatalogue:
    """All known schema versions, by record name and by fingerprint; parsed once."""

    def __init__(self, versions: Iterable[SchemaVersion]) -> None:
        self._by_fp: dict[bytes, SchemaVersion] = {}
        self._by_name: dict[str, list[SchemaVersion]] = {}
        self._parsed: dict[bytes, Any] = {}
        for v in versions:
            self.add(v)

    def add(self, version: SchemaVersion) -> None:
        """Add a version (e.g. one read from the catalogue topic, newer than this code)."""
        if version.fingerprint in self._by_fp:
            return
        self._by_fp[version.fingerprint] = version
        self._by_name.setdefault(version.name, []).append(version)
        self._by_name[version.name].sort(key=lambda v: v.version)
        self._parsed[version.fingerprint] = parse_schema(dict(version.schema))

    def by_fingerprint(self, fp: bytes) -> SchemaVersion | None:
        """The version with this fingerprint, if known."""
        return self._by_fp.get(fp)

    def parsed(self, fp: bytes) -> Any:
        """The fastavro-parsed schema of a fingerprint."""
        return self._parsed[fp]

    def versions(self, name: str) -> list[SchemaVersion]:
        """Every version of a record, oldest first."""
        return list(self._by_name.get(name, []))

    def all(self) -> list[SchemaVersion]:
        """Every version of every record."""
        return [v for vs in self._by_name.values() for v in vs]

    @staticmethod
    def load(directory: Path = AVRO_DIR) -> SchemaCatalogue:
        """Read every `<Record>/v<N>.avsc` under a directory."""
        versions = []
        for path in sorted(directory.glob("*/v*.avsc")):
            schema = json.loads(path.read_text())
            versions.append(
                SchemaVersion(path.parent.name, int(path.stem[1:]), schema, schema_fingerprint(schema))
            )
        return SchemaCatalogue(versions)


def generate(directory: Path = AVRO_DIR, records: Iterable[type[Record]] = ALL_RECORDS) -> list[str]:
    """Write a new version for each record whose model changed; refuse incompatible changes.

    Returns what was written. Raises IncompatibleSchema (naming the record) and writes nothing for it.
    """
    written = []
    for model in records:
        schema = avro_schema(model)
        folder = directory / model.__name__
        existing = sorted(folder.glob("v*.avsc"), key=lambda p: int(p.stem[1:]))
        earlier = [json.loads(p.read_text()) for p in existing]
        if earlier and to_parsing_canonical_form(earlier[-1]) == to_parsing_canonical_form(schema) and (
            earlier[-1] == schema
        ):
            continue
        try:
            check_full_transitive(schema, earlier)
        except IncompatibleSchema as exc:
            raise IncompatibleSchema(f"{model.__name__}: {exc}") from exc
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"v{len(existing) + 1}.avsc"
        path.write_text(json.dumps(schema, indent=2) + "\n")
        written.append(str(path))
    return written


@cache
def default_catalogue() -> SchemaCatalogue:
    """The catalogue of the committed schema files (loaded once per process)."""
    return SchemaCatalogue.load()
