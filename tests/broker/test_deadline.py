"""Encompass, front door and DV triage deadlines; emergency-duty office hours (broker.deadline)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from broker.authority import AuthorityConfig, authority, authority_or_default
from broker.deadline import (
    Deadline,
    InvalidRag,
    NaiveInstantError,
    dvtriage_deadline,
    encompass_deadline,
    frontdoor_deadline,
    is_out_of_hours,
)
from tests.broker.oracle import oracle_school_day, oracle_working_day

LONDON = ZoneInfo("Europe/London")
SHROPSHIRE, DORSET, GLOUCESTERSHIRE = (authority(c) for c in ("E06000051", "E06000059", "E10000013"))
UNCONFIGURED = authority_or_default("E09000033")  # well-formed, no config, no calendar file
MINUTE = timedelta(minutes=1)


def utc(text: str) -> datetime:
    """An aware instant from ISO text (any offset), for readable expectations."""
    value = datetime.fromisoformat(text)
    assert value.tzinfo is not None
    return value.astimezone(UTC)


# ---- independent oracle: walks UTC minute by minute; inputs are `holidays` and the raw data files -------


def first_minute_after(instant: datetime) -> datetime:
    return instant.astimezone(UTC).replace(second=0, microsecond=0) + MINUTE


def oracle_encompass(reported: datetime, code: str, start: time) -> tuple[datetime, bool]:
    """First UTC minute strictly after `reported` whose London wall time is `start` on a school day.

    Verified when every local date from the reported date to the answer's date came from the file.
    """
    t = first_minute_after(reported)
    while True:
        local = t.astimezone(LONDON)
        if local.time() == start and oracle_school_day(local.date(), code)[0]:
            break
        t += MINUTE
    day, last = reported.astimezone(LONDON).date(), t.astimezone(LONDON).date()
    verified = True
    while day <= last:
        verified = verified and oracle_school_day(day, code)[1]
        day += timedelta(days=1)
    return t, verified


def oracle_dvtriage(received: datetime) -> datetime:
    """First UTC minute at 09:30 London on a working weekday whose 09:00 cut-off is after `received`."""
    t = received.astimezone(UTC).replace(second=0, microsecond=0)
    while True:
        local = t.astimezone(LONDON)
        if (
            local.time() == time(9, 30)
            and oracle_working_day(local.date())
            and t - timedelta(minutes=30) > received
        ):
            return t
        t += MINUTE


def oracle_frontdoor(received: datetime, needed: timedelta, window: tuple[time, time] | None) -> datetime:
    """Count UTC minutes in working time (optionally inside a local window) until `needed` is met."""
    t = received.astimezone(UTC)
    counted = timedelta(0)
    while counted < needed:
        local = t.astimezone(LONDON)
        if oracle_working_day(local.date()) and (window is None or window[0] <= local.time() < window[1]):
            counted += MINUTE
        t += MINUTE
    return t


# ---- fixed cases: Encompass ----------------------------------------------------------------------------


def test_encompass_friday_evening_is_monday_0900() -> None:
    """A Friday-evening incident in term time is due at 09:00 on the Monday."""
    got = encompass_deadline(utc("2026-03-06T19:00:00+00:00"), DORSET)
    assert got == Deadline(utc("2026-03-09T09:00:00+00:00"), True, got.rule)


def test_encompass_report_at_exactly_0900_is_next_school_day() -> None:
    """Reported at exactly 09:00 on a school day: strictly after means the next school day's 09:00."""
    got = encompass_deadline(utc("2026-03-10T09:00:00+00:00"), SHROPSHIRE)
    assert got.at == utc("2026-03-11T09:00:00+00:00")
    one_second_before = encompass_deadline(utc("2026-03-10T08:59:59+00:00"), SHROPSHIRE)
    assert one_second_before.at == utc("2026-03-10T09:00:00+00:00")


def test_encompass_half_term_skips_to_first_day_back() -> None:
    """Reported on the Friday before February half term: due on the Monday after half term."""
    got = encompass_deadline(utc("2026-02-13T18:00:00+00:00"), SHROPSHIRE)
    assert got.at == utc("2026-02-23T09:00:00+00:00") and got.verified


