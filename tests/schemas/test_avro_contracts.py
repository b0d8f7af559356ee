"""The Avro contracts: committed files match the models, carry docs and defaults, round-trip, and evolve safely."""

from __future__ import annotations

import io
import json
import types
import typing
import uuid
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import avro.io
import avro.schema
import pytest
from fastavro import parse_schema, schemaless_reader, schemaless_writer

from producers.simulator import generate as simulate
from schemas._avro import avro_schema
from schemas.catalogue import AVRO_DIR, IncompatibleSchema, _compatible, check_full_transitive, generate
from schemas.codec import HEADER_SIZE, Codec, frame
from schemas.models import (
    ALL_RECORDS,
    FEEDBACK,
    NOTIFICATIONS,
    OUTPUTS,
    AgencyType,
    AuditEvent,
    AuditRecord,
    CaveatType,
    ConsentStatus,
    CumulativeConcernAlert,
    CumulativeTrigger,
    DeadLetter,
    DvTriageItem,
    EducationStatus,
    EmergencyDutyAlert,
    EncompassAcknowledgement,
    EncompassNotice,
    FieldError,
    FrontDoorDecision,
    FrontDoorReferral,
    FrontDoorResponse,
    ItemAcknowledgement,
    LawfulBasis,
    MaracCriterion,
    MaracReferral,
    Priority,
    Rag,
    Recall,
    RecallReason,
    Record,
    ReferralChild,
    Rejection,
    RiskLevel,
    Route,
    SafetyCaveat,
    SecurityMarking,
    SlaEvent,
    SlaState,
    TriageItemDiscussed,
)
from tests.schemas.helpers import TOPIC, unit_codec

START = datetime(2026, 11, 2, tzinfo=UTC)
T0 = datetime(2026, 11, 20, 18, 30, 15, 123000, tzinfo=UTC)
ACK = "EncompassAcknowledgement"


def _latest(name: str, directory: Path = AVRO_DIR) -> Path:
    files = sorted((directory / name).glob("v*.avsc"), key=lambda p: int(p.stem[1:]))
    assert files, f"no committed schema for {name}"
    return files[-1]


def _committed(name: str, version: int) -> dict[str, Any]:
    return json.loads((AVRO_DIR / name / f"v{version}.avsc").read_text())  # type: ignore[no-any-return]


def _uid(n: int) -> uuid.UUID:
    return uuid.UUID(int=0x5E5E_0000_0000_4000_8000_0000_0000_0000 + n)


# ------------------------------------------------------------------------------------- committed files
@pytest.mark.parametrize("model", ALL_RECORDS, ids=lambda m: m.__name__)
def test_committed_latest_schema_is_current(model: type[Record]) -> None:
    """The latest committed .avsc of each record equals the schema generated from its model (not stale)."""
    committed = json.loads(_latest(model.__name__).read_text())
    assert committed == avro_schema(model), (
        f"schemas/avro/{model.__name__} is stale: run `mash schemas generate` and commit the new version"
    )


def _walk(schema: Any, path: str, out: list[tuple[str, dict[str, Any]]]) -> None:
    """Collect every named type / field dict with its path."""
    if isinstance(schema, list):
        for i, branch in enumerate(schema):
            _walk(branch, f"{path}[{i}]", out)
    elif isinstance(schema, dict):
        kind = schema.get("type")
        if kind == "record":
            out.append((path, schema))
            for f in schema["fields"]:
                out.append((f"{path}.{f['name']}", f))
                _walk(f["type"], f"{path}.{f['name']}", out)
        elif kind == "enum":
            out.append((path, schema))
        elif kind == "array":
            _walk(schema["items"], f"{path}[]", out)


