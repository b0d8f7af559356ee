"""The secure broker (deploy/kafka.sh with MASH_KAFKA_SECURITY=sasl_ssl): SASL_SSL with SCRAM-SHA-512, KRaft's
StandardAuthorizer, the ACLs of broker/acls.py applied by `mash acls apply`. Denials are proved on the real
broker; so are the allowed operations, and a notification routed end to end by a worker with its own identity.

The broker runs in its own state directory on ports MASH_SECURE_KAFKA_PORT (default 9194) .. +2, and a schema
registry (deploy/registry.sh, port MASH_SECURE_REGISTRY_PORT, default 8182) stores its schemas in it as the
`registry` user."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    KafkaError,
    TopicAuthorizationFailedError,
)
from pydantic import SecretStr

from broker.acl_admin import apply_acls, authorizer_enabled, production_problems
from broker.acls import PRINCIPALS
from broker.admin import apply_topics, publish_schemas
from broker.reader import read_topics
from broker.settings import Settings
from broker.topics import ROUTE_TOPICS, catalogue
from consumers.web.ops import KafkaOpsBackend
from producers.sdk import AgencyClient
from schemas.codec import Codec
from schemas.models import AgencyType, AuditRecord, EncompassNotice, FrontDoorReferral, Route
from tests.broker.factories import child, health_notification
from tests.integration.conftest import ROOT, WorkerProcess, worker_env
from tests.integration.test_worker import SCHOOL_A, incident_with_three

pytestmark = pytest.mark.integration

PORT = int(os.environ.get("MASH_SECURE_KAFKA_PORT", "9194"))
REGISTRY_PORT = int(os.environ.get("MASH_SECURE_REGISTRY_PORT", "8182"))
DENIED = (TopicAuthorizationFailedError, GroupAuthorizationFailedError)


class SecureBroker:
    """The running secure broker: its address, CA and one settings object per user."""

    def __init__(self, state: Path, prefix: str, registry_url: str, data_dir: Path) -> None:
        self.state = state
        self.prefix = prefix
        self.registry_url = registry_url
        self.data_dir = data_dir
        users = (state / "kafka" / "secure" / "users").read_text().splitlines()
        self.passwords = dict(line.split("=", 1) for line in users if "=" in line)
        self.ca = str(state / "kafka" / "secure" / "ca.pem")

    def as_(self, user: str, password: str | None = None) -> Settings:
        """Settings of one user (its own password unless another is given)."""
        return Settings(
            kafka_bootstrap=f"127.0.0.1:{PORT}", kafka_security_protocol="SASL_SSL", kafka_sasl_username=user,
            kafka_sasl_password=SecretStr(password or self.passwords[user]), kafka_ca_file=self.ca,
            topic_prefix=self.prefix, registry_url=self.registry_url, worker_data_dir=str(self.data_dir),
            identity_secret=SecretStr("integration-test-secret"),
        )

    def topic(self, short: str) -> str:
        """Full name of a catalogue topic."""
        return catalogue(self.prefix).name(short)


def _script_env(state: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(MASH_LOCAL_DIR=str(state), MASH_KAFKA_SECURITY="sasl_ssl", MASH_KAFKA_PORT=str(PORT),
               MASH_KAFKA_CONTROLLER_PORT=str(PORT + 1), MASH_KAFKA_INTERNAL_PORT=str(PORT + 2),
               MASH_KAFKA_HEAP="384m", MASH_REGISTRY_PORT=str(REGISTRY_PORT), MASH_REGISTRY_START_TIMEOUT="120")
    libs = ROOT / ".local" / "kafka" / "libs"
    if (libs / ".resolved").exists():
        env["MASH_KAFKA_LIBS"] = str(libs)  # the jars are already here: no second download
    app = ROOT / ".local" / "registry" / "app"
    if (app / ".resolved").exists():
        env["MASH_REGISTRY_APP"] = str(app)
    return env


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureBroker]:
    """Start the secure broker (project script), apply the ACLs and create the catalogue's topics as mash-admin,
    then the registry on it (as `registry`) and register the prefix's schemas. Both stopped afterwards."""
    state = tmp_path_factory.mktemp("secure-local")
    env = _script_env(state)
    kafka, registry = str(ROOT / "deploy" / "kafka.sh"), str(ROOT / "deploy" / "registry.sh")
    subprocess.run(["bash", kafka, "start"], check=True, cwd=ROOT, env=env, timeout=240)
    try:
        url = f"http://127.0.0.1:{REGISTRY_PORT}/apis/ccompat/v7"
        broker = SecureBroker(state, f"z{uuid.uuid4().hex[:8]}", url, tmp_path_factory.mktemp("sworker"))
        admin = broker.as_("mash-admin")
        broker.first_apply = asyncio.run(apply_acls(admin))  # type: ignore[attr-defined]
        asyncio.run(apply_topics(admin))
        subprocess.run(["bash", registry, "start"], check=True, cwd=ROOT, env=env, timeout=240)
        asyncio.run(publish_schemas(admin))
        yield broker
    finally:
        subprocess.run(["bash", registry, "stop"], check=False, cwd=ROOT, env=env, timeout=120)
        subprocess.run(["bash", kafka, "stop"], check=False, cwd=ROOT, env=env, timeout=120)


