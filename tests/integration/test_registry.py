"""The real schema registry (Apicurio, started by deploy/registry.sh on the local Kafka): every record schema
registers, the registry itself refuses FULL_TRANSITIVE breaks (409), ConfluentCodec round-trips through it,
and a restart answers the same ids."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from schemas.catalogue import default_catalogue
from schemas.confluent import ConfluentCodec, full_name, subject_name
from schemas.errors import RegistryError
from schemas.models import ALL_RECORDS, EncompassAcknowledgement, Record
from schemas.registry import FULL_TRANSITIVE, SchemaRegistry, default_url
from tests.schemas.test_avro_contracts import _HAND_BUILT

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


def _script(action: str) -> None:
    subprocess.run(["bash", str(ROOT / "deploy" / "registry.sh"), action], check=True, cwd=ROOT)


def _delete_subjects(prefix: str) -> None:
    """Remove a run's subjects (soft, then permanent) so the registry's journal stays small."""
    with httpx.Client(base_url=default_url(), timeout=10) as http:
        for subject in http.get("/subjects").json():
            if subject.startswith(prefix):
                http.delete(f"/subjects/{subject}")
                http.delete(f"/subjects/{subject}", params={"permanent": "true"})


@pytest.fixture(scope="module")
def prefix() -> Iterator[str]:
    """Start (or reuse) the local registry; a fresh topic prefix for this module's subjects."""
    _script("start")
    p = f"r{uuid.uuid4().hex[:8]}"
    yield p
    _delete_subjects(p)


def _rec(*fields: dict[str, Any]) -> dict[str, Any]:
    return {"type": "record", "name": "Probe", "namespace": "test.mash", "doc": "probe", "fields": list(fields)}


_ID = {"name": "id", "type": "string"}
_REF = {"name": "ref", "type": "string"}
_COLOURS = {"type": "enum", "name": "Colour", "symbols": ["RED", "GREEN"]}

# (earlier version, new version): each new version breaks FULL_TRANSITIVE against the earlier one.
REFUSED: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "required_field_added_without_default": (_rec(_ID), _rec(_ID, _REF)),
    "field_removed_without_default": (_rec(_ID, _REF), _rec(_ID)),
    "field_type_string_to_long": (_rec(_ID, _REF), _rec(_ID, {"name": "ref", "type": "long"})),
    "enum_symbol_renamed": (
        _rec(_ID, {"name": "colour", "type": _COLOURS}),
        _rec(_ID, {"name": "colour", "type": {**_COLOURS, "symbols": ["RED", "VERDE"]}}),
    ),
    "enum_symbol_added_without_enum_default": (
        _rec(_ID, {"name": "colour", "type": _COLOURS}),
        _rec(_ID, {"name": "colour", "type": {**_COLOURS, "symbols": ["RED", "GREEN", "BLUE"]}}),
    ),
    "required_field_renamed_without_alias": (_rec(_ID, _REF), _rec(_ID, {"name": "reference", "type": "string"})),
}


async def test_every_record_schema_version_registers_in_order_under_full_transitive(prefix: str) -> None:
    """Every committed version of every record registers in order on the registry under FULL_TRANSITIVE."""
    catalogue = default_catalogue()
    async with SchemaRegistry() as registry:
        for model in ALL_RECORDS:
            versions = catalogue.versions(model.__name__)
            subject = subject_name(f"{prefix}.history", versions[0].schema)
            ids = [await registry.register(subject, v.schema) for v in versions]
            assert len(set(ids)) == len(versions), model.__name__
            assert await registry.get_compatibility(subject) == FULL_TRANSITIVE
        assert len(ALL_RECORDS) == len({m.__name__ for m in ALL_RECORDS})


@pytest.mark.parametrize("old,new", REFUSED.values(), ids=REFUSED.keys())
async def test_registry_refuses_a_breaking_version_with_409(prefix: str, old: dict[str, Any],
                                                            new: dict[str, Any]) -> None:
    """The registry itself answers 409 to a new version breaking FULL_TRANSITIVE; the error is not retriable."""
    subject = f"{prefix}.refused-{uuid.uuid4().hex[:6]}-test.mash.Probe"
    async with SchemaRegistry() as registry:
        await registry.register(subject, old)
        with pytest.raises(RegistryError, match="incompatible") as caught:
            await registry.register(subject, new)
    assert caught.value.status == 409
    assert not caught.value.retriable


async def test_registry_check_is_transitive_and_accepts_a_field_with_default(prefix: str) -> None:
    """A version compatible with the previous one but not the first is refused; a defaulted field is accepted."""
    subject = f"{prefix}.transitive-test.mash.Probe"
    async with SchemaRegistry() as registry:
        await registry.register(subject, _rec(_ID, _REF))
        await registry.register(subject, _rec(_ID, {**_REF, "default": ""}))
        with pytest.raises(RegistryError) as caught:
            await registry.register(subject, _rec(_ID))
        assert caught.value.status == 409
        await registry.register(subject, _rec(_ID, {**_REF, "default": ""}, {"name": "role", "type": "string",
                                                                             "default": "DSL"}))


async def test_confluent_codec_round_trips_through_the_registry(prefix: str) -> None:
    """Records encoded after prepare() decode in a fresh codec with its own client, fetching each id once."""
    topic = f"{prefix}.roundtrip"
    records: list[Record] = list(_HAND_BUILT)
    async with SchemaRegistry() as writer_registry, SchemaRegistry() as reader_registry:
        writer = ConfluentCodec(writer_registry)
        await writer.prepare({topic: [type(r) for r in records]})
        reader = ConfluentCodec(reader_registry)
        for record in records:
            data = writer.encode(record, topic)
            assert data[0] == 0
            assert await reader.decode_async(data) == record
        # Every id is cached now: the synchronous decode (which cannot reach the registry) reads them all.
        for record in records:
            assert reader.decode(writer.encode(record, topic)) == record


async def test_restart_answers_the_same_ids(prefix: str) -> None:
    """After deploy/registry.sh stop + start (kafkasql replay), the same schemas answer the same ids."""
    topic = f"{prefix}.restart"
    ack = EncompassAcknowledgement(notice_id=uuid.UUID(int=9), school_urn="123456",
                                   acknowledged=datetime(2026, 11, 20, 18, 30, tzinfo=UTC))
    async with SchemaRegistry() as registry:
        codec = ConfluentCodec(registry)
        await codec.prepare({topic: ALL_RECORDS})
        before = {m.__name__: codec.schema_id(topic, m) for m in ALL_RECORDS}
        data = codec.encode(ack, topic)
    _script("stop")
    began = time.monotonic()
    _script("start")
    print(f"registry restarted in {time.monotonic() - began:.1f}s")
    async with SchemaRegistry() as registry:
        codec = ConfluentCodec(registry)
        assert await codec.decode_async(data) == ack  # fetched by id from the restarted registry
        await codec.prepare({topic: ALL_RECORDS})
        assert {m.__name__: codec.schema_id(topic, m) for m in ALL_RECORDS} == before
        for model in ALL_RECORDS:
            latest = default_catalogue().versions(model.__name__)[-1].schema
            assert full_name(await registry.get_schema(before[model.__name__])) == full_name(latest)
            assert await registry.get_compatibility(subject_name(topic, latest)) == FULL_TRANSITIVE