@pytest.mark.parametrize("model", ALL_RECORDS, ids=lambda m: m.__name__)
def test_every_field_and_type_has_a_doc(model: type[Record]) -> None:
    """Every record, enum and field at every nesting level of the committed schema has a non-empty doc."""
    nodes: list[tuple[str, dict[str, Any]]] = []
    _walk(json.loads(_latest(model.__name__).read_text()), model.__name__, nodes)
    assert len(nodes) > 2
    missing = [p for p, node in nodes if not str(node.get("doc", "")).strip()]
    assert missing == []


@pytest.mark.parametrize("model", ALL_RECORDS, ids=lambda m: m.__name__)
def test_every_enum_has_a_default_symbol(model: type[Record]) -> None:
    """Every enum in the committed schema has a `default` that is one of its symbols (older readers degrade)."""
    nodes: list[tuple[str, dict[str, Any]]] = []
    _walk(json.loads(_latest(model.__name__).read_text()), model.__name__, nodes)
    for path, node in nodes:
        if node.get("type") == "enum":
            assert node.get("default") in node["symbols"], path


def _unwrap_annotation(tp: Any) -> Any:
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated or origin is list:
            tp = typing.get_args(tp)[0]
        elif origin in (typing.Union, types.UnionType):
            (tp,) = [a for a in typing.get_args(tp) if a is not type(None)]
        else:
            return tp


def _unwrap_avro(tp: Any, named: dict[str, Any]) -> Any:
    while True:
        if isinstance(tp, list):
            (tp,) = [b for b in tp if b != "null"]
        elif isinstance(tp, dict) and tp.get("type") == "array":
            tp = tp["items"]
        elif isinstance(tp, str) and tp in named:
            tp = named[tp]
        else:
            return tp


_LOGICAL = {
    uuid.UUID: {"type": "string", "logicalType": "uuid"},
    datetime: {"type": "long", "logicalType": "timestamp-millis"},
    date: {"type": "int", "logicalType": "date"},
}


def _logical_fields(model: type[Record], schema: dict[str, Any], named: dict[str, Any], seen: defaultdict[Any, int]
                   ) -> None:
    named.setdefault(f"{schema['namespace']}.{schema['name']}", schema)
    by_name = {f["name"]: f for f in schema["fields"]}
    for fname, field in model.model_fields.items():
        base = _unwrap_annotation(field.annotation)
        avro_type = _unwrap_avro(by_name[fname]["type"], named)
        if isinstance(avro_type, dict) and avro_type.get("type") in ("record", "enum"):
            named.setdefault(f"{avro_type['namespace']}.{avro_type['name']}", avro_type)
        if base in _LOGICAL:
            assert avro_type == _LOGICAL[base], f"{model.__name__}.{fname}"
            seen[base] += 1
        elif isinstance(base, type) and issubclass(base, Record):
            _logical_fields(base, avro_type, named, seen)



def test_uuid_instant_and_date_fields_use_logical_types() -> None:
    """Every UUID, instant and date field (nested too) is uuid / timestamp-millis / date in the committed schema."""
    seen: defaultdict[Any, int] = defaultdict(int)
    for model in ALL_RECORDS:
        _logical_fields(model, json.loads(_latest(model.__name__).read_text()), {}, seen)
    assert set(seen) == set(_LOGICAL)  # each kind occurs, so the check is not vacuous
    assert min(seen.values()) >= 5


# ------------------------------------------------------------------------------------------ round trips
@pytest.fixture(scope="module")
def codec() -> Codec:
    """A codec prepared for every record on TOPIC, over InMemoryRegistry."""
    return unit_codec()


@pytest.fixture(scope="module")
def simulated() -> dict[type[Record], list[Record]]:
    by_kind: dict[type[Record], list[Record]] = defaultdict(list)
    for record in simulate(START, seed=21, count=1200, span=timedelta(days=14)):
        if len(by_kind[type(record)]) < 50:
            by_kind[type(record)].append(record)
    return by_kind


