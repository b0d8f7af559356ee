"""Per-local-authority configuration: office hours, DV triage meeting, school start, front door limits.

All times here are local wall times in Europe/London (naive `time` values); the deadline functions
turn them into instants.  Three authorities (the seeds') are configured; any other well-formed ONS
code is unknown to `authority()` (the CLI wants a clear error) but gets the defaults from
`authority_or_default()` (the stream must never hold a notification back for want of configuration).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import time, timedelta
from types import MappingProxyType

from broker.errors import BrokerError
from schemas.codes import ONS_AUTHORITY_RULE, ONS_SHAPE, is_authority_code

__all__ = [
    "AUTHORITIES",
    "AuthorityConfig",
    "UnknownAuthority",
    "authority",
    "authority_or_default",
    "is_ons_code",
]

_MONDAY_TO_FRIDAY = frozenset(range(5))
UNCONFIGURED = "unconfigured"


class UnknownAuthority(BrokerError):
    """The ONS code is malformed, or well-formed but not a configured local authority."""


def is_ons_code(code: str) -> bool:
    """True for a well-formed children's services authority code (the contract's pattern, schemas.codes)."""
    return is_authority_code(code)


def _check_code(code: str) -> None:
    """UnknownAuthority naming the rule when `code` is not a well-formed authority code (never echoes it)."""
    if ONS_SHAPE.fullmatch(code) is None:
        raise UnknownAuthority("authority code must be an ONS code: E or W followed by 8 digits")
    if not is_authority_code(code):
        raise UnknownAuthority(f"authority code {ONS_AUTHORITY_RULE}")


@dataclass(frozen=True)
class AuthorityConfig:
    """How one local authority runs its front door, DV triage, emergency duty and schools."""

    ons_code: str
    name: str
    # Office hours (emergency duty route): open on `office_weekdays` that are working days.
    office_open: time = time(9, 0)
    office_close: time = time(17, 0)
    office_weekdays: frozenset[int] = _MONDAY_TO_FRIDAY
    # Daily Domestic Violence Triage: meeting start and the cut-off for items to make that meeting.
    dv_triage_meeting: time = time(9, 30)
    dv_triage_cutoff: time = time(9, 0)
    dv_triage_weekdays: frozenset[int] = _MONDAY_TO_FRIDAY
    # Operation Encompass: default school-day start when the school states none.
    school_start: time = time(9, 0)
    encompass_nursery_opt_in: bool = False
    # Front door decision: default one working day ("same local time on the next working day");
    # RAG ratings listed here shorten it to a number of working hours inside the working-hours window.
    frontdoor_working_hours_start: time = time(9, 0)
    frontdoor_working_hours_end: time = time(17, 0)
    frontdoor_rag_working_hours: tuple[tuple[str, int], ...] = (("RED", 4),)

    def __post_init__(self) -> None:
        if not is_ons_code(self.ons_code):
            raise UnknownAuthority(f"ons_code: {ONS_AUTHORITY_RULE}")
        if not self.office_open < self.office_close:
            raise ValueError("office_open must be before office_close")
        if not self.frontdoor_working_hours_start < self.frontdoor_working_hours_end:
            raise ValueError("frontdoor_working_hours_start must be before frontdoor_working_hours_end")
        if self.dv_triage_cutoff > self.dv_triage_meeting:
            raise ValueError("dv_triage_cutoff must not be after dv_triage_meeting")
        for name in ("office_open", "office_close", "dv_triage_meeting", "dv_triage_cutoff", "school_start"):
            if getattr(self, name).tzinfo is not None:
                raise ValueError(f"{name} must be a local wall time without tzinfo")
        for rag, hours in self.frontdoor_rag_working_hours:
            if rag != rag.upper() or hours <= 0:
                raise ValueError("frontdoor_rag_working_hours: ratings upper-case, hours positive")

    def rag_limit(self, rag: str | None) -> timedelta | None:
        """Working time allowed for a RAG rating, or None when the default (one working day) applies."""
        if rag is None:
            return None
        wanted = rag.strip().upper()
        for name, hours in self.frontdoor_rag_working_hours:
            if name == wanted:
                return timedelta(hours=hours)
        return None


AUTHORITIES: Mapping[str, AuthorityConfig] = MappingProxyType(
    {
        config.ons_code: config
        for config in (
            AuthorityConfig(ons_code="E06000051", name="Shropshire"),
            AuthorityConfig(ons_code="E06000059", name="Dorset"),
            AuthorityConfig(ons_code="E10000013", name="Gloucestershire"),
        )
    }
)


def authority(code: str) -> AuthorityConfig:
    """The configured authority for `code`; UnknownAuthority if malformed or not configured."""
    _check_code(code)
    try:
        return AUTHORITIES[code]
    except KeyError:
        raise UnknownAuthority(f"authority {code} is not configured") from None


def authority_or_default(code: str) -> AuthorityConfig:
    """The configured authority, or the defaults under the name 'unconfigured' for a well-formed code."""
    _check_code(code)
    return AUTHORITIES.get(code) or AuthorityConfig(ons_code=code, name=UNCONFIGURED)
