"""The morning alert against a real SMTP server on loopback (aiosmtpd), including one that fails: one email
per school per school day with new notices, how many and a link, never a child's details; retried until
accepted; nothing lost, nothing sent twice; a notice announced once."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from email import message_from_bytes
from email.message import Message
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from consumers.alerts import alert_date, tick
from consumers.database import Database
from consumers.settings import WebSettings
from consumers.tables import MorningAlert
from schemas.models import EncompassAcknowledgement
from tests.consumers.conftest import SCHOOL_A, SCHOOL_B, add_account, notice, recall, store

TUESDAY_0735 = datetime(2026, 2, 10, 7, 35, tzinfo=UTC)  # GMT: 07:35 London, a Shropshire school day


@dataclass
class Inbox:
    """An SMTP handler that refuses the first `fail` messages with 451, then keeps what it is sent."""

    fail: int = 0
    messages: list[Message] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """Accept (250) or refuse temporarily (451)."""
        if self.fail > 0:
            self.fail -= 1
            return "451 4.3.0 Try again later"
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, WebSettings]]:
    """A real SMTP server on loopback and settings pointing at it."""
    inbox, port = Inbox(), _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, WebSettings(smtp_port=port, public_url="https://mash.example.invalid", smtp_timeout_seconds=5)
    controller.stop()


def schools(db: Database) -> None:
    """Two schools with a DSL account each (with email) and a notice for school A only."""
    add_account(db, "dsl-a", scope=SCHOOL_A, email="dsl-a@school.invalid")
    add_account(db, "dsl-b", scope=SCHOOL_B, email="dsl-b@school.invalid")


def test_alert_window_follows_school_days_and_london_time() -> None:
    """07:30-11:30 London on school days only: not before, not at weekends or half term; BST handled."""
    web = WebSettings()
    assert alert_date(TUESDAY_0735, "E06000051", web) is not None
    assert alert_date(TUESDAY_0735 - timedelta(minutes=10), "E06000051", web) is None
    assert alert_date(TUESDAY_0735 + timedelta(days=4), "E06000051", web) is None  # Saturday
    assert alert_date(TUESDAY_0735 + timedelta(days=7), "E06000051", web) is None  # February half term
    bst = datetime(2026, 4, 14, 6, 31, tzinfo=UTC)  # 07:31 BST
    assert alert_date(bst, "E06000051", web) is not None
    assert alert_date(bst, "E06000051", WebSettings(alert_time=time(8, 0))) is None


def test_one_email_per_school_with_new_notices_and_no_details(db: Database, smtp: tuple[Inbox, WebSettings]) -> None:
    """School A gets one email with the count and link; B (nothing new) gets nothing; no child details."""
    inbox, web = smtp
    schools(db)
    store(db, notice(given="Secretname", family="Hiddenfamily"), notice(given="Other"))
    assert tick(db, web, TUESDAY_0735) == 1
    [msg] = inbox.messages
    body = msg.get_payload(decode=True).decode()  # type: ignore[union-attr]
    assert msg["To"] == "dsl-a@school.invalid" and "2 new notices" in msg["Subject"]
    assert "https://mash.example.invalid/school/notices" in body
    assert not any(s in body + str(msg) for s in ("Secretname", "Hiddenfamily", "Other", "2016", "WMP/"))


def test_notice_is_announced_once(db: Database, smtp: tuple[Inbox, WebSettings]) -> None:
    """Later ticks that day and the next school day send nothing for the same notice; a new one is announced."""
    inbox, web = smtp
    schools(db)
    store(db, notice())
    tick(db, web, TUESDAY_0735)
    tick(db, web, TUESDAY_0735 + timedelta(minutes=5))
    tick(db, web, TUESDAY_0735 + timedelta(days=1))
    assert len(inbox.messages) == 1
    store(db, notice())
    tick(db, web, TUESDAY_0735 + timedelta(days=2))
    assert len(inbox.messages) == 2 and "1 new notice " in inbox.messages[1]["Subject"]


def test_acknowledged_and_withdrawn_notices_are_not_announced(db: Database, smtp: tuple[Inbox, WebSettings]) -> None:
    """Only new, unacknowledged, not withdrawn notices count."""
    inbox, web = smtp
    schools(db)
    acked, withdrawn = notice(), notice()
    store(db, acked, withdrawn, recall(withdrawn),
          EncompassAcknowledgement(notice_id=acked.notice_id, school_urn=SCHOOL_A, acknowledged=TUESDAY_0735))
    assert tick(db, web, TUESDAY_0735) == 0 and inbox.messages == []


def test_failing_server_is_retried_and_sends_exactly_once(db: Database, smtp: tuple[Inbox, WebSettings]) -> None:
    """Two 451 refusals: the alert stays pending, is retried on the next ticks, then delivered once."""
    inbox, web = smtp
    schools(db)
    store(db, notice())
    inbox.fail = 2
    sent = [tick(db, web, TUESDAY_0735 + timedelta(minutes=i)) for i in range(5)]
    assert sent == [0, 0, 1, 0, 0] and len(inbox.messages) == 1
    with db.session() as s:
        [alert] = s.scalars(select(MorningAlert).where(MorningAlert.status != "NOTHING")).all()
    assert (alert.status, alert.attempts, alert.notice_count) == ("SENT", 3, 1)


def test_server_down_loses_nothing(db: Database, tmp_path: Any) -> None:
    """With no SMTP server at all, the alert waits as PENDING; when a server appears it is sent, once."""
    schools(db)
    store(db, notice())
    port = _free_port()
    web = WebSettings(smtp_port=port, smtp_timeout_seconds=2)
    assert tick(db, web, TUESDAY_0735) == 0
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        assert tick(db, web, TUESDAY_0735 + timedelta(hours=6)) == 1  # outside the window: still delivered
        tick(db, web, TUESDAY_0735 + timedelta(hours=7))
    finally:
        controller.stop()
    assert len(inbox.messages) == 1


def test_school_without_a_school_day_gets_nothing(db: Database, smtp: tuple[Inbox, WebSettings]) -> None:
    """On a Saturday nothing is decided or sent; the notice waits for Monday's alert."""
    inbox, web = smtp
    schools(db)
    store(db, notice())
    assert tick(db, web, TUESDAY_0735 - timedelta(days=3)) == 0  # Saturday 7 February
    assert tick(db, web, TUESDAY_0735 - timedelta(days=1)) == 1 and len(inbox.messages) == 1  # Monday
