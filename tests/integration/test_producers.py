"""Publishing on the real broker: the SDK, the CLI, the topic catalogue, and interoperability with kcat and
Apache Avro (parts that are not ours)."""

from __future__ import annotations

import asyncio
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import avro.io
import avro.schema
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from broker.admin import apply_topics
from broker.reader import read_topics
from broker.settings import Settings
from broker.topics import catalogue
from producers.sdk import AgencyClient, NotificationRejected
from producers.simulator import to_jsonl
from schemas.codec import MAGIC, Codec
from schemas.models import AgencyType
from tests.broker.factories import child, health_notification, police_incident, probation_notification
from tests.integration.conftest import ROOT, worker_env

pytestmark = pytest.mark.integration


async def test_sdk_publish_reads_back_with_plain_aiokafka(settings: Settings) -> None:
    """The SDK returns partition/offset, and a plain aiokafka consumer reads and decodes exactly that record."""
    record = health_notification([child(301)])
    async with AgencyClient(settings, AgencyType.HEALTH) as client:
        receipt = await client.publish(record)
    assert receipt.topic == catalogue(settings.topic_prefix).intake(AgencyType.HEALTH)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    try:
        tp = TopicPartition(receipt.topic, receipt.partition)
        consumer.assign([tp])
        consumer.seek(tp, receipt.offset)
        msg = await asyncio.wait_for(consumer.getone(), timeout=20)
    finally:
        await consumer.stop()
    assert msg.key == str(record.envelope.notification_id).encode()
    assert msg.value is not None and msg.value[:2] == MAGIC
    assert Codec().decode(msg.value) == record


async def test_sdk_refuses_before_publishing(settings: Settings) -> None:
    """A notification for the wrong agency is refused by the SDK with the field and rule; nothing is sent."""
    async with AgencyClient(settings, AgencyType.POLICE) as client:
        with pytest.raises(NotificationRejected) as err:
            await client.publish(probation_notification())
    assert err.value.errors[0][0] == "kind"


def mash(*args: str, settings: Settings, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run the `mash` CLI as a separate process against these settings."""
    return subprocess.run([sys.executable, "-m", "mash.cli", *args], cwd=ROOT, env=worker_env(settings),
                          input=stdin, capture_output=True, text=True, timeout=120)


async def count(settings: Settings, short: str) -> int:
    """Records on a topic."""
    return len(await read_topics(settings.kafka_bootstrap, [catalogue(settings.topic_prefix).name(short)]))


async def test_cli_publishes_a_valid_file(settings: Settings, tmp_path: Path) -> None:
    """`mash publish` sends every record of a valid file and exits 0."""
    records = [probation_notification(), probation_notification(children=[child(311)])]
    path = tmp_path / "probation.jsonl"
    path.write_text(to_jsonl(records))
    before = await count(settings, "intake.probation")
    done = mash("publish", str(path), "--agency", "probation", settings=settings)
    assert done.returncode == 0, done.stderr
    assert await count(settings, "intake.probation") == before + 2


async def test_cli_invalid_file_publishes_nothing(settings: Settings, tmp_path: Path) -> None:
    """An invalid line: exit 1, each error by line, field and rule (never the value), and nothing published."""
    good = json.loads(to_jsonl([police_incident([child(321)])]))
    bad = json.loads(json.dumps(good))
    bad["payload"]["envelope"]["home_local_authority"] = "ZZSECRET9"
    path = tmp_path / "police.jsonl"
    path.write_text("\n".join([json.dumps(good), json.dumps(bad), "{not json"]) + "\n")
    before = await count(settings, "intake.police")
    done = mash("publish", str(path), "--agency", "police", settings=settings)
    assert done.returncode == 1
    assert "line 2: envelope.home_local_authority: must be an ONS children's services authority code" in done.stderr
    assert "line 3: (line): must be a JSON object" in done.stderr
    assert "ZZSECRET9" not in done.stderr + done.stdout
    assert await count(settings, "intake.police") == before
    partial = mash("publish", str(path), "--agency", "police", "--publish-valid", settings=settings)
    assert partial.returncode == 1 and "published 1 record(s)" in partial.stdout
    assert await count(settings, "intake.police") == before + 1


async def test_cli_unreachable_kafka_is_a_clear_error(settings: Settings, tmp_path: Path) -> None:
    """With Kafka unreachable the CLI exits 2 with a readable message, not a traceback."""
    path = tmp_path / "p.jsonl"
    path.write_text(to_jsonl([probation_notification()]))
    env_settings = settings.model_copy(update={"kafka_bootstrap": "127.0.0.1:1"})
    done = mash("publish", str(path), "--agency", "probation", settings=env_settings)
    assert done.returncode == 2 and "Kafka unreachable" in done.stderr and "Traceback" not in done.stderr


async def test_topics_apply_is_idempotent_and_repairs_drift(settings: Settings) -> None:
    """A second apply changes nothing; a topic whose retention was changed by hand is put back."""
    again = await apply_topics(settings)
    assert {c.action for c in again} == {"unchanged"}
    name = catalogue(settings.topic_prefix).name("deadletter")
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, name, configs={"retention.ms": "-1"})])
    finally:
        await admin.close()
    repaired = {c.topic: c for c in await apply_topics(settings)}
    assert repaired[name].action == "updated" and "retention.ms" in repaired[name].detail
    assert {c.action for c in await apply_topics(settings)} == {"unchanged"}


async def test_kcat_and_apache_avro_read_what_we_publish(settings: Settings) -> None:
    """kcat consumes a published notification and the schema catalogue topic; Apache avro decodes the bytes
    with the writer schema found by the record's fingerprint."""
    assert shutil.which("kcat"), "kcat (Debian package kcat) must be installed: .ci/run installs it"
    record = police_incident([child(331)])
    async with AgencyClient(settings, AgencyType.POLICE) as client:
        receipt = await client.publish(record)
    cat = catalogue(settings.topic_prefix)

    def kcat(*args: str) -> bytes:
        return subprocess.run(["kcat", "-b", settings.kafka_bootstrap, "-C", "-e", "-q", *args],
                              capture_output=True, check=True, timeout=60).stdout

    value = kcat("-t", receipt.topic, "-p", str(receipt.partition), "-o", str(receipt.offset), "-c", "1",
                 "-f", "%s")
    assert value[:2] == b"\xc3\x01"
    fingerprint = value[2:10].hex()
    catalogue_lines = kcat("-t", cat.name("schemas"), "-f", "%k\t%s\n").decode().splitlines()
    schemas = dict(line.split("\t", 1) for line in catalogue_lines if line)
    writer = avro.schema.parse(json.dumps(json.loads(schemas[fingerprint])["schema"]))
    datum = avro.io.DatumReader(writer).read(avro.io.BinaryDecoder(io.BytesIO(value[10:])))
    assert datum["envelope"]["notification_id"] == str(record.envelope.notification_id)
    assert datum["police_reference"] == record.police_reference
    assert [c["nhs_number"] for c in datum["children"]] == [record.children[0].nhs_number]
