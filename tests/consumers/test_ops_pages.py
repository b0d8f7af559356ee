"""The operations dashboard: operations staff only, charts and lists from the views, lag from samples, and a
CSRF-protected redrive that sends the whole raw record once."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from broker.lag import LagBook
from consumers.database import Database
from consumers.roles import Role
from consumers.settings import WebSettings
from consumers.tables import OpsRedrive, ViewAudit
from consumers.web.app import create_app
from consumers.web.ops import Sample, install
from schemas.models import Route, SlaState
from tests.consumers.conftest import NOW, Clock, RecordingSink, add_account, csrf_of, sign_in
from tests.consumers.test_ops_view import PREFIX, apply, dead_letter, sla


@dataclass
class FakeBackend:
    """Records what a redrive sends; serves lag samples; `fail` makes the send fail as Kafka would."""

    prefix: str = PREFIX
    book: LagBook = field(default_factory=LagBook)
    sent: list[tuple[str, bytes | None, bytes]] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    fail: bool = False

    async def publish(self, topic: str, key: bytes | None, value: bytes) -> tuple[int, int]:
        """Record the send."""
        if self.fail:
            raise TimeoutError
        self.sent.append((topic, key, value))
        return 0, len(self.sent) - 1

    async def lag_samples(self) -> list[Sample]:
        """The canned samples."""
        return list(self.samples)


@pytest.fixture
def backend() -> FakeBackend:
    """The fake Kafka side of the dashboard."""
    return FakeBackend()


@pytest.fixture
def ops(db: Database, web: WebSettings, sink: RecordingSink, clock: Clock, backend: FakeBackend) -> Iterator[
    tuple[TestClient, TestClient]
]:
    """Signed-in clients of an operations account and of a front door account on one app."""
    add_account(db, "ops-a", Role.OPERATIONS, "")
    add_account(db, "frontdoor-x", Role.FRONT_DOOR, "E06000051")
    app = create_app(web, db, sink, clock)
    install(app, backend)
    with TestClient(app, base_url="https://testserver") as a, TestClient(app, base_url="https://testserver") as b:
        sign_in(a, "ops-a")
        sign_in(b, "frontdoor-x")
        yield a, b


@pytest.mark.parametrize("role,scope", [(Role.SCHOOL_DSL, "900028"), (Role.FRONT_DOOR, "E06000051"),
                                        (Role.TRIAGE_CHAIR, "E06000051"), (Role.EMERGENCY_DUTY, "E06000051")])
def test_other_roles_are_refused(db: Database, web: WebSettings, sink: RecordingSink, clock: Clock,
                                 backend: FakeBackend, role: Role, scope: str) -> None:
    """Every non-operations role gets 403 for the page and the redrive, and nothing is sent."""
    apply(db, dead_letter(1))
    add_account(db, "someone", role, scope)
    app = create_app(web, db, sink, clock)
    install(app, backend)
    with TestClient(app, base_url="https://testserver") as client:
        sign_in(client, "someone")
        page = client.get("/operations")
        assert page.status_code == 403 and "Dead letters" not in page.text
        token = csrf_of(client.get(role.home).text) if role is Role.SCHOOL_DSL else "x"
        dl = str(dead_letter(1).dead_letter_id)
        assert client.post(f"/operations/dead-letters/{dl}/redrive", data={"csrf_token": token}).status_code == 403
    assert backend.sent == []


def test_signed_out_is_sent_to_sign_in(app_client: TestClient) -> None:
    """No session: the dashboard redirects to the sign-in page."""
    r = app_client.get("/operations", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/sign-in"


def test_dashboard_shows_charts_at_risk_breaches_lag_and_refreshes(db: Database, ops: tuple[TestClient, TestClient],
                                                                   backend: FakeBackend) -> None:
    """The page has SVG charts, the at-risk item with its deadline, today's breach, lag status, a Refresh header."""
    risky, breached = uuid.uuid4(), uuid.uuid4()
    apply(db, sla(risky, SlaState.AT_RISK, NOW - timedelta(minutes=5), NOW + timedelta(minutes=40),
                  Route.EMERGENCY_DUTY),
          sla(breached, SlaState.BREACHED, NOW - timedelta(hours=1), NOW - timedelta(hours=1), verified=False),
          dead_letter(1))
    backend.samples = [("mash-worker", "mash.intake.police", 0, 10, 50)]
    a, _ = ops
    r = a.get("/operations")
    assert r.status_code == 200 and r.headers["Refresh"] == "30"
    html = r.text
    assert html.count("<svg") >= 3 and str(risky) in html and str(breached) in html
    assert "Mon 23 Nov 2026, 21:40" in html and "0 h 40 min" in html
    assert "mash-worker" in html and "E06000051" in html and "Redrive</button>" in html


def test_redrive_sends_once_audited_and_csrf_protected(db: Database, ops: tuple[TestClient, TestClient],
                                                       backend: FakeBackend) -> None:
    """Without the token nothing is sent; with it the whole record goes once; a second press says already."""
    apply(db, dead_letter(1))
    a, _ = ops
    dl = str(dead_letter(1).dead_letter_id)
    url = f"/operations/dead-letters/{dl}/redrive"
    assert a.post(url, data={"csrf_token": "wrong"}).status_code == 403
    assert backend.sent == []
    token = csrf_of(a.get("/operations").text)
    first = a.post(url, data={"csrf_token": token})
    assert "Redriven: the record is back" in first.text
    second = a.post(url, data={"csrf_token": token})
    assert "Already redriven" in second.text
    assert backend.sent == [(f"{PREFIX}.intake.police", b"k", b"\x00\x00\x00\x00\x01body")]
    with db.session() as s:
        redrive = s.get(OpsRedrive, dl)
        assert redrive is not None and redrive.status == "DONE"
        assert s.scalars(select(ViewAudit.subject_id).where(ViewAudit.action == "REDRIVE")).all() == [dl]


def test_failed_send_can_be_retried_and_truncated_is_refused(db: Database, ops: tuple[TestClient, TestClient],
                                                             backend: FakeBackend) -> None:
    """A send Kafka refused leaves no claim (the button works again); a truncated record is never sent."""
    apply(db, dead_letter(1), dead_letter(2, truncated=True))
    a, _ = ops
    token = csrf_of(a.get("/operations").text)
    dl, cut = str(dead_letter(1).dead_letter_id), str(dead_letter(2, truncated=True).dead_letter_id)
    backend.fail = True
    press = f"/operations/dead-letters/{dl}/redrive"
    assert "did not take the record" in a.post(press, data={"csrf_token": token}).text
    backend.fail = False
    assert "Redriven" in a.post(press, data={"csrf_token": token}).text
    assert "cannot be redriven" in a.post(f"/operations/dead-letters/{cut}/redrive", data={"csrf_token": token}).text
    assert len(backend.sent) == 1
    assert a.post(f"/operations/dead-letters/{uuid.uuid4()}/redrive", data={"csrf_token": token}).status_code == 404
