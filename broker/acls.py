"""Who may do what on the broker: the Kafka ACLs, declared as pure data beside the topic catalogue.

Pure on purpose (no Kafka imports): `mash acls apply` turns these grants into ACL bindings on a broker running
KRaft's `StandardAuthorizer` (`allow.everyone.if.no.acl.found=false`, so anything not granted here is denied),
and the same data can be rendered as Strimzi `KafkaUser` manifests (`spec.authorization.acls`).

    PRINCIPALS                 every service identity (SCRAM user name, role, description)
    grants(prefix)             every ALLOW grant for one topic-name prefix, e.g. "mash"
    grants_of(name, prefix)    one principal's grants
    allows(grants, who, type, name, op)   what the authorizer would decide (for tests and reviews)
    ADMIN                      the deployment identity (a super user: creates topics and ACLs; not granted here)

A grant names a resource (topic, group, cluster or transactional id), how the name matches (literal or
prefixed), and the operations allowed (Kafka's names: Read, Write, Create, Describe, DescribeConfigs, ...).
Read, Write, Delete and Alter imply Describe in Kafka, so Describe is not listed beside them. An idempotent
producer needs no cluster-level IdempotentWrite since Kafka 3.0 (KIP-679): Write on a topic implies it.

The rules (DESIGN.md, Guardrails):
- each agency system writes only its own intake topic; it reads `feedback.rejections` (see the limit below);
- the worker reads intake and writes internal, routed, audit, dead-letter, rejection and SLA topics; its faust
  app id is `<prefix>-worker`, so its consumer group and faust's own topics (table changelogs,
  `<prefix>-worker-__assignor-__leader`, repartition topics) are the prefixed resources `<prefix>-worker`;
- the SLA tracker (today a stage of the worker, with the worker's identity) may run on its own as
  `<prefix>-sla`: it reads routes and acknowledgements and writes SLA events;
- each consumer service reads only its own route topics and the acknowledgements, and writes only
  acknowledgements;
- only operations read the dead letters (raw bytes may hold personal data); operations may redrive (write
  intake), watch every group's lag, and (as the identity of today's combined people's pages: `mash web serve`
  and `mash web views` with MASH_WEB_CONSUMER_GROUP=operations-views) write acknowledgements;
- nobody is granted Delete on the audit topic (or any topic): only retention removes records;
- the registry owns its kafkasql topics (`kafkasql-journal`, `kafkasql-snapshots`, `registry-events`) and its
  consumer groups (prefix `registry`; set APICURIO_KAFKASQL_CONSUMER_GROUP_PREFIX accordingly).

Limit: Kafka ACLs are per topic, not per key, so an agency principal can read every agency's rejections on
`feedback.rejections` (a rejection carries the sender's source reference and the rule broken, never
personal data). Per-agency rejection topics would make this strict; see SECURITY.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from broker.topics import INTAKE_TOPICS, ROUTE_TOPICS
from schemas import models as m

__all__ = [
    "ADMIN",
    "AGENCY_PRINCIPALS",
    "PRINCIPALS",
    "REGISTRY_TOPICS",
    "SERVICE_ROUTES",
    "Grant",
    "Pattern",
    "Principal",
    "ResourceType",
    "allows",
    "grants",
    "grants_of",
    "principal",
]


class ResourceType(str, Enum):
    """Kafka ACL resource types used here."""

    TOPIC = "topic"
    GROUP = "group"
    CLUSTER = "cluster"
    TRANSACTIONAL_ID = "transactional_id"


class Pattern(str, Enum):
    """How a grant's resource name matches: exactly, or every name starting with it."""

    LITERAL = "literal"
    PREFIXED = "prefixed"


@dataclass(frozen=True)
class Principal:
    """A service identity: its SCRAM user name (`User:<name>` on the broker), role and what it is for."""

    name: str
    role: str  # agency | worker | sla | service | registry | operations | admin
    description: str

    @property
    def kafka(self) -> str:
        """The principal as the broker names it."""
        return f"User:{self.name}"


