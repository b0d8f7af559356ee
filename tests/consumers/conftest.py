"""Fixtures for the people's pages: a migrated database (SQLite, and PostgreSQL when installed), the app with
a recording acknowledgement sink, signed-in clients, and synthetic notices."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from consumers.acknowledge import AckUnavailable
from consumers.auth import create_account
from consumers.database import Database, migrate
from consumers.encompass_view import apply_record
from consumers.roles import Role
from consumers.settings import WebSettings
from consumers.web.app import create_app
from schemas.models import (
    AdultRole,
    CaveatType,
    EncompassAcknowledgement,
    EncompassNotice,
    Recall,
    RecallReason,
    Route,
    SafetyCaveat,
)
from tests.consumers.pg import pg_bin, throwaway_postgres

PASSWORD = "correct horse battery staple"
SCHOOL_A, SCHOOL_B = "900028", "900332"
NOW = datetime(2026, 11, 23, 21, 0, tzinfo=UTC)  # a Monday evening


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """One throwaway PostgreSQL cluster for the session (skipped when PostgreSQL is not installed)."""
    if pg_bin() is None:
        pytest.fail("PostgreSQL is not installed: deploy/bootstrap.sh installs it (apt-get install postgresql)")
    with throwaway_postgres() as url:
        yield url


def _fresh_postgres(url: str) -> str:
    db = Database(url)
    with db.engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    db.dispose()
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def any_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A freshly migrated database of each kind."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/web.db"
    else:
        url = _fresh_postgres(request.getfixturevalue("postgres_url"))
    migrate(url)
    db = Database(url)
    yield db
    db.dispose()


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    """A freshly migrated SQLite database."""
    url = f"sqlite:///{tmp_path}/web.db"
    migrate(url)
    database = Database(url)
    yield database
    database.dispose()


def notice(school: str = SCHOOL_A, given: str = "Alexa", family: str = "Testchild", **over: object) -> EncompassNotice:
    """A synthetic Encompass notice for a school."""
    values: dict[str, object] = dict(
        notice_id=uuid.uuid4(), notification_id=uuid.uuid4(), school_urn=school, authority="E06000051",
        child_key="k:" + uuid.uuid4().hex, given_name=given, family_name=family, date_of_birth=date(2016, 3, 4),
        incident_occurred=NOW - timedelta(hours=3), child_present=True, police_reference="WMP/2026/000123",
        welfare_check_made=True,
        safety_caveats=[SafetyCaveat(type=CaveatType.DO_NOT_CONTACT_NAMED_PARENT, applies_to_role=AdultRole.SUSPECT)],
        due=datetime(2026, 11, 24, 9, 0, tzinfo=UTC), calendar_verified=True,
    )
    values.update(over)
    return EncompassNotice.model_validate(values)


def recall(of: EncompassNotice, issued: datetime = NOW) -> Recall:
    """The recall of a notice (its notification was withdrawn)."""
    return Recall(recall_id=uuid.uuid4(), recalled_output_id=of.notice_id, route=Route.ENCOMPASS,
                  recipient=of.school_urn, notification_id=uuid.uuid4(), reason=RecallReason.WITHDRAWN, issued=issued)


def store(db: Database, *records: object, received: datetime = NOW) -> None:
    """Apply records to the view as the consumer would."""
    with db.session() as s, s.begin():
        for i, rec in enumerate(records):
            apply_record(s, rec, received + timedelta(minutes=i))  # type: ignore[arg-type]


def add_account(db: Database, username: str, role: Role = Role.SCHOOL_DSL, scope: str = SCHOOL_A,
                email: str | None = None) -> None:
    """An account with the test password."""
    with db.session() as s, s.begin():
        create_account(s, username, PASSWORD, role, scope, email, NOW)


@dataclass
class RecordingSink:
    """Acknowledgements 'sent' (in order); `fail` makes the next sends fail as Kafka would."""

    sent: list[EncompassAcknowledgement] = field(default_factory=list)
    fail: bool = False

    async def start(self) -> None:
        """Nothing to connect."""

    async def stop(self) -> None:
        """Nothing to close."""

    async def send(self, ack: EncompassAcknowledgement) -> None:
        """Record, or fail like an unreachable broker."""
        if self.fail:
            raise AckUnavailable("KafkaTimeoutError")
        self.sent.append(ack)


@dataclass
class Clock:
    """A settable clock for the app."""

    at: datetime = NOW

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture
def web() -> WebSettings:
    """Settings as in production (secure cookies)."""
    return WebSettings(database_url="sqlite://", signin_max_failures=5)


@pytest.fixture
def sink() -> RecordingSink:
    """The recording acknowledgement sink."""
    return RecordingSink()


@pytest.fixture
def clock() -> Clock:
    """The app's clock."""
    return Clock()


@pytest.fixture
def app_client(db: Database, web: WebSettings, sink: RecordingSink, clock: Clock) -> Iterator[TestClient]:
    """An unauthenticated client over HTTPS (so Secure cookies travel)."""
    with TestClient(create_app(web, db, sink, clock), base_url="https://testserver") as client:
        yield client


def csrf_of(html: str) -> str:
    """The CSRF token in a page's first form."""
    marker = 'name="csrf_token" value="'
    start = html.index(marker) + len(marker)
    return html[start:html.index('"', start)]


def sign_in(client: TestClient, username: str, password: str = PASSWORD) -> object:
    """Sign in through the form (with its CSRF token); returns the final response."""
    token = csrf_of(client.get("/sign-in").text)
    return client.post("/sign-in", data={"username": username, "password": password, "csrf_token": token})


@pytest.fixture
def two_schools(db: Database, web: WebSettings, sink: RecordingSink, clock: Clock) -> Iterator[
    tuple[TestClient, TestClient]
]:
    """Signed-in clients of school A (dsl-a) and school B (dsl-b) on one app."""
    add_account(db, "dsl-a", scope=SCHOOL_A)
    add_account(db, "dsl-b", scope=SCHOOL_B)
    app = create_app(web, db, sink, clock)
    with TestClient(app, base_url="https://testserver") as a, TestClient(app, base_url="https://testserver") as b:
        sign_in(a, "dsl-a")
        sign_in(b, "dsl-b")
        yield a, b
