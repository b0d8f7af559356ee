"""The local authority's pages in a real browser (Debian's chromium driven by Playwright) on the real broker and
registry: referrals, a cumulative-concern alert, triage items, a late MARAC referral and an emergency duty alert
published to their route topics and read by the view consumer; the front door opens a child's chronology (the
fourth referral with no assessment) and records a decision with a RAG change (a FrontDoorDecision on Kafka
before the page says so); the triage chair marks an item discussed and referred to MARAC (TriageItemDiscussed
on Kafka), prints and downloads the agenda; the emergency duty team acknowledges an alert; the other
authority sees none of it. Screenshots go to $MASH_SCREENSHOTS_DIR when set (docs/screenshots/ is made with
`MASH_SCREENSHOTS_DIR=docs/screenshots pytest tests/integration/test_frontdoor_browser.py`), else to a
temporary folder."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import uvicorn
from playwright.async_api import Browser, Page

from broker.reader import read_topics
from broker.settings import Settings
from broker.topics import catalogue
from consumers.authority_view import ACK_RECORDS, authority_topics
from consumers.codec import RecordCodec, close, decode, make_codec
from consumers.database import Database
from consumers.feedback import KafkaFeedbackSink
from consumers.roles import Role
from consumers.settings import WebSettings
from consumers.tables import Decision
from consumers.view_consumer import ViewConsumer, view_topics
from consumers.web.app import create_app
from schemas import models as m
from tests.consumers.authority_data import (
    DORSET,
    SHROPSHIRE,
    add_user,
    cheap_hashes,  # noqa: F401  (fixture)
    child,
    cumulative,
    edt_alert,
    marac,
    referral,
    triage_item,
)
from tests.consumers.conftest import PASSWORD
from tests.integration.conftest import delete_topics, fresh_settings
from tests.integration.test_school_browser import _free_port, browser, shots  # noqa: F401  (fixtures)
from tests.integration.test_school_feed import new_db, publish

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("cheap_hashes")]
LONDON = ZoneInfo("Europe/London")


@pytest.fixture(scope="module")
def la_settings(kafka: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A fresh topic prefix for this module."""
    s = fresh_settings(kafka, tmp_path_factory.mktemp("authority"), "f")
    yield s
    asyncio.run(delete_topics(s))


def _topics(s: Settings) -> dict[str, list[type[m.Record]]]:
    ack_topic = catalogue(s.topic_prefix).name("feedback.acknowledgements")
    return {**authority_topics(s.topic_prefix), ack_topic: list(ACK_RECORDS)}


