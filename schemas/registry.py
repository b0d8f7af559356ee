"""Async client for a Confluent-compatible schema registry (Apicurio's `/apis/ccompat/v7`, or Confluent's).

Built on `confluent_kafka.schema_registry.AsyncSchemaRegistryClient` (Confluent's own client: one pooled
httpx session, retries with jitter on 408/429/5xx) behind a small typed surface, `Registry`:

- `register(subject, schema) -> id`: sets FULL_TRANSITIVE on the subject (PUT /config/{subject}) before its
  first registration by this client, so the registry itself refuses an incompatible version (409);
- `get_schema(id) -> schema`, `set_compatibility`, `get_compatibility`.

Ids are cached by (subject, canonical JSON of the schema) and schemas by id, and concurrent look-ups of the
same key share one request: each is asked of the registry once per client. Every failure is a
`RegistryError` with the HTTP status (None when the registry could not be reached) and `retriable` set for
transient ones (unreachable, timeouts, 408, 429, 5xx).

`InMemoryRegistry` is a dict-backed stand-in implementing the same protocol, for unit tests only.
"""

from __future__ import annotations

import asyncio
import json
import os
import warnings
from collections.abc import Awaitable, Callable, Hashable, Mapping
from typing import Any, Protocol, TypeVar

import httpx
from authlib.deprecate import AuthlibDeprecationWarning

from schemas.errors import RegistryError

# authlib (pulled in by confluent-kafka for OAuth, unused here) warns on import, forced "always", that it
# prefers the httpx2 fork; confluent-kafka 2.15 uses httpx. Silence that one import only.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", AuthlibDeprecationWarning)
    from confluent_kafka.schema_registry import AsyncSchemaRegistryClient, Schema
    from confluent_kafka.schema_registry.error import SchemaRegistryError

__all__ = [
    "COMPATIBILITY_LEVELS",
    "DEFAULT_URL",
    "FULL_TRANSITIVE",
    "InMemoryRegistry",
    "Registry",
    "SchemaRegistry",
    "canonical_json",
    "default_url",
]

FULL_TRANSITIVE = "FULL_TRANSITIVE"
COMPATIBILITY_LEVELS = frozenset(
    {"NONE", "BACKWARD", "BACKWARD_TRANSITIVE", "FORWARD", "FORWARD_TRANSITIVE", "FULL", FULL_TRANSITIVE}
)
DEFAULT_URL = "http://127.0.0.1:8081/apis/ccompat/v7"
_RETRIABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_T = TypeVar("_T")


def default_url() -> str:
    """`MASH_REGISTRY_URL`, else the local registry of deploy/registry.sh (port `MASH_REGISTRY_PORT`, 8081)."""
    explicit = os.environ.get("MASH_REGISTRY_URL")
    if explicit:
        return explicit.rstrip("/")
    return f"http://127.0.0.1:{os.environ.get('MASH_REGISTRY_PORT', '8081')}/apis/ccompat/v7"


