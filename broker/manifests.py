"""Deployment files generated from the topic catalogue (`broker.topics`) and the ACL declarations (`broker.acls`),
so they cannot drift from what `mash topics apply` and `mash acls apply` do on a broker.

- Kubernetes, for the Strimzi operator (API `kafka.strimzi.io/v1`, Strimzi 1.x): a `Kafka` cluster with KRaft node
  pools (three controllers, three brokers), a SCRAM-SHA-512 TLS listener and `simple` authorisation; one
  `KafkaTopic` per catalogue entry with the production profile (replication 3, min.insync.replicas 2, the
  topic's retention and cleanup); one `KafkaUser` per service identity with exactly its grants.
- A compose file for the whole stack on one host: Kafka (KRaft), the schema registry (kafkasql storage), a
  one-shot job applying topics and schemas, the worker, the people's pages with PostgreSQL, and Prometheus.

Pure: data in, dicts out. `mash deploy render` writes them under deploy/; a test checks the checked-in files
equal a fresh render and validates the Strimzi resources against Strimzi's own CRD schemas.
"""

from __future__ import annotations

from typing import Any

from broker.acls import PRINCIPALS, Grant, Pattern, ResourceType, grants
from broker.topics import catalogue

__all__ = ["CLUSTER", "KAFKA_VERSION", "compose", "prometheus_compose", "rendered", "strimzi"]

CLUSTER = "mash"
KAFKA_VERSION = "4.1.1"  # deploy/kafka/pom.xml
REGISTRY_VERSION = "3.0.9"  # deploy/registry.sh
API = "kafka.strimzi.io/v1"
_RESOURCE = {ResourceType.TOPIC: "topic", ResourceType.GROUP: "group", ResourceType.CLUSTER: "cluster",
             ResourceType.TRANSACTIONAL_ID: "transactionalId"}
_PATTERN = {Pattern.LITERAL: "literal", Pattern.PREFIXED: "prefix"}
_BROKER_CONFIG = {
    "default.replication.factor": 3,
    "min.insync.replicas": 2,
    "offsets.topic.replication.factor": 3,
    "transaction.state.log.replication.factor": 3,
    "transaction.state.log.min.isr": 2,
    "unclean.leader.election.enable": False,
    "auto.create.topics.enable": False,
}


def _meta(name: str, cluster: str) -> dict[str, Any]:
    return {"name": name, "labels": {"strimzi.io/cluster": cluster}}


def _pool(name: str, role: str, cluster: str, size: str) -> dict[str, Any]:
    return {"apiVersion": API, "kind": "KafkaNodePool", "metadata": _meta(name, cluster),
            "spec": {"replicas": 3, "roles": [role],
                     "storage": {"type": "jbod", "volumes": [
                         {"id": 0, "type": "persistent-claim", "size": size, "deleteClaim": False,
                          "kraftMetadata": "shared"}]}}}


def _kafka(cluster: str) -> dict[str, Any]:
    return {
        "apiVersion": API, "kind": "Kafka", "metadata": {"name": cluster},
        "spec": {
            "kafka": {
                "version": KAFKA_VERSION,
                "listeners": [{"name": "scram", "port": 9093, "type": "internal", "tls": True,
                               "authentication": {"type": "scram-sha-512"}}],
                "authorization": {"type": "simple", "superUsers": ["mash-admin"]},
                "config": dict(_BROKER_CONFIG),
            },
            "entityOperator": {"topicOperator": {}, "userOperator": {}},
        },
    }


def _topic(name: str, partitions: int, config: dict[str, str], cluster: str) -> dict[str, Any]:
    return {"apiVersion": API, "kind": "KafkaTopic", "metadata": _meta(name.replace("_", "-").lower(), cluster),
            "spec": {"topicName": name, "partitions": partitions, "replicas": 3,
                     "config": dict(sorted(config.items()))}}


def _acl(g: Grant) -> dict[str, Any]:
    resource: dict[str, Any] = {"type": _RESOURCE[g.resource_type]}
    if g.resource_type is not ResourceType.CLUSTER:
        resource |= {"name": g.name, "patternType": _PATTERN[g.pattern]}
    return {"type": "allow", "resource": resource, "operations": list(g.operations), "host": "*"}


def _user(name: str, description: str, declared: tuple[Grant, ...], cluster: str) -> dict[str, Any]:
    meta = _meta(name, cluster) | {"annotations": {"mash/description": description}}
    return {"apiVersion": API, "kind": "KafkaUser", "metadata": meta,
            "spec": {"authentication": {"type": "scram-sha-512"},
                     "authorization": {"type": "simple", "acls": [_acl(g) for g in declared if g.principal == name]}}}


def strimzi(prefix: str = "mash", cluster: str = CLUSTER) -> dict[str, list[dict[str, Any]]]:
    """File name -> the Strimzi resources it holds: the cluster, its topics, its users."""
    cat = catalogue(prefix)
    declared = grants(prefix)
    topics = [_topic(cat.name(s.name), s.partitions, s.config("production"), cluster) for s in cat.specs]
    users = [_user(p.name, p.description, declared, cluster) for p in PRINCIPALS]
    return {
        "kafka.yaml": [_pool("controller", "controller", cluster, "20Gi"), _pool("broker", "broker", cluster, "500Gi"),
                       _kafka(cluster)],
        "topics.yaml": topics,
        "users.yaml": users,
    }


