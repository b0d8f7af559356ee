"""Rules that need context beyond one record: the sending agency's topic and the current instant."""

from __future__ import annotations

from datetime import datetime

from schemas.models import AGENCY_BODIES, AgencyType, Record

__all__ = ["notification_errors"]


def notification_errors(notification: Record, agency: AgencyType, now: datetime) -> list[tuple[str, str]]:
    """(field path, rule) pairs: the body must belong to the agency, and no instant may be in the future."""
    errors: list[tuple[str, str]] = []
    bodies = AGENCY_BODIES.get(agency, ())
    if type(notification) not in bodies:
        kinds = ", ".join(t.__name__ for t in bodies)
        errors.append(("kind", f"must be one of {kinds} for agency {agency.value}"))
        return errors
    envelope = notification.envelope  # type: ignore[attr-defined]
    if envelope.source.agency_type is not agency:
        errors.append(("envelope.source.agency_type", f"must be {agency.value} on this agency's topic"))
    errors.extend(envelope.check_not_future(now))
    return errors
