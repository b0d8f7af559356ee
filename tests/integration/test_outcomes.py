"""Every record ends in one recorded outcome, on the real broker with the worker as a process: failures
injected at each stage of both agents (transient ones retried, deterministic ones dead-lettered with their
stage), an oversize value, and an AMEND / WITHDRAW that moves a child to another authority."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from uuid import UUID

import pytest
from aiokafka import AIOKafkaProducer

from broker.reference import DEFAULT_SCHOOLS, load_schools
from broker.settings import Settings
from broker.topics import catalogue
from producers.sdk import AgencyClient
from schemas.models import (
    Action,
    AuditEvent,
    AuditRecord,
    DeadLetter,
    EncompassNotice,
    FrontDoorReferral,
    Recall,
    RecallReason,
    Record,
    Rejection,
)
from tests.broker.factories import DORSET, SHROPSHIRE, child, envelope, police_incident
from tests.integration.conftest import WorkerProcess, delete_topics, fresh_settings, wait_for

pytestmark = pytest.mark.integration

ROUTES = ("route.frontdoor", "route.encompass", "route.dvtriage", "route.marac", "route.emergency-duty",
          "route.cumulative-concern")
_SCHOOLS = load_schools(DEFAULT_SCHOOLS).values()
SHROP_A, SHROP_B = [s.urn for s in _SCHOOLS if s.authority == SHROPSHIRE and s.open][:2]
DORSET_A = next(s.urn for s in _SCHOOLS if s.authority == DORSET and s.open)

#: (stage, kind) -> what must become of the notification
FAULTS = [
    ("intake.forward", "transient", "routed"),
    ("intake.record", "transient", "routed"),
    ("router.route", "transient", "dead:router.route"),  # routing is pure: any failure there is deterministic
    ("router.emit", "transient", "routed"),
    ("router.record", "transient", "routed"),
    ("intake.decode", "fatal", "refused:intake.decode"),
    ("intake.admit", "fatal", "refused:intake.admit"),
    ("intake.forward", "fatal", "refused:intake.forward"),
    ("intake.record", "fatal", "dead+routed:intake.record"),
    ("router.emit", "fatal", "dead:router.emit"),
    ("router.record", "fatal", "dead+routed:router.record"),
]


def recent(hours: float = 3) -> datetime:
    """An instant safely in the past."""
    return (datetime.now(UTC) - timedelta(hours=hours)).replace(microsecond=0)


def incidents() -> list[Record]:
    """One synthetic incident per fault."""
    return [police_incident([child(400 + i, school_urn=SHROP_A, date_of_birth=date(2015, 1, 1))], occurred=recent())
            for i in range(len(FAULTS))]


@pytest.fixture(scope="module")
def planned() -> list[Record]:
    """The incidents the fault plan targets."""
    return incidents()


@pytest.fixture(scope="module")
def faulty(kafka: str, tmp_path_factory: pytest.TempPathFactory, planned: list[Record]) -> Iterator[Settings]:
    """A prefix of its own whose worker runs the fault plan."""
    plan = [{"stage": st, "kind": kind, "times": 3 if kind == "transient" else 1,
             "match": str(r.envelope.notification_id)}  # type: ignore[attr-defined]
            for (st, kind, _), r in zip(FAULTS, planned, strict=True)]
    base = fresh_settings(kafka, tmp_path_factory.mktemp("faulty"), "f")
    s = base.model_copy(update={"fault_plan": json.dumps(plan)})
    w = WorkerProcess(s, tmp_path_factory.mktemp("faulty-logs") / "worker.log")
    w.start()
    yield s
    w.stop()
    asyncio.run(delete_topics(s))


async def _publish(s: Settings, records: list[Record]) -> None:
    async with AgencyClient(s, records[0].envelope.source.agency_type) as client:  # type: ignore[attr-defined]
        for r in records:
            await client.publish(r)


def _referred(got: list[tuple[object, Record]], nid: UUID) -> bool:
    return any(isinstance(r, FrontDoorReferral) and r.notification_id == nid for _, r in got)


async def test_injected_failures_each_end_in_one_outcome(faulty: Settings, planned: list[Record]) -> None:
    """Transient failures at each stage are retried to a routed notification; deterministic ones end in
    exactly one dead letter naming their stage (with a rejection only when the record was not accepted)."""
    await _publish(faulty, planned)
    ids = [r.envelope.notification_id for r in planned]  # type: ignore[attr-defined]
    expect_routed = [i for i, (_, _, want) in zip(ids, FAULTS, strict=True) if "routed" in want]
    expect_dead = {i: want.split(":")[1] for i, (_, _, want) in zip(ids, FAULTS, strict=True) if ":" in want}

    def settled(got: list[tuple[object, Record]]) -> bool:
        letters = {r.notification_id for _, r in got if isinstance(r, DeadLetter)}
        return all(_referred(got, i) for i in expect_routed) and set(expect_dead) <= letters

    await wait_for(faulty, (*ROUTES, "deadletter"), settled, timeout=150)
    await asyncio.sleep(3)  # anything doubled would show up by now
    got = await wait_for(faulty, (*ROUTES, "deadletter", "feedback.rejections"), settled, timeout=10)
    letters = [r for _, r in got if isinstance(r, DeadLetter)]
    assert len({(d.source_topic, d.source_partition, d.source_offset) for d in letters}) == len(letters)
    assert {d.notification_id: d.stage for d in letters} == expect_dead
    assert len(letters) == len(expect_dead), "a record was dead-lettered twice"
    rejected = {r.notification_id for _, r in got if isinstance(r, Rejection)}
    for nid, stage in expect_dead.items():
        assert (nid in rejected) == (stage in ("intake.decode", "intake.admit", "intake.forward")), stage
    for (_, _, want), nid in zip(FAULTS, ids, strict=True):
        assert _referred(got, nid) == ("routed" in want), want


async def test_oversize_value_is_dead_lettered_with_a_preview(faulty: Settings) -> None:
    """A 1,040,000-byte value on an intake topic: one dead letter with a bounded preview, size and offset."""
    topic = catalogue(faulty.topic_prefix).name("intake.health")
    producer = AIOKafkaProducer(bootstrap_servers=faulty.kafka_bootstrap, max_request_size=2_000_000)
    await producer.start()
    try:
        meta = await producer.send_and_wait(topic, key=b"big", value=b"\xc3\x01" + bytes(1_039_998))
    finally:
        await producer.stop()
    got = await wait_for(faulty, ("deadletter",), lambda g: any(
        isinstance(r, DeadLetter) and r.source_topic == topic and r.source_offset == meta.offset for _, r in g))
    [letter] = [r for _, r in got if isinstance(r, DeadLetter) and r.source_topic == topic
                and r.source_offset == meta.offset]
    assert letter.raw_truncated and letter.raw_size == 1_040_000 and len(letter.raw_value or b"") <= 4096


async def test_amend_to_another_authority_recalls_everything_at_the_first(settings: Settings,
                                                                         worker: WorkerProcess) -> None:
    """NEW to Shropshire (two schools) then AMEND moving the child to Dorset: the Shropshire referral and both
    notices are recalled, Dorset gets a referral and a notice; a WITHDRAW of the AMEND recalls Dorset's."""
    kid = [child(451, school_urn=SHROP_A, date_of_birth=date(2014, 4, 4)),
           child(452, school_urn=SHROP_B, date_of_birth=date(2012, 2, 2))]
    new = police_incident(kid, occurred=recent())
    await _publish(settings, [new])
    nid = new.envelope.notification_id
    got = await wait_for(settings, ROUTES, lambda g: len(
        [r for _, r in g if isinstance(r, EncompassNotice) and r.notification_id == nid]) == 2 and _referred(g, nid))
    firsts = {r.notice_id if isinstance(r, EncompassNotice) else r.referral_id
              for _, r in got if isinstance(r, EncompassNotice | FrontDoorReferral) and r.notification_id == nid}
    moved = [child(451, school_urn=DORSET_A, date_of_birth=date(2014, 4, 4), postcode="DT1 1AA"),
             child(452, school_urn=DORSET_A, date_of_birth=date(2012, 2, 2), postcode="DT1 1AA")]
    amend = new.model_copy(update={"children": moved, "envelope": envelope(
        action=Action.AMEND, supersedes=nid, occurred=new.envelope.occurred, authority=DORSET)})
    await _publish(settings, [amend])
    aid = amend.envelope.notification_id

    def recalled(g: list[tuple[object, Record]], by: UUID) -> set[UUID]:
        return {r.recalled_output_id for _, r in g if isinstance(r, Recall) and r.notification_id == by}

    got = await wait_for(settings, ROUTES, lambda g: firsts <= recalled(g, aid) and _referred(g, aid))
    dorset = [r for _, r in got if isinstance(r, FrontDoorReferral) and r.notification_id == aid]
    assert dorset[0].authority == DORSET and dorset[0].supersedes_referral is None
    assert {r.reason for _, r in got if isinstance(r, Recall) and r.notification_id == aid} == {RecallReason.AMENDED}
    seconds = {r.notice_id if isinstance(r, EncompassNotice) else r.referral_id
               for _, r in got if isinstance(r, EncompassNotice | FrontDoorReferral) and r.notification_id == aid}
    withdraw = amend.model_copy(update={"envelope": envelope(
        action=Action.WITHDRAW, supersedes=aid, occurred=new.envelope.occurred, authority=SHROPSHIRE)})
    await _publish(settings, [withdraw])
    wid = withdraw.envelope.notification_id
    got = await wait_for(settings, ROUTES, lambda g: seconds <= recalled(g, wid))
    assert not _referred(got, wid)
    audits = await wait_for(settings, ("audit",), lambda g: sum(
        1 for _, r in g if isinstance(r, AuditRecord) and r.event is AuditEvent.RECALLED
        and r.notification_id in (aid, wid)) >= len(firsts) + len(seconds))
    assert audits
