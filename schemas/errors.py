"""The one exception root of the product (broker, producers and schemas all raise these)."""

from __future__ import annotations

__all__ = ["BrokerError", "ConfigurationError", "RegistryError", "SchemaError", "TransportError"]


class BrokerError(Exception):
    """Root of every error this product raises; `retriable` tells callers whether to try again."""

    retriable: bool = False


class ConfigurationError(BrokerError):
    """Settings or reference data are wrong; fix the configuration, do not retry."""


class SchemaError(BrokerError):
    """A payload does not match its contract (bad framing, unknown schema id, undecodable body)."""


class RegistryError(BrokerError):
    """The schema registry refused or failed a request."""

    def __init__(self, message: str, *, status: int | None = None, retriable: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.retriable = retriable


class TransportError(BrokerError):
    """Kafka could not be reached or refused a request; usually worth retrying."""

    retriable = True
