"""One frozen settings object, read once at each entry point and passed down."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.kafka_auth import KafkaAuth
from schemas.registry import default_url

__all__ = ["Settings"]


class Settings(BaseSettings):
    """Runtime settings; every field can be set from the environment with the `MASH_` prefix."""

    model_config = SettingsConfigDict(env_prefix="MASH_", frozen=True, extra="ignore")

    kafka_bootstrap: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers")
    kafka_security_protocol: str = Field(
        "PLAINTEXT", description="PLAINTEXT (quickest local run), SSL or SASL_SSL (SCRAM-SHA-512; beyond a laptop)"
    )
    kafka_sasl_username: str | None = Field(None, description="SCRAM user name of this service (SASL_SSL)")
    kafka_sasl_password: SecretStr | None = Field(None, description="SCRAM password of this service (SASL_SSL)")
    kafka_ca_file: str | None = Field(None, description="PEM file of the CA that signed the broker's certificate")
    acls_enabled: bool = Field(
        True, description="the broker enforces ACLs (production refuses to start on a broker without an authorizer)"
    )
    registry_url: str = Field(default_factory=default_url, description="Confluent-compatible API of the registry")
    topic_prefix: str = Field("mash", description="prefix of every topic name, so runs can sit side by side")
    profile: str = Field("local", description="topic profile: local (replication 1), cluster (the production topic "
                                              "profile on deploy/cluster.sh, without production's security checks) or "
                                              "production")
    identity_secret: SecretStr = Field(
        SecretStr("local-development-only-secret"), description="HMAC key for demographic identity keys"
    )
    worker_id: str = Field("mash-worker", description="this worker instance's name, in every log line it writes")
    worker_data_dir: str = Field(".local/worker", description="faust table store directory")
    table_store: str = Field("rocksdb://", description="faust table store URL")
    table_write_buffer_mb: int = Field(4, ge=1, le=256, description="RocksDB write buffer per table store (MB)")
    table_block_cache_mb: int = Field(8, ge=1, le=4096, description="RocksDB block cache per table store (MB)")
    table_bulk_restore: bool = Field(True, description="rebuild lost table stores from their changelogs in bulk "
                                     "before faust starts (broker.restore); false: faust's own recovery")
    faust_log_level: str = Field("WARNING", description="log level of faust's own logging")
    fetch_min_bytes: int = Field(4096, ge=1, description="bytes a worker fetch waits for (up to fetch_max_wait_ms)")
    fetch_max_wait_ms: int = Field(100, ge=0, le=1500, description="longest a worker fetch waits for fetch_min_bytes: "
                                   "fewer fetches at low load, at most this much more latency per hop")
    batch_size: int = Field(500, ge=1, le=5000, description="most records a worker stage settles at once")
    direct_delivery: bool = Field(True, description="hand fetched records to the agents' streams directly while the "
                                  "flow is active (broker._faust_patches.patch_drain); false: faust's own "
                                  "per-record hand-over")
    metrics_port: int = Field(9310, ge=0, description="port of the worker's Prometheus /metrics (0: not served)")
    metrics_host: str = Field("127.0.0.1", description="address /metrics listens on (0.0.0.0 in a container)")
    schools_file: str | None = Field(
        None, description="the schools directory (JSON list; default: the shipped broker/data/reference/schools.json)"
    )
    sla_tick_seconds: float = Field(10.0, gt=0, description="how often each worker checks its SLA clocks")
    fault_plan: str = Field("", description="fault drill plan (JSON, see broker.faults); empty in production")
    log_json: bool = Field(False, description="render logs as JSON lines")

    def kafka_auth(self) -> KafkaAuth:
        """This service's Kafka security settings, checked (schemas.kafka_auth)."""
        return KafkaAuth.of(self)
