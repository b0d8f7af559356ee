"""The codec: only the Confluent wire format of registered schemas is decoded (Avro single-object encoding is
refused); rule breaks name the field and rule, never the value."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from broker.errors import SchemaError
from producers.simulator import generate as simulate
from schemas._avro import to_datum
from schemas.catalogue import schema_fingerprint
from schemas.codec import HEADER_SIZE, Codec, InvalidPayload, UnknownSchemaId, field_errors, frame
from schemas.codes import ONS_AUTHORITY_RULE
from schemas.models import EncompassAcknowledgement, PoliceDomesticAbuseIncident, Record
from tests.schemas.helpers import TOPIC, unit_codec

START = datetime(2026, 11, 2, 18, tzinfo=UTC)
SECRET_REF = "SYN-PEEK-Q7X4Z9"  # distinctive synthetic values that must never leak into error text
BAD_ONS = "X31415926"


@pytest.fixture(scope="module")
def codec() -> Codec:
    """A codec prepared for every record on TOPIC, over InMemoryRegistry."""
    return unit_codec()


@pytest.fixture(scope="module")
def incident() -> PoliceDomesticAbuseIncident:
    for record in simulate(START, seed=5, count=40):
        if isinstance(record, PoliceDomesticAbuseIncident):
            return record
    raise AssertionError("the simulator made no police incident")


def _raw(model: type[Record], datum: dict[str, Any], codec: Codec) -> bytes:
    """Wire-format bytes of an arbitrary datum written with the model's current schema (no validation)."""
    return codec.encode_datum(model, datum, TOPIC)


def test_valid_bytes_decode(codec: Codec, incident: PoliceDomesticAbuseIncident) -> None:
    """Sanity baseline: the encoded incident decodes back equal (so the refusals below are about the bytes)."""
    data = codec.encode(incident, TOPIC)
    assert data[0] == 0 and int.from_bytes(data[1:5], "big") == codec.schema_id(TOPIC, PoliceDomesticAbuseIncident)
    assert codec.decode(data) == incident


def test_single_object_encoding_is_refused_naming_both_framings(codec: Codec,
                                                                incident: PoliceDomesticAbuseIncident) -> None:
    """The former framing (C3 01 + CRC-64-AVRO fingerprint + body) is refused, naming it and the expected one."""
    body = codec.encode(incident, TOPIC)[HEADER_SIZE:]
    single_object = b"\xc3\x01" + schema_fingerprint(codec.latest("PoliceDomesticAbuseIncident").schema) + body
    with pytest.raises(SchemaError, match=r"single-object encoding.*magic byte 0x00") as caught:
        codec.decode(single_object)
    assert not isinstance(caught.value, (InvalidPayload, UnknownSchemaId))
    assert codec.peek(single_object) is None


def test_wrong_magic_and_empty_values_are_refused(codec: Codec, incident: PoliceDomesticAbuseIncident) -> None:
    """A magic byte other than 0x00, an empty value and a null value are refused naming the wire format."""
    data = codec.encode(incident, TOPIC)
    with pytest.raises(SchemaError, match="magic byte 0x02 is not 0x00"):
        codec.decode(b"\x02" + data[1:])
    for empty in (b"", None):
        with pytest.raises(SchemaError, match="empty message: expected the Confluent wire format"):
            codec.decode(empty)


def test_unknown_schema_id_is_refused_until_fetched(codec: Codec, incident: PoliceDomesticAbuseIncident) -> None:
    """A well-framed payload with an id the codec has not fetched raises UnknownSchemaId naming the id."""
    body = codec.encode(incident, TOPIC)[HEADER_SIZE:]
    with pytest.raises(UnknownSchemaId, match="schema id 987654 not fetched") as caught:
        codec.decode(frame(987654, body))
    assert caught.value.schema_id == 987654 and caught.value.retriable
    assert codec.peek(frame(987654, body)) is None


@pytest.mark.parametrize("keep", [5, 6, 30, -5])
def test_truncated_body_is_refused(codec: Codec, incident: PoliceDomesticAbuseIncident, keep: int) -> None:
    """A body cut short raises SchemaError (undecodable), never an unhandled fastavro error."""
    data = codec.encode(incident, TOPIC)
    with pytest.raises(SchemaError, match="undecodable body") as caught:
        codec.decode(data[:keep])
    assert not isinstance(caught.value, InvalidPayload)


def test_amend_without_supersedes_is_invalid_payload(codec: Codec, incident: PoliceDomesticAbuseIncident) -> None:
    """An AMEND envelope with no supersedes decodes to InvalidPayload naming envelope.supersedes and the rule."""
    datum = to_datum(incident)
    datum["envelope"].update(action="AMEND", supersedes=None, source_reference=SECRET_REF)
    with pytest.raises(InvalidPayload) as caught:
        codec.decode(_raw(PoliceDomesticAbuseIncident, datum, codec))
    exc = caught.value
    assert exc.record == "PoliceDomesticAbuseIncident"
    assert exc.errors == [("envelope.supersedes", "required when action is AMEND or WITHDRAW")]
    assert isinstance(exc, SchemaError)
    assert SECRET_REF not in str(exc)


