"""Working days, bank holidays and per-authority school calendars (broker.calendar)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.authority import AUTHORITIES, authority
from broker.calendar import (
    is_bank_holiday,
    is_working_day,
    next_working_day,
    school_calendar,
    school_day,
)
from tests.broker.oracle import oracle_file, oracle_school_day, oracle_working_day

SEEDED = ("E06000051", "E06000059", "E10000013")
UNCONFIGURED = "E09000033"


# ---- independent oracle (tests/broker/oracle.py): only `holidays` and the raw data files -------------


# ---- bank holidays and working days --------------------------------------------------------------------


def test_easter_2026_is_good_friday_3_april_and_easter_monday_6_april() -> None:
    """Good Friday (3 Apr 2026) and Easter Monday (6 Apr 2026) are bank holidays; the days around are not."""
    assert is_bank_holiday(date(2026, 4, 3)) and is_bank_holiday(date(2026, 4, 6))
    assert not is_working_day(date(2026, 4, 3)) and not is_working_day(date(2026, 4, 6))
    assert is_working_day(date(2026, 4, 2)) and is_working_day(date(2026, 4, 7))


def test_christmas_2026_substitute_boxing_day_is_monday_28_december() -> None:
    """Boxing Day 2026 falls on a Saturday, so Monday 28 Dec 2026 is the substitute bank holiday."""
    assert is_bank_holiday(date(2026, 12, 25))
    assert is_bank_holiday(date(2026, 12, 28))
    assert not is_working_day(date(2026, 12, 28))
    assert is_working_day(date(2026, 12, 24)) and is_working_day(date(2026, 12, 29))


def test_christmas_2027_both_substitute_days() -> None:
    """Christmas 2027 falls on a weekend: Monday 27 and Tuesday 28 Dec 2027 are substitute bank holidays."""
    assert not is_working_day(date(2027, 12, 27))
    assert not is_working_day(date(2027, 12, 28))
    assert is_working_day(date(2027, 12, 29))


def test_next_working_day_skips_christmas_weekend_and_substitute() -> None:
    """The working day after Thu 24 Dec 2026 is Tue 29 Dec (Fri 25, weekend, substitute Mon 28 skipped)."""
    assert next_working_day(date(2026, 12, 24)) == date(2026, 12, 29)
    assert next_working_day(date(2026, 4, 2)) == date(2026, 4, 7)
    assert next_working_day(date(2026, 3, 9)) == date(2026, 3, 10)


@settings(max_examples=200, deadline=None)
@given(st.dates(min_value=date(2024, 1, 1), max_value=date(2029, 12, 31)))
def test_is_working_day_matches_day_by_day_oracle(day: date) -> None:
    """is_working_day equals Mon-Fri minus the `holidays` England and Wales bank holidays."""
    assert is_working_day(day) == oracle_working_day(day)


@settings(max_examples=200, deadline=None)
@given(st.dates(min_value=date(2024, 1, 1), max_value=date(2029, 12, 31)))
def test_next_working_day_matches_day_by_day_walk(day: date) -> None:
    """next_working_day is the first day strictly after, walking day by day, that the oracle calls working."""
    expected = day + timedelta(days=1)
    while not oracle_working_day(expected):
        expected += timedelta(days=1)
    assert next_working_day(day) == expected


# ---- school calendars ----------------------------------------------------------------------------------


def test_half_term_is_not_a_school_day_and_verified() -> None:
    """Shropshire's February 2026 half term is closed (verified); the Monday after it is a school day."""
    assert school_day(date(2026, 2, 16), "E06000051") == (False, True)
    assert school_day(date(2026, 2, 20), "E06000051") == (False, True)
    assert school_day(date(2026, 2, 23), "E06000051") == (True, True)


def test_authorities_differ_where_their_calendars_differ() -> None:
    """Tue 2 Sep 2025 is a Shropshire school day but still summer holiday in Dorset."""
    assert school_day(date(2025, 9, 2), "E06000051") == (True, True)
    assert school_day(date(2025, 9, 2), "E06000059") == (False, True)


def test_school_day_accepts_authority_config_or_code() -> None:
    """school_day gives the same answer for an AuthorityConfig and its ONS code."""
    assert school_day(date(2026, 3, 10), authority("E06000059")) == school_day(date(2026, 3, 10), "E06000059")