@pytest.mark.parametrize("kind", NOTIFICATIONS, ids=lambda m: m.__name__)
def test_simulated_notifications_round_trip(kind: type[Record], simulated: dict[type[Record], list[Record]],
                                            codec: Codec) -> None:
    """50 simulator records of each notification kind encode to the Confluent wire format (magic 0, the id of
    the current schema) and decode back equal."""
    records = simulated[kind]
    assert len(records) == 50
    schema_id = codec.schema_id(TOPIC, kind)
    assert codec.registry.schemas[schema_id] == avro_schema(kind)  # type: ignore[union-attr]
    for record in records:
        data = codec.encode(record, TOPIC)
        assert data[:HEADER_SIZE] == frame(schema_id, b"")
        assert codec.decode(data) == record


_CAVEATS = [SafetyCaveat(type=CaveatType.CONFIDENTIAL_ADDRESS)]
_HAND_BUILT: list[Record] = [
    FrontDoorReferral(
        referral_id=_uid(1), notification_id=_uid(2), supersedes_referral=_uid(3), authority="E06000051",
        agency_type=AgencyType.POLICE, organisation_code="SYN-FORCE", source_reference="SYN/REF/1",
        kind="PoliceDomesticAbuseIncident", occurred=T0, received=T0 + timedelta(minutes=3),
        decision_due=T0 + timedelta(days=1),
        children=[ReferralChild(child_key="k-1", given_name="Test", family_name="Child-One",
                                date_of_birth=date(2018, 3, 4), education_status=EducationStatus.SCHOOL,
                                school_urn="123456", present=True),
                  ReferralChild(child_key="k-2", unborn=True, education_status=EducationStatus.NOT_SCHOOL_AGE)],
        risk_level=RiskLevel.HIGH, priority=Priority.URGENT, security_marking=SecurityMarking.OFFICIAL_SENSITIVE,
        lawful_basis=LawfulBasis.CHILDREN_ACT_1989_S47, consent=ConsentStatus.NOT_SOUGHT_RISK_OF_HARM,
        safety_caveats=_CAVEATS, summary="synthetic summary",
    ),
    EncompassNotice(
        notice_id=_uid(4), notification_id=_uid(2), school_urn="123456", authority="E06000051", child_key="k-1",
        given_name="Test", family_name="Child-One", date_of_birth=date(2018, 3, 4), incident_occurred=T0,
        child_present=False, police_reference="SYN-PR-9", welfare_check_made=True, safety_caveats=_CAVEATS,
        due=T0 + timedelta(hours=14), calendar_verified=False,
    ),
    Recall(recall_id=_uid(5), recalled_output_id=_uid(4), route=Route.ENCOMPASS, recipient="123456",
           notification_id=_uid(6), reason=RecallReason.WITHDRAWN, issued=T0),
    DvTriageItem(item_id=_uid(7), notification_id=_uid(2), authority="E06000059", agency_type=AgencyType.POLICE,
                 source_reference="SYN/REF/1", victim_key="v-1", perpetrator_key="p-1", child_keys=["k-1", "k-2"],
                 risk_level=RiskLevel.MEDIUM, ticks=9, meeting_at=T0 + timedelta(hours=15), marac=True,
                 marac_criteria=[MaracCriterion.DASH_HIGH, MaracCriterion.PROFESSIONAL_JUDGEMENT], occurred=T0),
    MaracReferral(referral_id=_uid(8), notification_id=_uid(2), triage_item_id=_uid(7), authority="E06000059",
                  victim_key=None, criteria=[MaracCriterion.ESCALATION_3_INCIDENTS_12_MONTHS], occurred=T0),
    EmergencyDutyAlert(alert_id=_uid(9), notification_id=_uid(2), authority="E10000013",
                       agency_type=AgencyType.HEALTH, source_reference="SYN:H:1", reason="SENDER_MARKED_IMMEDIATE",
                       child_keys=["k-3"], received=T0, safety_caveats=_CAVEATS),
    CumulativeConcernAlert(alert_id=_uid(10), child_key="k-3", authority="E10000013",
                           trigger=CumulativeTrigger.THRESHOLD, notification_ids=[_uid(2), _uid(11)],
                           agency_types=[AgencyType.POLICE, AgencyType.YOUTH_JUSTICE],
                           window_start=T0 - timedelta(days=90), window_end=T0, raised=T0),
    Rejection(rejection_id=_uid(12), agency_type=AgencyType.PROBATION, source_reference="SYN-P-1",
              notification_id=_uid(13), errors=[FieldError(field="envelope.occurred", rule="must be in the past")],
              rejected=T0),
    DeadLetter(dead_letter_id=_uid(14), source_topic="mash.intake.police", source_partition=3, source_offset=2**40,
               reason="UNDECODABLE", errors=[FieldError(field="(record)", rule="not Avro")], notification_id=None,
               raw_key=b"\x00key", raw_value=b"\xc3\x01\xff\x00garbage", at=T0),
    AuditRecord(audit_id=_uid(15), event=AuditEvent.DISCLOSED, notification_id=_uid(2), output_id=_uid(4),
                route=Route.ENCOMPASS, recipient="123456", purpose="Operation Encompass notice",
                lawful_basis=LawfulBasis.CHILDREN_ACT_2004_S11, at=T0),
    SlaEvent(sla_event_id=_uid(16), output_id=_uid(4), route=Route.ENCOMPASS, recipient="123456",
             state=SlaState.AT_RISK, due=T0 + timedelta(hours=14), at=T0 + timedelta(hours=13),
             calendar_verified=False),
    EncompassAcknowledgement(notice_id=_uid(4), school_urn="1234567", acknowledged=T0, by_role="DEPUTY_DSL"),
    FrontDoorDecision(referral_id=_uid(1), authority="E06000051", response=FrontDoorResponse.EARLY_HELP,
                      rag=Rag.AMBER, decided=T0),
    TriageItemDiscussed(item_id=_uid(7), authority="E06000059", marac_referred=True, discussed=T0),
    ItemAcknowledgement(output_id=_uid(8), route=Route.EMERGENCY_DUTY, recipient="E06000051", acknowledged=T0),
]