def test_encompass_across_spring_forward_uses_bst_start() -> None:
    """Reported before the 29 Mar 2026 clock change; 09:00 BST on the next school day is 08:00 UTC."""
    got = encompass_deadline(utc("2026-03-28T22:00:00+00:00"), UNCONFIGURED)
    assert got.at == utc("2026-03-30T08:00:00+00:00") and not got.verified
    easter_holiday = encompass_deadline(utc("2026-03-27T18:00:00+00:00"), SHROPSHIRE)
    assert easter_holiday.at == utc("2026-04-13T09:00:00+01:00") and easter_holiday.verified


def test_encompass_across_fall_back_uses_gmt_start() -> None:
    """Across a fall-back: 09:00 GMT after Oct 2025 half term (verified); Oct 2026, past coverage, unverified."""
    got = encompass_deadline(utc("2025-10-24T20:00:00+01:00"), DORSET)  # 26 Oct 2025 change, half term in file
    assert got.at == utc("2025-11-03T09:00:00+00:00") and got.verified
    past_coverage = encompass_deadline(utc("2026-10-23T20:00:00+01:00"), DORSET)  # 25 Oct 2026, no half term
    assert past_coverage.at == utc("2026-10-26T09:00:00+00:00") and not past_coverage.verified
    assert past_coverage.unverified_days == tuple(date(2026, 10, d) for d in range(23, 27))
    fallback = encompass_deadline(utc("2026-10-25T00:30:00+00:00"), UNCONFIGURED)  # inside the repeated hour
    assert fallback.at == utc("2026-10-26T09:00:00+00:00") and not fallback.verified


def test_encompass_christmas_2026_fallback_skips_substitute_day() -> None:
    """Without a calendar, Christmas Eve 2026 evening is due Tue 29 Dec (25th, weekend, substitute 28th)."""
    got = encompass_deadline(utc("2026-12-24T20:00:00+00:00"), UNCONFIGURED)
    assert got.at == utc("2026-12-29T09:00:00+00:00") and not got.verified


def test_encompass_christmas_2025_holiday_in_calendar() -> None:
    """With the LA calendar, Christmas Eve 2025 is due when spring term starts (Dorset 5 Jan, Shropshire 6 Jan)."""
    got = encompass_deadline(utc("2025-12-24T20:00:00+00:00"), DORSET)
    assert got == Deadline(utc("2026-01-05T09:00:00+00:00"), True, got.rule)
    after_pd_day = encompass_deadline(utc("2025-12-24T20:00:00+00:00"), SHROPSHIRE)  # 5 Jan is an LA PD day
    assert after_pd_day == Deadline(utc("2026-01-06T09:00:00+00:00"), True, after_pd_day.rule)


def test_encompass_christmas_2026_past_coverage_falls_back_unverified() -> None:
    """Past Dorset's coverage, Christmas Eve 2026 falls back to working days: due Tue 29 Dec, unverified."""
    got = encompass_deadline(utc("2026-12-24T20:00:00+00:00"), DORSET)
    assert got.at == utc("2026-12-29T09:00:00+00:00")
    assert not got.verified and got.unverified_days == tuple(date(2026, 12, d) for d in range(24, 30))
    assert (got.at, got.verified) == oracle_encompass(utc("2026-12-24T20:00:00+00:00"), "E06000059", time(9))


def test_encompass_school_start_time_is_used() -> None:
    """A school starting 08:45 gets its notice by 08:45 local."""
    got = encompass_deadline(utc("2026-06-09T21:00:00+01:00"), GLOUCESTERSHIRE, time(8, 45))
    assert got.at == utc("2026-06-10T08:45:00+01:00")


def test_encompass_past_coverage_is_unverified_and_names_the_days() -> None:
    """A deadline computed past the calendar file's coverage is unverified and lists the fallback days."""
    got = encompass_deadline(utc("2026-08-31T20:00:00+01:00"), SHROPSHIRE)  # last covered day (bank holiday)
    assert got.at == utc("2026-09-01T09:00:00+01:00")
    assert not got.verified and got.unverified_days == (date(2026, 9, 1),)
    later = encompass_deadline(utc("2026-09-03T20:00:00+01:00"), SHROPSHIRE)  # Thursday, past coverage
    assert later.at == utc("2026-09-04T09:00:00+01:00")
    assert not later.verified and later.unverified_days == (date(2026, 9, 3), date(2026, 9, 4))