def canonical_json(schema: Mapping[str, Any]) -> str:
    """One string per schema document (sorted keys, no spaces): the cache key.

    Not Avro's Parsing Canonical Form, which drops `default` and `doc`: two schemas differing only in a
    default are different versions to the registry (and to compatibility), so they must not share an id.
    """
    return json.dumps(schema, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class Registry(Protocol):
    """What the codec needs from a schema registry (the real client and the in-memory stand-in)."""

    async def register(self, subject: str, schema: Mapping[str, Any]) -> int:
        """The id of `schema` under `subject`, registering it (FULL_TRANSITIVE) when new."""
        ...

    async def get_schema(self, schema_id: int) -> dict[str, Any]:
        """The Avro schema with this id (RegistryError, status 404, when the registry has none)."""
        ...

    async def set_compatibility(self, subject: str, level: str = FULL_TRANSITIVE) -> None:
        """Set the subject's compatibility level."""
        ...

    async def get_compatibility(self, subject: str) -> str:
        """The subject's compatibility level."""
        ...


class _SingleFlight:
    """A cache where concurrent callers of one missing key share one computation; failures are not cached."""

    def __init__(self) -> None:
        self.values: dict[Hashable, Any] = {}
        self._pending: dict[Hashable, asyncio.Future[Any]] = {}

    async def get(self, key: Hashable, compute: Callable[[], Awaitable[_T]]) -> _T:
        if key in self.values:
            return self.values[key]  # type: ignore[no-any-return]
        pending = self._pending.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            value = await compute()
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: nobody may be waiting
            raise
        else:
            self.values[key] = value
            future.set_result(value)
            return value
        finally:
            del self._pending[key]


def _avro_document(schema_id: int, schema_str: str | None, schema_type: str | None) -> dict[str, Any]:
    if schema_type not in (None, "AVRO"):
        raise RegistryError(f"schema id {schema_id} is a {schema_type} schema, not Avro", status=None)
    try:
        doc = json.loads(schema_str or "")
    except ValueError as exc:
        raise RegistryError(f"schema id {schema_id}: the registry answered a schema that is not JSON") from exc
    if not isinstance(doc, dict):
        raise RegistryError(f"schema id {schema_id}: not an Avro named schema (a JSON object)")
    return doc


class SchemaRegistry:
    """The registry over HTTP (Confluent-compatible API), with the caches described in the module doc.

    Use as `async with SchemaRegistry(url) as registry:` or call `aclose()`; `url` ends in the API root,
    e.g. `http://127.0.0.1:8081/apis/ccompat/v7`.
    """

    def __init__(self, url: str | None = None, *, timeout: float = 10.0, max_retries: int = 2) -> None:
        self.url = (url or default_url()).rstrip("/")
        self._client = AsyncSchemaRegistryClient(
            {"url": self.url, "timeout": timeout, "max.retries": max_retries, "retries.wait.ms": 200}
        )
        self._ids = _SingleFlight()
        self._schemas = _SingleFlight()
        self._configured = _SingleFlight()

    async def __aenter__(self) -> SchemaRegistry:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP session."""
        await self._client.__aexit__(None, None, None)  # type: ignore[no-untyped-call]

    async def _call(self, what: str, make: Callable[[], Awaitable[_T]]) -> _T:
        """Run one client call, turning every failure into a RegistryError that says what was asked."""
        try:
            return await make()
        except SchemaRegistryError as exc:
            status = exc.http_status_code
            if status == 409:
                raise RegistryError(
                    f"{what}: refused as incompatible with an earlier version of the subject (409): "
                    f"{exc.error_message}",
                    status=409,
                ) from exc
            raise RegistryError(
                f"{what}: the registry answered {status} ({exc.error_code}): {exc.error_message}",
                status=status,
                retriable=status in _RETRIABLE_STATUS,
            ) from exc
        except httpx.HTTPError as exc:
            raise RegistryError(
                f"{what}: registry {self.url} unreachable ({type(exc).__name__}: {exc})", retriable=True
            ) from exc

    async def register(self, subject: str, schema: Mapping[str, Any]) -> int:
        """The id of `schema` under `subject`; FULL_TRANSITIVE is set on the subject before its first registration."""
        text = json.dumps(schema, separators=(",", ":"), ensure_ascii=False)

        async def fetch() -> int:
            await self._configured.get(subject, lambda: self.set_compatibility(subject, FULL_TRANSITIVE))
            what = f"registering a schema under subject {subject!r}"
            schema_id = await self._call(what, lambda: self._client.register_schema(subject, Schema(text, "AVRO")))
            self._schemas.values.setdefault(schema_id, dict(schema))
            return schema_id

        return await self._ids.get((subject, canonical_json(schema)), fetch)

    async def get_schema(self, schema_id: int) -> dict[str, Any]:
        """The Avro schema with this id, fetched once; RegistryError with status 404 when unknown."""

        async def fetch() -> dict[str, Any]:
            found = await self._call(f"fetching schema id {schema_id}", lambda: self._client.get_schema(schema_id))
            return _avro_document(schema_id, found.schema_str, found.schema_type)

        return await self._schemas.get(schema_id, fetch)

    async def set_compatibility(self, subject: str, level: str = FULL_TRANSITIVE) -> None:
        """Set the subject's compatibility level (allowed before its first version is registered)."""
        if level not in COMPATIBILITY_LEVELS:
            raise ValueError(f"unknown compatibility level {level!r}")
        await self._call(
            f"setting compatibility {level} on subject {subject!r}",
            lambda: self._client.set_compatibility(subject, level),
        )

    async def get_compatibility(self, subject: str) -> str:
        """The subject's compatibility level (RegistryError, status 404, when neither it nor a config exists)."""
        return await self._call(
            f"reading the compatibility of subject {subject!r}", lambda: self._client.get_compatibility(subject)
        )


class InMemoryRegistry:
    """FOR UNIT TESTS ONLY: a dict-backed registry implementing `Registry`, with no HTTP and no compatibility
    checks (the real registry's refusals are tested in tests/integration/test_registry.py).

    Ids are given in registration order from 1; the same schema under any subject gets the same id, as in the
    Confluent and Apicurio registries. `calls` counts each operation, so tests can check what was asked.
    """

    def __init__(self) -> None:
        self.schemas: dict[int, dict[str, Any]] = {}
        self.subjects: dict[str, list[int]] = {}
        self.compatibility: dict[str, str] = {}
        self.calls: dict[str, int] = {"register": 0, "get_schema": 0, "set_compatibility": 0, "get_compatibility": 0}
        self._by_text: dict[str, int] = {}

    def add(self, schema: Mapping[str, Any]) -> int:
        """Store a schema as another producer would (no subject), returning its id."""
        text = canonical_json(schema)
        if text not in self._by_text:
            self._by_text[text] = len(self._by_text) + 1
            self.schemas[self._by_text[text]] = json.loads(text)
        return self._by_text[text]

    async def register(self, subject: str, schema: Mapping[str, Any]) -> int:
        """Register (or find) `schema` under `subject`; FULL_TRANSITIVE is recorded on a new subject."""
        self.calls["register"] += 1
        self.compatibility.setdefault(subject, FULL_TRANSITIVE)
        schema_id = self.add(schema)
        versions = self.subjects.setdefault(subject, [])
        if schema_id not in versions:
            versions.append(schema_id)
        return schema_id

    async def get_schema(self, schema_id: int) -> dict[str, Any]:
        """The schema with this id; RegistryError (404) when unknown."""
        self.calls["get_schema"] += 1
        if schema_id not in self.schemas:
            raise RegistryError(f"fetching schema id {schema_id}: not in the registry (404)", status=404)
        return json.loads(json.dumps(self.schemas[schema_id]))  # type: ignore[no-any-return]

    async def set_compatibility(self, subject: str, level: str = FULL_TRANSITIVE) -> None:
        """Record the subject's level."""
        self.calls["set_compatibility"] += 1
        if level not in COMPATIBILITY_LEVELS:
            raise ValueError(f"unknown compatibility level {level!r}")
        self.compatibility[subject] = level

    async def get_compatibility(self, subject: str) -> str:
        """The subject's level; RegistryError (404) for an unknown subject."""
        self.calls["get_compatibility"] += 1
        if subject not in self.compatibility:
            raise RegistryError(f"subject {subject!r} not in the registry (404)", status=404)
        return self.compatibility[subject]