def test_hand_built_set_covers_every_output_and_feedback_record() -> None:
    """The hand-built round-trip set holds exactly one instance of every output and feedback record."""
    assert sorted(type(r).__name__ for r in _HAND_BUILT) == sorted(m.__name__ for m in OUTPUTS + FEEDBACK)


@pytest.mark.parametrize("record", _HAND_BUILT, ids=lambda r: type(r).__name__)
def test_output_and_feedback_records_round_trip(record: Record, codec: Codec) -> None:
    """A hand-built output or feedback record (with synthetic values) encodes and decodes back equal."""
    decoded = codec.decode(codec.encode(record, TOPIC))
    assert type(decoded) is type(record)
    assert decoded == record


# ----------------------------------------------------------------- the real v1 -> v2 evolution of the ack
def test_ack_v1_lacks_by_role_and_v2_is_current() -> None:
    """The committed EncompassAcknowledgement v1 has no by_role; v2 adds it with default DSL and is current."""
    v1, v2 = _committed(ACK, 1), _committed(ACK, 2)
    assert "by_role" not in {f["name"] for f in v1["fields"]}
    (by_role,) = [f for f in v2["fields"] if f["name"] == "by_role"]
    assert by_role["default"] == "DSL"
    assert v2 == avro_schema(EncompassAcknowledgement)
    check_full_transitive(v2, [v1])  # the committed evolution is itself FULL_TRANSITIVE


