"""The Confluent wire-format codec and the registry client's caches, against `InMemoryRegistry`.

`InMemoryRegistry` (schemas.registry) is a dict-backed stand-in for the registry implementing the same
`Registry` protocol, for unit tests only: it checks no compatibility. The real registry (Apicurio), its
FULL_TRANSITIVE refusals and restarts are tested in tests/integration/test_registry.py.
"""

from __future__ import annotations

import asyncio
import io
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastavro import parse_schema, schemaless_writer

from producers.simulator import generate as simulate
from schemas._avro import avro_schema, to_datum
from schemas.catalogue import SchemaCatalogue, default_catalogue, schema_fingerprint
from schemas.codec import Codec
from schemas.confluent import ConfluentCodec, NotPrepared, UnknownSchemaId, codec_for, frame, subject_name
from schemas.errors import RegistryError, SchemaError
from schemas.models import ALL_RECORDS, NOTIFICATIONS, EncompassAcknowledgement, Record
from schemas.registry import (  # confluent-kafka's names through schemas.registry: it silences authlib's warning
    FULL_TRANSITIVE,
    InMemoryRegistry,
    Schema,
    SchemaRegistry,
    SchemaRegistryError,
)
from tests.schemas.test_avro_contracts import _HAND_BUILT

TOPIC = "t.unit"
EVOLVED = ("EncompassAcknowledgement", "FrontDoorReferral", "DeadLetter")  # the records with a v1 and a v2
T0 = datetime(2026, 11, 20, 18, 30, 15, 123000, tzinfo=UTC)
ACK = EncompassAcknowledgement(notice_id=uuid.UUID(int=7), school_urn="654321", acknowledged=T0,
                               by_role="HEADTEACHER")


def _examples() -> list[Record]:
    """One hand-built instance of every output and feedback record, and five of every notification kind."""
    by_kind: dict[type[Record], list[Record]] = defaultdict(list)
    for record in simulate(datetime(2026, 11, 2, tzinfo=UTC), seed=5, count=400, span=timedelta(days=7)):
        if len(by_kind[type(record)]) < 5:
            by_kind[type(record)].append(record)
    assert set(by_kind) == set(NOTIFICATIONS)
    return [r for rs in by_kind.values() for r in rs] + list(_HAND_BUILT)


EXAMPLES = _examples()


async def _prepared(registry: InMemoryRegistry | None = None,
                    catalogue: SchemaCatalogue | None = None) -> ConfluentCodec:
    codec = ConfluentCodec(registry or InMemoryRegistry(), catalogue)
    await codec.prepare({TOPIC: ALL_RECORDS})
    return codec


def _only_v1() -> SchemaCatalogue:
    return SchemaCatalogue(v for v in default_catalogue().all() if v.version == 1)


def _example(name: str) -> Record:
    (record,) = [r for r in _HAND_BUILT if type(r).__name__ == name]
    return record


# ---------------------------------------------------------------------------------------- wire format
@pytest.mark.parametrize("record", EXAMPLES, ids=lambda r: type(r).__name__)
async def test_every_record_round_trips(record: Record) -> None:
    """Every record kind encodes to magic byte 0 + its 4-byte big-endian schema id + body, and decodes equal."""
    codec = await _prepared()
    data = codec.encode(record, TOPIC)
    assert data[0] == 0
    assert int.from_bytes(data[1:5], "big") == codec.schema_id(TOPIC, type(record))
    assert codec.decode(data) == record


async def test_prepare_registers_latest_versions_under_topic_record_subjects_with_full_transitive() -> None:
    """prepare() registers each record's latest local version under `<topic>-<full name>`, FULL_TRANSITIVE."""
    registry = InMemoryRegistry()
    await _prepared(registry)
    cat = default_catalogue()
    expected = {f"{TOPIC}-uk.gov.mash.{m.__name__}": cat.versions(m.__name__)[-1].schema for m in ALL_RECORDS}
    assert set(registry.subjects) == set(expected)
    for subject, schema in expected.items():
        (only,) = registry.subjects[subject]
        assert registry.schemas[only] == schema
        assert registry.compatibility[subject] == FULL_TRANSITIVE
    assert subject_name("mash.intake.police", {"name": "Recall", "namespace": "uk.gov.mash"}) == (
        "mash.intake.police-uk.gov.mash.Recall"
    )


