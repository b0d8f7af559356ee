"""End to end on the real broker: SDK -> intake topics -> worker process -> routed topics."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from uuid import UUID

import pytest
from aiokafka import AIOKafkaProducer

from broker.identity import nhs_key
from broker.reference import DEFAULT_SCHOOLS, load_schools
from broker.run import LONDON
from broker.settings import Settings
from broker.topics import catalogue
from producers.sdk import AgencyClient
from schemas.models import (
    Action,
    AgencyType,
    AuditEvent,
    AuditRecord,
    CumulativeConcernAlert,
    DeadLetter,
    DvTriageItem,
    EducationStatus,
    EmergencyDutyAlert,
    EncompassNotice,
    FrontDoorReferral,
    Recall,
    Record,
    Rejection,
    RiskLevel,
)
from tests.broker.factories import child, envelope, health_notification, police_incident
from tests.integration.conftest import WorkerProcess, encode_for, read_decoded, wait_for

pytestmark = pytest.mark.integration

ROUTES = ("route.frontdoor", "route.encompass", "route.dvtriage", "route.emergency-duty", "route.cumulative-concern")
_open = [s for s in load_schools(DEFAULT_SCHOOLS).values() if s.authority == "E06000051" and s.open]
SCHOOL_A, SCHOOL_B, SCHOOL_C = _open[0].urn, _open[1].urn, _open[2].urn


def recent(hours: float = 3) -> datetime:
    """An instant safely in the past (occurred)."""
    return (datetime.now(UTC) - timedelta(hours=hours)).replace(microsecond=0)


def of(got: list[tuple[object, Record]], kind: type, nid: UUID) -> list:
    """Records of one kind about one notification."""
    return [r for _, r in got if isinstance(r, kind) and getattr(r, "notification_id", None) == nid]


async def publish(s: Settings, record: Record) -> None:
    """Publish through the SDK as the record's agency."""
    async with AgencyClient(s, record.envelope.source.agency_type) as client:  # type: ignore[attr-defined]
        await client.publish(record)


def incident_with_three(nid: UUID | None = None, **kw: object):  # type: ignore[no-untyped-def]
    """Two school-age children at different schools and a toddler."""
    return police_incident(
        [
            child(201, school_urn=SCHOOL_A, date_of_birth=date(2016, 3, 1)),
            child(202, school_urn=SCHOOL_B, date_of_birth=date(2012, 9, 9)),
            child(203, date_of_birth=date(2024, 1, 5), education=EducationStatus.NOT_SCHOOL_AGE),
        ],
        occurred=recent(),
        notification_id=nid,
        **kw,
    )


@pytest.fixture(scope="module")
async def first_incident(settings: Settings, worker: WorkerProcess):  # type: ignore[no-untyped-def]
    """The three-children incident, published once and routed."""
    incident = incident_with_three()
    await publish(settings, incident)
    nid = incident.envelope.notification_id
    got = await wait_for(
        settings, ROUTES,
        lambda g: bool(of(g, FrontDoorReferral, nid)) and bool(of(g, DvTriageItem, nid))
        and len(of(g, EncompassNotice, nid)) >= 2,
    )
    return incident, got


async def test_two_schools_and_a_toddler(first_incident) -> None:  # type: ignore[no-untyped-def]
    """Two Encompass notices (one per school), one referral naming all three children, one triage item."""
    incident, got = first_incident
    nid = incident.envelope.notification_id
    notices = of(got, EncompassNotice, nid)
    assert sorted(n.school_urn for n in notices) == sorted([SCHOOL_A, SCHOOL_B])
    referrals = of(got, FrontDoorReferral, nid)
    assert len(referrals) == 1 and len(referrals[0].children) == 3
    assert len(of(got, DvTriageItem, nid)) == 1
    for n in notices:  # data minimisation: the notice has no narrative field at all
        assert "summary" not in n.model_fields and n.due > n.incident_occurred


