"""The school feed in a real browser (Debian's chromium driven by Playwright) on the real broker: sign in, see
only one's own notices, acknowledge (on Kafka before the page says so), see a recall; on a phone screen and
printed. Screenshots of each page go to $MASH_SCREENSHOTS_DIR when set (docs/screenshots/ is made with
`MASH_SCREENSHOTS_DIR=docs/screenshots pytest tests/integration/test_school_browser.py`), else to a temporary
folder, so an ordinary test run leaves the committed screenshots alone."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import uvicorn
from playwright.async_api import Browser, Page, async_playwright

from broker.reader import read_topics
from broker.settings import Settings
from broker.topics import catalogue
from consumers.acknowledge import KafkaAckSink
from consumers.codec import RecordCodec, close, decode, make_codec
from consumers.database import Database
from consumers.roles import Role
from consumers.settings import WebSettings
from consumers.web.app import create_app
from schemas.models import EncompassAcknowledgement
from tests.consumers.conftest import PASSWORD, SCHOOL_B, add_account, notice, recall
from tests.integration.conftest import delete_topics, fresh_settings
from tests.integration.test_school_feed import consume_all, new_db, publish, topics

pytestmark = pytest.mark.integration
A_FIRST, A_SECOND, B_ONLY = notice(given="Amelia", family="Synthetic"), notice(given="Oscar", family="Example"), \
    notice(school=SCHOOL_B, given="Bethany", family="Otherschool", police_reference="BBB/2026/111")


@pytest.fixture(scope="module")
def browser_settings(kafka: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A fresh topic prefix for this module."""
    s = fresh_settings(kafka, tmp_path_factory.mktemp("browser"), "b")
    yield s
    asyncio.run(delete_topics(s))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Served:
    """The app under uvicorn in a thread, sending acknowledgements to the real broker."""

    def __init__(self, s: Settings, db: Database) -> None:
        self.web = WebSettings(port=_free_port(), cookie_secure=True)
        topic = catalogue(s.topic_prefix).name("feedback.acknowledgements")
        sink = KafkaAckSink(s.kafka_bootstrap, topic,
                            lambda: make_codec(s.registry_url, {topic: [EncompassAcknowledgement]}), 15.0)
        config = uvicorn.Config(create_app(self.web, db, sink), host="127.0.0.1", port=self.web.port,
                                log_level="warning")
        self.server = uvicorn.Server(config)
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


@pytest.fixture
async def world(browser_settings: Settings, tmp_path: Path) -> AsyncIterator[tuple[Settings, RecordCodec, Database]]:
    """Three notices on the real topic (two for school A, one for B), consumed into the view; two accounts."""
    codec = await make_codec(browser_settings.registry_url, topics(browser_settings))
    await publish(browser_settings, codec, "route.encompass", A_FIRST, A_SECOND, B_ONLY)
    db = new_db(tmp_path, "web")
    await consume_all(browser_settings, codec, db, f"{browser_settings.topic_prefix}.web", 3)
    add_account(db, "dsl-a")
    add_account(db, "dsl-b", Role.SCHOOL_DSL, SCHOOL_B)
    yield browser_settings, codec, db
    await close(codec)


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Where screenshots go."""
    folder = Path(os.environ.get("MASH_SCREENSHOTS_DIR") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Debian's chromium, headless."""
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("chromium is not installed: deploy/bootstrap.sh installs it (apt-get install chromium)")
    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=executable, args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield b
        await b.close()


async def sign_in(page: Page, url: str, username: str, shot: Path | None = None) -> None:
    """Sign in through the form, by keyboard."""
    await page.goto(url + "/")
    await page.get_by_label("Account name").fill(username)
    await page.get_by_label("Password").fill(PASSWORD)
    if shot:
        await page.screenshot(path=shot, full_page=True)
    await page.get_by_label("Password").press("Enter")
    await page.wait_for_url("**/school/notices")


async def acked_on_kafka(s: Settings, codec: RecordCodec) -> list[EncompassAcknowledgement]:
    """The acknowledgements on feedback.acknowledgements."""
    topic = catalogue(s.topic_prefix).name("feedback.acknowledgements")
    found = [await decode(codec, r.value) for r in await read_topics(s.kafka_bootstrap, [topic])]
    return [r for r in found if isinstance(r, EncompassAcknowledgement)]


async def test_dsl_signs_in_acknowledges_and_sees_a_recall(world: tuple[Settings, RecordCodec, Database],
                                                           browser: Browser, shots: Path) -> None:
    """School A's DSL: own notices only, acknowledges one (on Kafka first), then sees the other withdrawn."""
    s, codec, db = world
    with Served(s, db) as served:
        page = await (await browser.new_context(viewport={"width": 1100, "height": 800})).new_page()
        await sign_in(page, served.url, "dsl-a", shots / "sign-in.png")
        body = await page.inner_text("main")
        assert "Amelia" in body and "Oscar" in body and "Bethany" not in body and "2 new" in body
        await page.screenshot(path=shots / "notices.png", full_page=True)
        await page.get_by_role("link", name="Amelia Synthetic").click()
        await page.screenshot(path=shots / "notice.png", full_page=True)
        await page.get_by_role("button", name="Acknowledge this notice").click()
        await page.get_by_text("Acknowledged.").first.wait_for()
        assert A_FIRST.notice_id in {a.notice_id for a in await acked_on_kafka(s, codec)}
        await page.screenshot(path=shots / "acknowledged.png", full_page=True)
        await publish(s, codec, "route.encompass", recall(A_SECOND))
        await consume_all(s, codec, db, f"{s.topic_prefix}.web", 1)
        await page.goto(served.url + "/school/notices")
        body = await page.inner_text("main")
        assert "Withdrawn notice" in body and "Oscar" not in body
        await page.screenshot(path=shots / "withdrawn.png", full_page=True)
        await page.emulate_media(media="print")
        await page.goto(served.url + f"/school/notices/{A_FIRST.notice_id}")
        assert not await page.get_by_role("button", name="Sign out").is_visible()
        await page.screenshot(path=shots / "print.png", full_page=True)


async def test_other_school_on_a_phone_sees_only_its_own(world: tuple[Settings, RecordCodec, Database],
                                                         browser: Browser, shots: Path) -> None:
    """School B on a phone-sized screen: its one notice, nothing of A's, even by A's URL; usable by keyboard."""
    s, _, db = world
    with Served(s, db) as served:
        context = await browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
        page = await context.new_page()
        await sign_in(page, served.url, "dsl-b")
        body = await page.inner_text("main")
        assert "Bethany" in body and "Amelia" not in body and "Oscar" not in body
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, "no sideways scrolling on a phone"
        await page.screenshot(path=shots / "notices-phone.png", full_page=True)
        response = await page.goto(served.url + f"/school/notices/{A_FIRST.notice_id}")
        assert response is not None and response.status == 404
        assert "Amelia" not in await page.inner_text("body")
        await page.goto(served.url + "/school/notices")
        await page.keyboard.press("Tab")
        assert await page.evaluate("document.activeElement.textContent") == "Skip to main content"