def test_bad_ons_code_is_invalid_payload_without_the_value(codec: Codec,
                                                           incident: PoliceDomesticAbuseIncident) -> None:
    """A bad ONS code yields InvalidPayload naming envelope.home_local_authority and the rule, never the value."""
    datum = to_datum(incident)
    datum["envelope"]["home_local_authority"] = BAD_ONS
    with pytest.raises(InvalidPayload) as caught:
        codec.decode(_raw(PoliceDomesticAbuseIncident, datum, codec))
    exc = caught.value
    assert exc.errors == [
        ("envelope.home_local_authority", ONS_AUTHORITY_RULE)
    ]
    assert BAD_ONS not in str(exc)
    assert all(BAD_ONS not in f and BAD_ONS not in r for f, r in exc.errors)


def test_peek_reads_source_reference_of_an_invalid_payload(codec: Codec,
                                                           incident: PoliceDomesticAbuseIncident) -> None:
    """peek() returns the raw datum of an invalid payload, so the rejection can carry its source_reference."""
    datum = to_datum(incident)
    datum["envelope"].update(action="WITHDRAW", supersedes=None, source_reference=SECRET_REF)
    data = _raw(PoliceDomesticAbuseIncident, datum, codec)
    with pytest.raises(InvalidPayload):
        codec.decode(data)
    peeked = codec.peek(data)
    assert peeked is not None
    assert peeked["envelope"]["source_reference"] == SECRET_REF  # type: ignore[index]
    assert peeked["envelope"]["notification_id"] == incident.envelope.notification_id  # type: ignore[index]


def test_peek_is_none_for_garbage(codec: Codec, incident: PoliceDomesticAbuseIncident) -> None:
    """peek() never raises: bad framing or a truncated body give None."""
    data = codec.encode(incident, TOPIC)
    assert codec.peek(None) is None
    assert codec.peek(b"\x00\x7f\x00\x00\x01" + data[HEADER_SIZE:]) is None
    assert codec.peek(data[:7]) is None


def test_naive_datetime_is_refused_by_the_model() -> None:
    """An instant without a UTC offset is refused by the model with "must carry a UTC offset"."""
    naive = datetime(2026, 11, 20, 9, 15)
    with pytest.raises(ValidationError) as caught:
        EncompassAcknowledgement(notice_id="5e5e0000-0000-4000-8000-000000000001", school_urn="123456",
                                 acknowledged=naive)
    assert field_errors(caught.value) == [("acknowledged", "must carry a UTC offset")]


def test_offset_instants_are_stored_as_utc_millis() -> None:
    """An instant with a non-UTC offset is converted to UTC and truncated to milliseconds (Avro timestamp-millis)."""
    ack = EncompassAcknowledgement(
        notice_id="5e5e0000-0000-4000-8000-000000000001", school_urn="123456",
        acknowledged=datetime(2026, 6, 1, 9, 15, 0, 123456, tzinfo=UTC).astimezone(ZoneInfo("Europe/London")),
    )
    assert ack.acknowledged == datetime(2026, 6, 1, 9, 15, 0, 123000, tzinfo=UTC)
    assert ack.acknowledged.utcoffset() == timedelta(0)


@pytest.mark.parametrize("tail", [b"\x00", b"\x02\x41", bytes(range(1, 17))])
def test_trailing_bytes_are_refused(codec: Codec, incident: PoliceDomesticAbuseIncident, tail: bytes) -> None:
    """A valid body followed by any trailing bytes is refused, naming the count and the rule."""
    with pytest.raises(SchemaError, match=f"{len(tail)} trailing bytes after the Avro body"):
        codec.decode(codec.encode(incident, TOPIC) + tail)


def test_every_truncation_is_refused(codec: Codec, incident: PoliceDomesticAbuseIncident) -> None:
    """Every truncation of a valid body (cut anywhere after the header) is refused as undecodable."""
    data = codec.encode(incident, TOPIC)
    for cut in range(HEADER_SIZE, len(data), max(1, len(data) // 40)):
        with pytest.raises(SchemaError):
            codec.decode(data[:cut])


def test_intake_topic_names_agree_with_the_broker_catalogue() -> None:
    """schemas.topics (what producers use) and broker.topics (what the worker reads) name the same intake topics."""
    from broker.topics import INTAKE_TOPICS as BROKER_INTAKE
    from broker.topics import catalogue
    from schemas.topics import INTAKE_TOPICS, intake_topic

    assert dict(INTAKE_TOPICS) == dict(BROKER_INTAKE)
    assert all(intake_topic("p", a) == catalogue("p").intake(a) for a in INTAKE_TOPICS)