def test_v1_ack_data_is_read_by_current_codec_with_default_role(codec: Codec) -> None:
    """Data written with the committed v1 schema (fastavro) decodes with the v2 codec; by_role gets "DSL"."""
    v1 = _committed(ACK, 1)
    schema_id = codec.registry.add(v1)  # type: ignore[union-attr]  # another producer registered v1
    codec.remember(schema_id, v1)
    buf = io.BytesIO()
    buf.write(frame(schema_id, b""))
    schemaless_writer(buf, parse_schema(v1), {"notice_id": str(_uid(4)), "school_urn": "654321", "acknowledged": T0})
    decoded = codec.decode(buf.getvalue())
    assert decoded == EncompassAcknowledgement(notice_id=_uid(4), school_urn="654321", acknowledged=T0)
    assert decoded.by_role == "DSL"  # type: ignore[attr-defined]


@pytest.fixture()
def v2_ack_body(codec: Codec) -> bytes:
    data = codec.encode(EncompassAcknowledgement(notice_id=_uid(4), school_urn="654321", acknowledged=T0,
                                                 by_role="HEADTEACHER"), TOPIC)
    assert codec.registry.schemas[int.from_bytes(data[1:HEADER_SIZE], "big")] == _committed(ACK, 2)  # type: ignore[union-attr]
    return data[HEADER_SIZE:]


def test_v2_ack_data_is_read_by_a_v1_fastavro_reader(v2_ack_body: bytes) -> None:
    """v2 data is read by a fastavro v1 reader (writer v2, reader v1): by_role is dropped, the rest kept."""
    datum = schemaless_reader(io.BytesIO(v2_ack_body), parse_schema(_committed(ACK, 2)),
                              parse_schema(_committed(ACK, 1)))
    assert datum == {"notice_id": _uid(4), "school_urn": "654321", "acknowledged": T0}


def test_v2_ack_data_is_read_by_a_v1_apache_avro_reader(v2_ack_body: bytes) -> None:
    """v2 data is read by Apache avro's DatumReader with writers_schema v2 and readers_schema v1."""
    reader = avro.io.DatumReader(
        writers_schema=avro.schema.parse(json.dumps(_committed(ACK, 2))),
        readers_schema=avro.schema.parse(json.dumps(_committed(ACK, 1))),
    )
    datum = reader.read(avro.io.BinaryDecoder(io.BytesIO(v2_ack_body)))
    assert set(datum) == {"notice_id", "school_urn", "acknowledged"}
    assert str(datum["notice_id"]) == str(_uid(4))
    assert datum["school_urn"] == "654321"
    assert datum["acknowledged"] == T0


# ------------------------------------------------------------------------------ compatibility checking
def _rec(*fields: dict[str, Any]) -> dict[str, Any]:
    return {"type": "record", "name": "Probe", "namespace": "test.mash", "doc": "probe", "fields": list(fields)}


_ID = {"name": "id", "type": "string"}
_COLOUR_V1 = {"type": "enum", "name": "Colour", "symbols": ["RED", "GREEN"]}
_COLOUR_V2 = {"type": "enum", "name": "Colour", "symbols": ["RED", "GREEN", "BLUE"]}

_REFUSED = {
    "field_removed_without_default": (_rec(_ID), _rec(_ID, {"name": "ref", "type": "string"})),
    "field_type_string_to_long": (_rec(_ID, {"name": "ref", "type": "long"}), _rec(_ID, {"name": "ref",
                                                                                        "type": "string"})),
    "enum_symbol_added_without_enum_default": (
        _rec(_ID, {"name": "colour", "type": _COLOUR_V2}), _rec(_ID, {"name": "colour", "type": _COLOUR_V1})
    ),
    "required_field_renamed_without_alias": (
        _rec(_ID, {"name": "reference", "type": "string"}), _rec(_ID, {"name": "ref", "type": "string"})
    ),
}


@pytest.mark.parametrize("new,old", _REFUSED.values(), ids=_REFUSED.keys())
def test_check_full_transitive_refuses(new: dict[str, Any], old: dict[str, Any]) -> None:
    """check_full_transitive refuses a breaking change (removed/retyped/renamed field, enum grown without default)."""
    with pytest.raises(IncompatibleSchema):
        check_full_transitive(new, [old])


