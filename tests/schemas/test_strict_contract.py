"""The contract's strict rules: full-match codes, plausible dates of birth, clean text, bounded strings."""

from __future__ import annotations

import types
import typing
from datetime import UTC, date, datetime, timedelta
from typing import Any

import annotated_types
import pytest
from pydantic import BaseModel, ValidationError

from producers.simulator import generate as simulate
from schemas.codec import field_errors
from schemas.codes import ONS_AUTHORITY, REFERENCE, URN, is_authority_code, is_reference, is_urn
from schemas.models import (
    ALL_RECORDS,
    BIDI_RULE,
    CONTROL_FREE_TEXT_RULE,
    CONTROL_RULE,
    AdultSubject,
    ChildSubject,
    HealthSafeguardingNotification,
    PoliceDomesticAbuseIncident,
    Record,
    YouthJusticeNotification,
)

START = datetime(2026, 11, 2, 18, tzinfo=UTC)
SECRET = "Zq8vSyn"  # a distinctive synthetic name fragment that must never appear in an error


@pytest.fixture(scope="module")
def samples() -> dict[type[Record], Record]:
    """One simulated record of each notification kind (unborn children included)."""
    found: dict[type[Record], Record] = {}
    for record in simulate(START, seed=8, count=400, span=timedelta(hours=24)):
        found.setdefault(type(record), record)
    return found


def _refusal(model: type[Record], data: dict[str, Any]) -> list[tuple[str, str]]:
    """The (field, rule) pairs of a payload the model refuses (fails the test if it is accepted)."""
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    errors = field_errors(caught.value)
    assert all(SECRET not in f and SECRET not in r for f, r in errors)
    return errors


def _incident(samples: dict[type[Record], Record]) -> dict[str, Any]:
    record = samples[PoliceDomesticAbuseIncident]
    assert isinstance(record, PoliceDomesticAbuseIncident) and record.children
    return record.model_dump()


# ------------------------------------------------------------------------------------------- codes
@pytest.mark.parametrize(
    "code", ["E06000051\n", " E06000051", "E06000051 ", "e06000051", "E0600005", "E060000511", "E07000001",
             "E05000001", "S12000033", "E٠٦000051", "E06000051\r", ""]
)
def test_bad_authority_codes_are_refused(samples: dict[type[Record], Record], code: str) -> None:
    """Trailing newline, spaces, lower case, wrong length, non-ASCII digits and non-authority types are refused."""
    assert not is_authority_code(code)
    data = _incident(samples)
    data["envelope"]["home_local_authority"] = code
    assert [f for f, _ in _refusal(PoliceDomesticAbuseIncident, data)] == ["envelope.home_local_authority"]


@pytest.mark.parametrize("code", ["E06000051", "E08000025", "E09000033", "E10000013", "W06000015", "E06000999"])
def test_authority_codes_of_every_children_services_type_are_accepted(code: str) -> None:
    """Unitary, metropolitan, London, county and Welsh codes are accepted, configured here or not."""
    assert is_authority_code(code)


def test_patterns_are_anchored_at_both_ends() -> None:
    """Every code pattern is \\A...\\Z, so `match` and `fullmatch` agree and a trailing newline never passes."""
    for pattern in (ONS_AUTHORITY, URN, REFERENCE):
        assert pattern.pattern.startswith("\\A") and pattern.pattern.endswith("\\Z")
    assert REFERENCE.match("PPN/1\n") is None


@pytest.mark.parametrize("urn", ["123456\n", " 123456", "12345", "12345678", "１２３４５６", "123 456"])
def test_bad_urns_are_refused(samples: dict[type[Record], Record], urn: str) -> None:
    """A URN with a trailing newline, spaces, full-width digits or the wrong length is refused on its path."""
    assert not is_urn(urn)
    data = _incident(samples)
    data["children"][0]["education"] = {"status": "SCHOOL", "urn": urn}
    fields = [f for f, _ in _refusal(PoliceDomesticAbuseIncident, data)]
    assert fields and all(f.startswith("children.0.education.urn") for f in fields)


