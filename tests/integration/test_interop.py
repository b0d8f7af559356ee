"""Interoperability with parts that are not ours, on the real broker and registry.

- kcat (Debian's build has no Avro support: it fetches raw bytes) reads a published notification and a routed
  Encompass notice; those bytes decode with confluent-kafka's AvroDeserializer (through its SchemaRegistryClient)
  and with Apache avro (not fastavro) using the writer schema fetched by id over HTTP.
- Our worker accepts a notification that confluent-kafka's AvroSerializer produced (librdkafka producer,
  TopicRecordNameStrategy), and dead-letters Avro single-object bytes with the reason.

A registry restart losing no schema is tested in test_registry.py (`test_restart_answers_the_same_ids`).
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import avro.io
import avro.schema
import httpx
import pytest
from aiokafka import AIOKafkaProducer

from broker.reference import DEFAULT_SCHOOLS, load_schools
from broker.settings import Settings
from broker.topics import catalogue
from producers.sdk import AgencyClient
from schemas._avro import to_datum
from schemas.catalogue import default_catalogue, schema_fingerprint
from schemas.codec import HEADER_SIZE, schema_id_of
from schemas.models import (
    AgencyType,
    AuditEvent,
    AuditRecord,
    DeadLetter,
    EncompassNotice,
    Record,
)
from tests.broker.factories import child, police_incident
from tests.integration.conftest import WorkerProcess, wait_for

with warnings.catch_warnings():  # authlib (pulled in by confluent-kafka, unused) warns on import
    warnings.simplefilter("ignore")
    from confluent_kafka import Producer
    from confluent_kafka.schema_registry import SchemaRegistryClient, topic_record_subject_name_strategy
    from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
    from confluent_kafka.serialization import MessageField, SerializationContext

pytestmark = pytest.mark.integration
_SCHOOL = next(s for s in load_schools(DEFAULT_SCHOOLS).values() if s.authority == "E06000051" and s.open).urn


def recent(hours: float = 3) -> datetime:
    """An instant safely in the past (occurred)."""
    return (datetime.now(UTC) - timedelta(hours=hours)).replace(microsecond=0)


@pytest.fixture(scope="module")
def confluent_registry(settings: Settings) -> Iterator[SchemaRegistryClient]:
    """confluent-kafka's own (synchronous) registry client on our registry."""
    client = SchemaRegistryClient({"url": settings.registry_url})
    yield client
    client.__exit__()


def kcat(settings: Settings, topic: str, partition: int, offset: int) -> bytes:
    """The raw value of one record, fetched by kcat (no Avro support in Debian's build: bytes only)."""
    assert shutil.which("kcat"), "kcat (Debian package kcat) must be installed: deploy/bootstrap.sh installs it"
    done = subprocess.run(["kcat", "-b", settings.kafka_bootstrap, "-C", "-e", "-q", "-t", topic, "-p",
                           str(partition), "-o", str(offset), "-c", "1", "-f", "%s"],
                          capture_output=True, check=True, timeout=60)
    return done.stdout


def confluent_decode(client: SchemaRegistryClient, topic: str, value: bytes) -> dict[str, Any]:
    """confluent-kafka's AvroDeserializer (writer schema fetched by id through its SchemaRegistryClient)."""
    datum = AvroDeserializer(client)(value, SerializationContext(topic, MessageField.VALUE))
    assert isinstance(datum, dict)
    return datum


def apache_decode(settings: Settings, value: bytes) -> tuple[str, dict[str, Any]]:
    """Apache avro's DatumReader with the writer schema fetched by id over plain HTTP: (record full name, datum)."""
    schema_id = schema_id_of(value)
    assert schema_id is not None
    answer = httpx.get(f"{settings.registry_url}/schemas/ids/{schema_id}", timeout=10)
    answer.raise_for_status()
    writer = avro.schema.parse(answer.json()["schema"])
    decoder = avro.io.BinaryDecoder(io.BytesIO(value[HEADER_SIZE:]))
    datum = avro.io.DatumReader(writer).read(decoder)
    assert decoder.reader.read() == b""  # the body is consumed exactly
    return writer.fullname, datum  # type: ignore[attr-defined]


async def test_kcat_bytes_of_a_published_notification_decode_with_confluent_and_apache_avro(
        settings: Settings, confluent_registry: SchemaRegistryClient) -> None:
    """A notification the SDK published, fetched raw by kcat, decodes with both foreign deserialisers."""
    record = police_incident([child(401)], occurred=recent())
    async with AgencyClient(settings, AgencyType.POLICE) as client:
        receipt = await client.publish(record)
    value = kcat(settings, receipt.topic, receipt.partition, receipt.offset)
    assert value[0] == 0 and len(value) > HEADER_SIZE

    theirs = confluent_decode(confluent_registry, receipt.topic, value)
    assert str(theirs["envelope"]["notification_id"]) == str(record.envelope.notification_id)
    assert theirs["police_reference"] == record.police_reference
    assert [c["nhs_number"] for c in theirs["children"]] == [record.children[0].nhs_number]

    name, datum = apache_decode(settings, value)
    assert name == "uk.gov.mash.PoliceDomesticAbuseIncident"
    assert str(datum["envelope"]["notification_id"]) == str(record.envelope.notification_id)
    assert datum["police_reference"] == record.police_reference
    assert datum["children"][0]["given_name"] == record.children[0].given_name