# ---- fixed cases: front door ---------------------------------------------------------------------------


def test_frontdoor_is_same_local_time_next_working_day_across_spring_forward() -> None:
    """Friday 18:00 GMT before the clock change is due Monday 18:00 BST (71 real hours later)."""
    got = frontdoor_deadline(utc("2026-03-27T18:00:00+00:00"), SHROPSHIRE, None)
    assert got.at == utc("2026-03-30T18:00:00+01:00")
    assert got.verified


def test_frontdoor_across_fall_back() -> None:
    """Friday 10:00 BST before the 25 Oct 2026 change is due Monday 10:00 GMT."""
    got = frontdoor_deadline(utc("2026-10-23T10:00:00+01:00"), DORSET, None)
    assert got.at == utc("2026-10-26T10:00:00+00:00")


def test_frontdoor_over_easter_and_christmas() -> None:
    """Maundy Thursday is due Tuesday after Easter; Christmas Eve 2026 is due Tue 29 Dec."""
    assert frontdoor_deadline(utc("2026-04-02T11:00:00+01:00"), SHROPSHIRE).at == utc(
        "2026-04-07T11:00:00+01:00"
    )
    assert frontdoor_deadline(utc("2026-12-24T16:00:00+00:00"), SHROPSHIRE).at == utc(
        "2026-12-29T16:00:00+00:00"
    )


def test_frontdoor_received_on_weekend_is_due_at_end_of_next_working_day() -> None:
    """Received on a Saturday, the clock starts Monday 00:00 and the decision is due at the end of Monday."""
    got = frontdoor_deadline(utc("2026-03-07T10:00:00+00:00"), DORSET, None)
    assert got.at == utc("2026-03-10T00:00:00+00:00")


@pytest.mark.parametrize(
    ("received", "due"),
    [
        ("2026-03-09T13:00:00+00:00", "2026-03-09T17:00:00+00:00"),  # all four hours the same afternoon
        ("2026-03-09T16:00:00+00:00", "2026-03-10T12:00:00+00:00"),  # one hour today, three tomorrow
        ("2026-03-09T17:00:00+00:00", "2026-03-10T13:00:00+00:00"),  # at closing: from next opening
        ("2026-03-09T07:00:00+00:00", "2026-03-09T13:00:00+00:00"),  # before opening
        ("2026-03-06T19:00:00+00:00", "2026-03-09T13:00:00+00:00"),  # Friday evening
        ("2026-04-02T15:00:00+01:00", "2026-04-07T11:00:00+01:00"),  # over Easter
    ],
)
def test_frontdoor_red_is_four_working_hours(received: str, due: str) -> None:
    """RED: four working hours inside 09:00-17:00 on working days, counted from the next opening."""
    got = frontdoor_deadline(utc(received), SHROPSHIRE, "RED")
    assert got.at == utc(due) and "RED" in got.rule


def test_frontdoor_amber_green_and_case_use_default_and_bad_rag_rejected() -> None:
    """AMBER and GREEN keep one working day; 'red' is RED; an unknown rating is an InvalidRag (ValueError)."""
    received = utc("2026-03-09T16:00:00+00:00")
    default = frontdoor_deadline(received, SHROPSHIRE, None).at
    assert frontdoor_deadline(received, SHROPSHIRE, "AMBER").at == default
    assert frontdoor_deadline(received, SHROPSHIRE, "green").at == default
    assert frontdoor_deadline(received, SHROPSHIRE, "red").at == utc("2026-03-10T12:00:00+00:00")
    with pytest.raises(InvalidRag) as caught:
        frontdoor_deadline(received, SHROPSHIRE, "PURPLE")
    assert isinstance(caught.value, ValueError)


# ---- fixed cases: DV triage ----------------------------------------------------------------------------


def test_dvtriage_cutoff_is_strict() -> None:
    """Received at exactly 09:00 misses that day's meeting; at 08:59:59 it makes it."""
    assert dvtriage_deadline(utc("2026-03-10T09:00:00+00:00"), SHROPSHIRE).at == utc(
        "2026-03-11T09:30:00+00:00"
    )
    assert dvtriage_deadline(utc("2026-03-10T08:59:59+00:00"), SHROPSHIRE).at == utc(
        "2026-03-10T09:30:00+00:00"
    )


