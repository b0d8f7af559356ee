"""Applies the topic catalogue and publishes the schema catalogue (idempotent)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from broker.errors import TransportError
from broker.settings import Settings
from broker.topics import catalogue
from schemas.catalogue import SchemaCatalogue, default_catalogue

__all__ = ["TopicChange", "apply_topics", "publish_schemas"]


@dataclass(frozen=True)
class TopicChange:
    """What `apply_topics` did to one topic."""

    topic: str
    action: str  # created | updated | unchanged
    detail: str = ""


async def apply_topics(settings: Settings) -> list[TopicChange]:
    """Create missing topics and bring drifted configs back to the catalogue; a second run changes nothing."""
    cat = catalogue(settings.topic_prefix)
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, client_id="mash-admin")
    try:
        await admin.start()
    except KafkaError as exc:
        raise TransportError(f"Kafka unreachable at {settings.kafka_bootstrap}: {exc}") from exc
    changes: list[TopicChange] = []
    try:
        existing = set(await admin.list_topics())
        replication = cat.replication(settings.profile)
        for spec in cat.specs:
            name = cat.name(spec.name)
            wanted = spec.config(settings.profile)
            if name not in existing:
                try:
                    await admin.create_topics(
                        [NewTopic(name, spec.partitions, replication, topic_configs=wanted)]
                    )
                    changes.append(TopicChange(name, "created", f"{spec.partitions} partitions"))
                    continue
                except TopicAlreadyExistsError:
                    pass
            described = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)])
            current = {
                entry[0]: entry[1]
                for resp in described
                for res in resp.resources
                for entry in res[4]
            }
            drift = {k: v for k, v in wanted.items() if current.get(k) != v}
            if drift:
                await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, name, configs=wanted)])
                changes.append(TopicChange(name, "updated", ", ".join(sorted(drift))))
            else:
                changes.append(TopicChange(name, "unchanged"))
    finally:
        await admin.close()
    return changes


async def publish_schemas(settings: Settings, schemas: SchemaCatalogue | None = None) -> int:
    """Publish every schema version to the compacted catalogue topic, keyed by fingerprint."""
    cat = catalogue(settings.topic_prefix)
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap, acks="all", enable_idempotence=True
    )
    await producer.start()
    try:
        versions = (schemas or default_catalogue()).all()
        for v in versions:
            body = {"name": v.name, "version": v.version, "schema": v.schema}
            await producer.send(
                cat.name("schemas"), key=v.fingerprint.hex().encode(), value=json.dumps(body).encode()
            )
        await producer.flush()
    finally:
        await producer.stop()
    return len(versions)