@pytest.mark.parametrize("ref", ["PPN/1\n", " PPN/1", "PPN 1", "/PPN", "x" * 65, "PPN\u202e1"])
def test_bad_references_are_refused(samples: dict[type[Record], Record], ref: str) -> None:
    """A reference with a newline, space, leading slash, 65 characters or a bidi override is refused."""
    assert not is_reference(ref)
    data = _incident(samples)
    data["police_reference"] = ref
    assert [f for f, _ in _refusal(PoliceDomesticAbuseIncident, data)] == ["police_reference"]


# ------------------------------------------------------------------------------------- dates of birth
@pytest.mark.parametrize(
    "born", [date(1, 1, 1), date(1850, 1, 1), date(9999, 12, 31), date(2030, 6, 1), date(2034, 12, 31),
             date(2008, 11, 2)]
)
def test_implausible_child_dates_of_birth_are_refused(samples: dict[type[Record], Record], born: date) -> None:
    """Absurd, future and 18-on-the-day dates of birth of a child are refused, naming the path and the rule."""
    data = _incident(samples)
    data["children"][0]["date_of_birth"] = born
    ((field, rule),) = _refusal(PoliceDomesticAbuseIncident, data)
    assert field == "children.0.date_of_birth"
    assert "occurrence date" in rule


def test_child_born_on_the_occurrence_date_is_accepted(samples: dict[type[Record], Record]) -> None:
    """A baby born on the (London) occurrence date, and a child of 17 years 364 days, are plausible."""
    data = _incident(samples)
    on = data["envelope"]["occurred"].astimezone(UTC).date()
    data["children"][0]["date_of_birth"] = on
    PoliceDomesticAbuseIncident.model_validate(data)
    data["children"][0]["date_of_birth"] = on.replace(year=on.year - 18) + timedelta(days=1)
    PoliceDomesticAbuseIncident.model_validate(data)


def test_london_date_decides_the_day(samples: dict[type[Record], Record]) -> None:
    """Occurred 23:30 UTC in summer is the next day in London: a baby born that London day is not 'future'."""
    data = _incident(samples)
    occurred = datetime(2026, 7, 1, 23, 30, tzinfo=UTC)
    data["envelope"].update(occurred=occurred, reported=occurred, produced=occurred)
    data["children"][0]["date_of_birth"] = date(2026, 7, 2)
    PoliceDomesticAbuseIncident.model_validate(data)


@pytest.mark.parametrize("born", [date(1, 1, 1), date(1850, 1, 1), date(9999, 12, 31), date(2031, 1, 1)])
def test_implausible_adult_dates_of_birth_are_refused(samples: dict[type[Record], Record], born: date) -> None:
    """An adult older than 120 or born after the occurrence is refused on victim.date_of_birth."""
    data = _incident(samples)
    data["victim"]["date_of_birth"] = born
    ((field, _),) = _refusal(PoliceDomesticAbuseIncident, data)
    assert field == "victim.date_of_birth"


def test_youth_justice_child_is_checked(samples: dict[type[Record], Record]) -> None:
    """The single `child` of a youth justice notification gets the same rule, on path child.date_of_birth."""
    data = samples[YouthJusticeNotification].model_dump()
    data["child"]["date_of_birth"] = date(2033, 1, 1)
    assert [f for f, _ in _refusal(YouthJusticeNotification, data)] == ["child.date_of_birth"]


@pytest.mark.parametrize(("shift", "ok"), [(0, True), (280, True), (-31, True), (400, False), (-60, False)])
def test_unborn_due_date_must_be_plausible(shift: int, ok: bool) -> None:
    """An unborn child's due date lies from a month before to ~10 months after the occurrence date."""
    data = _unborn_notification()
    on = data["envelope"]["occurred"].date()
    data["children"][0]["expected_due_date"] = on + timedelta(days=shift)
    if ok:
        HealthSafeguardingNotification.model_validate(data)
    else:
        assert [f for f, _ in _refusal(HealthSafeguardingNotification, data)] == ["children.0.expected_due_date"]


