"""Secure mode without a broker: settings -> client options, secrets kept out of reprs and logs, the production
profile's refusals, and the script's SCRAM users matching the ACL principals."""

from __future__ import annotations

import re
import ssl
from pathlib import Path

import pytest
import structlog
from pydantic import SecretStr
from typer.testing import CliRunner

from broker import acl_admin, cli
from broker import app as worker_app
from broker.acl_admin import DEV_IDENTITY_SECRET, check_production, production_problems
from broker.acls import ADMIN, PRINCIPALS
from broker.errors import ConfigurationError
from broker.settings import Settings
from schemas.kafka_auth import KafkaAuthError

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "s3cret-scram-password-for-tests"
STRONG = "x" * 40


def _secure(**kw: object) -> Settings:
    values: dict[str, object] = dict(kafka_security_protocol="SASL_SSL", kafka_sasl_username="agency-police",
                                     kafka_sasl_password=SecretStr(PASSWORD))
    values.update(kw)
    return Settings(**values)  # type: ignore[arg-type]


def test_plaintext_is_the_default_and_adds_nothing() -> None:
    """Default settings stay PLAINTEXT: no security options reach any client."""
    auth = Settings().kafka_auth()
    assert auth.protocol == "PLAINTEXT"
    assert auth.aiokafka() == {} and auth.confluent() == {} and auth.java() == {}


def test_sasl_ssl_settings_become_client_options(tmp_path: Path) -> None:
    """SASL_SSL settings give aiokafka SCRAM-SHA-512 over a verifying TLS context, and librdkafka the same."""
    auth = _secure(kafka_ca_file=None).kafka_auth()
    kw = auth.aiokafka()
    assert kw["security_protocol"] == "SASL_SSL" and kw["sasl_mechanism"] == "SCRAM-SHA-512"
    assert kw["sasl_plain_username"] == "agency-police" and kw["sasl_plain_password"] == PASSWORD
    ctx = kw["ssl_context"]
    assert isinstance(ctx, ssl.SSLContext) and ctx.verify_mode is ssl.CERT_REQUIRED and ctx.check_hostname
    conf = auth.confluent()
    assert conf["security.protocol"] == "sasl_ssl" and conf["sasl.mechanism"] == "SCRAM-SHA-512"
    assert conf["sasl.password"] == PASSWORD and "ssl.ca.location" not in conf
    assert _secure(kafka_ca_file="/etc/ca.pem").kafka_auth().java()["ssl.truststore.location"] == "/etc/ca.pem"


def test_environment_settings_reach_the_clients(monkeypatch: pytest.MonkeyPatch) -> None:
    """MASH_KAFKA_* environment variables configure the security of every client built from Settings."""
    monkeypatch.setenv("MASH_KAFKA_SECURITY_PROTOCOL", "sasl_ssl")
    monkeypatch.setenv("MASH_KAFKA_SASL_USERNAME", "mash-worker")
    monkeypatch.setenv("MASH_KAFKA_SASL_PASSWORD", PASSWORD)
    conf = Settings().kafka_auth().confluent()
    assert conf["sasl.username"] == "mash-worker" and conf["sasl.password"] == PASSWORD


def test_sasl_without_credentials_is_refused_naming_the_setting() -> None:
    """SASL_SSL without a password, or an unknown protocol, is a KafkaAuthError naming the setting."""
    with pytest.raises(KafkaAuthError, match="MASH_KAFKA_SASL_PASSWORD"):
        Settings(kafka_security_protocol="SASL_SSL", kafka_sasl_username="x").kafka_auth()
    with pytest.raises(KafkaAuthError, match="MASH_KAFKA_SECURITY_PROTOCOL"):
        Settings(kafka_security_protocol="SASL_PLAINTEXT").kafka_auth()


def test_passwords_never_appear_in_reprs_or_logs() -> None:
    """The settings' and KafkaAuth's reprs, and log lines (the JSON and console renderers the worker uses)
    holding the settings, show no SCRAM password or identity secret."""
    s = _secure(identity_secret=SecretStr(STRONG))
    assert PASSWORD not in repr(s) and PASSWORD not in str(s) and STRONG not in repr(s)
    assert PASSWORD not in repr(s.kafka_auth())
    event = {"event": "settings", "settings": s, "auth": s.kafka_auth()}
    for renderer in (structlog.processors.JSONRenderer(), structlog.dev.ConsoleRenderer(colors=False)):
        line = str(renderer(None, "warning", dict(event)))
        assert "agency-police" in line  # the line was rendered with the settings in it
        assert PASSWORD not in line and STRONG not in line