def test_bank_holiday_and_weekend_inside_coverage_are_not_school_days() -> None:
    """Inside coverage, weekends and bank holidays (May Day 4 May 2026) are verified non-school days."""
    assert school_day(date(2026, 5, 4), "E10000013") == (False, True)
    assert school_day(date(2026, 3, 14), "E10000013") == (False, True)


def test_outside_coverage_falls_back_to_working_days_unverified() -> None:
    """After the file's coverage (from 1 Sep 2026) school days are working days, marked unverified."""
    assert school_day(date(2026, 8, 28), "E06000051") == (False, True)  # last week of coverage: summer holiday
    assert school_day(date(2026, 9, 1), "E06000051") == (True, False)
    assert school_day(date(2026, 12, 29), "E06000059") == (True, False)  # no guessed Christmas holiday
    assert school_day(date(2026, 12, 28), "E06000059") == (False, False)  # substitute bank holiday
    assert school_day(date(2027, 9, 6), "E06000051") == (True, False)
    assert school_day(date(2027, 12, 27), "E06000051") == (False, False)
    assert school_day(date(2025, 8, 29), "E06000059") == (True, False)


def test_authority_without_file_falls_back_unverified() -> None:
    """An authority with no calendar file uses working days and is unverified."""
    assert school_calendar(UNCONFIGURED) is None
    assert school_day(date(2026, 2, 16), UNCONFIGURED) == (True, False)
    assert school_day(date(2026, 4, 3), UNCONFIGURED) == (False, False)


def academic_years(code: str) -> list[date]:
    """The 1 September starts of the academic years the raw file's coverage spans, read from the file."""
    data = oracle_file(code)
    assert data is not None
    covers_from, covers_to, _ = data
    firsts = []
    first = covers_from
    while first <= covers_to:
        firsts.append(first)
        first = first.replace(year=first.year + 1)
    return firsts


@pytest.mark.parametrize("code", SEEDED)
def test_each_seeded_authority_has_a_well_formed_calendar(code: str) -> None:
    """Each seed authority's file loads, names an https source, covers whole academic years from 2025/26, is ordered."""
    calendar = school_calendar(code)
    assert calendar is not None and calendar.authority == code and code in AUTHORITIES
    assert calendar.source.startswith("https://")
    assert calendar.covers_from <= date(2025, 9, 1) and (calendar.covers_from.month, calendar.covers_from.day) == (9, 1)
    assert (calendar.covers_to.month, calendar.covers_to.day) == (8, 31)
    assert calendar.covers_to >= date(2026, 8, 31)
    firsts = academic_years(code)
    assert firsts[0] == calendar.covers_from
    assert firsts[-1].replace(year=firsts[-1].year + 1) - timedelta(days=1) == calendar.covers_to
    for earlier, later in zip(calendar.closures, calendar.closures[1:], strict=False):
        assert earlier.end < later.start, "closures must be sorted and not overlap"
    assert all(closure.label for closure in calendar.closures)
    assert all(calendar.covers(closure.start) and calendar.covers(closure.end) for closure in calendar.closures)


@pytest.mark.parametrize("code", SEEDED)
def test_each_academic_year_has_a_plausible_number_of_pupil_days(code: str) -> None:
    """Each academic year each file covers has 185-195 pupil days, all verified (catches transcription slips)."""
    firsts = academic_years(code)
    assert firsts, "the file must cover at least one academic year"
    for first in firsts:
        end = first.replace(year=first.year + 1)
        days = [first + timedelta(days=n) for n in range((end - first).days)]
        answers = [school_day(day, code) for day in days]
        assert all(answer.verified for answer in answers), f"{first.year}/{end.year % 100} not fully covered"
        pupil_days = sum(1 for answer in answers if answer.is_school_day)
        assert 185 <= pupil_days <= 195, f"{first.year}/{end.year % 100}: {pupil_days} pupil days"


@settings(max_examples=150, deadline=None)
@given(
    st.dates(min_value=date(2025, 8, 1), max_value=date(2027, 10, 31)),
    st.sampled_from((*SEEDED, UNCONFIGURED)),
)
def test_school_day_matches_oracle_from_raw_files(day: date, code: str) -> None:
    """school_day equals the oracle built from `holidays` and the raw JSON closures, including fallback."""
    assert tuple(school_day(day, code)) == oracle_school_day(day, code)