async def _produce(s: Settings, topic: str, value: bytes = b"x") -> None:
    producer = AIOKafkaProducer(bootstrap_servers=s.kafka_bootstrap, acks="all", enable_idempotence=True,
                                request_timeout_ms=10000, **s.kafka_auth().aiokafka())
    try:
        await producer.start()
        await asyncio.wait_for(producer.send_and_wait(topic, value, key=b"k"), 20)
    finally:
        await producer.stop()


class Denied(Exception):
    """The broker refused an operation for want of authorization (its error name in args[0])."""


_AUTH_ERRORS = ("TOPIC_AUTHORIZATION_FAILED", "GROUP_AUTHORIZATION_FAILED", "CLUSTER_AUTHORIZATION_FAILED")


def _group_of(s: Settings) -> str:
    """A consumer group the user is granted (broker.acls: `<prefix>.<user>`, `<prefix>-worker`, ...)."""
    user = s.kafka_sasl_username
    return {"mash-worker": f"{s.topic_prefix}-worker-probe", "sla-tracker": f"{s.topic_prefix}-sla-probe",
            "registry": "registry-probe"}.get(str(user), f"{s.topic_prefix}.{user}.probe")


def _consume_sync(s: Settings, topic: str, group: str | None) -> int:
    """Subscribe with a group and read to the end of every assigned partition: records read, or Denied."""
    from confluent_kafka import Consumer, KafkaError

    consumer = Consumer({"bootstrap.servers": s.kafka_bootstrap, "group.id": group or _group_of(s),
                         "enable.auto.commit": False, "auto.offset.reset": "earliest",
                         "enable.partition.eof": True, **s.kafka_auth().confluent()})
    consumer.subscribe([topic])
    read, ended = 0, set()
    end = time.monotonic() + 20
    try:
        while time.monotonic() < end:
            msg = consumer.poll(0.2)
            if msg is None:
                continue
            err = msg.error()
            if err is None:
                read += 1
            elif err.code() == KafkaError._PARTITION_EOF:
                ended.add(msg.partition())
                if len(ended) >= len(consumer.assignment()):
                    return read
            elif err.name() in _AUTH_ERRORS:
                raise Denied(err.name())
        raise AssertionError(f"neither read to the end nor refused within 20 s: {topic} as {s.kafka_sasl_username}")
    finally:
        consumer.close()


async def _consume(s: Settings, topic: str, group: str | None = None) -> int:
    """Read a topic to its end as a user (a consumer group it is granted unless another is given)."""
    return await asyncio.to_thread(_consume_sync, s, topic, group)


