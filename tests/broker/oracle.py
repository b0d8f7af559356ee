"""Independent oracle for calendar and deadline tests: only `holidays` and the raw data files, read
directly, never the code under test."""

from __future__ import annotations

import json
from datetime import date, timedelta
from functools import cache
from pathlib import Path

import holidays

__all__ = ["DATA", "ORACLE_BANK_HOLIDAYS", "oracle_file", "oracle_school_day", "oracle_working_day"]

DATA = Path(__file__).resolve().parents[2] / "broker" / "data" / "school_holidays"
ORACLE_BANK_HOLIDAYS = holidays.country_holidays("GB", subdiv="ENG", years=range(2024, 2030))


def oracle_working_day(day: date) -> bool:
    """Mon-Fri and not an England bank holiday."""
    return day.weekday() < 5 and day not in ORACLE_BANK_HOLIDAYS


@cache
def oracle_file(code: str) -> tuple[date, date, frozenset[date]] | None:
    """(coverage from, coverage to, closed days) of an authority's file, or None without one."""
    path = DATA / f"{code}.json"
    if not path.exists():
        return None
    raw = json.loads(path.read_text())
    closed: set[date] = set()
    for item in raw["closures"]:
        day, end = date.fromisoformat(item["from"]), date.fromisoformat(item["to"])
        while day <= end:
            closed.add(day)
            day += timedelta(days=1)
    cov = raw["coverage"]
    return date.fromisoformat(cov["from"]), date.fromisoformat(cov["to"]), frozenset(closed)


def oracle_school_day(day: date, code: str) -> tuple[bool, bool]:
    """(school day?, verified?) for a date in an authority."""
    data = oracle_file(code)
    if data is None or not data[0] <= day <= data[1]:
        return oracle_working_day(day), False
    return oracle_working_day(day) and day not in data[2], True