@dataclass(frozen=True)
class Grant:
    """ALLOW `operations` on one resource to one principal (from any host)."""

    principal: str  # a Principal's name
    resource_type: ResourceType
    name: str  # resource name (`kafka-cluster` for the cluster)
    pattern: Pattern
    operations: tuple[str, ...]


AGENCY_PRINCIPALS: dict[m.AgencyType, str] = {
    m.AgencyType.POLICE: "agency-police",
    m.AgencyType.HEALTH: "agency-health",
    m.AgencyType.PROBATION: "agency-probation",
    m.AgencyType.YOUTH_JUSTICE: "agency-youth-justice",
}

#: Each consumer service's route topics (short names).
SERVICE_ROUTES: dict[str, tuple[str, ...]] = {
    "svc-school-feed": (ROUTE_TOPICS[m.Route.ENCOMPASS],),
    "svc-frontdoor": (ROUTE_TOPICS[m.Route.FRONT_DOOR], ROUTE_TOPICS[m.Route.CUMULATIVE_CONCERN]),
    "svc-dv-triage": (ROUTE_TOPICS[m.Route.DV_TRIAGE], ROUTE_TOPICS[m.Route.MARAC]),
    "svc-emergency-duty": (ROUTE_TOPICS[m.Route.EMERGENCY_DUTY],),
}

REGISTRY_TOPICS = ("kafkasql-journal", "kafkasql-snapshots", "registry-events")

ADMIN = Principal("mash-admin", "admin", "deployment: creates topics and applies ACLs (a broker super user)")

PRINCIPALS: tuple[Principal, ...] = (
    *(Principal(name, "agency", f"{agency.value} agency systems: publish to their intake topic")
      for agency, name in AGENCY_PRINCIPALS.items()),
    Principal("mash-worker", "worker", "the faust worker: intake, identity, routing, SLA"),
    Principal("sla-tracker", "sla", "the SLA tracker when run on its own (today a stage of the worker)"),
    Principal("svc-school-feed", "service", "school feed (Encompass notices) and the morning digest"),
    Principal("svc-frontdoor", "service", "front door worklist"),
    Principal("svc-dv-triage", "service", "daily Domestic Violence Triage agenda and MARAC"),
    Principal("svc-emergency-duty", "service", "emergency duty team alerts"),
    Principal("registry", "registry", "Apicurio Registry (kafkasql storage)"),
    Principal("operations", "operations", "operations: dashboards, lag, dead letters, redrive, replay"),
)

READ = ("Read",)
WRITE = ("Write",)
# What a client that creates and uses its own topics needs on them (faust's changelogs, the registry's journal).
OWN_TOPICS = ("Create", "Read", "Write", "Describe", "DescribeConfigs")


def principal(name: str) -> Principal:
    """The principal of a name (KeyError when unknown)."""
    for p in (*PRINCIPALS, ADMIN):
        if p.name == name:
            return p
    raise KeyError(name)


def _topic(who: str, prefix: str, short: str, ops: tuple[str, ...]) -> Grant:
    return Grant(who, ResourceType.TOPIC, f"{prefix}.{short}", Pattern.LITERAL, ops)


def _group(who: str, name: str) -> Grant:
    return Grant(who, ResourceType.GROUP, name, Pattern.PREFIXED, READ)