def test_unborn_child_has_no_date_of_birth() -> None:
    """An unborn child with a date of birth is refused on children.N.date_of_birth."""
    data = _unborn_notification()
    data["children"][0]["date_of_birth"] = data["envelope"]["occurred"].date()
    assert [f for f, _ in _refusal(HealthSafeguardingNotification, data)] == ["children.0.date_of_birth"]


def _unborn_notification() -> dict[str, Any]:
    for record in simulate(START, seed=3, count=3000, span=timedelta(days=5)):
        if isinstance(record, HealthSafeguardingNotification) and any(c.unborn for c in record.children):
            data = record.model_dump()
            data["children"] = [c for c in data["children"] if c["unborn"]][:1]
            data["children"][0]["mother_index"] = 0
            return data
    raise AssertionError("the simulator made no unborn child")


# ---------------------------------------------------------------------------------------------- text
@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("A\x00", CONTROL_RULE), ("A\x07", CONTROL_RULE), ("\x1b[31mA", CONTROL_RULE), ("A\r", CONTROL_RULE),
        ("A\nB", CONTROL_RULE), ("A\tB", CONTROL_RULE), ("A\x85", CONTROL_RULE), ("A\u2028", CONTROL_RULE),
        ("A\u202eB", BIDI_RULE), ("A\u2066B\u2069", BIDI_RULE), ("A\u200fB", BIDI_RULE),
    ],
)
def test_control_and_bidi_characters_in_names_are_refused(samples: dict[type[Record], Record], text: str,
                                                          rule: str) -> None:
    """NUL, BEL, ESC, CR, LF, TAB, C1, separators and bidi formatting in a name are refused by path and rule."""
    data = _incident(samples)
    data["children"][0]["given_name"] = SECRET + text
    assert _refusal(PoliceDomesticAbuseIncident, data) == [("children.0.given_name", rule)]


@pytest.mark.parametrize("text", ["Line one\nLine two", "Line one\r\nLine two", "Über • café — 2 €"])
def test_summary_may_hold_line_breaks(samples: dict[type[Record], Record], text: str) -> None:
    """A free-text summary may hold LF and CR LF line breaks and any printable Unicode."""
    data = _incident(samples)
    data["summary"] = text
    PoliceDomesticAbuseIncident.model_validate(data)


@pytest.mark.parametrize(
    ("text", "rule"),
    [("A\rB", CONTROL_FREE_TEXT_RULE), ("A\x00", CONTROL_FREE_TEXT_RULE), ("\x1b[2J", CONTROL_FREE_TEXT_RULE),
     ("A\u202eB", BIDI_RULE)],
)
def test_summary_refuses_other_controls(samples: dict[type[Record], Record], text: str, rule: str) -> None:
    """A lone CR, NUL, an ANSI escape or a bidi override in a summary is refused on `summary`."""
    data = _incident(samples)
    data["summary"] = SECRET + text
    assert _refusal(PoliceDomesticAbuseIncident, data) == [("summary", rule)]


def test_envelope_text_is_checked(samples: dict[type[Record], Record]) -> None:
    """Text rules reach nested records too: a BEL in the envelope's organisation name is refused on its path."""
    data = _incident(samples)
    data["envelope"]["source"]["organisation_name"] = SECRET + "\x07"
    assert _refusal(PoliceDomesticAbuseIncident, data) == [("envelope.source.organisation_name", CONTROL_RULE)]


def test_list_of_text_items_is_checked() -> None:
    """Text rules reach items of a list of strings (output child keys), naming the item's index."""
    from uuid import uuid4

    from schemas.models import DvTriageItem

    item = {"item_id": uuid4(), "notification_id": uuid4(), "authority": "E06000051", "agency_type": "POLICE",
            "source_reference": "PPN/1", "meeting_at": START, "marac": False, "occurred": START,
            "child_keys": ["ok", "bad\x00"]}
    assert _refusal(DvTriageItem, item) == [("child_keys.1", CONTROL_RULE)]


