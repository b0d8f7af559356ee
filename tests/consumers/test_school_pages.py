"""The school feed: newest first, new ones stand out, acknowledgement written before it is confirmed, recalls
shown as withdrawn, every view audited without names, security headers."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select

from consumers.database import Database
from consumers.tables import EncompassAck, ViewAudit
from tests.consumers.conftest import NOW, SCHOOL_A, RecordingSink, add_account, csrf_of, notice, recall, sign_in, store


def signed_in(db: Database, client: TestClient) -> TestClient:
    """The client, signed in as school A's DSL."""
    add_account(db, "dsl-a")
    sign_in(client, "dsl-a")
    return client


def test_notices_newest_first_with_what_they_carry(db: Database, app_client: TestClient) -> None:
    """The list shows name, date of birth, incident and deadline; the newest notice first."""
    store(db, notice(given="Older"), notice(given="Newer"))
    html = signed_in(db, app_client).get("/school/notices").text
    assert html.index("Newer") < html.index("Older")
    assert "4 Mar 2016" in html and "Tue 24 Nov 2026, 09:00" in html


def test_new_notices_stand_out_until_opened(db: Database, app_client: TestClient) -> None:
    """An unopened notice carries the 'New' marker; after opening it does not."""
    n = notice()
    store(db, n)
    client = signed_in(db, app_client)
    assert "is-new" in client.get("/school/notices").text
    detail = client.get(f"/school/notices/{n.notice_id}").text
    assert "WMP/2026/000123" in detail and "Do not contact named parent" in detail
    assert "is-new" not in client.get("/school/notices").text


def test_acknowledge_is_sent_before_it_is_confirmed(db: Database, app_client: TestClient, sink: RecordingSink) -> None:
    """The acknowledgement reaches the sink (Kafka) first; then the page says it is done."""
    n = notice()
    store(db, n)
    client = signed_in(db, app_client)
    page = client.get(f"/school/notices/{n.notice_id}").text
    r = client.post(f"/school/notices/{n.notice_id}/acknowledge", data={"csrf_token": csrf_of(page)})
    assert r.status_code == 200 and "Acknowledged." in r.text
    [ack] = sink.sent
    assert (ack.notice_id, ack.school_urn, ack.by_role, ack.acknowledged) == (n.notice_id, SCHOOL_A, "DSL", NOW)


def test_second_acknowledge_is_harmless(db: Database, app_client: TestClient, sink: RecordingSink) -> None:
    """A second click (or a replayed form) sends nothing more and says it was already done."""
    n = notice()
    store(db, n)
    client = signed_in(db, app_client)
    token = csrf_of(client.get(f"/school/notices/{n.notice_id}").text)
    client.post(f"/school/notices/{n.notice_id}/acknowledge", data={"csrf_token": token})
    again = client.post(f"/school/notices/{n.notice_id}/acknowledge", data={"csrf_token": token})
    assert "already acknowledged" in again.text and len(sink.sent) == 1


def test_kafka_failure_is_not_confirmed(db: Database, app_client: TestClient, sink: RecordingSink) -> None:
    """When Kafka does not take it, the page says so and nothing is recorded as acknowledged."""
    n = notice()
    store(db, n)
    client = signed_in(db, app_client)
    token = csrf_of(client.get(f"/school/notices/{n.notice_id}").text)
    sink.fail = True
    r = client.post(f"/school/notices/{n.notice_id}/acknowledge", data={"csrf_token": token})
    assert r.status_code == 503 and "could not be recorded" in r.text
    with db.session() as s:
        assert s.scalars(select(EncompassAck)).all() == []


def test_acknowledge_needs_the_csrf_token(db: Database, app_client: TestClient, sink: RecordingSink) -> None:
    """A post without the session's token is refused and sends nothing."""
    n = notice()
    store(db, n)
    r = signed_in(db, app_client).post(f"/school/notices/{n.notice_id}/acknowledge", data={"csrf_token": "x"})
    assert r.status_code == 403 and sink.sent == []


def test_recalled_notice_shows_withdrawn_without_details(db: Database, app_client: TestClient,
                                                         sink: RecordingSink) -> None:
    """A recall hides the child's details everywhere and refuses acknowledgement."""
    n = notice(given="Hidden", family="Childname")
    store(db, n, recall(n, NOW + timedelta(hours=1)))
    client = signed_in(db, app_client)
    for html in (client.get("/school/notices").text, client.get(f"/school/notices/{n.notice_id}").text):
        assert "Withdrawn" in html and "Hidden" not in html and "Childname" not in html and "WMP/" not in html
    r = client.post(f"/school/notices/{n.notice_id}/acknowledge", data={"csrf_token": csrf_of(
        client.get(f"/school/notices/{n.notice_id}").text)})
    assert r.status_code == 409 and sink.sent == []


def test_every_view_is_audited_without_names(db: Database, app_client: TestClient) -> None:
    """The list audits each notice shown, the detail its notice, the acknowledgement its notice."""
    n = notice()
    store(db, n)
    client = signed_in(db, app_client)
    client.get("/school/notices")
    token = csrf_of(client.get(f"/school/notices/{n.notice_id}").text)
    client.post(f"/school/notices/{n.notice_id}/acknowledge", data={"csrf_token": token})
    with db.session() as s:
        audits = s.scalars(select(ViewAudit).order_by(ViewAudit.id)).all()
    # sign-in lands on the list; the acknowledgement redirects back to the notice
    assert [a.action for a in audits] == ["LIST", "LIST", "VIEW", "ACKNOWLEDGE", "VIEW"]
    subjects = {(a.subject_kind, a.subject_id, a.scope) for a in audits}
    assert subjects == {("encompass_notice", str(n.notice_id), SCHOOL_A)}
    assert all(a.at == NOW and a.role == "SCHOOL_DSL" for a in audits)


def test_pages_carry_security_headers(db: Database, app_client: TestClient) -> None:
    """CSP, no framing, no sniffing, no referrer, and no caching of pages with personal data."""
    r = signed_in(db, app_client).get("/school/notices")
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert r.headers["cache-control"] == "no-store" and r.headers["x-frame-options"] == "DENY"
    assert r.headers["referrer-policy"] == "no-referrer"


def test_forms_are_labelled(db: Database, app_client: TestClient) -> None:
    """Every input of the sign-in form has a label (accessibility)."""
    html = app_client.get("/sign-in").text
    assert 'for="username"' in html and 'id="username"' in html and 'for="password"' in html
    assert 'lang="en-GB"' in html and "Skip to main content" in html
