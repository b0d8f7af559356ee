"""Applies broker.acls to a broker with an authorizer (`mash acls apply`), idempotently, and checks the
production profile's security rules before the worker starts.

`apply_acls` creates every declared binding the broker lacks and deletes the bindings of the declared
principals that are no longer declared (bindings of other principals are left alone); a second run changes
nothing. It runs with the admin identity (`MASH_KAFKA_SASL_USERNAME=mash-admin`, a super user).
"""

from __future__ import annotations

import asyncio
import importlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from broker.acls import PRINCIPALS, Grant, Pattern, grants
from broker.errors import ConfigurationError, TransportError
from broker.settings import Settings

__all__ = ["DEV_IDENTITY_SECRET", "AclChange", "apply_acls", "authorizer_enabled", "check_production",
           "production_problems"]

DEV_IDENTITY_SECRET = "local-development-only-secret"


@dataclass(frozen=True)
class AclChange:
    """One binding created, deleted or found unchanged."""

    action: str  # created | deleted | unchanged
    principal: str
    resource: str
    operation: str


Binding = tuple[str, str, str, str, str]  # principal, resource type, name, pattern, operation


def _bindings(declared: tuple[Grant, ...]) -> set[Binding]:
    return {(f"User:{g.principal}", g.resource_type.value, g.name, g.pattern.value, op)
            for g in declared for op in g.operations}


def _ck() -> Any:
    """confluent_kafka.admin, untyped (its stubs type None-able filter fields as str)."""
    return importlib.import_module("confluent_kafka.admin")


def _admin(settings: Settings) -> Any:
    return _ck().AdminClient({"bootstrap.servers": settings.kafka_bootstrap, "client.id": "mash-acls",
                        **settings.kafka_auth().confluent()})


def _to_binding(b: Binding) -> Any:
    ck = _ck()

    principal, rtype, name, pattern, op = b
    rt = ck.ResourceType[_LIBRDKAFKA_TYPE.get(rtype, rtype.upper())]
    return ck.AclBinding(rt, name, ck.ResourcePatternType[pattern.upper()], principal, "*",
                         ck.AclOperation[_snake(op).upper()], ck.AclPermissionType.ALLOW)


_LIBRDKAFKA_TYPE = {"cluster": "BROKER"}  # librdkafka names Kafka's CLUSTER resource type BROKER (both 4)


def _snake(op: str) -> str:
    return "".join(f"_{c}" if c.isupper() and i else c for i, c in enumerate(op))


def _from_binding(acl: Any) -> Binding:
    op = "".join(part.capitalize() for part in acl.operation.name.split("_"))
    rtype = "cluster" if acl.restype.name == "BROKER" else acl.restype.name.lower()
    return (acl.principal, rtype, acl.name, acl.resource_pattern_type.name.lower(), op)


def _existing(admin: Any, timeout: float) -> set[Binding]:
    ck = _ck()

    flt = ck.AclBindingFilter(ck.ResourceType.ANY, None, ck.ResourcePatternType.ANY, None, None, ck.AclOperation.ANY,
                           ck.AclPermissionType.ALLOW)
    return {_from_binding(a) for a in admin.describe_acls(flt, request_timeout=timeout).result()}


def _apply(settings: Settings, timeout: float) -> list[AclChange]:
    from confluent_kafka import KafkaException

    admin = _admin(settings)
    wanted = _bindings(grants(settings.topic_prefix))
    ours = {f"User:{p.name}" for p in PRINCIPALS}
    try:
        have = _existing(admin, timeout)
        create = sorted(wanted - have)
        # Only bindings of our principals on our resources: other deployments' prefixes are left alone.
        mine = {b for b in have if b[0] in ours and _owned(b, settings.topic_prefix)}
        delete = sorted(mine - wanted)
        if create:
            for fut in admin.create_acls([_to_binding(b) for b in create], request_timeout=timeout).values():
                fut.result()
        if delete:
            for fut in admin.delete_acls([_to_binding(b) for b in delete], request_timeout=timeout).values():
                fut.result()
    except KafkaException as exc:
        raise TransportError(f"ACLs not applied at {settings.kafka_bootstrap}: {exc.args[0]}") from exc
    out = [AclChange("created", *_short(b)) for b in create]
    out += [AclChange("deleted", *_short(b)) for b in delete]
    out += [AclChange("unchanged", *_short(b)) for b in sorted(wanted & have)]
    return out


