"""The default `broker.routing.DeadlineCalculator`: broker.deadline's functions keyed by authority code."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time

from broker.authority import authority_or_default
from broker.deadline import (
    Deadline,
    dvtriage_deadline,
    encompass_deadline,
    frontdoor_deadline,
    is_out_of_hours,
)

__all__ = ["DefaultDeadlines"]


@dataclass(frozen=True)
class DefaultDeadlines:
    """Deadlines from each authority's configuration (defaults for an unconfigured well-formed code)."""

    def encompass(self, reported: datetime, authority_code: str, school_start: time | None) -> Deadline:
        """First school-day start strictly after `reported` in the school's authority calendar."""
        return encompass_deadline(reported, authority_or_default(authority_code), school_start)

    def frontdoor(self, received: datetime, authority_code: str, rag: str | None) -> Deadline:
        """Front door decision due: one working day, or shorter for a RAG rating."""
        return frontdoor_deadline(received, authority_or_default(authority_code), rag)

    def dvtriage(self, received: datetime, authority_code: str) -> Deadline:
        """Start of the next DV triage meeting whose cut-off is after receipt."""
        return dvtriage_deadline(received, authority_or_default(authority_code))

    def out_of_hours(self, instant: datetime, authority_code: str) -> bool:
        """True outside the authority's office hours."""
        return is_out_of_hours(instant, authority_or_default(authority_code))
