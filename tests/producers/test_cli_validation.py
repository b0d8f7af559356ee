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


# ---------------------------------------------------------------------------- strictness and parse failures
def _one(line: str | bytes) -> set[tuple[str, str]]:
    """The (field, rule) errors of a single police line validated at NOW."""
    valid, errors = validate_lines([line], AgencyType.POLICE, NOW)
    assert valid == [] and {e.line for e in errors} == {1}
    return {(e.field, e.rule) for e in errors}


def test_unexpected_key_is_named_by_parent_and_position(samples: dict[type[Record], Record]) -> None:
    """An unexpected key (here a synthetic full name) is reported as its parent's path and its position only."""
    payload = _payload(samples[PoliceDomesticAbuseIncident])
    payload["envelope"] = {**dict(list(payload["envelope"].items())[:2]), SECRET: "x",
                           **dict(list(payload["envelope"].items())[2:])}
    payload[SECRET + " Two"] = 1
    errors = _one(_line("PoliceDomesticAbuseIncident", payload))
    assert errors == {
        ("envelope", "unexpected key #3: extra inputs are not permitted"),
        ("(record)", f"unexpected key #{len(payload)}: extra inputs are not permitted"),
    }
    assert all(SECRET not in f + r for f, r in errors)


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [(("children", 0, "present"), "yes", "children.0.present"), (("welfare_check_made",), 1, "welfare_check_made"),
     (("risk", "ticks"), "3", "risk.ticks"), (("risk", "ticks"), 3.0, "risk.ticks")],
)
def test_types_are_not_coerced(samples: dict[type[Record], Record], path: tuple[Any, ...], value: Any,
                               field: str) -> None:
    """"yes" is not a boolean, 1 is not true, "3" and 3.0 are not integers: each is refused on its path."""
    payload = _payload(samples[PoliceDomesticAbuseIncident])
    if not payload["children"]:
        payload["children"] = [_payload(samples[PoliceDomesticAbuseIncident])["victim"]]
    target = payload
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    assert field in {f for f, _ in _one(_line("PoliceDomesticAbuseIncident", payload))}


def test_strings_for_instants_dates_ids_and_enums_still_work(samples: dict[type[Record], Record]) -> None:
    """Strict mode still takes JSON strings for instants, dates, UUIDs and enum symbols (the simulator's output)."""
    line = _line("PoliceDomesticAbuseIncident", _payload(samples[PoliceDomesticAbuseIncident]))
    valid, errors = validate_lines([line], AgencyType.POLICE, NOW)
    assert errors == [] and len(valid) == 1


@pytest.mark.parametrize(
    ("line", "rule"),
    [
        ('{"kind": "PoliceDomesticAbuseIncident", "payload": {"n": ' + "7" * 5000 + "}}",
         "must be a JSON object (a number has too many digits)"),
        ("[" * 100_000 + "]" * 100_000, "must be a JSON object (nested too deeply)"),
        ('{"kind": "PoliceDomesticAbuseIncident", "payload": {"n": NaN}}',
         "must be a JSON object (NaN and Infinity are not JSON)"),
        (b'{"kind": "Police\xff\xfeIncident", "payload": {}}', "must be UTF-8 (invalid byte at column 17)"),
        ('"' + SECRET + '"', 'must be an object with exactly "kind" and "payload"'),
        ("null", 'must be an object with exactly "kind" and "payload"'),
    ],
)
def test_every_parse_failure_is_a_line_error(line: str | bytes, rule: str) -> None:
    """Huge numbers, deep nesting, NaN, invalid UTF-8 and non-objects are line errors, never a traceback."""
    assert _one(line) == {("(line)", rule)}


def test_deeply_nested_payload_is_a_line_error() -> None:
    """A payload nested a few hundred levels (JSON parses, validation recurses) is still a plain line error."""
    deep = '{"kind": "PoliceDomesticAbuseIncident", "payload": {"envelope": ' + "[" * 900 + "]" * 900 + "}}"
    ((field, rule),) = _one(deep)
    assert field in ("(line)", "(record)", "envelope") and "[" not in rule


def test_payload_must_be_an_object() -> None:
    """A payload that is not an object is refused on `payload`."""
    assert _one('{"kind": "PoliceDomesticAbuseIncident", "payload": [1]}') == {("payload", "must be a JSON object")}


def test_uuid_errors_do_not_quote_characters(samples: dict[type[Record], Record]) -> None:
    """pydantic's UUID error quotes an input character; the reported rule does not."""
    payload = _payload(samples[PoliceDomesticAbuseIncident])
    payload["envelope"]["notification_id"] = "Q" + SECRET
    ((field, rule),) = _one(_line("PoliceDomesticAbuseIncident", payload))
    assert field == "envelope.notification_id" and "`Q`" not in rule and "Q" not in rule.replace("Input", "")


def test_lines_split_on_lf_only() -> None:
    """read_lines splits on LF (not U+2028 inside a JSON string), drops CR LF endings and a UTF-8 BOM."""
    from producers.cli import read_lines

    assert read_lines(b"\xef\xbb\xbfa\r\nb\xe2\x80\xa8c\n\nd") == [b"a", b"b\xe2\x80\xa8c", b"", b"d"]


# --------------------------------------------------------------------------------------- the command
def _publish(tmp_path: Any, content: bytes, *args: str) -> Any:
    """Run `mash publish FILE --agency police` (validation only: every case below exits before Kafka)."""
    from typer.testing import CliRunner

    from mash.cli import app

    path = tmp_path / "police.jsonl"
    path.write_bytes(content)
    return CliRunner().invoke(app, ["publish", str(path), "--agency", "police", *args])


@pytest.mark.parametrize("content", [b"", b"\n  \n\t\n"])
def test_empty_file_is_an_error(tmp_path: Any, content: bytes) -> None:
    """An empty file, or one of blank lines only, exits 1 with 'no notifications in FILE'."""
    result = _publish(tmp_path, content)
    assert result.exit_code == 1
    assert "no notifications in" in result.output


def test_bad_lines_exit_1_without_values(tmp_path: Any, samples: dict[type[Record], Record]) -> None:
    """A file with a 5,000-digit number, invalid UTF-8 and an unexpected key exits 1 naming lines, not values."""
    payload = _payload(samples[PoliceDomesticAbuseIncident])
    payload["envelope"][SECRET] = True
    content = "\n".join([
        _line("PoliceDomesticAbuseIncident", _payload(samples[PoliceDomesticAbuseIncident])),
        '{"kind": "PoliceDomesticAbuseIncident", "payload": {"n": ' + "9" * 5000 + "}}",
        _line("PoliceDomesticAbuseIncident", payload),
    ]).encode() + b"\n\xff" + SECRET.encode() + b"\n"
    result = _publish(tmp_path, content)
    assert result.exit_code == 1
    assert "line 2: (line): must be a JSON object (a number has too many digits)" in result.output
    assert "line 3: envelope: unexpected key #" in result.output
    assert "line 4: (line): must be UTF-8 (invalid byte at column 1)" in result.output
    assert SECRET not in result.output and "Traceback" not in result.output