def _owned(b: Binding, prefix: str) -> bool:
    """Whether a binding's resource belongs to this prefix's deployment (or is shared: cluster, registry)."""
    _, rtype, name, _, _ = b
    return rtype == "cluster" or name.startswith(prefix) or name.startswith(("kafkasql-", "registry"))


def _short(b: Binding) -> tuple[str, str, str]:
    principal, rtype, name, pattern, op = b
    return principal, f"{rtype}:{name}{'*' if pattern == Pattern.PREFIXED.value else ''}", op


async def apply_acls(settings: Settings, *, timeout: float = 30.0) -> list[AclChange]:
    """Bring the broker's ACLs to the declarations of broker.acls for this prefix (idempotent)."""
    return await asyncio.to_thread(_apply, settings, timeout)


_SECURITY_DISABLED = 54
_CLUSTER_AUTHORIZATION_FAILED = 31


async def _describe_acls_error(settings: Settings, timeout: float) -> int:
    """The error code of a DescribeAcls request matching every ACL (librdkafka hides SECURITY_DISABLED: it
    answers an empty list, so this asks with aiokafka's protocol classes)."""
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.errors import KafkaError as AioKafkaError
    from aiokafka.protocol.admin import DescribeAclsRequest

    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, client_id="mash-preflight",
                                request_timeout_ms=int(timeout * 1000), **settings.kafka_auth().aiokafka())
    try:
        await admin.start()
        # ANY resource, any name, ANY pattern, any principal and host, ANY operation and permission
        # aiokafka has no describe_acls: its private _send_request (kept working by the integration tests
        # test_the_secure_broker_has_an_authorizer and test_production_refuses_the_plaintext_broker)
        response = await admin._send_request(DescribeAclsRequest(1, None, 1, None, None, 1, 1))
    except AioKafkaError as exc:
        raise TransportError(f"Kafka unreachable at {settings.kafka_bootstrap}: {type(exc).__name__}") from exc
    finally:
        await admin.close()
    return int(response.error_code)


def _authorizer(settings: Settings, timeout: float) -> bool:
    """Whether the broker has an authorizer; asked from a thread of its own (callers may hold no event loop)."""
    with ThreadPoolExecutor(1) as pool:
        code = pool.submit(asyncio.run, _describe_acls_error(settings, timeout)).result()
    if code == _SECURITY_DISABLED:
        return False
    if code in (0, _CLUSTER_AUTHORIZATION_FAILED):  # answered, or an authorizer refused us: it exists
        return True
    raise TransportError(f"DescribeAcls at {settings.kafka_bootstrap} answered error code {code}")


async def authorizer_enabled(settings: Settings, *, timeout: float = 15.0) -> bool:
    """Whether the broker has an authorizer (DescribeAcls does not answer SECURITY_DISABLED)."""
    return await asyncio.to_thread(_authorizer, settings, timeout)


def production_problems(settings: Settings, *, authorizer: bool | None) -> list[str]:
    """What the production profile refuses, each naming the setting and the rule (pure; never a secret)."""
    if settings.profile != "production":
        return []
    problems = []
    if settings.identity_secret.get_secret_value() in ("", DEV_IDENTITY_SECRET):
        problems.append("MASH_IDENTITY_SECRET: the development identity secret is not allowed in production")
    elif len(settings.identity_secret.get_secret_value()) < 32:
        problems.append("MASH_IDENTITY_SECRET: must be at least 32 characters in production")
    if settings.kafka_security_protocol.upper() not in ("SSL", "SASL_SSL"):
        problems.append("MASH_KAFKA_SECURITY_PROTOCOL: production needs TLS (SSL or SASL_SSL)")
    if not settings.acls_enabled:
        problems.append("MASH_ACLS_ENABLED: production needs the broker's ACLs enforced")
    elif authorizer is False:
        problems.append("MASH_ACLS_ENABLED: the broker has no authorizer (DescribeAcls: SECURITY_DISABLED); "
                        "production needs ACLs enforced")
    return problems


def check_production(settings: Settings) -> None:
    """ConfigurationError listing every production rule the settings break; asks the broker whether it has an
    authorizer only when the settings themselves pass."""
    if settings.profile != "production":
        return
    problems = production_problems(settings, authorizer=None)
    if not problems and settings.acls_enabled:
        problems = production_problems(settings, authorizer=_authorizer(settings, 15.0))
    if problems:
        raise ConfigurationError("refusing to start in the production profile: " + "; ".join(problems))