async def _denied(coro: object) -> BaseException:
    """The authorization error an operation fails with (fails the test if it succeeds)."""
    try:
        await coro  # type: ignore[misc]
    except (Denied, *DENIED) as exc:
        return exc
    raise AssertionError("the operation was allowed")


def test_acls_apply_is_idempotent(secure: SecureBroker) -> None:
    """`mash acls apply` creates every declared binding once; a second run creates and deletes nothing."""
    first = secure.first_apply  # type: ignore[attr-defined]
    assert sum(c.action == "created" for c in first) > 50
    again = asyncio.run(apply_acls(secure.as_("mash-admin")))
    assert {c.action for c in again} == {"unchanged"} and len(again) == len(first)
    cli = subprocess.run([sys.executable, "-m", "mash.cli", "acls", "apply"], cwd=ROOT, capture_output=True,
                         text=True, timeout=60, env=worker_env(secure.as_("mash-admin")))
    assert cli.returncode == 0 and cli.stdout.strip() == f"0 created, 0 deleted, {len(first)} unchanged", cli


def test_the_secure_broker_has_an_authorizer(secure: SecureBroker) -> None:
    """DescribeAcls answers (StandardAuthorizer is on): the production start-up check sees ACLs enforced."""
    assert asyncio.run(authorizer_enabled(secure.as_("operations"))) is True


def test_production_refuses_the_plaintext_broker(kafka: str) -> None:
    """The plaintext broker has no authorizer (SECURITY_DISABLED): the production check refuses it."""
    plain = Settings(kafka_bootstrap=kafka, profile="production", identity_secret=SecretStr("y" * 40),
                     kafka_security_protocol="SASL_SSL", kafka_sasl_username="u", kafka_sasl_password=SecretStr("p"))
    assert asyncio.run(authorizer_enabled(plain.model_copy(update={"kafka_security_protocol": "PLAINTEXT"}))) is False
    problems = production_problems(plain, authorizer=False)
    assert [p.split(":")[0] for p in problems] == ["MASH_ACLS_ENABLED"]


async def test_wrong_password_is_refused(secure: SecureBroker, caplog: pytest.LogCaptureFixture) -> None:
    """A client with a wrong SCRAM password cannot connect (SaslAuthenticationFailed), and neither the error
    nor any log line carries the password."""
    bad = secure.as_("agency-police", password="not-the-password-0123456789")
    with pytest.raises(KafkaError) as err:
        await _produce(bad, secure.topic("intake.police"))
    assert "SaslAuthenticationFailed" in caplog.text
    assert "not-the-password" not in str(err.value) and "not-the-password" not in caplog.text
    assert "not-the-password" not in repr(bad)


async def test_police_cannot_write_the_health_topic(secure: SecureBroker) -> None:
    """Police credentials are refused on the health intake topic."""
    exc = await _denied(_produce(secure.as_("agency-police"), secure.topic("intake.health")))
    assert isinstance(exc, TopicAuthorizationFailedError)


@pytest.mark.parametrize("route", sorted(ROUTE_TOPICS.values()))
async def test_police_cannot_read_any_route(secure: SecureBroker, route: str) -> None:
    """Police credentials cannot read any routed topic (within the police's own consumer group)."""
    exc = await _denied(_consume(secure.as_("agency-police"), secure.topic(route)))
    assert exc.args[0] == "TOPIC_AUTHORIZATION_FAILED"


async def test_school_feed_cannot_read_the_front_door_topic(secure: SecureBroker) -> None:
    """The school-feed service is refused on the front door topic (it reads the Encompass route)."""
    s = secure.as_("svc-school-feed")
    exc = await _denied(_consume(s, secure.topic(ROUTE_TOPICS[Route.FRONT_DOOR])))
    assert exc.args[0] == "TOPIC_AUTHORIZATION_FAILED"
    assert await _consume(s, secure.topic(ROUTE_TOPICS[Route.ENCOMPASS])) >= 0  # its own route: allowed


