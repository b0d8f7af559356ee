"""How every client of the product authenticates to Kafka: one place turns settings into client options.

Settings (broker.settings.Settings, `MASH_` environment) carry `kafka_security_protocol` (PLAINTEXT, SSL or
SASL_SSL), `kafka_sasl_username`, `kafka_sasl_password` (a SecretStr: never logged, never in a repr) and
`kafka_ca_file` (the CA that signed the broker's certificate). `KafkaAuth.of(settings)` reads them from any
object (absent attributes mean PLAINTEXT, so a bare `KafkaTarget` still works), and gives:

    auth.aiokafka()   keyword arguments for AIOKafkaProducer / AIOKafkaConsumer / AIOKafkaAdminClient
    auth.confluent()  librdkafka configuration for confluent-kafka clients (AdminClient for ACLs)
    auth.java()       Java client properties (the registry's kafkasql storage)

It lives in `schemas` (the bottom layer) because producers, the broker and the consumers all use it.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr

from schemas.errors import BrokerError

__all__ = ["MECHANISM", "PROTOCOLS", "KafkaAuth", "KafkaAuthError"]

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_SSL")
MECHANISM = "SCRAM-SHA-512"


class KafkaAuthError(BrokerError):
    """The Kafka security settings are inconsistent (names the setting, never a secret)."""


@dataclass(frozen=True)
class KafkaAuth:
    """A client's security settings. `password` is a SecretStr: its repr shows '**********'."""

    protocol: str = "PLAINTEXT"
    username: str | None = None
    password: SecretStr | None = None
    ca_file: str | None = None

    @classmethod
    def of(cls, settings: object) -> KafkaAuth:
        """The security settings of a settings object (missing attributes: PLAINTEXT), checked."""
        password = getattr(settings, "kafka_sasl_password", None) or None
        auth = cls(
            protocol=str(getattr(settings, "kafka_security_protocol", "PLAINTEXT") or "PLAINTEXT").upper(),
            username=getattr(settings, "kafka_sasl_username", None) or None,
            password=SecretStr(password) if isinstance(password, str) else password,
            ca_file=getattr(settings, "kafka_ca_file", None) or None,
        )
        auth.check()
        return auth

    @property
    def tls(self) -> bool:
        """Whether the connection is encrypted."""
        return self.protocol in ("SSL", "SASL_SSL")

    @property
    def sasl(self) -> bool:
        """Whether the client authenticates with SCRAM."""
        return self.protocol == "SASL_SSL"

    def check(self) -> None:
        """KafkaAuthError naming the setting when the combination cannot work."""
        if self.protocol not in PROTOCOLS:
            raise KafkaAuthError(f"MASH_KAFKA_SECURITY_PROTOCOL must be one of {', '.join(PROTOCOLS)}")
        if self.sasl and not (self.username and self.password and self.password.get_secret_value()):
            raise KafkaAuthError("SASL_SSL needs MASH_KAFKA_SASL_USERNAME and MASH_KAFKA_SASL_PASSWORD")

    def ssl_context(self) -> ssl.SSLContext | None:
        """A TLS context verifying the broker against `ca_file` (the system's CAs without one); None when
        the protocol is not encrypted."""
        if not self.tls:
            return None
        ctx = ssl.create_default_context(cafile=self.ca_file)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        return ctx

    def aiokafka(self) -> dict[str, Any]:
        """Keyword arguments for aiokafka's producer, consumer and admin client."""
        if not self.tls:
            return {}
        kw: dict[str, Any] = {"security_protocol": self.protocol, "ssl_context": self.ssl_context()}
        if self.sasl:
            assert self.password is not None
            kw.update(sasl_mechanism=MECHANISM, sasl_plain_username=self.username,
                      sasl_plain_password=self.password.get_secret_value())
        return kw

    def confluent(self) -> dict[str, str]:
        """librdkafka configuration (confluent-kafka)."""
        if not self.tls:
            return {}
        conf = {"security.protocol": self.protocol.lower()}
        if self.ca_file:
            conf["ssl.ca.location"] = self.ca_file
        if self.sasl:
            assert self.password is not None and self.username is not None
            conf.update({"sasl.mechanism": MECHANISM, "sasl.username": self.username,
                         "sasl.password": self.password.get_secret_value()})
        return conf

    def java(self) -> dict[str, str]:
        """Java client properties (PEM truststore), e.g. for the registry's kafkasql storage."""
        if not self.tls:
            return {}
        props = {"security.protocol": self.protocol}
        if self.ca_file:
            props.update({"ssl.truststore.type": "PEM", "ssl.truststore.location": self.ca_file})
        if self.sasl:
            assert self.password is not None and self.username is not None
            props.update({
                "sasl.mechanism": MECHANISM,
                "sasl.jaas.config": "org.apache.kafka.common.security.scram.ScramLoginModule required "
                                    f'username="{self.username}" password="{self.password.get_secret_value()}";',
            })
        return props
