"""Deadlines for Encompass notices, front door decisions and DV triage items; emergency-duty office hours.

Pure functions: every instant is passed in (no clock reads), must carry a UTC offset, and the answer is a
UTC instant.  Rules are applied to Europe/London wall time, so they survive the clock changes:

* a local wall time that does not exist (the spring-forward gap, 01:00-02:00 on the last Sunday of March)
  is moved forward by the length of the gap (01:30 -> 02:30 BST); a wall time that happens twice (the
  autumn fall-back hour) means its first occurrence (BST).  This is PEP 495 `fold=0`.  With the defaults
  neither case arises (UK clocks change on Sundays at 01:00 UTC, and Sundays are never working days), but
  per-authority or per-school times are configurable, so the rule is fixed here.
* working time is counted in wall-clock hours on working days, so "one working day" is always the same
  local time on the next working day, whatever the UTC offset did in between.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from broker.authority import AuthorityConfig
from broker.calendar import is_working_day, school_day
from broker.errors import BrokerError, ConfigurationError

__all__ = [
    "LONDON",
    "Deadline",
    "InvalidRag",
    "NaiveInstantError",
    "dvtriage_deadline",
    "encompass_deadline",
    "frontdoor_deadline",
    "is_out_of_hours",
]

LONDON = ZoneInfo("Europe/London")
RAG_RATINGS = frozenset({"RED", "AMBER", "GREEN"})
_SEARCH_DAYS = 370  # more than any school holiday or run of non-working days


class NaiveInstantError(BrokerError, ValueError):
    """An instant was given without a UTC offset."""

    def __init__(self, argument: str) -> None:
        super().__init__(f"{argument} must carry a UTC offset")
        self.argument = argument


class InvalidRag(BrokerError, ValueError):
    """A RAG rating other than RED, AMBER or GREEN (or one the authority configures)."""


@dataclass(frozen=True)
class Deadline:
    """When something is due (UTC), whether the calendar behind it is verified, and the rule applied.

    `unverified_days` lists the local dates examined that fell back to working days because the school
    calendar did not cover them; `verified` is False exactly when it is non-empty.
    """

    at: datetime
    verified: bool
    rule: str
    unverified_days: tuple[date, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.at.utcoffset() != timedelta(0) or self.at.tzinfo is not UTC:
            raise ValueError("Deadline.at must be a UTC instant")
        if self.verified == bool(self.unverified_days):
            raise ValueError("Deadline.verified must be False exactly when unverified_days is non-empty")

    @property
    def local(self) -> datetime:
        """The deadline in Europe/London time."""
        return self.at.astimezone(LONDON)


def _require_aware(value: datetime, argument: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise NaiveInstantError(argument)


def _require_wall_time(value: time, argument: str) -> None:
    if value.tzinfo is not None:
        raise ValueError(f"{argument} must be a local wall time without tzinfo")


def _wall_to_utc(wall: datetime) -> datetime:
    """A naive Europe/London wall time as a UTC instant (gap: moved forward; repeated hour: first one)."""
    return wall.replace(tzinfo=LONDON, fold=0).astimezone(UTC)


def _local_wall(instant: datetime) -> datetime:
    return instant.astimezone(LONDON).replace(tzinfo=None)


def _hhmm(value: time) -> str:
    return value.strftime("%H:%M")


def encompass_deadline(
    reported: datetime, authority: AuthorityConfig, school_start: time | None = None
) -> Deadline:
    """The first school-day start strictly after `reported`, in the school's local authority calendar.

    `school_start` is the school's own start time (local); the authority's default when None.  Unverified
    when any day examined, from the reported local date to the answer, fell back to working days.
    """
    _require_aware(reported, "reported")
    start = authority.school_start if school_start is None else school_start
    _require_wall_time(start, "school_start")
    day = _local_wall(reported).date()
    unverified: list[date] = []
    for _ in range(_SEARCH_DAYS):
        answer = school_day(day, authority)
        if not answer.verified:
            unverified.append(day)
        if answer.is_school_day:
            at = _wall_to_utc(datetime.combine(day, start))
            if at > reported:
                return Deadline(
                    at=at,
                    verified=not unverified,
                    rule=f"encompass: first school-day start ({_hhmm(start)} Europe/London) after reported",
                    unverified_days=tuple(unverified),
                )
        day += timedelta(days=1)
    raise ConfigurationError(f"no school day within {_SEARCH_DAYS} days for authority {authority.ons_code}")


def _add_working_time(start: datetime, amount: timedelta, window: tuple[time, time] | None) -> datetime:
    """Naive wall time `amount` of working time after `start`, counting only inside `window` on working days.

    `window` None means the whole day (00:00-24:00).  When the amount is used up exactly at a window's
    close, the close is the answer.
    """
    remaining = amount
    cursor = start
    for _ in range(_SEARCH_DAYS):
        day = cursor.date()
        if is_working_day(day):
            if window is None:
                opens = datetime.combine(day, time(0))
                closes = datetime.combine(day + timedelta(days=1), time(0))
            else:
                opens, closes = datetime.combine(day, window[0]), datetime.combine(day, window[1])
            cursor = max(cursor, opens)
            if cursor < closes:
                available = closes - cursor
                if remaining <= available:
                    return cursor + remaining
                remaining -= available
        cursor = datetime.combine(day + timedelta(days=1), time(0))
    raise ConfigurationError(f"no working time within {_SEARCH_DAYS} days")


def frontdoor_deadline(received: datetime, authority: AuthorityConfig, rag: str | None = None) -> Deadline:
    """When the front door must decide: one working day after receipt, or less for a shortening RAG rating.

    One working day: the same local time on the next working day when received on a working day; received
    on a weekend or bank holiday, the clock starts at 00:00 of the next working day, so the decision is due
    at the end of that day (00:00 the day after).  This keeps the deadline monotonic in receipt time.
    RED (by default): 4 working hours inside 09:00-17:00 on working days, counted from the next opening when
    received out of hours; AMBER, GREEN or no rating: the default.
    """
    _require_aware(received, "received")
    wanted = None if rag is None else rag.strip().upper()
    configured = {name for name, _ in authority.frontdoor_rag_working_hours}
    if wanted is not None and wanted not in RAG_RATINGS | configured:
        raise InvalidRag("rag must be RED, AMBER or GREEN")
    limit = authority.rag_limit(wanted)
    start = _local_wall(received)
    if limit is None:
        wall = _add_working_time(start, timedelta(days=1), None)
        rule = "frontdoor: one working day (same local time on the next working day)"
    else:
        opens, closes = authority.frontdoor_working_hours_start, authority.frontdoor_working_hours_end
        wall = _add_working_time(start, limit, (opens, closes))
        hours = limit / timedelta(hours=1)
        rule = f"frontdoor: {wanted} {hours:g} working hours ({_hhmm(opens)}-{_hhmm(closes)} working days)"
    return Deadline(at=_wall_to_utc(wall), verified=True, rule=rule)


def dvtriage_deadline(received: datetime, authority: AuthorityConfig) -> Deadline:
    """The start of the next daily DV triage meeting whose cut-off is strictly after receipt."""
    _require_aware(received, "received")
    day = _local_wall(received).date()
    for _ in range(_SEARCH_DAYS):
        if day.weekday() in authority.dv_triage_weekdays and is_working_day(day):
            cutoff = _wall_to_utc(datetime.combine(day, authority.dv_triage_cutoff))
            if cutoff > received:
                meeting = authority.dv_triage_meeting
                return Deadline(
                    at=_wall_to_utc(datetime.combine(day, meeting)),
                    verified=True,
                    rule=(
                        f"dvtriage: next meeting at {_hhmm(meeting)} whose "
                        f"{_hhmm(authority.dv_triage_cutoff)} cut-off is after receipt"
                    ),
                )
        day += timedelta(days=1)
    raise ConfigurationError(f"no DV triage meeting within {_SEARCH_DAYS} days for {authority.ons_code}")


def is_out_of_hours(instant: datetime, authority: AuthorityConfig) -> bool:
    """True outside the authority's office hours (default Mon-Fri 09:00-17:00 on working days).

    Opening is inclusive and closing exclusive: 09:00 is in hours, 17:00 is out of hours.
    """
    _require_aware(instant, "instant")
    local = _local_wall(instant)
    in_hours = (
        local.weekday() in authority.office_weekdays
        and is_working_day(local.date())
        and authority.office_open <= local.time() < authority.office_close
    )
    return not in_hours