async def test_prepare_is_idempotent_and_encode_needs_no_registry() -> None:
    """A second prepare() asks the registry nothing; encode and decode of own records never call it."""
    registry = InMemoryRegistry()
    codec = await _prepared(registry)
    before = dict(registry.calls)
    await codec.prepare({TOPIC: ALL_RECORDS})
    for record in EXAMPLES:
        codec.decode(codec.encode(record, TOPIC))
    assert registry.calls == before


async def test_encode_of_an_unprepared_topic_is_refused() -> None:
    """encode() on a topic that was not prepared raises NotPrepared naming the record and the topic."""
    codec = await _prepared()
    with pytest.raises(NotPrepared, match="EncompassAcknowledgement on topic 'other'"):
        codec.encode(ACK, "other")


async def test_unknown_id_is_fetched_once_then_decoded() -> None:
    """A reader that has not seen an id raises UnknownSchemaId; after fetch() it decodes; the id is asked once."""
    registry = InMemoryRegistry()
    data = (await _prepared(registry)).encode(ACK, TOPIC)
    reader = ConfluentCodec(registry)
    with pytest.raises(UnknownSchemaId) as caught:
        reader.decode(data)
    assert caught.value.schema_id == int.from_bytes(data[1:5], "big")
    assert caught.value.retriable
    await reader.fetch(caught.value.schema_id)
    await reader.fetch(caught.value.schema_id)
    assert reader.decode(data) == ACK
    assert await reader.decode_async(data) == ACK
    assert registry.calls["get_schema"] == 1


async def test_decode_async_fetches_an_unknown_id() -> None:
    """decode_async() fetches an unknown writer schema and decodes in one call."""
    registry = InMemoryRegistry()
    data = (await _prepared(registry)).encode(ACK, TOPIC)
    assert await ConfluentCodec(registry).decode_async(data) == ACK


async def test_an_id_the_registry_does_not_have_is_a_non_retriable_registry_error() -> None:
    """fetch() of an id the registry does not hold raises RegistryError with status 404, not retriable."""
    with pytest.raises(RegistryError) as caught:
        await ConfluentCodec(InMemoryRegistry()).decode_async(frame(4242, b"\x00"))
    assert caught.value.status == 404
    assert not caught.value.retriable


# --------------------------------------------------------------------------------------- v1 <-> v2
def _v1_bytes(registry: InMemoryRegistry, record: Record) -> bytes:
    """The record written (fastavro) with its committed v1 schema, registered as another producer would."""
    v1 = dict(default_catalogue().versions(type(record).__name__)[0].schema)
    buf = io.BytesIO()
    schemaless_writer(buf, parse_schema(v1), to_datum(record))
    return frame(registry.add(v1), buf.getvalue())


def _v1_fields(name: str) -> set[str]:
    return {f["name"] for f in default_catalogue().versions(name)[0].schema["fields"]}


@pytest.mark.parametrize("name", EVOLVED)
async def test_v1_writer_is_read_by_the_v2_reader_with_defaults(name: str) -> None:
    """A v1 writer's record is resolved to the latest (v2) reader: v1 fields kept, new fields get defaults."""
    registry = InMemoryRegistry()
    record = _example(name)
    decoded = await ConfluentCodec(registry).decode_async(_v1_bytes(registry, record))
    fields = _v1_fields(name)
    assert decoded.model_dump(include=fields) == record.model_dump(include=fields)
    new = set(type(record).model_fields) - fields
    assert new
    defaults = type(record).model_validate(record.model_dump(include=fields))
    assert decoded.model_dump(include=new) == defaults.model_dump(include=new)


