"""The operations dashboard in a real browser (Debian's chromium driven by Playwright) on the real broker: a
simulated week of SLA events and some dead letters are published to a fresh prefix's sla.events and deadletter,
the view consumer reads them into the database, an operations account signs in and sees the at-risk item the test
created with its deadline, the charts and the view consumer's lag status, then redrives a dead letter (the raw
record is back on its source topic, once). The screenshot goes to $MASH_SCREENSHOTS_DIR when set
(`MASH_SCREENSHOTS_DIR=docs/screenshots pytest tests/integration/test_ops_browser.py`), else to a temporary
folder."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Browser

from broker.reader import read_topics
from broker.settings import Settings
from broker.topics import catalogue
from consumers.codec import RecordCodec, close, make_codec
from consumers.database import Database
from consumers.ops_view import ops_topics
from consumers.roles import Role
from consumers.view_consumer import ViewConsumer
from consumers.web.ops import KafkaOpsBackend, install
from schemas.models import DeadLetter, Record, Route, SlaEvent, SlaState
from tests.consumers.conftest import PASSWORD, add_account
from tests.integration.conftest import delete_topics, fresh_settings
from tests.integration.test_school_browser import Served, browser, shots  # noqa: F401  (fixtures)
from tests.integration.test_school_feed import new_db, publish

pytestmark = pytest.mark.integration
NOW = datetime.now(UTC).replace(microsecond=0)
LONDON = ZoneInfo("Europe/London")
AUTHORITIES = ("E06000051", "E06000059", "E10000013")
ROUTES = (Route.FRONT_DOOR, Route.DV_TRIAGE, Route.EMERGENCY_DUTY, Route.MARAC)


@pytest.fixture(scope="module")
def ops_settings(kafka: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A fresh topic prefix for this module."""
    s = fresh_settings(kafka, tmp_path_factory.mktemp("ops"), "o")
    yield s
    asyncio.run(delete_topics(s))


def event(output: uuid.UUID, state: SlaState, at: datetime, due: datetime, route: Route, recipient: str,
          verified: bool = True) -> SlaEvent:
    """An SLA event with its derived id."""
    return SlaEvent(sla_event_id=uuid.uuid5(output, state.value), output_id=output, route=route, recipient=recipient,
                    state=state, due=due, at=at, calendar_verified=verified)


def simulated_week(rng: random.Random) -> list[SlaEvent]:
    """Clocks due over the last seven days on four routes: most met in time, some breached, a few late."""
    out = []
    for day in range(6, -1, -1):
        for route in ROUTES:
            for _ in range(rng.randint(3, 7)):
                due = NOW - timedelta(days=day, hours=rng.randint(1, 10))
                out_id, la = uuid.uuid4(), rng.choice(AUTHORITIES)
                verified = rng.random() > 0.15
                started = due - timedelta(hours=4)
                out.append(event(out_id, SlaState.STARTED, started, due, route, la, verified))
                fate = rng.random()
                if fate < 0.8:
                    out.append(event(out_id, SlaState.MET, started + timedelta(minutes=rng.randint(10, 200)), due,
                                     route, la, verified))
                else:
                    out.append(event(out_id, SlaState.BREACHED, due, due, route, la, verified))
    return out


def dead_letters(s: Settings) -> list[DeadLetter]:
    """Three dead letters of police intake: one whole (redrivable), one truncated, one of another kind."""
    topic = catalogue(s.topic_prefix).name("intake.police")
    made = []
    for offset, reason, truncated in ((3, "INVALID", False), (4, "UNDECODABLE", True), (5, "INVALID", False)):
        made.append(DeadLetter(dead_letter_id=uuid.uuid5(uuid.NAMESPACE_URL, f"{topic}/0/{offset}"),
                               source_topic=topic, source_partition=0, source_offset=offset, reason=reason,
                               raw_key=f"key-{offset}".encode(),
                               raw_value=b"\x00\x00\x00\x00\x07raw-" + bytes([offset]),
                               raw_size=10, raw_truncated=truncated, at=NOW - timedelta(minutes=offset)))
    return made


@pytest.fixture
async def world(ops_settings: Settings, tmp_path: Path) -> AsyncIterator[tuple[Settings, Database, uuid.UUID]]:
    """A week of SLA events, one item at risk now, dead letters, consumed into the view; an operations account."""
    s = ops_settings
    topics = ops_topics(s.topic_prefix)
    codec: RecordCodec = await make_codec(s.registry_url, topics)
    risky = uuid.uuid4()
    due = NOW + timedelta(minutes=25)
    week: list[Record] = [*simulated_week(random.Random(9)),
                          event(risky, SlaState.STARTED, NOW - timedelta(minutes=35), due, Route.EMERGENCY_DUTY,
                                "E06000051"),
                          event(risky, SlaState.AT_RISK, NOW - timedelta(minutes=5), due, Route.EMERGENCY_DUTY,
                                "E06000051")]
    await publish(s, codec, "sla.events", *week)
    letters = dead_letters(s)
    await publish(s, codec, "deadletter", *letters)
    db = new_db(tmp_path, "ops")
    consumer = ViewConsumer(db, codec, s.kafka_bootstrap, list(topics), f"{s.topic_prefix}.web")
    await consumer.start()
    try:
        for _ in range(60):
            await consumer.poll_once(500)
            if consumer.applied >= len(week) + len(letters):
                break
        assert consumer.applied == len(week) + len(letters)
    finally:
        await consumer.stop()
    add_account(db, "ops-a", Role.OPERATIONS, "")
    yield s, db, risky
    await close(codec)


async def test_operations_sees_the_at_risk_item_and_redrives_once(world: tuple[Settings, Database, uuid.UUID],
                                                                  browser: Browser, shots: Path) -> None:  # noqa: F811
    """Signed in as operations: the at-risk item with its deadline, charts, lag OK; a redrive lands once."""
    s, db, risky = world
    served = Served(s, db)
    install(served.server.config.app, KafkaOpsBackend(s.kafka_bootstrap, s.topic_prefix))
    with served:
        page = await (await browser.new_context(viewport={"width": 1280, "height": 900})).new_page()
        await page.goto(served.url + "/operations")
        await page.get_by_label("Account name").fill("ops-a")
        await page.get_by_label("Password").fill(PASSWORD)
        await page.get_by_label("Password").press("Enter")
        await page.wait_for_url("**/operations")
        body = await page.inner_text("main")
        assert str(risky) in body and "Emergency duty" in body
        assert (NOW + timedelta(minutes=25)).astimezone(LONDON).strftime("%a %-d %b %Y, %H:%M") in body  # its deadline
        assert await page.locator("svg").count() >= 5
        assert f"{s.topic_prefix}.web" in body and "OK" in body
        await page.screenshot(path=shots / "operations.png", full_page=True)
        await page.get_by_role("button", name="Redrive").first.click()
        await page.get_by_text("Redriven: the record is back").wait_for()
        assert await page.get_by_role("button", name="Redrive").count() == 1
    intake = catalogue(s.topic_prefix).name("intake.police")
    landed = [(r.key, r.value) for r in await read_topics(s.kafka_bootstrap, [intake])]
    assert len(landed) == 1 and landed[0][0] in {b"key-3", b"key-5"}
