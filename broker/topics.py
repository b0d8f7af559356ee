"""The topic catalogue: every topic, its kind, partitions, retention and the record types it carries.

Schemas live in the registry (subjects `<topic>-<record full name>`), not on a topic: see broker.admin."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum

from schemas import models as m
from schemas.topics import INTAKE_TOPICS

__all__ = ["INTAKE_TOPICS", "ROUTE_TOPICS", "Catalogue", "TopicKind", "TopicSpec", "catalogue"]

DAY_MS = 24 * 60 * 60 * 1000


#: Profiles with the production topic profile (replication 3, min.insync.replicas 2): `production`, and `cluster`,
#: the same topics on the local three-node cluster (deploy/cluster.sh) without production's security refusals.
REPLICATED_PROFILES = frozenset({"production", "cluster"})


class TopicKind(str, Enum):
    """What a topic holds; retention and clean-up follow from it."""

    INTAKE = "intake"
    INTERNAL = "internal"
    OUTPUT = "output"
    FEEDBACK = "feedback"
    AUDIT = "audit"
    DEAD_LETTER = "dead-letter"
    STATE = "state"


_CONFIG: Mapping[TopicKind, Mapping[str, str]] = {
    # Intake is replayable for a month: long enough to redrive after an incident.
    # The broker stamps receipt (LogAppendTime): deadlines run from it, identically on redelivery.
    TopicKind.INTAKE: {
        "cleanup.policy": "delete",
        "retention.ms": str(30 * DAY_MS),
        "message.timestamp.type": "LogAppendTime",
    },
    TopicKind.INTERNAL: {"cleanup.policy": "delete", "retention.ms": str(30 * DAY_MS)},
    TopicKind.OUTPUT: {"cleanup.policy": "delete", "retention.ms": str(400 * DAY_MS)},
    TopicKind.FEEDBACK: {"cleanup.policy": "delete", "retention.ms": str(90 * DAY_MS)},
    # Append-only: never compacted; only retention (7 years) removes records.
    TopicKind.AUDIT: {"cleanup.policy": "delete", "retention.ms": str(7 * 366 * DAY_MS)},
    # Raw bytes may hold personal data: bounded retention.
    TopicKind.DEAD_LETTER: {"cleanup.policy": "delete", "retention.ms": str(14 * DAY_MS)},
    TopicKind.STATE: {"cleanup.policy": "compact", "min.compaction.lag.ms": str(60 * 60 * 1000)},
}


@dataclass(frozen=True)
class TopicSpec:
    """One topic: its name (without prefix), kind, partitions and the records it carries."""

    name: str
    kind: TopicKind
    partitions: int
    records: tuple[type[m.Record], ...] = ()
    extra: Mapping[str, str] = field(default_factory=dict)

    def config(self, profile: str) -> dict[str, str]:
        """Topic-level configuration for a profile (`local`, `cluster` or `production`)."""
        cfg = dict(_CONFIG[self.kind])
        cfg["min.insync.replicas"] = "2" if profile in REPLICATED_PROFILES else "1"
        cfg.update(self.extra)
        return cfg


@dataclass(frozen=True)
class Catalogue:
    """The catalogue resolved for one prefix."""

    prefix: str
    specs: tuple[TopicSpec, ...]

    def name(self, short: str) -> str:
        """Full topic name for a short name, e.g. `intake.police` -> `mash.intake.police`."""
        return f"{self.prefix}.{short}"

    def spec(self, short: str) -> TopicSpec:
        """The spec of a short name."""
        for s in self.specs:
            if s.name == short:
                return s
        raise KeyError(short)

    def intake(self, agency: m.AgencyType) -> str:
        """The intake topic of an agency type."""
        return self.name(INTAKE_TOPICS[agency])

    def records(self) -> dict[str, tuple[type[m.Record], ...]]:
        """Full topic name -> the record types it carries, for every topic carrying records: what a codec is
        prepared for (`await codec_for(url, cat.records())`) and the registry subjects
        (`<topic>-<record full name>`, TopicRecordNameStrategy)."""
        return {self.name(s.name): s.records for s in self.specs if s.records}

    @staticmethod
    def replication(profile: str) -> int:
        """Replication factor for a profile."""
        return 3 if profile in REPLICATED_PROFILES else 1


ROUTE_TOPICS: Mapping[m.Route, str] = {
    m.Route.FRONT_DOOR: "route.frontdoor",
    m.Route.ENCOMPASS: "route.encompass",
    m.Route.DV_TRIAGE: "route.dvtriage",
    m.Route.MARAC: "route.marac",
    m.Route.EMERGENCY_DUTY: "route.emergency-duty",
    m.Route.CUMULATIVE_CONCERN: "route.cumulative-concern",
}
PARTITIONS = 6

_SPECS: tuple[TopicSpec, ...] = (
    *(
        TopicSpec(INTAKE_TOPICS[a], TopicKind.INTAKE, PARTITIONS, m.AGENCY_BODIES[a])
        for a in INTAKE_TOPICS
    ),
    # FrontDoorDecision: re-sent here by the SLA tracker (keyed by authority) to close referrals in the router.
    TopicSpec("internal.accepted", TopicKind.INTERNAL, PARTITIONS,
              (*m.NOTIFICATIONS, *m.INTERNAL, m.FrontDoorDecision)),
    TopicSpec("route.frontdoor", TopicKind.OUTPUT, PARTITIONS, (m.FrontDoorReferral, m.Recall)),
    TopicSpec("route.encompass", TopicKind.OUTPUT, PARTITIONS, (m.EncompassNotice, m.Recall)),
    TopicSpec("route.dvtriage", TopicKind.OUTPUT, PARTITIONS, (m.DvTriageItem, m.Recall)),
    TopicSpec("route.marac", TopicKind.OUTPUT, PARTITIONS, (m.MaracReferral, m.Recall)),
    TopicSpec("route.emergency-duty", TopicKind.OUTPUT, PARTITIONS, (m.EmergencyDutyAlert, m.Recall)),
    TopicSpec("route.cumulative-concern", TopicKind.OUTPUT, PARTITIONS, (m.CumulativeConcernAlert, m.Recall)),
    TopicSpec("feedback.rejections", TopicKind.FEEDBACK, PARTITIONS, (m.Rejection,)),
    TopicSpec(
        "feedback.acknowledgements",
        TopicKind.FEEDBACK,
        PARTITIONS,
        (m.EncompassAcknowledgement, m.FrontDoorDecision, m.TriageItemDiscussed, m.ItemAcknowledgement),
    ),
    TopicSpec("sla.events", TopicKind.FEEDBACK, PARTITIONS, (m.SlaEvent,)),
    TopicSpec("audit", TopicKind.AUDIT, PARTITIONS, (m.AuditRecord,)),
    TopicSpec("deadletter", TopicKind.DEAD_LETTER, 1, (m.DeadLetter,)),
    TopicSpec("reference.schools", TopicKind.STATE, 1),
)


def catalogue(prefix: str) -> Catalogue:
    """The catalogue for a topic-name prefix."""
    return Catalogue(prefix=prefix, specs=_SPECS)
