"""Working days and school days (England and Wales), as pure functions of a date.

Bank holidays come from the `holidays` library (GB, England subdivision, which England and Wales share),
substitute days included.  School calendars are packaged data files, one per local authority
(`broker/data/school_holidays/<ONS code>.json`), each naming its source and the dates it covers; they are
read once, on first use.  A date outside a file's coverage, or an authority without a file, falls back to
working days and is reported as unverified: a deadline is never held back for want of a calendar.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from importlib import resources
from typing import Any, NamedTuple

import holidays

from broker.authority import AuthorityConfig, is_ons_code
from broker.errors import ConfigurationError

__all__ = [
    "Closure",
    "SchoolCalendar",
    "SchoolDay",
    "is_bank_holiday",
    "is_working_day",
    "next_working_day",
    "school_calendar",
    "school_day",
]

_DATA_DIR = "data/school_holidays"
_BANK_HOLIDAYS = holidays.country_holidays("GB", subdiv="ENG")


def is_bank_holiday(day: date) -> bool:
    """True on an England and Wales bank holiday (substitute days included)."""
    return day in _BANK_HOLIDAYS


def is_working_day(day: date) -> bool:
    """Monday to Friday and not an England and Wales bank holiday."""
    return day.weekday() < 5 and not is_bank_holiday(day)


def next_working_day(day: date) -> date:
    """The first working day strictly after `day`."""
    candidate = day + timedelta(days=1)
    while not is_working_day(candidate):
        candidate += timedelta(days=1)
    return candidate


@dataclass(frozen=True)
class Closure:
    """A run of days (inclusive) on which the authority's schools are closed to pupils."""

    start: date
    end: date
    label: str

    def __contains__(self, day: object) -> bool:
        return isinstance(day, date) and self.start <= day <= self.end


@dataclass(frozen=True)
class SchoolCalendar:
    """One authority's published school holidays, closure days, and the dates they cover."""

    authority: str
    source: str
    retrieved: date
    covers_from: date
    covers_to: date
    closures: tuple[Closure, ...]

    def covers(self, day: date) -> bool:
        """True when the file states whether `day` is a school day."""
        return self.covers_from <= day <= self.covers_to

    def closed(self, day: date) -> bool:
        """True when `day` falls in one of the listed closures."""
        return any(day in closure for closure in self.closures)


class SchoolDay(NamedTuple):
    """Whether a date is a school day, and whether that came from the authority's own calendar."""

    is_school_day: bool
    verified: bool


def _parse_date(raw: Any, where: str) -> date:
    if not isinstance(raw, str):
        raise ConfigurationError(f"{where}: must be an ISO date string")
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ConfigurationError(f"{where}: must be an ISO date (YYYY-MM-DD)") from None


def _parse_calendar(code: str, raw: Any) -> SchoolCalendar:
    where = f"school_holidays/{code}.json"
    if not isinstance(raw, dict):
        raise ConfigurationError(f"{where}: must be a JSON object")
    if raw.get("authority") != code:
        raise ConfigurationError(f"{where}: authority must equal the file name")
    source = raw.get("source")
    if not isinstance(source, str) or not source.startswith("https://"):
        raise ConfigurationError(f"{where}: source must be an https URL")
    coverage = raw.get("coverage")
    if not isinstance(coverage, dict):
        raise ConfigurationError(f"{where}: coverage must be an object with from and to")
    covers_from = _parse_date(coverage.get("from"), f"{where}: coverage.from")
    covers_to = _parse_date(coverage.get("to"), f"{where}: coverage.to")
    if covers_from > covers_to:
        raise ConfigurationError(f"{where}: coverage.from must not be after coverage.to")
    items = raw.get("closures")
    if not isinstance(items, list):
        raise ConfigurationError(f"{where}: closures must be a list")
    closures: list[Closure] = []
    for index, item in enumerate(items):
        at = f"{where}: closures[{index}]"
        if not isinstance(item, dict) or not isinstance(item.get("label"), str):
            raise ConfigurationError(f"{at}: must be an object with from, to and label")
        start = _parse_date(item.get("from"), f"{at}.from")
        closure = Closure(start, _parse_date(item.get("to"), f"{at}.to"), item["label"])
        if closure.start > closure.end:
            raise ConfigurationError(f"{at}: from must not be after to")
        if closure.start < covers_from or closure.end > covers_to:
            raise ConfigurationError(f"{at}: must lie inside coverage")
        closures.append(closure)
    return SchoolCalendar(
        authority=code,
        source=source,
        retrieved=_parse_date(raw.get("retrieved"), f"{where}: retrieved"),
        covers_from=covers_from,
        covers_to=covers_to,
        closures=tuple(closures),
    )


@cache
def school_calendar(code: str) -> SchoolCalendar | None:
    """The packaged school calendar for an authority, or None when there is no file for it."""
    if not is_ons_code(code):
        return None
    resource = resources.files("broker").joinpath(_DATA_DIR).joinpath(f"{code}.json")
    if not resource.is_file():
        return None
    try:
        raw = json.loads(resource.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigurationError(f"school_holidays/{code}.json: not valid JSON ({exc.msg})") from None
    return _parse_calendar(code, raw)


def school_day(day: date, authority: AuthorityConfig | str) -> SchoolDay:
    """Whether `day` is a school day in the authority's schools (Mon-Fri, not a bank holiday, not closed).

    Outside the calendar file's coverage, or with no file, answers whether it is a working day, unverified.
    """
    code = authority.ons_code if isinstance(authority, AuthorityConfig) else authority
    calendar = school_calendar(code)
    if calendar is None or not calendar.covers(day):
        return SchoolDay(is_working_day(day), verified=False)
    return SchoolDay(is_working_day(day) and not calendar.closed(day), verified=True)