class Served:
    """The app under uvicorn in a thread, sending acknowledgements to the real broker (KafkaFeedbackSink)."""

    def __init__(self, s: Settings, db: Database) -> None:
        self.web = WebSettings(port=_free_port(), cookie_secure=True)
        topic = catalogue(s.topic_prefix).name("feedback.acknowledgements")
        sink = KafkaFeedbackSink(s.kafka_bootstrap, topic,
                                 lambda: make_codec(s.registry_url, {topic: list(ACK_RECORDS)}), 15.0)
        self.server = uvicorn.Server(uvicorn.Config(create_app(self.web, db, sink), host="127.0.0.1",
                                                   port=self.web.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = f"http://localhost:{self.web.port}"

    def __enter__(self) -> Served:
        self.thread.start()
        end = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < end, "web app did not start"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@dataclass
class Morning:
    """What was published, and where it is."""

    s: Settings
    codec: RecordCodec
    db: Database
    fourth: m.FrontDoorReferral
    red: m.FrontDoorReferral
    flagged_late: m.DvTriageItem
    meeting_day: str


async def _consume(s: Settings, codec: RecordCodec, db: Database, group: str, expected: int) -> None:
    consumer = ViewConsumer(db, codec, s.kafka_bootstrap, view_topics(s.topic_prefix), group)
    await consumer.start()
    try:
        for _ in range(60):
            await consumer.poll_once(500)
            if consumer.applied >= expected:
                return
        raise AssertionError(f"applied {consumer.applied} of {expected}")
    finally:
        await consumer.stop()


@pytest.fixture
async def morning(la_settings: Settings, tmp_path: Path) -> AsyncIterator[Morning]:
    """A simulated morning for Shropshire (and one Dorset referral) on the real topics, consumed into the views."""
    s, now = la_settings, datetime.now(UTC).replace(microsecond=0)
    codec = await make_codec(s.registry_url, _topics(s))
    key = "dem:browser-test-child"
    history = [referral(SHROPSHIRE, child(key=key, given="Mia", family="Synthetic"), agency_type=agency,
                        occurred=now - timedelta(days=days), received=now - timedelta(days=days) + timedelta(hours=2),
                        decision_due=now - timedelta(days=days - 1), source_reference=f"{agency.value[:3]}-{days}")
               for agency, days in ((m.AgencyType.HEALTH, 70), (m.AgencyType.POLICE, 40),
                                    (m.AgencyType.YOUTH_JUSTICE, 12))]
    fourth = referral(SHROPSHIRE, child(key=key, given="Mia", family="Synthetic"),
                      child(given="Leo", family="Synthetic", education_status=m.EducationStatus.UNKNOWN,
                            school_urn=None, education_contact_needed=True),
                      occurred=now - timedelta(hours=9), received=now - timedelta(hours=8),
                      decision_due=now + timedelta(hours=16), source_reference="WMP-2026-4411")
    red = referral(SHROPSHIRE, child(given="Ruby", family="Example"), rag=m.Rag.RED,
                   rag_reason="RED: stated risk HIGH with a child present", risk_level=m.RiskLevel.HIGH,
                   received=now - timedelta(hours=1), decision_due=now + timedelta(hours=3),
                   source_reference="WMP-2026-4502", consent=m.ConsentStatus.UNKNOWN)
    closed = [m.FrontDoorDecision(referral_id=r.referral_id, authority=SHROPSHIRE,
                                  response=m.FrontDoorResponse.NO_FURTHER_ACTION, decided=r.decision_due)
              for r in history]
    meeting = datetime.combine(now.astimezone(LONDON).date() + timedelta(days=1), datetime.min.time().replace(
        hour=9, minute=30), tzinfo=LONDON).astimezone(UTC)
    items = [triage_item(SHROPSHIRE, meeting_at=meeting, notification_id=fourth.notification_id,
                         source_reference="WMP-2026-4411", marac=True, risk_level=m.RiskLevel.HIGH, ticks=15,
                         marac_criteria=[m.MaracCriterion.DASH_HIGH, m.MaracCriterion.DASH_14_PLUS_TICKS]),
             triage_item(SHROPSHIRE, meeting_at=meeting, source_reference="NHS-RXK-88", risk_level=m.RiskLevel.MEDIUM,
                         agency_type=m.AgencyType.HEALTH),
             triage_item(SHROPSHIRE, meeting_at=meeting, notification_id=red.notification_id,
                         source_reference="WMP-2026-4502", risk_level=m.RiskLevel.STANDARD, ticks=4)]
    edt = edt_alert(SHROPSHIRE, notification_id=red.notification_id, source_reference="WMP-2026-4502",
                    received=now - timedelta(minutes=40))
    await publish(s, codec, "route.frontdoor", *history, fourth, red, referral(DORSET, child(given="Dorsetonly")))
    alert = cumulative(SHROPSHIRE, key=key, raised=now - timedelta(hours=2))
    await publish(s, codec, "route.cumulative-concern", alert)
    await publish(s, codec, "route.dvtriage", *items)
    await publish(s, codec, "route.marac", marac(items[2], m.MaracCriterion.ESCALATION_3_INCIDENTS_12_MONTHS))
    await publish(s, codec, "route.emergency-duty", edt)
    await publish(s, codec, "feedback.acknowledgements", *closed)
    db = new_db(tmp_path, "web")
    await _consume(s, codec, db, f"{s.topic_prefix}.web", 6 + 1 + 3 + 1 + 1 + 3)
    for role, prefix in ((Role.FRONT_DOOR, "frontdoor"), (Role.TRIAGE_CHAIR, "triage"),
                         (Role.EMERGENCY_DUTY, "edt")):
        add_user(db, f"{prefix}-{SHROPSHIRE}", role, SHROPSHIRE)
    add_user(db, f"frontdoor-{DORSET}", Role.FRONT_DOOR, DORSET)
    yield Morning(s, codec, db, fourth, red, items[2], meeting.astimezone(LONDON).date().isoformat())
    await close(codec)


async def sign_in(page: Page, url: str, username: str, home: str) -> None:
    """Sign in through the form, by keyboard; land on the role's page."""
    await page.goto(url + "/")
    await page.get_by_label("Account name").fill(username)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_label("Password").press("Enter")
    await page.wait_for_url(f"**{home}*")


async def on_kafka(w: Morning, kind: type[m.Record]) -> list[m.Record]:
    """The records of a kind on feedback.acknowledgements."""
    topic = catalogue(w.s.topic_prefix).name("feedback.acknowledgements")
    found = [await decode(w.codec, r.value) for r in await read_topics(w.s.kafka_bootstrap, [topic])]
    return [r for r in found if isinstance(r, kind)]


async def test_front_door_opens_a_chronology_and_records_a_decision(morning: Morning, browser: Browser,  # noqa: F811
                                                                   shots: Path) -> None:  # noqa: F811
    """Worklist by deadline (RED first, flags), the child's chronology, a decision with a RAG change on Kafka."""
    w = morning
    with Served(w.s, w.db) as served:
        page = await (await browser.new_context(viewport={"width": 1200, "height": 900})).new_page()
        await sign_in(page, served.url, f"frontdoor-{SHROPSHIRE}", "/frontdoor")
        body = await page.inner_text("main")
        assert body.index("Ruby") < body.index("Mia") < body.index("Cumulative concern")
        assert "Education contact needed" in body and "4 referrals for this child" in body
        assert "Dorsetonly" not in body and "browser-test-child" not in await page.content()
        await page.screenshot(path=shots / "frontdoor-worklist.png", full_page=True)
        await page.get_by_role("link", name="Mia Synthetic").first.click()
        await page.get_by_text("none has led to an assessment").wait_for()
        body = await page.inner_text("main")
        assert "4 referrals" in body and body.count("No further action") == 3
        await page.screenshot(path=shots / "frontdoor-chronology.png", full_page=True)
        await page.get_by_role("link", name="Back to the referral").click()
        await page.screenshot(path=shots / "frontdoor-referral.png", full_page=True)
        await page.get_by_label("Response").select_option("CHILD_IN_NEED_ASSESSMENT")
        await page.get_by_label("Reason for the decision").fill("Fourth referral in 12 months; assess.")
        await page.get_by_label("RAG rating (now").select_option("AMBER")
        await page.get_by_label("Reason for changing the RAG rating").fill("Pattern of escalation across agencies.")
        await page.get_by_role("button", name="Record decision").click()
        await page.get_by_text("Decision recorded").wait_for()
        decisions = await on_kafka(w, m.FrontDoorDecision)
        mine = [d for d in decisions if isinstance(d, m.FrontDoorDecision) and d.referral_id == w.fourth.referral_id]
        assert [(d.response, d.rag, d.authority) for d in mine] == [
            (m.FrontDoorResponse.CHILD_IN_NEED_ASSESSMENT, m.Rag.AMBER, SHROPSHIRE)]
        await page.screenshot(path=shots / "frontdoor-decided.png", full_page=True)
        phone = await (await browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True,
                                                 has_touch=True)).new_page()
        await sign_in(phone, served.url, f"frontdoor-{SHROPSHIRE}", "/frontdoor")
        assert await phone.evaluate("document.documentElement.scrollWidth") <= 390, "no sideways scrolling"
        await phone.screenshot(path=shots / "frontdoor-phone.png", full_page=True)
        other = await (await browser.new_context()).new_page()
        await sign_in(other, served.url, f"frontdoor-{DORSET}", "/frontdoor")
        assert "Dorsetonly" in await other.inner_text("main") and "Mia" not in await other.inner_text("main")
        response = await other.goto(served.url + f"/frontdoor/referrals/{w.fourth.referral_id}")
        assert response is not None and response.status == 404
    with w.db.session() as s:
        row = s.get(Decision, str(w.fourth.referral_id))
    assert row is not None and row.rag_reason == "Pattern of escalation across agencies."


async def test_triage_chair_and_emergency_duty(morning: Morning, browser: Browser, shots: Path) -> None:  # noqa: F811
    """The agenda (MARAC first, a late flag), an item marked discussed on Kafka, print and CSV; EDT acknowledges."""
    w = morning
    with Served(w.s, w.db) as served:
        page = await (await browser.new_context(viewport={"width": 1200, "height": 900})).new_page()
        await sign_in(page, served.url, f"triage-{SHROPSHIRE}", "/triage")
        await page.goto(served.url + f"/triage?date={w.meeting_day}")
        body = await page.inner_text("main")
        assert body.index("WMP-2026-4411") < body.index("WMP-2026-4502") < body.index("NHS-RXK-88")
        assert "flagged by a later MARAC referral" in body and "2 MARAC-flagged" in body
        await page.screenshot(path=shots / "triage-agenda.png", full_page=True)
        item = page.locator(f"#item-{w.flagged_late.item_id}")
        await item.get_by_label("Yes").check()
        await item.get_by_role("button", name="discussed").click()
        await page.get_by_text("Marked discussed").wait_for()
        talks = await on_kafka(w, m.TriageItemDiscussed)
        assert [(t.item_id, t.marac_referred) for t in talks if isinstance(t, m.TriageItemDiscussed)] == [
            (w.flagged_late.item_id, True)]
        await page.screenshot(path=shots / "triage-discussed.png", full_page=True)
        csv_link = page.get_by_role("link", name="Download CSV")
        async with page.expect_download() as download:
            await csv_link.click()
        text = Path(await (await download.value).path()).read_text()
        assert text.startswith("meeting_date,order,item_ref") and "Mia" not in text and len(text.splitlines()) == 4
        await page.emulate_media(media="print")
        await page.goto(served.url + f"/triage/print?date={w.meeting_day}")
        assert not await page.get_by_role("button", name="Sign out").is_visible()
        await page.screenshot(path=shots / "triage-print.png", full_page=True)
        edt = await (await browser.new_context(viewport={"width": 1100, "height": 800})).new_page()
        await sign_in(edt, served.url, f"edt-{SHROPSHIRE}", "/emergency-duty")
        assert "Ruby Example" in await edt.inner_text("main")
        await edt.screenshot(path=shots / "emergency-duty.png", full_page=True)
        await edt.get_by_role("button", name="Acknowledge alert WMP-2026-4502").click()
        await edt.get_by_text("Acknowledged: the broker has it").wait_for()
        await edt.screenshot(path=shots / "emergency-duty-acknowledged.png", full_page=True)