@pytest.mark.parametrize("user", sorted(p.name for p in PRINCIPALS if p.name != "operations"))
async def test_no_principal_but_operations_reads_dead_letters(secure: SecureBroker, user: str) -> None:
    """Every service principal except operations is refused on the dead-letter topic (within its own group)."""
    exc = await _denied(_consume(secure.as_(user), secure.topic("deadletter")))
    assert exc.args[0] == "TOPIC_AUTHORIZATION_FAILED"


async def test_nobody_but_the_admin_deletes_audit_records(secure: SecureBroker) -> None:
    """Deleting audit records (DeleteRecords) is refused to the worker and to operations."""
    from aiokafka.admin import AIOKafkaAdminClient, RecordsToDelete

    for user in ("mash-worker", "operations"):
        s = secure.as_(user)
        admin = AIOKafkaAdminClient(bootstrap_servers=s.kafka_bootstrap, **s.kafka_auth().aiokafka())
        await admin.start()
        try:
            result = await admin.delete_records({TopicPartition(secure.topic("audit"), 0): RecordsToDelete(0)})
        except DENIED:
            continue
        except KafkaError as exc:
            assert "authoriz" in type(exc).__name__.lower() or "AUTHORIZATION" in str(exc), exc
            continue
        finally:
            await admin.close()
        raise AssertionError(f"{user} deleted audit records: {result}")


async def test_allowed_operations_work(secure: SecureBroker) -> None:
    """Police publishes to its intake topic with the SDK; the worker's credentials read it and write a route;
    the school feed reads its route; operations read the dead letters."""
    police = secure.as_("agency-police")
    record = health_notification([child(901)])
    async with AgencyClient(secure.as_("agency-health"), AgencyType.HEALTH) as client:
        receipt = await client.publish(record)
    assert receipt.topic == secure.topic("intake.health")
    worker = secure.as_("mash-worker")
    got = await read_topics(worker.kafka_bootstrap, [receipt.topic], auth=worker.kafka_auth())
    assert any(r.key == str(record.envelope.notification_id).encode() for r in got)
    await _produce(worker, secure.topic(ROUTE_TOPICS[Route.ENCOMPASS]), b"probe")
    await _produce(worker, secure.topic("deadletter"), b"probe")
    assert await _consume(secure.as_("svc-school-feed"), secure.topic(ROUTE_TOPICS[Route.ENCOMPASS])) >= 1
    assert await _consume(secure.as_("operations"), secure.topic("deadletter")) >= 1
    await _produce(police, secure.topic("intake.police"), b"not avro: the worker dead-letters it")


async def test_worker_routes_a_notification_on_the_secure_broker(secure: SecureBroker, tmp_path: Path) -> None:
    """A worker process with only its own identity routes a police incident published by the police identity:
    the front door referral and the Encompass notice appear, read back by operations."""
    incident = incident_with_three()
    async with AgencyClient(secure.as_("agency-police"), AgencyType.POLICE) as client:
        await client.publish(incident)
    worker = WorkerProcess(secure.as_("mash-worker"), tmp_path / "worker.log")
    worker.start()
    ops = secure.as_("operations")
    nid = incident.envelope.notification_id
    shorts = ("route.frontdoor", "route.encompass", "audit")
    try:
        end = time.monotonic() + 90
        while True:
            recs = await read_topics(ops.kafka_bootstrap, [secure.topic(s) for s in shorts], auth=ops.kafka_auth(),
                                     registry_url=ops.registry_url)
            codec = Codec()
            got = [r.decode(codec) for r in recs if r.value and r.value[:1] == b"\x00"]
            referrals = [r for r in got if isinstance(r, FrontDoorReferral) and r.notification_id == nid]
            notices = [r for r in got if isinstance(r, EncompassNotice) and r.notification_id == nid]
            if referrals and any(n.school_urn == SCHOOL_A for n in notices):
                break
            if time.monotonic() > end:
                log = (tmp_path / "worker.log").read_text(errors="replace")[-3000:]
                raise AssertionError(f"not routed within 90 s; saw {[type(r).__name__ for r in got]}\n{log}")
            await asyncio.sleep(1.0)
        assert any(isinstance(r, AuditRecord) for r in got)
        # operations watch the worker's consumer group (Describe on groups, ListGroups on the cluster)
        # the worker commits after its outputs are acknowledged (on its commit interval), so its group's first
        # committed offsets can trail the outputs seen above by a few seconds: poll, bounded
        backend = KafkaOpsBackend(ops.kafka_bootstrap, secure.prefix, auth=ops.kafka_auth())
        deadline = time.monotonic() + 30
        groups: set[str] = set()
        while f"{secure.prefix}-worker" not in groups and time.monotonic() < deadline:
            groups = {group for group, *_ in await backend.lag_samples()}
            await asyncio.sleep(0.5)
        assert f"{secure.prefix}-worker" in groups, groups
    finally:
        worker.stop()
    log = (tmp_path / "worker.log").read_text(errors="replace")
    assert secure.passwords["mash-worker"] not in log