def _app(command: list[str], env: dict[str, str], **extra: Any) -> dict[str, Any]:
    return {"build": {"context": "..", "dockerfile": "deploy/Dockerfile"}, "image": "mash-broker:local",
            "command": command, "environment": dict(env), "restart": "on-failure", **extra}


def compose(prefix: str = "mash") -> dict[str, Any]:
    """The whole stack on one host (development and demonstration; production runs the Strimzi resources)."""
    kafka_env = {
        "KAFKA_NODE_ID": "1", "KAFKA_PROCESS_ROLES": "broker,controller",
        "KAFKA_LISTENERS": "PLAINTEXT://:9092,CONTROLLER://:9093",
        "KAFKA_ADVERTISED_LISTENERS": "PLAINTEXT://kafka:9092",
        "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER", "KAFKA_CONTROLLER_QUORUM_VOTERS": "1@kafka:9093",
        "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1", "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1", "KAFKA_AUTO_CREATE_TOPICS_ENABLE": "false",
    }
    mash = {"MASH_KAFKA_BOOTSTRAP": "kafka:9092", "MASH_REGISTRY_URL": "http://registry:8080/apis/ccompat/v7",
            "MASH_TOPIC_PREFIX": prefix, "MASH_IDENTITY_SECRET": "${MASH_IDENTITY_SECRET:?set a 32+ character secret}"}
    web = mash | {"MASH_WEB_DATABASE_URL": "postgresql+psycopg://mash:${POSTGRES_PASSWORD:-mash}@postgres/mash",
                  "MASH_WEB_HOST": "0.0.0.0", "MASH_WEB_PUBLIC_URL": "${MASH_WEB_PUBLIC_URL:-http://localhost:8000}"}
    ready = {"condition": "service_completed_successfully"}
    return {
        "name": "mash",
        "services": {
            "kafka": {"image": f"apache/kafka:{KAFKA_VERSION}", "environment": kafka_env,
                      "volumes": ["kafka-data:/var/lib/kafka/data"], "restart": "unless-stopped"},
            "registry": {"image": f"apicurio/apicurio-registry:{REGISTRY_VERSION}",
                         "environment": {"APICURIO_STORAGE_KIND": "kafkasql",
                                         "APICURIO_KAFKASQL_BOOTSTRAP_SERVERS": "kafka:9092"},
                         "depends_on": ["kafka"], "restart": "unless-stopped"},
            "setup": _app(["sh", "-c", "mash topics apply && mash schemas publish && mash web migrate"], web,
                          depends_on=["kafka", "registry", "postgres"], restart="on-failure:5"),
            "worker": _app(["mash", "worker"], mash | {"MASH_METRICS_HOST": "0.0.0.0",
                                                       "MASH_WORKER_DATA_DIR": "/var/lib/mash/worker"},
                           depends_on={"setup": ready}, volumes=["worker-state:/var/lib/mash/worker"]),
            "web": _app(["mash", "web", "up"], web, depends_on={"setup": ready}, ports=["8000:8000"]),
            "postgres": {"image": "postgres:16", "environment": {"POSTGRES_USER": "mash", "POSTGRES_DB": "mash",
                                                                "POSTGRES_PASSWORD": "${POSTGRES_PASSWORD:-mash}"},
                         "volumes": ["postgres-data:/var/lib/postgresql/data"], "restart": "unless-stopped"},
            "prometheus": {"image": "prom/prometheus:v2.55.1", "command": ["--config.file=/etc/prometheus/mash.yml"],
                           "volumes": ["./prometheus-compose.yml:/etc/prometheus/mash.yml:ro"],
                           "depends_on": ["worker"], "ports": ["9090:9090"]},
        },
        "volumes": {"kafka-data": {}, "worker-state": {}, "postgres-data": {}},
    }


HEADER = "# Generated by `mash deploy render` from broker/topics.py and broker/acls.py: do not edit by hand.\n"


def prometheus_compose() -> dict[str, Any]:
    """deploy/prometheus.yml's scrape job, pointed at the compose file's worker service."""
    return {"global": {"scrape_interval": "15s", "evaluation_interval": "15s"},
            "scrape_configs": [{"job_name": "mash-worker", "metrics_path": "/metrics",
                                "static_configs": [{"targets": ["worker:9310"], "labels": {"deployment": "compose"}}]}]}


def rendered(prefix: str = "mash") -> dict[str, str]:
    """Path under deploy/ -> file text: every generated deployment file."""
    import yaml

    def dump(docs: list[dict[str, Any]]) -> str:
        return HEADER + "---\n".join(yaml.safe_dump(d, sort_keys=False, width=120) for d in docs)

    out = {f"k8s/{name}": dump(docs) for name, docs in strimzi(prefix).items()}
    out["compose.yaml"] = dump([compose(prefix)])
    out["prometheus-compose.yml"] = dump([prometheus_compose()])
    return out