def grants(prefix: str) -> tuple[Grant, ...]:
    """Every ALLOW grant for the topics of one prefix; anything not granted is denied."""
    intake = tuple(INTAKE_TOPICS.values())
    routes = tuple(ROUTE_TOPICS.values())
    acks = "feedback.acknowledgements"
    out: list[Grant] = []
    for agency, who in AGENCY_PRINCIPALS.items():
        out.append(_topic(who, prefix, INTAKE_TOPICS[agency], WRITE))
        out.append(_topic(who, prefix, "feedback.rejections", READ))
        out.append(_group(who, f"{prefix}.{who}"))

    worker = "mash-worker"
    for short in (*intake, "internal.accepted", acks, *routes):
        out.append(_topic(worker, prefix, short, READ))
    for short in ("internal.accepted", *routes, "audit", "deadletter", "feedback.rejections", "sla.events"):
        out.append(_topic(worker, prefix, short, WRITE))
    out.append(_topic(worker, prefix, acks, ("Describe",)))  # the outlet knows the topic's partitions
    out.append(_topic(worker, prefix, "reference.schools", READ))
    out.append(Grant(worker, ResourceType.TOPIC, f"{prefix}-worker", Pattern.PREFIXED, OWN_TOPICS))
    out.append(_group(worker, f"{prefix}-worker"))

    sla = "sla-tracker"
    for short in (*routes, acks):
        out.append(_topic(sla, prefix, short, READ))
    out.append(_topic(sla, prefix, "sla.events", WRITE))
    out.append(Grant(sla, ResourceType.TOPIC, f"{prefix}-sla", Pattern.PREFIXED, OWN_TOPICS))
    out.append(_group(sla, f"{prefix}-sla"))

    for who, own in SERVICE_ROUTES.items():
        for short in own:
            out.append(_topic(who, prefix, short, READ))
        out.append(_topic(who, prefix, acks, ("Read", "Write")))
        out.append(_group(who, f"{prefix}.{who}"))

    ops = "operations"
    out.append(Grant(ops, ResourceType.TOPIC, f"{prefix}.", Pattern.PREFIXED, ("Read", "DescribeConfigs")))
    for short in intake:  # redrive of a dead letter to its intake topic
        out.append(_topic(ops, prefix, short, WRITE))
    # The people's pages run as operations today (one process for every role): they send the acknowledgements
    # their users make. Split per service, each service identity writes its own instead.
    out.append(_topic(ops, prefix, acks, WRITE))
    out.append(Grant(ops, ResourceType.TOPIC, f"{prefix}-", Pattern.PREFIXED, ("Describe",)))  # lag of faust groups
    out.append(Grant(ops, ResourceType.GROUP, prefix, Pattern.PREFIXED, ("Describe",)))  # every group's lag
    out.append(_group(ops, f"{prefix}.{ops}"))  # its own replays
    out.append(Grant(ops, ResourceType.CLUSTER, "kafka-cluster", Pattern.LITERAL, ("Describe",)))  # list groups

    reg = "registry"
    for name in REGISTRY_TOPICS:
        out.append(Grant(reg, ResourceType.TOPIC, name, Pattern.LITERAL, (*OWN_TOPICS, "AlterConfigs")))
    out.append(Grant(reg, ResourceType.GROUP, "registry", Pattern.PREFIXED, READ))
    return tuple(out)


def grants_of(name: str, prefix: str) -> tuple[Grant, ...]:
    """One principal's grants."""
    return tuple(g for g in grants(prefix) if g.principal == name)


_IMPLIES_DESCRIBE = {"Read", "Write", "Delete", "Alter"}


def allows(declared: tuple[Grant, ...], who: str, resource_type: ResourceType, name: str, operation: str) -> bool:
    """Whether these grants allow `operation` on a resource to a principal, as StandardAuthorizer decides for
    ALLOW-only ACLs (literal or prefixed match; All; Read/Write/Delete/Alter imply Describe and
    AlterConfigs implies DescribeConfigs). Super users are not modelled."""
    for g in declared:
        if g.principal != who or g.resource_type is not resource_type:
            continue
        if not (name == g.name if g.pattern is Pattern.LITERAL else name.startswith(g.name)):
            continue
        ops = set(g.operations)
        if "All" in ops or operation in ops:
            return True
        if operation == "Describe" and ops & _IMPLIES_DESCRIBE:
            return True
        if operation == "DescribeConfigs" and "AlterConfigs" in ops:
            return True
    return False
