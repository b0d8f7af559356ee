"""Applies the topic catalogue and registers the schema catalogue in the schema registry (both idempotent)."""

from __future__ import annotations

from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from broker.errors import SchemaError, TransportError
from broker.settings import Settings
from broker.topics import catalogue
from schemas.catalogue import SchemaCatalogue, default_catalogue
from schemas.codec import subject_name
from schemas.registry import Registry, SchemaRegistry

__all__ = ["Registered", "TopicChange", "apply_topics", "publish_schemas"]


@dataclass(frozen=True)
class TopicChange:
    """What `apply_topics` did to one topic."""

    topic: str
    action: str  # created | updated | unchanged
    detail: str = ""


async def apply_topics(settings: Settings) -> list[TopicChange]:
    """Create missing topics and bring drifted configs back to the catalogue; a second run changes nothing."""
    cat = catalogue(settings.topic_prefix)
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, client_id="mash-admin",
                                **settings.kafka_auth().aiokafka())
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


@dataclass(frozen=True)
class Registered:
    """One schema version registered (or found) under one subject."""

    subject: str
    version: int
    schema_id: int


async def publish_schemas(settings: Settings, schemas: SchemaCatalogue | None = None,
                          registry: Registry | None = None) -> list[Registered]:
    """Register every version of every record schema, oldest first, under each subject of the topic catalogue
    (`<topic>-<record full name>`, TopicRecordNameStrategy), FULL_TRANSITIVE set on each subject first.

    Idempotent: a version the subject holds answers its id. RegistryError when the registry refuses a version
    (409: incompatible with the subject's earlier versions) or cannot be reached (retriable).
    """
    versions = schemas or default_catalogue()
    owned: SchemaRegistry | None = None
    if registry is None:
        registry = owned = SchemaRegistry(settings.registry_url)
    done: list[Registered] = []
    try:
        for topic, records in catalogue(settings.topic_prefix).records().items():
            for model in records:
                history = versions.versions(model.__name__)
                if not history:
                    raise SchemaError(f"{model.__name__}: no schema in schemas/avro/; run `mash schemas generate`")
                for v in history:
                    subject = subject_name(topic, v.schema)
                    done.append(Registered(subject, v.version, await registry.register(subject, v.schema)))
    finally:
        if owned is not None:
            await owned.aclose()
    return done
