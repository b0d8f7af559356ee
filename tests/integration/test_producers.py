"""Publishing on the real broker and registry: the SDK, the CLI, the topic catalogue. Interoperability with
parts that are not ours (kcat, confluent-kafka's serialisers, Apache avro) is in test_interop.py."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

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
from schemas.codec import Codec, subject_name
from schemas.models import AgencyType, PoliceDomesticAbuseIncident
from schemas.registry import SchemaRegistry
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
    assert msg.value is not None and msg.value[0] == 0  # Confluent wire format: magic byte, schema id, body
    async with SchemaRegistry(settings.registry_url) as registry:
        assert await Codec(registry).decode_async(msg.value) == record


async def test_sdk_registers_its_schemas_under_the_intake_topic_subjects(settings: Settings) -> None:
    """The SDK's writer schema id is the one registered under `<intake topic>-uk.gov.mash.<Record>`."""
    record = police_incident([child(302)])
    async with AgencyClient(settings, AgencyType.POLICE) as client:
        _, value = client.encode(record)
    topic = catalogue(settings.topic_prefix).intake(AgencyType.POLICE)
    async with SchemaRegistry(settings.registry_url) as registry:
        codec = Codec(registry)
        subject = subject_name(topic, codec.latest("PoliceDomesticAbuseIncident").schema)
        assert subject == f"{topic}-uk.gov.mash.PoliceDomesticAbuseIncident"
        await codec.prepare({topic: [PoliceDomesticAbuseIncident]})
        assert int.from_bytes(value[1:5], "big") == codec.schema_id(topic, PoliceDomesticAbuseIncident)
        assert await registry.get_compatibility(subject) == "FULL_TRANSITIVE"


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


async def test_cli_unreachable_registry_is_a_clear_error(settings: Settings, tmp_path: Path) -> None:
    """With the registry unreachable the CLI exits 2 naming the registry, not a traceback; nothing is published."""
    path = tmp_path / "p.jsonl"
    path.write_text(to_jsonl([probation_notification()]))
    before = await count(settings, "intake.probation")
    env_settings = settings.model_copy(update={"registry_url": "http://127.0.0.1:1/apis/ccompat/v7"})
    done = mash("publish", str(path), "--agency", "probation", settings=env_settings)
    assert done.returncode == 2 and "unreachable" in done.stderr and "Traceback" not in done.stderr
    assert await count(settings, "intake.probation") == before


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