async def test_resend_makes_nothing_new(settings: Settings, first_incident) -> None:  # type: ignore[no-untyped-def]
    """The same notification re-sent is dropped (audited) and no new output appears."""
    incident, before = first_incident
    nid = incident.envelope.notification_id
    await publish(settings, incident)
    await wait_for(settings, ("audit",), lambda g: any(
        isinstance(r, AuditRecord) and r.notification_id == nid and r.event is AuditEvent.DUPLICATE_DROPPED
        for _, r in g))
    after = await read_decoded(settings, *ROUTES)
    ids = lambda got: sorted(str(r.model_dump()) for _, r in got if getattr(r, "notification_id", None) == nid)  # noqa: E731
    assert ids(after) == ids(before)


async def test_resend_with_different_content_is_a_conflict(settings: Settings, first_incident) -> None:  # type: ignore[no-untyped-def]
    """The same id with different content and action NEW goes to the dead letter as a conflict."""
    incident, _ = first_incident
    nid = incident.envelope.notification_id
    changed = incident.model_copy(update={"police_reference": "TESTPPN/CHANGED"})
    await publish(settings, changed)
    got = await wait_for(settings, ("deadletter", "feedback.rejections"), lambda g: bool(
        [r for _, r in g if isinstance(r, DeadLetter) and r.notification_id == nid and r.reason == "CONFLICT"])
        and any(isinstance(r, Rejection) and r.notification_id == nid for _, r in g))
    rejection = [r for _, r in got if isinstance(r, Rejection) and r.notification_id == nid]
    assert rejection and rejection[0].source_reference == incident.envelope.source_reference


async def test_amend_moves_a_child_to_another_school(settings: Settings, first_incident) -> None:  # type: ignore[no-untyped-def]
    """AMEND with a child at a new school: the first school gets a recall, the new school a notice."""
    incident, got = first_incident
    old = incident.envelope
    old_notice = next(n for n in of(got, EncompassNotice, old.notification_id) if n.school_urn == SCHOOL_A)
    children = list(incident.children)
    children[0] = child(201, school_urn=SCHOOL_C, date_of_birth=date(2016, 3, 1))
    amend = incident.model_copy(update={
        "children": children,
        "envelope": envelope(action=Action.AMEND, supersedes=old.notification_id, occurred=old.occurred),
    })
    await publish(settings, amend)
    new_id = amend.envelope.notification_id
    got = await wait_for(settings, ROUTES, lambda g: bool(of(g, FrontDoorReferral, new_id)) and bool(
        of(g, Recall, new_id)))
    recalls = of(got, Recall, new_id)
    assert any(r.recalled_output_id == old_notice.notice_id and r.recipient == SCHOOL_A for r in recalls)
    assert SCHOOL_C in {n.school_urn for n in of(got, EncompassNotice, new_id)}
    referral = of(got, FrontDoorReferral, new_id)[0]
    assert referral.supersedes_referral == of(got, FrontDoorReferral, old.notification_id)[0].referral_id


async def test_malformed_payload_is_dead_lettered_and_rejected(settings: Settings, worker: WorkerProcess) -> None:
    """Undecodable bytes and a payload breaking a field rule both reach the dead letter and the sender."""
    cat = catalogue(settings.topic_prefix)
    good = police_incident([child(231, school_urn=SCHOOL_A)], occurred=recent())
    bad_env = good.envelope.model_copy(update={"home_local_authority": "NOTACODE"})
    invalid = good.model_copy(update={"envelope": bad_env})  # model_copy does not validate
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(cat.name("intake.police"), key=b"garbage-key", value=b"\x00\x00\x00\x00\x07junk")
        await producer.send_and_wait(
            cat.name("intake.police"), key=str(bad_env.notification_id).encode(),
            value=await encode_for(settings, invalid, "intake.police"),
        )
    finally:
        await producer.stop()
    def both(g: list[tuple[object, Record]]) -> bool:  # this test's own records (the session has others)
        return any(isinstance(r, DeadLetter) and r.raw_key == b"garbage-key" for _, r in g) and any(
            isinstance(r, DeadLetter) and r.notification_id == bad_env.notification_id for _, r in g) and any(
            isinstance(r, Rejection) and r.source_reference == bad_env.source_reference for _, r in g)

    got = await wait_for(settings, ("deadletter", "feedback.rejections"), both)
    letters = [r for _, r in got if isinstance(r, DeadLetter)]
    undecodable = next(r for r in letters if r.reason == "UNDECODABLE" and r.raw_key == b"garbage-key")
    assert "schema id 7" in undecodable.errors[0].rule and undecodable.raw_value.endswith(b"junk")
    invalid_letter = next(r for r in letters if r.reason == "INVALID" and r.notification_id == bad_env.notification_id)
    assert [e.field for e in invalid_letter.errors] == ["envelope.home_local_authority"]
    assert "NOTACODE" not in json.dumps([e.model_dump() for e in invalid_letter.errors])
    rejection = next(r for _, r in got if isinstance(r, Rejection) and r.source_reference == bad_env.source_reference)
    assert rejection.agency_type is AgencyType.POLICE and rejection.errors[0].field == "envelope.home_local_authority"