@pytest.mark.parametrize("name", EVOLVED)
async def test_v2_writer_is_read_by_a_v1_reader(name: str) -> None:
    """A v2 writer's record is read by a codec whose catalogue stops at v1: the v1 fields come back equal."""
    registry = InMemoryRegistry()
    writer = await _prepared(registry)
    record = _example(name)
    data = writer.encode(record, TOPIC)
    assert registry.schemas[int.from_bytes(data[1:5], "big")] == default_catalogue().versions(name)[1].schema
    decoded = await ConfluentCodec(registry, _only_v1()).decode_async(data)
    fields = _v1_fields(name)
    assert decoded.model_dump(include=fields) == record.model_dump(include=fields)


async def test_v2_ack_read_by_a_v1_reader_drops_by_role() -> None:
    """The acknowledgement's v2-only by_role is dropped by a v1 reader (so the model default DSL applies)."""
    registry = InMemoryRegistry()
    data = (await _prepared(registry)).encode(ACK, TOPIC)
    decoded = await ConfluentCodec(registry, _only_v1()).decode_async(data)
    assert decoded.by_role == "DSL"  # type: ignore[attr-defined]


async def test_a_writer_of_a_record_the_reader_does_not_know_is_refused() -> None:
    """A registered schema of a record with no local version (other name or namespace) is refused, named."""
    registry = InMemoryRegistry()
    codec = ConfluentCodec(registry)
    foreign = {"type": "record", "name": "Recall", "namespace": "org.elsewhere", "fields": []}
    with pytest.raises(SchemaError, match=r"no local record org\.elsewhere\.Recall"):
        await codec.decode_async(frame(registry.add(foreign), b""))


# ----------------------------------------------------------------------------------------- refusals
async def test_single_object_encoding_is_refused_naming_the_rule() -> None:
    """Avro single-object bytes (C3 01) are refused, and the reason names the Confluent wire-format rule."""
    codec = await _prepared()
    with pytest.raises(SchemaError, match=r"single-object.*magic byte 0x00, 4-byte big-endian schema id"):
        codec.decode(b"\xc3\x01" + schema_fingerprint(avro_schema(EncompassAcknowledgement)) + b"\x00")


@pytest.mark.parametrize(
    "data,reason",
    [
        (b"", "empty message"),
        (None, "empty message"),
        (b'{"notice_id": 1}', "magic byte 0x7b is not 0x00"),
        (b"\x01\x00\x00\x00\x01\x02", "magic byte 0x01 is not 0x00"),
        (b"\x00\x00\x00\x01", "4 bytes is too short"),
        (b"\x00\x00\x00\x00\x01", "undecodable body"),
    ],
    ids=["empty", "none", "json", "magic-1", "short-header", "no-body"],
)
async def test_other_framing_is_refused(data: bytes | None, reason: str) -> None:
    """Empty, JSON, a wrong magic byte or a header without a body are refused with the reason."""
    codec = await _prepared()
    with pytest.raises(SchemaError, match=reason) as caught:
        codec.decode(data)
    assert not isinstance(caught.value, UnknownSchemaId)
    assert codec.peek(data) is None


async def test_trailing_bytes_and_truncated_bodies_are_refused() -> None:
    """The body must be consumed exactly: a trailing byte or a cut body is a SchemaError."""
    codec = await _prepared()
    data = codec.encode(ACK, TOPIC)
    with pytest.raises(SchemaError, match="1 trailing bytes"):
        codec.decode(data + b"\x00")
    with pytest.raises(SchemaError, match="undecodable body"):
        codec.decode(data[:-3])


async def test_peek_reads_the_raw_datum_of_a_known_id_only() -> None:
    """peek() gives the writer's raw datum for a known id, and None for an unknown id or garbage."""
    registry = InMemoryRegistry()
    codec = await _prepared(registry)
    data = codec.encode(ACK, TOPIC)
    peeked = codec.peek(data)
    assert peeked is not None and peeked["school_urn"] == "654321"
    assert ConfluentCodec(registry).peek(data) is None
    assert codec.peek(data[:5] + b"\xff\xff\xff") is None