def test_lone_surrogate_is_refused(samples: dict[type[Record], Record]) -> None:
    """A lone surrogate (valid in JSON escapes, not encodable as UTF-8) is refused on its path."""
    data = _incident(samples)
    data["victim"]["family_name"] = "A\ud800"
    assert [f for f, _ in _refusal(PoliceDomesticAbuseIncident, data)] == ["victim.family_name"]


def _avro_text(tp: Any) -> bool:
    """Whether an Avro field type holds plain strings (a string without a logical type, or an array of them)."""
    if tp == "string":
        return True
    if isinstance(tp, list):
        return any(_avro_text(t) for t in tp)
    if isinstance(tp, dict):
        if tp.get("type") == "array":
            return _avro_text(tp["items"])
        return tp.get("type") == "string" and "logicalType" not in tp
    return False


def test_every_text_field_of_every_record_is_checked() -> None:
    """The text rules look at exactly the fields whose Avro type holds strings, in every record and nested record
    (the rules skip fields that cannot hold text, so a text field left out would go unchecked)."""
    from schemas._avro import avro_schema
    from schemas.models import _text_fields

    seen: set[type[BaseModel]] = set()
    for root in ALL_RECORDS:
        _models(root, seen)
    checked = 0
    for model in seen:
        assert issubclass(model, Record)
        expected = {f["name"] for f in avro_schema(model)["fields"] if _avro_text(f["type"])}
        assert {name for name, _ in _text_fields(model)} == expected, model.__name__
        checked += len(expected)
    assert checked > 40  # the walk found the records' text fields at all


# ------------------------------------------------------------------------------------------ lengths
def _models(root: type[BaseModel], seen: set[type[BaseModel]]) -> None:
    if root in seen:
        return
    seen.add(root)
    for field in root.model_fields.values():
        for tp in _walk(field.annotation):
            if isinstance(tp, type) and issubclass(tp, BaseModel):
                _models(tp, seen)


def _walk(tp: Any) -> list[Any]:
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType, list, typing.Annotated):
        return [x for a in (args[:1] if typing.get_origin(tp) is typing.Annotated else args) for x in _walk(a)]
    return [tp]


def _bounded(metadata: list[Any]) -> bool:
    return any(isinstance(m, annotated_types.MaxLen) or getattr(m, "max_length", None) for m in metadata)


def _unbounded_strings(model: type[BaseModel]) -> list[str]:
    out = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        optional_args = [a for a in typing.get_args(annotation) if a is not type(None)]
        inner = optional_args[0] if typing.get_origin(annotation) in (typing.Union, types.UnionType) else annotation
        if typing.get_origin(inner) is list:
            (item,) = typing.get_args(inner)
            if str in _walk(item) and not _bounded(list(typing.get_args(item)[1:])):
                out.append(f"{model.__name__}.{name}[]")
        elif str in _walk(inner) and not (_bounded(field.metadata) or _bounded(list(typing.get_args(inner)[1:]))):
            out.append(f"{model.__name__}.{name}")
    return out


def test_every_string_field_has_a_maximum_length() -> None:
    """Every str field (and every item of a list of str) of every record, nested ones included, has max_length."""
    seen: set[type[BaseModel]] = set()
    for record in ALL_RECORDS:
        _models(record, seen)
    assert [u for model in sorted(seen, key=lambda m: m.__name__) for u in _unbounded_strings(model)] == []


def test_over_long_name_is_refused(samples: dict[type[Record], Record]) -> None:
    """A 101-character family name is refused on its path with pydantic's length rule."""
    data = _incident(samples)
    data["suspect"]["family_name"] = "A" * 101
    assert _refusal(PoliceDomesticAbuseIncident, data) == [
        ("suspect.family_name", "String should have at most 100 characters")
    ]


def test_subjects_alone_accept_valid_people() -> None:
    """Sanity: ChildSubject and AdultSubject on their own still accept plain synthetic people."""
    ChildSubject(given_name="Ann", family_name="Test", date_of_birth=date(2015, 1, 1), postcode="SY1 1AA")
    AdultSubject(role="VICTIM", given_name="Bea", family_name="Test")