def test_dvtriage_friday_evening_and_clock_changes() -> None:
    """Friday evening goes to Monday's meeting; around both 2026 clock changes the meeting is 09:30 local."""
    assert dvtriage_deadline(utc("2026-03-06T19:00:00+00:00"), DORSET).at == utc("2026-03-09T09:30:00+00:00")
    assert dvtriage_deadline(utc("2026-03-29T01:30:00+00:00"), DORSET).at == utc("2026-03-30T08:30:00+00:00")
    assert dvtriage_deadline(utc("2026-10-25T01:30:00+00:00"), DORSET).at == utc("2026-10-26T09:30:00+00:00")


def test_dvtriage_skips_easter_and_christmas_bank_holidays() -> None:
    """Maundy Thursday after cut-off goes to Tuesday 7 Apr 2026; Christmas Eve 2026 to Tue 29 Dec."""
    assert dvtriage_deadline(utc("2026-04-02T10:00:00+01:00"), SHROPSHIRE).at == utc(
        "2026-04-07T09:30:00+01:00"
    )
    assert dvtriage_deadline(utc("2026-12-24T09:05:00+00:00"), SHROPSHIRE).at == utc(
        "2026-12-29T09:30:00+00:00"
    )


# ---- fixed cases: office hours -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("instant", "out"),
    [
        ("2026-03-10T09:00:00+00:00", False),  # opening is in hours
        ("2026-03-10T17:00:00+00:00", True),  # closing is out of hours
        ("2026-03-10T16:59:59+00:00", False),
        ("2026-03-06T19:00:00+00:00", True),  # Friday evening
        ("2026-03-07T12:00:00+00:00", True),  # Saturday
        ("2026-04-03T12:00:00+01:00", True),  # Good Friday
        ("2026-12-28T11:00:00+00:00", True),  # substitute Boxing Day
        ("2026-03-30T08:30:00+00:00", False),  # 09:30 BST after spring forward
        ("2026-03-30T16:30:00+00:00", True),  # 17:30 BST
        ("2026-10-26T08:30:00+00:00", True),  # 08:30 GMT after fall back
    ],
)
def test_is_out_of_hours(instant: str, out: bool) -> None:
    """Office hours are Mon-Fri 09:00-17:00 London time on working days; bank holidays are out of hours."""
    assert is_out_of_hours(utc(instant), SHROPSHIRE) is out


# ---- contract ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda naive: encompass_deadline(naive, SHROPSHIRE), "reported"),
        (lambda naive: frontdoor_deadline(naive, SHROPSHIRE, None), "received"),
        (lambda naive: dvtriage_deadline(naive, SHROPSHIRE), "received"),
        (lambda naive: is_out_of_hours(naive, SHROPSHIRE), "instant"),
    ],
)
def test_naive_instants_are_rejected_naming_argument(call: object, argument: str) -> None:
    """A naive datetime raises NaiveInstantError (a ValueError) naming the argument and the offset rule."""
    with pytest.raises(NaiveInstantError, match=f"^{argument} must carry a UTC offset$") as caught:
        call(datetime(2026, 3, 27, 18, 0))  # type: ignore[operator]
    assert isinstance(caught.value, ValueError)


def test_deadline_is_utc_and_local_is_london() -> None:
    """Deadline.at is a UTC instant; .local shows it in Europe/London with the BST offset."""
    got = dvtriage_deadline(utc("2026-06-01T10:00:00+01:00"), SHROPSHIRE)
    assert got.at.tzinfo is UTC
    assert got.local.isoformat() == "2026-06-02T09:30:00+01:00"


def test_configured_times_are_honoured() -> None:
    """Per-authority meeting, cut-off and office hours change the answers."""
    custom = AuthorityConfig(
        ons_code="E06000051",
        name="custom",
        dv_triage_meeting=time(10, 0),
        dv_triage_cutoff=time(8, 0),
        office_open=time(8, 30),
        office_close=time(17, 30),
    )
    assert dvtriage_deadline(utc("2026-03-10T08:30:00+00:00"), custom).at == utc("2026-03-11T10:00:00+00:00")
    assert not is_out_of_hours(utc("2026-03-10T08:30:00+00:00"), custom)


