"""`validate_lines`: each bad line is reported by 1-based line number, field path and rule, never the value."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from producers.cli import LineError, validate_lines
from producers.simulator import generate as simulate
from schemas.codes import ONS_AUTHORITY_RULE
from schemas.models import AgencyType, HealthSafeguardingNotification, PoliceDomesticAbuseIncident, Record

START = datetime(2026, 11, 2, 18, tzinfo=UTC)
NOW = START + timedelta(days=2)
SECRET = "SYN-ZQ8V-DISTINCTIVE"  # distinctive values that must never appear in an error
BAD_ONS = "X27182818"
NAIVE = "2026-11-02T19:47:13.579"


@pytest.fixture(scope="module")
def samples() -> dict[type[Record], Record]:
    found: dict[type[Record], Record] = {}
    for record in simulate(START, seed=8, count=200, span=timedelta(hours=24)):
        found.setdefault(type(record), record)
    return found


def _line(kind: str, payload: Any) -> str:
    return json.dumps({"kind": kind, "payload": payload})


def _payload(record: Record) -> dict[str, Any]:
    return json.loads(record.model_dump_json())  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def result(samples: dict[type[Record], Record]) -> tuple[list[tuple[int, Record]], list[LineError]]:
    incident = samples[PoliceDomesticAbuseIncident]
    kind = "PoliceDomesticAbuseIncident"
    good = _payload(incident)

    missing = _payload(incident)
    del missing["police_reference"]
    missing["envelope"]["source_reference"] = SECRET

    naive = _payload(incident)
    naive["envelope"]["occurred"] = NAIVE

    future = _payload(incident)
    ahead = (NOW + timedelta(minutes=10)).isoformat()
    future["envelope"].update(occurred=ahead, reported=ahead, produced=ahead, source_reference=SECRET)

    bad_ons = _payload(incident)
    bad_ons["envelope"]["home_local_authority"] = BAD_ONS

    lines = [
        _line(kind, good),  # 1 valid
        "",  # 2 blank: skipped
        '{"kind": "PoliceDomesticAbuseIncident", "payload": {"police_reference": "' + SECRET + '"',  # 3 bad JSON
        json.dumps({"kind": kind, "payload": good, "note": SECRET}),  # 4 wrong shape
        "   \t",  # 5 blank: skipped
        _line("HealthSafeguardingNotification", _payload(samples[HealthSafeguardingNotification])),  # 6 other agency
        _line(kind, missing),  # 7 missing required field
        _line(kind, naive),  # 8 naive datetime
        _line(kind, future),  # 9 occurred 10 minutes ahead of now
        _line(kind, bad_ons),  # 10 invalid ONS code
        json.dumps([SECRET]),  # 11 not an object
    ]
    return validate_lines(lines, AgencyType.POLICE, NOW)


def _errors_on(errors: list[LineError], line: int) -> set[tuple[str, str]]:
    return {(e.field, e.rule) for e in errors if e.line == line}


def test_valid_line_is_kept_with_its_number(result: tuple[list[tuple[int, Record]], list[LineError]],
                                           samples: dict[type[Record], Record]) -> None:
    """The one valid line comes back as (1, record): line numbers are 1-based."""
    valid, _ = result
    assert valid == [(1, samples[PoliceDomesticAbuseIncident])]


def test_blank_lines_are_skipped(result: tuple[list[tuple[int, Record]], list[LineError]]) -> None:
    """Blank and whitespace-only lines produce neither a record nor an error, but still count as lines."""
    _, errors = result
    assert {e.line for e in errors} == {3, 4, 6, 7, 8, 9, 10, 11}


def test_bad_json_is_reported(result: tuple[list[tuple[int, Record]], list[LineError]]) -> None:
    """A line that is not JSON is reported on its line as a whole-line error with the parser's position."""
    (error,) = [e for e in result[1] if e.line == 3]
    assert error.field == "(line)"
    assert error.rule.startswith("must be a JSON object (")
    assert "column" in error.rule


def test_wrong_shape_is_reported(result: tuple[list[tuple[int, Record]], list[LineError]]) -> None:
    """An object with keys other than exactly kind and payload, or a non-object, is a shape error."""
    shape = ("(line)", 'must be an object with exactly "kind" and "payload"')
    assert _errors_on(result[1], 4) == {shape}
    assert _errors_on(result[1], 11) == {shape}


def test_kind_of_another_agency_is_reported(result: tuple[list[tuple[int, Record]], list[LineError]]) -> None:
    """A health notification in a police file is refused on `kind`, listing the police kinds."""
    assert _errors_on(result[1], 6) == {
        ("kind", "must be one of PoliceDomesticAbuseIncident, PoliceChildConcern for agency POLICE")
    }


def test_missing_required_field_is_reported(result: tuple[list[tuple[int, Record]], list[LineError]]) -> None:
    """A missing required field is reported by its path and pydantic's rule."""
    assert _errors_on(result[1], 7) == {("police_reference", "Field required")}


def test_naive_datetime_is_reported(result: tuple[list[tuple[int, Record]], list[LineError]]) -> None:
    """An instant without a UTC offset is reported on envelope.occurred."""
    assert _errors_on(result[1], 8) == {("envelope.occurred", "must carry a UTC offset")}


def test_future_occurred_is_reported(result: tuple[list[tuple[int, Record]], list[LineError]]) -> None:
    """An event 10 minutes after `now` breaks the 5-minute future tolerance on envelope.occurred."""
    assert ("envelope.occurred", "must not be more than 5 minutes in the future") in _errors_on(result[1], 9)


def test_invalid_ons_code_is_reported(result: tuple[list[tuple[int, Record]], list[LineError]]) -> None:
    """A malformed ONS code is reported on envelope.home_local_authority with the rule."""
    assert _errors_on(result[1], 10) == {
        ("envelope.home_local_authority", ONS_AUTHORITY_RULE)
    }


def test_errors_never_carry_the_value(result: tuple[list[tuple[int, Record]], list[LineError]]) -> None:
    """No error text contains any of the distinctive values planted in the bad lines."""
    _, errors = result
    text = "\n".join(str(e) for e in errors)
    assert text.startswith("line 3: (line): ")
    for value in (SECRET, BAD_ONS, NAIVE, "19:47"):
        assert value not in text


def test_future_tolerance_is_five_minutes(samples: dict[type[Record], Record]) -> None:
    """An event 4 minutes ahead of `now` is accepted; the tolerance is not zero."""
    incident = _payload(samples[PoliceDomesticAbuseIncident])
    ahead = (NOW + timedelta(minutes=4)).isoformat()
    incident["envelope"].update(occurred=ahead, reported=ahead, produced=ahead)
    valid, errors = validate_lines([_line("PoliceDomesticAbuseIncident", incident)], AgencyType.POLICE, NOW)
    assert errors == []
    assert [n for n, _ in valid] == [1]
