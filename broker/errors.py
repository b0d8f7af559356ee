"""The product's exceptions, re-exported from `schemas.errors` (their one definition, below every layer)."""

from __future__ import annotations

from schemas.errors import BrokerError, ConfigurationError, RegistryError, SchemaError, TransportError

__all__ = ["BrokerError", "ConfigurationError", "RegistryError", "SchemaError", "TransportError"]