# ---- properties against the brute-force oracle ---------------------------------------------------------

instants = st.datetimes(
    min_value=datetime(2025, 8, 20),
    max_value=datetime(2027, 9, 20),
    timezones=st.sampled_from([UTC, LONDON, ZoneInfo("America/New_York")]),
)
minute_instants = instants.map(lambda value: value.replace(second=0, microsecond=0))
configs = st.sampled_from([SHROPSHIRE, DORSET, GLOUCESTERSHIRE, UNCONFIGURED])


@settings(max_examples=40, deadline=None)
@given(instants, configs, st.sampled_from([time(8, 30), time(8, 45), time(9, 0), time(9, 15)]))
@example(utc("2026-03-28T22:00:00+00:00"), UNCONFIGURED, time(9))  # spring forward
@example(utc("2026-10-25T01:30:00+00:00"), UNCONFIGURED, time(9))  # fall back, repeated hour
@example(utc("2026-12-24T20:00:00+00:00"), UNCONFIGURED, time(9))  # Christmas and substitute day
@example(utc("2026-03-10T09:00:00+00:00"), SHROPSHIRE, time(9))  # exactly at the start
@example(utc("2026-08-28T18:00:00+01:00"), DORSET, time(8, 45))  # across the end of coverage
def test_encompass_matches_minute_walk_oracle(
    reported: datetime, config: AuthorityConfig, start: time
) -> None:
    """encompass_deadline equals the first school-day start found walking UTC minutes, with verified flag."""
    got = encompass_deadline(reported, config, start)
    expected_at, expected_verified = oracle_encompass(reported, config.ons_code, start)
    assert got.at == expected_at
    assert got.verified == expected_verified


@settings(max_examples=40, deadline=None)
@given(instants, configs)
@example(utc("2026-03-29T00:59:00+00:00"), DORSET)
@example(utc("2026-10-25T01:00:00+00:00"), DORSET)
@example(utc("2026-12-24T09:00:00+00:00"), DORSET)
def test_dvtriage_matches_minute_walk_oracle(received: datetime, config: AuthorityConfig) -> None:
    """dvtriage_deadline equals the first 09:30 meeting found walking UTC minutes whose cut-off is later."""
    assert dvtriage_deadline(received, config).at == oracle_dvtriage(received)


@settings(max_examples=30, deadline=None)
@given(minute_instants, st.sampled_from([None, "RED", "AMBER"]))
@example(utc("2026-03-27T18:00:00+00:00"), None)
@example(utc("2026-10-23T16:00:00+01:00"), "RED")
@example(utc("2026-12-24T16:00:00+00:00"), None)
@example(utc("2026-04-02T15:00:00+01:00"), "RED")
def test_frontdoor_matches_minute_counting_oracle(received: datetime, rag: str | None) -> None:
    """frontdoor_deadline equals counting working minutes (RED: inside 09:00-17:00) in UTC from receipt."""
    if rag == "RED":
        expected = oracle_frontdoor(received, timedelta(hours=4), (time(9), time(17)))
    else:
        expected = oracle_frontdoor(received, timedelta(days=1), None)
    assert frontdoor_deadline(received, SHROPSHIRE, rag).at == expected


@settings(max_examples=60, deadline=None)
@given(instants, instants, st.sampled_from([None, "RED"]))
def test_frontdoor_is_monotonic_in_receipt(first: datetime, second: datetime, rag: str | None) -> None:
    """Received later never means due earlier."""
    early, late = sorted((first, second))
    assert frontdoor_deadline(early, DORSET, rag).at <= frontdoor_deadline(late, DORSET, rag).at


@settings(max_examples=150, deadline=None)
@given(instants)
def test_is_out_of_hours_matches_oracle(instant: datetime) -> None:
    """is_out_of_hours is False exactly on working days between 09:00 (inclusive) and 17:00 London time."""
    local = instant.astimezone(LONDON)
    in_hours = oracle_working_day(local.date()) and time(9) <= local.time().replace(tzinfo=None) < time(17)
    assert is_out_of_hours(instant, GLOUCESTERSHIRE) is (not in_hours)
