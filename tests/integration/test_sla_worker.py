"""SLA clocks in the worker process on the real broker: a routed Encompass notice starts a clock that the
school's acknowledgement stops (STARTED then MET), and another school's acknowledgement never closes it."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta

import pytest
from aiokafka import AIOKafkaProducer

from broker.reference import DEFAULT_SCHOOLS, load_schools
from broker.settings import Settings
from broker.topics import catalogue
from producers.sdk import AgencyClient
from schemas.codec import Codec
from schemas.models import EncompassAcknowledgement, EncompassNotice, SlaEvent, SlaState
from schemas.registry import SchemaRegistry
from tests.broker.factories import child, police_incident
from tests.integration.conftest import WorkerProcess, read_decoded, wait_for

pytestmark = pytest.mark.integration

_open = [s for s in load_schools(DEFAULT_SCHOOLS).values() if s.authority == "E06000051" and s.open]
SCHOOL, OTHER = _open[5].urn, _open[6].urn


def events(got: list, output_id: object) -> list[SlaState]:  # type: ignore[type-arg]
    """The SLA states of one clock, in topic order."""
    return [r.state for _, r in got if isinstance(r, SlaEvent) and r.output_id == output_id]


async def test_notice_clock_started_and_met_by_its_school_only(settings: Settings, worker: WorkerProcess) -> None:
    """STARTED when routed; another school's acknowledgement leaves it open; the school's own gives MET once."""
    incident = police_incident([child(611, school_urn=SCHOOL, date_of_birth=date(2015, 6, 6))],
                               occurred=(datetime.now(UTC) - timedelta(hours=2)).replace(microsecond=0))
    async with AgencyClient(settings, incident.envelope.source.agency_type) as client:
        await client.publish(incident)
    nid = incident.envelope.notification_id
    got = await wait_for(settings, ("route.encompass",), lambda g: any(
        isinstance(r, EncompassNotice) and r.notification_id == nid for _, r in g))
    notice = next(r for _, r in got if isinstance(r, EncompassNotice) and r.notification_id == nid)
    await wait_for(settings, ("sla.events",), lambda g: SlaState.STARTED in events(g, notice.notice_id))

    topic = catalogue(settings.topic_prefix).name("feedback.acknowledgements")
    codec = Codec(SchemaRegistry(settings.registry_url))
    await codec.prepare({topic: [EncompassAcknowledgement]})
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for urn in (OTHER, SCHOOL):
            ack = EncompassAcknowledgement(notice_id=notice.notice_id, school_urn=urn, acknowledged=datetime.now(UTC))
            await producer.send_and_wait(topic, key=urn.encode(), value=codec.encode(ack, topic))
            if urn == OTHER:  # the tracker settles an acknowledgement within a second or two
                await asyncio.sleep(6)
                after_other = await read_decoded(settings, "sla.events")
                assert SlaState.MET not in events(after_other, notice.notice_id), "another school closed the clock"
    finally:
        await producer.stop()
        await codec.aclose()
    got = await wait_for(settings, ("sla.events",), lambda g: SlaState.MET in events(g, notice.notice_id))
    assert events(got, notice.notice_id).count(SlaState.MET) == 1
    assert SlaState.BREACHED not in events(got, notice.notice_id)