async def test_kcat_bytes_of_a_routed_encompass_notice_decode_with_confluent_and_apache_avro(
        settings: Settings, worker: WorkerProcess, confluent_registry: SchemaRegistryClient) -> None:
    """The worker's Encompass notice for a published incident, fetched raw by kcat, decodes both ways."""
    incident = police_incident([child(402, school_urn=_SCHOOL)], occurred=recent())
    async with AgencyClient(settings, AgencyType.POLICE) as client:
        await client.publish(incident)
    nid = incident.envelope.notification_id

    def notices(got: list[tuple[Any, Record]]) -> list[tuple[Any, Record]]:
        return [(c, r) for c, r in got if isinstance(r, EncompassNotice) and r.notification_id == nid]

    got = await wait_for(settings, ("route.encompass",), lambda g: bool(notices(g)))
    consumed, notice = notices(got)[0]
    assert isinstance(notice, EncompassNotice)
    value = kcat(settings, consumed.topic, consumed.partition, consumed.offset)
    assert value == consumed.value and value[0] == 0

    theirs = confluent_decode(confluent_registry, consumed.topic, value)
    assert str(theirs["notice_id"]) == str(notice.notice_id) and theirs["school_urn"] == _SCHOOL
    assert str(theirs["notification_id"]) == str(nid)

    name, datum = apache_decode(settings, value)
    assert name == "uk.gov.mash.EncompassNotice"
    assert str(datum["notice_id"]) == str(notice.notice_id) and datum["school_urn"] == _SCHOOL
    subject = f"{consumed.topic}-uk.gov.mash.EncompassNotice"  # TopicRecordNameStrategy (the list pages)
    versions = httpx.get(f"{settings.registry_url}/subjects/{subject}/versions", timeout=10)
    assert versions.status_code == 200 and versions.json()


async def test_worker_accepts_a_notification_from_confluents_avro_serializer(
        settings: Settings, worker: WorkerProcess, confluent_registry: SchemaRegistryClient) -> None:
    """confluent-kafka's AvroSerializer (TopicRecordNameStrategy) + librdkafka producer: the worker accepts it."""
    record = police_incident([child(403, school_urn=_SCHOOL)], occurred=recent())
    topic = catalogue(settings.topic_prefix).intake(AgencyType.POLICE)
    schema = default_catalogue().versions("PoliceDomesticAbuseIncident")[-1].schema
    serializer = AvroSerializer(
        confluent_registry, json.dumps(schema),
        lambda r, ctx: to_datum(r),
        conf={"subject.name.strategy": topic_record_subject_name_strategy, "auto.register.schemas": False,
              "use.latest.version": True},
    )
    value = serializer(record, SerializationContext(topic, MessageField.VALUE))
    assert value is not None and value[0] == 0
    registered = confluent_registry.get_latest_version(f"{topic}-uk.gov.mash.PoliceDomesticAbuseIncident")
    assert schema_id_of(value) == registered.schema_id

    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "enable.idempotence": True})
    delivered: list[Any] = []
    producer.produce(topic, key=str(record.envelope.notification_id).encode(), value=value,
                     on_delivery=lambda err, msg: delivered.append(err))
    assert producer.flush(30) == 0 and delivered == [None]

    nid = record.envelope.notification_id
    got = await wait_for(settings, ("audit",), lambda g: any(
        isinstance(r, AuditRecord) and r.event is AuditEvent.ACCEPTED and r.notification_id == nid for _, r in g))
    assert got


async def test_single_object_encoding_is_dead_lettered_with_its_reason(settings: Settings,
                                                                       worker: WorkerProcess) -> None:
    """The former framing (Avro single-object: C3 01 + fingerprint + body) is dead-lettered, the rule naming it."""
    record = police_incident([child(404)], occurred=recent())
    async with AgencyClient(settings, AgencyType.POLICE) as client:
        _, value = client.encode(record)
    fingerprint = schema_fingerprint(default_catalogue().versions("PoliceDomesticAbuseIncident")[-1].schema)
    single_object = b"\xc3\x01" + fingerprint + value[HEADER_SIZE:]
    key = f"single-object-{record.envelope.notification_id}".encode()
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(catalogue(settings.topic_prefix).intake(AgencyType.POLICE), key=key,
                                     value=single_object)
    finally:
        await producer.stop()

    def letters(got: list[tuple[Any, Record]]) -> list[DeadLetter]:
        return [r for _, r in got if isinstance(r, DeadLetter) and r.raw_key == key]

    got = await wait_for(settings, ("deadletter",), lambda g: bool(letters(g)))
    (letter,) = letters(got)
    assert letter.reason == "UNDECODABLE" and letter.raw_value == single_object
    assert "single-object" in letter.errors[0].rule and "magic byte 0x00" in letter.errors[0].rule