# ----------------------------------------------------------------------------- SchemaRegistry (HTTP)
class _StubClient:
    """Stands in for confluent-kafka's AsyncSchemaRegistryClient inside SchemaRegistry: counts and delays."""

    def __init__(self, fail: Exception | None = None) -> None:
        self.fail = fail
        self.calls: list[tuple[str, Any]] = []

    async def register_schema(self, subject: str, schema: Schema) -> int:
        self.calls.append(("register", subject))
        await asyncio.sleep(0.01)
        if self.fail:
            raise self.fail
        return 11

    async def get_schema(self, schema_id: int) -> Schema:
        self.calls.append(("get", schema_id))
        await asyncio.sleep(0.01)
        if self.fail:
            raise self.fail
        return Schema('{"type": "record", "name": "R", "fields": []}', "AVRO")

    async def set_compatibility(self, subject: str, level: str) -> dict[str, str]:
        self.calls.append(("config", (subject, level)))
        return {"compatibilityLevel": level}

    async def __aexit__(self, *exc: object) -> None:
        return None


def _with_stub(stub: _StubClient) -> SchemaRegistry:
    registry = SchemaRegistry("http://127.0.0.1:1/apis/ccompat/v7")
    registry._client = stub  # type: ignore[assignment]
    return registry


async def test_client_sets_full_transitive_before_the_first_registration_and_caches_ids() -> None:
    """register(): FULL_TRANSITIVE set first, once per subject; concurrent and repeated calls share one request."""
    stub = _StubClient()
    registry = _with_stub(stub)
    schema = {"type": "record", "name": "R", "fields": []}
    ids = await asyncio.gather(*(registry.register("s-R", schema) for _ in range(5)))
    assert ids == [11] * 5
    assert await registry.register("s-R", dict(reversed(list(schema.items())))) == 11  # same canonical JSON
    assert stub.calls == [("config", ("s-R", FULL_TRANSITIVE)), ("register", "s-R")]
    assert await registry.get_schema(11) == schema  # known from the registration: not fetched
    assert len(stub.calls) == 2


async def test_client_fetches_each_schema_id_once() -> None:
    """get_schema(): concurrent and repeated look-ups of one id make one request."""
    stub = _StubClient()
    registry = _with_stub(stub)
    got = await asyncio.gather(*(registry.get_schema(3) for _ in range(5)))
    assert got[0] == {"type": "record", "name": "R", "fields": []}
    await registry.get_schema(3)
    assert stub.calls == [("get", 3)]


@pytest.mark.parametrize(
    "fail,status,retriable,words",
    [
        (SchemaRegistryError(409, 409, "Incompatible artifact"), 409, False, "incompatible with an earlier version"),
        (SchemaRegistryError(422, 42201, "Invalid schema"), 422, False, "answered 422"),
        (SchemaRegistryError(503, 50003, "unavailable"), 503, True, "answered 503"),
        (httpx.ConnectError("refused"), None, True, "unreachable"),
        (httpx.ReadTimeout("slow"), None, True, "unreachable"),
    ],
    ids=["409", "422", "503", "connect", "timeout"],
)
async def test_client_failures_are_registry_errors(fail: Exception, status: int | None, retriable: bool,
                                                   words: str) -> None:
    """Refusals are RegistryError with the status; unreachable, timeouts and 5xx are retriable; nothing cached."""
    stub = _StubClient(fail)
    registry = _with_stub(stub)
    for _ in range(2):
        with pytest.raises(RegistryError, match=words) as caught:
            await registry.register("s-R", {"type": "record", "name": "R", "fields": []})
        assert (caught.value.status, caught.value.retriable) == (status, retriable)
    assert [c for c in stub.calls if c[0] == "register"] == [("register", "s-R")] * 2


# ------------------------------------------------------------------------------- the one codec, helpers
def test_the_product_has_one_codec() -> None:
    """schemas.codec.Codec is the Confluent codec: no single-object encoder is left in the product."""
    import schemas.codec

    assert Codec is ConfluentCodec
    assert not hasattr(schemas.codec, "encode_datum")


