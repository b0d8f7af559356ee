"""The broker's registry wiring without HTTP: `mash schemas publish` registers every version under each topic's
subjects, and records read back decode synchronously with the writer schemas the reader fetched."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from broker import reader
from broker.admin import publish_schemas
from broker.reader import Consumed, fetch_schemas
from broker.settings import Settings
from broker.topics import catalogue
from schemas.catalogue import default_catalogue
from schemas.codec import Codec, UnknownSchemaId
from schemas.models import EncompassAcknowledgement, EncompassNotice, FrontDoorReferral, Recall
from schemas.registry import FULL_TRANSITIVE, InMemoryRegistry
from tests.schemas.helpers import TOPIC, unit_codec

ACK = EncompassAcknowledgement(notice_id=uuid.UUID(int=3), school_urn="123456",
                               acknowledged=datetime(2026, 11, 20, 18, 30, tzinfo=UTC))


async def test_publish_registers_every_version_under_every_subject_of_the_catalogue() -> None:
    """Each (topic, record) subject gets every committed version oldest first, FULL_TRANSITIVE; a rerun adds none."""
    registry = InMemoryRegistry()
    settings = Settings(topic_prefix="p")
    done = await publish_schemas(settings, registry=registry)
    expected = {f"{topic}-uk.gov.mash.{m.__name__}": m for topic, ms in catalogue("p").records().items() for m in ms}
    assert set(registry.subjects) == set(expected)
    assert set(registry.compatibility.values()) == {FULL_TRANSITIVE}
    for subject, model in expected.items():
        versions = default_catalogue().versions(model.__name__)
        assert [registry.schemas[i] for i in registry.subjects[subject]] == [dict(v.schema) for v in versions]
    assert len(registry.subjects["p.route.encompass-uk.gov.mash.Recall"]) == 1
    assert len(registry.subjects["p.route.frontdoor-uk.gov.mash.FrontDoorReferral"]) == 2  # v1 and v2
    assert len(done) == sum(len(default_catalogue().versions(m.__name__)) for m in expected.values())
    again = await publish_schemas(settings, registry=registry)
    assert [r.schema_id for r in again] == [r.schema_id for r in done]
    assert {EncompassNotice, Recall, FrontDoorReferral} <= set(expected.values())


def _consumed(value: bytes, schemas: dict[int, dict[str, object]]) -> Consumed:
    return Consumed("t", 0, 0, None, value, 0, schemas)


def test_consumed_decodes_with_the_prefetched_writer_schema_in_any_codec() -> None:
    """A codec without a registry decodes a record whose writer schema the reader fetched; without it, it cannot."""
    writer = unit_codec({TOPIC: [EncompassAcknowledgement]})
    data = writer.encode(ACK, TOPIC)
    schema_id = writer.schema_id(TOPIC, EncompassAcknowledgement)
    assert _consumed(data, {}).schema_id == schema_id
    with pytest.raises(UnknownSchemaId):
        _consumed(data, {}).decode(Codec())
    schema = dict(default_catalogue().versions("EncompassAcknowledgement")[-1].schema)
    assert _consumed(data, {schema_id: schema}).decode(Codec()) == ACK
    assert _consumed(b"\xc3\x01junk", {}).schema_id is None


async def test_fetch_schemas_asks_each_id_once_per_process_and_skips_unknown_ids(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """fetch_schemas() caches by registry URL; an id the registry does not know is left out, not raised."""
    registry = InMemoryRegistry()
    known = registry.add(dict(default_catalogue().versions("Recall")[-1].schema))

    class _Client(InMemoryRegistry):
        def __init__(self, url: str, **_: object) -> None:
            self.inner = registry

        async def __aenter__(self) -> _Client:
            return self

        async def __aexit__(self, *exc: object) -> None:
            return None

        async def get_schema(self, schema_id: int) -> dict[str, object]:
            return await self.inner.get_schema(schema_id)

    monkeypatch.setattr(reader, "SchemaRegistry", _Client)
    monkeypatch.setattr(reader, "_KNOWN", {})
    got = await fetch_schemas([known, 999], "http://r.invalid/apis/ccompat/v7")
    assert set(got) == {known}
    await fetch_schemas([known], "http://r.invalid/apis/ccompat/v7/")
    assert registry.calls["get_schema"] == 2  # `known` once, 999 once (not found, asked again next time)
