"""A front door decision closes the child's open referral in the router's state, on the real broker with the
worker process: after the decision a release from custody about the child makes a new referral and raises no
significant-event alert, while the same release about an undecided child's referral does raise one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from broker.settings import Settings
from broker.topics import catalogue
from consumers.authority_view import ACK_RECORDS
from consumers.codec import make_codec
from consumers.feedback import KafkaFeedbackSink
from producers.sdk import AgencyClient
from schemas.models import (
    AuditRecord,
    CumulativeConcernAlert,
    CumulativeTrigger,
    FrontDoorDecision,
    FrontDoorReferral,
    FrontDoorResponse,
    ProbationEvent,
    Rag,
    Record,
    SlaEvent,
    SlaState,
)
from tests.broker.factories import child, police_concern, probation_notification
from tests.integration.conftest import WorkerProcess, wait_for

pytestmark = pytest.mark.integration


def _kid(n: int) -> Any:
    """Child `n` with a family name no other test uses (the factories' names repeat, and the demographic key
    would join this child to another test's child, whose open referrals would count)."""
    return child(n, family_name="Decision" + "".join(chr(97 + int(c, 16)) for c in uuid4().hex[:8]))


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


async def _publish(s: Settings, record: Any) -> None:
    async with AgencyClient(s, record.envelope.source.agency_type) as client:
        await client.publish(record)


def _referral(got: list[tuple[Any, Record]], nid: UUID) -> FrontDoorReferral | None:
    return next((r for _, r in got if isinstance(r, FrontDoorReferral) and r.notification_id == nid), None)


def _significant(got: list[tuple[Any, Record]], nid: UUID) -> list[CumulativeConcernAlert]:
    return [r for _, r in got if isinstance(r, CumulativeConcernAlert)
            and r.trigger is CumulativeTrigger.SIGNIFICANT_EVENT and nid in r.notification_ids]


async def _decide_as_the_pages_do(s: Settings, referral: FrontDoorReferral) -> FrontDoorDecision:
    """Send the decision the front door page sends (KafkaFeedbackSink, keyed by the authority, acks=all)."""
    topic = catalogue(s.topic_prefix).name("feedback.acknowledgements")
    sink = KafkaFeedbackSink(s.kafka_bootstrap, topic, lambda: make_codec(s.registry_url, {topic: list(ACK_RECORDS)}),
                             15.0)
    decision = FrontDoorDecision(referral_id=referral.referral_id, authority=referral.authority,
                                 response=FrontDoorResponse.NO_FURTHER_ACTION, rag=Rag.GREEN, decided=_now())
    await sink.start()
    try:
        await sink.send(decision)
    finally:
        await sink.stop()
    return decision


async def test_decision_closes_the_referral_so_a_later_event_opens_a_new_one(settings: Settings,
                                                                             worker: WorkerProcess) -> None:
    """Decided child: its release makes a new referral and no alert; undecided child: its release alerts."""
    occurred = _now() - timedelta(hours=3)
    kids = {721: _kid(721), 722: _kid(722)}
    decided_concern = police_concern([kids[721]], occurred=occurred)
    open_concern = police_concern([kids[722]], occurred=occurred)
    for n in (decided_concern, open_concern):
        await _publish(settings, n)
    got = await wait_for(settings, ("route.frontdoor",), lambda g: all(
        _referral(g, n.envelope.notification_id) for n in (decided_concern, open_concern)))
    referral = _referral(got, decided_concern.envelope.notification_id)
    assert referral is not None

    await _decide_as_the_pages_do(settings, referral)
    closed = await wait_for(settings, ("audit",), lambda g: any(
        isinstance(r, AuditRecord) and r.output_id == referral.referral_id and "router: closed" in r.purpose
        for _, r in g))
    assert sum(1 for _, r in closed if isinstance(r, AuditRecord) and r.output_id == referral.referral_id
               and r.purpose.startswith("front door decision in the router")) == 1
    sla = await wait_for(settings, ("sla.events",), lambda g: any(
        isinstance(r, SlaEvent) and r.output_id == referral.referral_id and r.state is SlaState.MET for _, r in g))
    assert [r.state for _, r in sla if isinstance(r, SlaEvent) and r.output_id == referral.referral_id].count(
        SlaState.MET) == 1

    after = _now()  # the releases occur after the decision
    releases = [probation_notification([kids[n]], event=ProbationEvent.RELEASE_FROM_CUSTODY, occurred=after,
                                       reported=after)
                for n in (721, 722)]
    for n in releases:  # the decided child's first: the router handles one authority's records in order
        await _publish(settings, n)
    decided_release, open_release = (n.envelope.notification_id for n in releases)
    got = await wait_for(settings, ("route.frontdoor", "route.cumulative-concern"), lambda g: bool(
        _referral(g, decided_release) and _referral(g, open_release) and _significant(g, open_release)))
    assert _significant(got, decided_release) == []  # decided: the release opens a new referral, no alert
    assert len(_significant(got, open_release)) == 1  # undecided: the referral is still open