async def test_child_without_school_is_flagged_not_noticed(settings: Settings, worker: WorkerProcess) -> None:
    """A 10-year-old of unknown setting: a flagged referral, and no Encompass notice."""
    incident = police_incident(
        [child(241, date_of_birth=date(2016, 1, 1), education=EducationStatus.UNKNOWN)], occurred=recent()
    )
    await publish(settings, incident)
    nid = incident.envelope.notification_id
    got = await wait_for(settings, ROUTES, lambda g: bool(of(g, FrontDoorReferral, nid)) and bool(
        of(g, DvTriageItem, nid)))
    assert of(got, FrontDoorReferral, nid)[0].children[0].education_contact_needed is True
    assert of(got, EncompassNotice, nid) == []


async def test_cumulative_concern_raised_once(settings: Settings, worker: WorkerProcess) -> None:
    """Three police notifications then one from health within 90 days: exactly one cumulative alert."""
    kid = child(251, school_urn=SCHOOL_B, date_of_birth=date(2014, 2, 2))
    sent = [police_incident([kid], occurred=recent(24 * d + 3)) for d in (60, 40, 20)]
    sent.append(health_notification([kid], occurred=recent(5)))
    for record in sent:
        await publish(settings, record)
    ids = [r.envelope.notification_id for r in sent]
    got = await wait_for(settings, ROUTES, lambda g: all(of(g, FrontDoorReferral, i) for i in ids))
    key = nhs_key(settings.identity_secret.get_secret_value().encode(), kid.nhs_number or "")
    alerts = [r for _, r in got if isinstance(r, CumulativeConcernAlert) and r.child_key == key]
    assert len(alerts) == 1
    assert len(set(alerts[0].agency_types)) == 2 and len(alerts[0].notification_ids) >= 3


async def test_high_risk_at_two_in_the_morning_alerts_emergency_duty(settings: Settings, worker: WorkerProcess) -> None:
    """A HIGH-risk incident with children received at 02:00 alerts emergency duty; the same at 11:00 does not.

    The receipt instant is the broker's append time of the intake record, which a test cannot set, so these
    two records enter at the router's topic with their receipt instant, as intake forwards them.
    """
    cat = catalogue(settings.topic_prefix)
    night = datetime.combine(date(2026, 11, 18), datetime.min.time(), LONDON).replace(hour=2)  # a Wednesday
    day = night.replace(hour=11)
    sent = {}
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await producer.start()
    try:
        for n, received in ((261, night), (262, day)):
            incident = police_incident([child(n, school_urn=SCHOOL_A)], risk=RiskLevel.HIGH, ticks=16,
                                       occurred=received.astimezone(UTC) - timedelta(hours=1))
            ms = str(int(received.timestamp() * 1000)).encode()
            await producer.send_and_wait(cat.name("internal.accepted"), key=b"E06000051",
                                         value=await encode_for(settings, incident, "internal.accepted"),
                                         headers=[("received-ms", ms)])
            sent[received.hour] = incident.envelope.notification_id
    finally:
        await producer.stop()
    got = await wait_for(settings, ROUTES, lambda g: all(of(g, DvTriageItem, i) for i in sent.values()))
    assert len(of(got, EmergencyDutyAlert, sent[2])) == 1
    assert of(got, EmergencyDutyAlert, sent[11]) == []
