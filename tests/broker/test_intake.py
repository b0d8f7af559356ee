"""Intake verdicts as pure functions: accept, duplicate, conflict, invalid; derived ids are stable."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from broker.intake import Seen, Verdict, admit, content_hash, derived_id
from producers.simulator import generate as simulate
from schemas.models import AgencyType, HealthSafeguardingNotification, PoliceDomesticAbuseIncident, Record
from tests.broker.kafka_fakes import prepared_codec

START = datetime(2026, 11, 2, 18, tzinfo=UTC)


@pytest.fixture(scope="module")
def incident() -> PoliceDomesticAbuseIncident:
    for record in simulate(START, seed=13, count=40):
        if isinstance(record, PoliceDomesticAbuseIncident):
            return record
    raise AssertionError("the simulator made no police incident")


def _with(record: Record, **envelope: Any) -> Record:
    """A validated copy of `record` with envelope fields replaced."""
    data = record.model_dump()
    data["envelope"].update(envelope)
    return type(record).model_validate(data)


def _received(record: PoliceDomesticAbuseIncident) -> datetime:
    return record.envelope.produced + timedelta(seconds=2)


def _seen(record: Record) -> Seen:
    return Seen(content_hash=content_hash(record), authority="E06000051", received_ms=1)


def test_new_notification_is_accepted(incident: PoliceDomesticAbuseIncident) -> None:
    """A valid notification whose id was never seen is ACCEPTed with no errors."""
    outcome = admit(incident, agency=AgencyType.POLICE, seen=None, received=_received(incident))
    assert outcome.verdict is Verdict.ACCEPT
    assert outcome.errors == ()


def test_same_content_again_is_a_duplicate(incident: PoliceDomesticAbuseIncident) -> None:
    """The same id with the same content (a resend, even after an Avro round trip) is a DUPLICATE."""
    codec = prepared_codec()
    resent = codec.decode(codec.encode(incident, "t.intake.police"))
    outcome = admit(resent, agency=AgencyType.POLICE, seen=_seen(incident), received=_received(incident))
    assert outcome.verdict is Verdict.DUPLICATE


def test_different_content_same_id_is_a_conflict(incident: PoliceDomesticAbuseIncident) -> None:
    """The same notification id with different content is a CONFLICT on envelope.notification_id."""
    changed = incident.model_copy(update={"summary": "a different synthetic narrative"})
    assert changed.envelope.notification_id == incident.envelope.notification_id
    outcome = admit(changed, agency=AgencyType.POLICE, seen=_seen(incident), received=_received(incident))
    assert outcome.verdict is Verdict.CONFLICT
    assert [f for f, _ in outcome.errors] == ["envelope.notification_id"]


def test_envelope_agency_must_match_the_topic(incident: PoliceDomesticAbuseIncident) -> None:
    """A police body whose envelope says HEALTH is INVALID on the police topic, naming the field."""
    wrong = _with(incident, source={**incident.envelope.source.model_dump(), "agency_type": AgencyType.HEALTH})
    outcome = admit(wrong, agency=AgencyType.POLICE, seen=None, received=_received(incident))
    assert outcome.verdict is Verdict.INVALID
    assert outcome.errors == (("envelope.source.agency_type", "must be POLICE on this agency's topic"),)


def test_body_of_another_agency_is_invalid(incident: PoliceDomesticAbuseIncident) -> None:
    """A police body on the health topic is INVALID on `kind`, before any other check (even a seen id)."""
    outcome = admit(incident, agency=AgencyType.HEALTH, seen=_seen(incident), received=_received(incident))
    assert outcome.verdict is Verdict.INVALID
    assert outcome.errors == (("kind", f"must be one of {HealthSafeguardingNotification.__name__} for agency HEALTH"),)


def test_occurred_more_than_five_minutes_after_receipt_is_invalid(incident: PoliceDomesticAbuseIncident) -> None:
    """An event occurring more than 5 minutes after the broker received it is INVALID on envelope.occurred."""
    occurred = incident.envelope.occurred
    outcome = admit(incident, agency=AgencyType.POLICE, seen=None, received=occurred - timedelta(minutes=5, seconds=1))
    assert outcome.verdict is Verdict.INVALID
    assert ("envelope.occurred", "must not be more than 5 minutes in the future") in outcome.errors


def test_occurred_within_tolerance_is_accepted(incident: PoliceDomesticAbuseIncident) -> None:
    """Up to 5 minutes of sender clock skew is tolerated: occurred == reported == received + 5 min is ACCEPTed."""
    instant = incident.envelope.occurred
    skewed = _with(incident, reported=instant, produced=instant)
    outcome = admit(skewed, agency=AgencyType.POLICE, seen=None, received=instant - timedelta(minutes=5))
    assert outcome.verdict is Verdict.ACCEPT


def test_invalid_wins_over_duplicate(incident: PoliceDomesticAbuseIncident) -> None:
    """A seen id whose resend is now invalid is reported INVALID, not silently dropped as a duplicate."""
    outcome = admit(incident, agency=AgencyType.POLICE, seen=_seen(incident),
                    received=incident.envelope.occurred - timedelta(hours=1))
    assert outcome.verdict is Verdict.INVALID


def test_derived_id_is_stable_and_distinct() -> None:
    """derived_id is a deterministic uuid5 of its parts; any differing part gives a different id."""
    nid = "5e5e0000-0000-4000-8000-000000000001"
    a = derived_id(nid, "FRONT_DOOR", "E06000051")
    assert a == derived_id(nid, "FRONT_DOOR", "E06000051")
    assert a.version == 5
    others = {
        derived_id(nid, "FRONT_DOOR", "E06000059"),
        derived_id(nid, "ENCOMPASS", "E06000051"),
        derived_id("5e5e0000-0000-4000-8000-000000000002", "FRONT_DOOR", "E06000051"),
        derived_id(nid, "FRONT_DOOR"),
        derived_id("E06000051", "FRONT_DOOR", nid),
    }
    assert len(others) == 5
    assert a not in others