def test_check_full_transitive_refuses_against_any_earlier_version() -> None:
    """The check is transitive: compatible with v2 but not with v1 is still refused, naming v1."""
    v1 = _rec(_ID, {"name": "ref", "type": "string"})
    v2 = _rec(_ID, {"name": "ref", "type": "string", "default": ""})
    v3 = _rec(_ID)
    check_full_transitive(v3, [v2])
    with pytest.raises(IncompatibleSchema, match=r"\bv1\b"):
        check_full_transitive(v3, [v1, v2])


def test_check_full_transitive_accepts_field_added_with_default() -> None:
    """A field added with a default is FULL compatible (old data gets the default, old readers skip it)."""
    check_full_transitive(_rec(_ID, {"name": "role", "type": "string", "default": "DSL"}), [_rec(_ID)])


def test_check_full_transitive_accepts_enum_symbol_added_when_enum_has_default() -> None:
    """With an enum default (our UNKNOWN convention) adding a symbol is accepted: old readers map it to the default."""
    old = _rec(_ID, {"name": "colour", "type": {**_COLOUR_V1, "default": "RED"}})
    new = _rec(_ID, {"name": "colour", "type": {**_COLOUR_V2, "default": "RED"}})
    check_full_transitive(new, [old])


_OLD_REF = _rec(_ID, {"name": "ref", "type": "string"})
_NEW_ALIASED = _rec(_ID, {"name": "reference", "type": "string", "aliases": ["ref"]})


def test_apache_checker_honours_reader_alias_so_aliased_rename_is_backward_compatible() -> None:
    """Apache avro's checker matches a reader field to a writer field by alias: new reader reads old data."""
    assert _compatible(_NEW_ALIASED, _OLD_REF) == (True, "")
    unaliased = _rec(_ID, {"name": "reference", "type": "string"})
    assert _compatible(unaliased, _OLD_REF)[0] is False


def test_aliased_rename_of_required_field_is_refused_forward_since_old_readers_know_no_alias() -> None:
    """Apache avro's checker refuses an aliased rename of a required field for FULL: old readers lack the alias."""
    with pytest.raises(IncompatibleSchema, match="forward") as caught:
        check_full_transitive(_NEW_ALIASED, [_OLD_REF])
    assert "reader_field_missing_default_value" in str(caught.value)


def test_aliased_rename_is_accepted_when_the_old_field_had_a_default() -> None:
    """A rename with an alias is FULL compatible when the old field had a default (old readers fall back to it)."""
    old = _rec(_ID, {"name": "ref", "type": "string", "default": ""})
    check_full_transitive(_NEW_ALIASED, [old])


# ------------------------------------------------------------------------------------------- generate()
def test_generate_writes_v1_once_then_nothing(tmp_path: Path) -> None:
    """generate() into an empty directory writes v1 of every record; a second call writes nothing."""
    written = generate(tmp_path)
    assert sorted(written) == sorted(str(tmp_path / m.__name__ / "v1.avsc") for m in ALL_RECORDS)
    for model in ALL_RECORDS:
        assert json.loads((tmp_path / model.__name__ / "v1.avsc").read_text()) == avro_schema(model)
    assert generate(tmp_path) == []
    assert sorted(p.name for p in tmp_path.glob("*/*.avsc")) == ["v1.avsc"] * len(ALL_RECORDS)


def test_generate_refuses_an_incompatible_model_and_writes_nothing(tmp_path: Path) -> None:
    """When the model dropped a required field of the written v1, generate() raises naming the record, no v2."""
    current = avro_schema(EncompassAcknowledgement)
    v1 = {**current, "fields": [*current["fields"], {"name": "staff_number", "type": "string", "doc": "gone"}]}
    folder = tmp_path / ACK
    folder.mkdir()
    (folder / "v1.avsc").write_text(json.dumps(v1))
    with pytest.raises(IncompatibleSchema, match=ACK):
        generate(tmp_path, records=(EncompassAcknowledgement,))
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == ["v1.avsc"]