def _production(**kw: object) -> Settings:
    values: dict[str, object] = dict(profile="production", identity_secret=SecretStr(STRONG),
                                     kafka_security_protocol="SASL_SSL", kafka_sasl_username="mash-worker",
                                     kafka_sasl_password=SecretStr(PASSWORD))
    values.update(kw)
    return Settings(**values)  # type: ignore[arg-type]


def test_production_accepts_a_secure_configuration() -> None:
    """Production with a strong secret, SASL_SSL and a broker with an authorizer: nothing refused."""
    assert production_problems(_production(), authorizer=True) == []


@pytest.mark.parametrize(("change", "setting"), [
    ({"identity_secret": SecretStr(DEV_IDENTITY_SECRET)}, "MASH_IDENTITY_SECRET"),
    ({"identity_secret": SecretStr("short")}, "MASH_IDENTITY_SECRET"),
    ({"kafka_security_protocol": "PLAINTEXT"}, "MASH_KAFKA_SECURITY_PROTOCOL"),
    ({"acls_enabled": False}, "MASH_ACLS_ENABLED"),
])
def test_production_refuses_each_insecure_setting(change: dict[str, object], setting: str) -> None:
    """Production refuses the development identity secret, a short one, no TLS, or ACLs switched off."""
    assert Settings().identity_secret.get_secret_value() == DEV_IDENTITY_SECRET  # the default is refused
    problems = production_problems(_production(**change), authorizer=True)
    assert len(problems) == 1 and problems[0].startswith(setting)


def test_production_refuses_a_broker_without_an_authorizer() -> None:
    """A broker answering DescribeAcls with SECURITY_DISABLED (no authorizer) is refused in production."""
    assert production_problems(_production(), authorizer=False)[0].startswith("MASH_ACLS_ENABLED")
    assert production_problems(_production(profile="local"), authorizer=False) == []  # local: anything goes


def test_check_production_raises_without_asking_the_broker_when_settings_fail(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """check_production raises ConfigurationError with every broken rule; the broker is not asked then."""
    monkeypatch.setattr(acl_admin, "_authorizer", lambda *_: pytest.fail("broker asked"))
    with pytest.raises(ConfigurationError) as err:
        check_production(_production(identity_secret=SecretStr(DEV_IDENTITY_SECRET),
                                     kafka_security_protocol="PLAINTEXT"))
    assert "MASH_IDENTITY_SECRET" in str(err.value) and "MASH_KAFKA_SECURITY_PROTOCOL" in str(err.value)
    assert PASSWORD not in str(err.value) and DEV_IDENTITY_SECRET not in str(err.value)


def test_check_production_asks_the_broker_for_its_authorizer(monkeypatch: pytest.MonkeyPatch) -> None:
    """With good settings, production asks the broker; a broker without an authorizer is refused."""
    monkeypatch.setattr(acl_admin, "_authorizer", lambda *_: False)
    with pytest.raises(ConfigurationError, match="no authorizer"):
        check_production(_production())
    monkeypatch.setattr(acl_admin, "_authorizer", lambda *_: True)
    check_production(_production())


def test_worker_command_refuses_production_with_the_development_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """`mash worker` in the production profile with the default secret exits 2 naming the setting, before any
    Kafka connection or faust app is made."""
    monkeypatch.setenv("MASH_PROFILE", "production")
    monkeypatch.delenv("MASH_IDENTITY_SECRET", raising=False)
    monkeypatch.setattr(worker_app, "create_app", lambda *_: pytest.fail("app created"))
    result = CliRunner().invoke(cli.app, ["worker"])
    assert result.exit_code == 2
    assert "MASH_IDENTITY_SECRET" in result.output and "refusing to start" in result.output


def test_script_users_are_the_acl_principals() -> None:
    """deploy/kafka.sh creates one SCRAM user per principal of broker.acls, plus the admin, and no other."""
    script = (ROOT / "deploy" / "kafka.sh").read_text()
    users = re.search(r'^users="([^"]*)"', script, re.M)
    assert users is not None
    assert set(users.group(1).split()) == {p.name for p in PRINCIPALS} | {ADMIN.name}
    assert f"super.users=User:CN=mash-broker;User:{ADMIN.name}" in script
    assert "allow.everyone.if.no.acl.found=false" in script