async def test_only_the_registry_reads_its_journal(secure: SecureBroker) -> None:
    """The registry keeps its schemas in the secure broker (kafkasql-journal); other principals cannot read it."""
    assert await _consume(secure.as_("registry"), "kafkasql-journal") > 0
    for user in ("agency-police", "mash-worker", "operations"):
        await _denied(_consume(secure.as_(user), "kafkasql-journal"))


async def test_school_feed_service_builds_its_view_and_acknowledges_as_itself(secure: SecureBroker,
                                                                              tmp_path: Path) -> None:
    """With only its own identity, the school-feed service's view consumer applies an Encompass notice (its group,
    its route) and its acknowledgement sink writes the acknowledgement."""
    from consumers.acknowledge import KafkaAckSink
    from consumers.codec import RecordCodec, close, encode, make_codec
    from consumers.database import Database, migrate
    from consumers.view_consumer import ViewConsumer
    from schemas.models import EncompassAcknowledgement, Recall
    from tests.consumers.conftest import SCHOOL_A as URN
    from tests.consumers.conftest import notice

    route, acks = secure.topic("route.encompass"), secure.topic("feedback.acknowledgements")
    codec = await make_codec(secure.registry_url, {route: [EncompassNotice, Recall],
                                                   acks: [EncompassAcknowledgement]})
    school = secure.as_("svc-school-feed")
    try:
        record = notice()
        worker = secure.as_("mash-worker")
        producer = AIOKafkaProducer(bootstrap_servers=worker.kafka_bootstrap, acks="all", enable_idempotence=True,
                                    **worker.kafka_auth().aiokafka())
        try:
            await producer.start()
            await producer.send_and_wait(route, encode(codec, record, route), key=record.notice_id.bytes)
        finally:
            await producer.stop()
        url = f"sqlite:///{tmp_path}/feed.db"
        migrate(url)
        consumer = ViewConsumer(Database(url), codec, school.kafka_bootstrap, [route],
                                f"{secure.prefix}.svc-school-feed.views", auth=school.kafka_auth())
        await consumer.start()
        try:
            for _ in range(40):
                await consumer.poll_once(500)
                if consumer.applied >= 1:
                    break
        finally:
            await consumer.stop()
        assert consumer.applied >= 1

        async def factory() -> RecordCodec:
            return codec

        sink = KafkaAckSink(school.kafka_bootstrap, acks, factory, 15.0, auth=school.kafka_auth())
        await sink.start()
        try:
            await sink.send(EncompassAcknowledgement(notice_id=record.notice_id, school_urn=URN,
                                                     acknowledged=record.incident_occurred))
        finally:
            sink.codec = None  # the codec is closed below, once
            await sink.stop()
    finally:
        await close(codec)
