"""The intake topics agencies publish to: part of the public contract, so producers need not import the broker.

broker.topics holds the whole topic catalogue; its intake names must equal these (a test checks it).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from schemas.models import AGENCY_BODIES, AgencyType, Record

__all__ = ["INTAKE_TOPICS", "intake_records", "intake_topic"]

INTAKE_TOPICS: Mapping[AgencyType, str] = MappingProxyType(
    {
        AgencyType.POLICE: "intake.police",
        AgencyType.HEALTH: "intake.health",
        AgencyType.PROBATION: "intake.probation",
        AgencyType.YOUTH_JUSTICE: "intake.youth-justice",
    }
)


def intake_topic(prefix: str, agency: AgencyType) -> str:
    """Full name of an agency type's intake topic, e.g. `mash.intake.police`."""
    return f"{prefix}.{INTAKE_TOPICS[agency]}"


def intake_records(prefix: str) -> dict[str, tuple[type[Record], ...]]:
    """Full intake topic name -> the notification kinds it carries (what a producer's codec is prepared for)."""
    return {intake_topic(prefix, agency): AGENCY_BODIES[agency] for agency in INTAKE_TOPICS}