async def test_a_codec_without_registry_decodes_what_it_was_given_only() -> None:
    """A codec built without a registry decodes ids handed to it by remember(); prepare and fetch refuse."""
    writer = await _prepared()
    data = writer.encode(ACK, TOPIC)
    schema_id = writer.schema_id(TOPIC, EncompassAcknowledgement)
    reader = ConfluentCodec()
    with pytest.raises(UnknownSchemaId):
        reader.decode(data)
    with pytest.raises(SchemaError, match="no schema registry"):
        await reader.fetch(schema_id)
    with pytest.raises(SchemaError, match="no schema registry"):
        await reader.prepare({TOPIC: [EncompassAcknowledgement]})
    reader.remember(schema_id, default_catalogue().versions("EncompassAcknowledgement")[-1].schema)
    assert reader.knows(schema_id) and reader.decode(data) == ACK


async def test_encode_datum_writes_an_unvalidated_datum() -> None:
    """encode_datum() writes a raw datum with the prepared id, so a broken record reaches the decoder's rules."""
    codec = await _prepared()
    datum = to_datum(ACK)
    datum["school_urn"] = "12"
    data = codec.encode_datum(EncompassAcknowledgement, datum, TOPIC)
    assert data[:5] == frame(codec.schema_id(TOPIC, EncompassAcknowledgement), b"")
    with pytest.raises(SchemaError, match="school_urn"):
        codec.decode(data)


async def test_codec_for_prepares_and_closes_its_own_client(monkeypatch: pytest.MonkeyPatch) -> None:
    """codec_for() registers every (topic, record) through a client of its own and aclose() closes it."""
    registry = InMemoryRegistry()
    closed: list[bool] = []

    class _Client:
        def __init__(self, url: str) -> None:
            assert url == "http://registry.invalid/apis/ccompat/v7"

        async def register(self, subject: str, schema: dict[str, Any]) -> int:
            return await registry.register(subject, schema)

        async def aclose(self) -> None:
            closed.append(True)

    monkeypatch.setattr("schemas.confluent.SchemaRegistry", _Client)
    codec = await codec_for("http://registry.invalid/apis/ccompat/v7", {TOPIC: [EncompassAcknowledgement]})
    assert codec.decode(codec.encode(ACK, TOPIC)) == ACK
    assert list(registry.subjects) == [f"{TOPIC}-uk.gov.mash.EncompassAcknowledgement"]
    await codec.aclose()
    await codec.aclose()
    assert closed == [True]


async def test_an_id_the_registry_does_not_have_is_refused_as_such_after_the_fetch() -> None:
    """After fetch() got a 404, decode() says the id is not in the registry (a refusal, no longer UnknownSchemaId)."""
    codec = ConfluentCodec(InMemoryRegistry())
    data = frame(4242, b"\x00")
    with pytest.raises(UnknownSchemaId):
        codec.decode(data)
    with pytest.raises(RegistryError) as caught:
        await codec.fetch(4242)
    assert caught.value.status == 404
    with pytest.raises(SchemaError, match="schema id 4242 is not in the schema registry") as refused:
        codec.decode(data)
    assert not isinstance(refused.value, UnknownSchemaId) and not refused.value.retriable


async def test_trusted_decode_skips_only_the_text_rules() -> None:
    """decode(trusted=True) (records the worker wrote itself) skips the text rules but still checks types and
    field rules; an untrusted decode refuses the same bytes."""
    codec = await _prepared()
    datum = to_datum(ACK)
    datum["by_role"] = "DSL\u202e"  # a bidirectional override: breaks a text rule only
    data = codec.encode_datum(EncompassAcknowledgement, datum, TOPIC)
    with pytest.raises(SchemaError, match="by_role"):
        codec.decode(data)
    assert codec.decode(data, trusted=True).by_role == "DSL\u202e"  # type: ignore[attr-defined]
    datum["by_role"], datum["school_urn"] = "DSL", "12"  # a field rule: refused even when trusted
    with pytest.raises(SchemaError, match="school_urn"):
        codec.decode(codec.encode_datum(EncompassAcknowledgement, datum, TOPIC), trusted=True)
