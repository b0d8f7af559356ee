"""Isolation: school B can never see, acknowledge or learn of school A's notice, whatever the URL or form says.

Two schools' sessions on one app, against every endpoint, with ids that are A's, guessed, malformed, swapped
and replayed. 'Not yours' is answered exactly like 'does not exist'.
"""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from consumers.database import Database
from consumers.tables import NoticeRead, ViewAudit
from tests.consumers.conftest import SCHOOL_B, RecordingSink, csrf_of, notice, store

Clients = tuple[TestClient, TestClient]


@pytest.fixture
def a_notice(db: Database) -> str:
    """School A's notice id (with a distinctive synthetic name and reference); B has one of its own."""
    n = notice(given="Aonly", family="Schoolachild", police_reference="AAA/2026/999")
    store(db, n, notice(school=SCHOOL_B, given="Bonly", family="Schoolbchild", police_reference="BBB/2026/111"))
    return str(n.notice_id)


def _leaks(html: str, notice_id: str) -> bool:
    return any(s in html for s in ("Aonly", "Schoolachild", "AAA/2026", notice_id))


def test_list_shows_only_own_notices_whatever_the_query(two_schools: Clients, a_notice: str) -> None:
    """B's list holds B's notice only, even with school or id parameters added."""
    _, b = two_schools
    for url in ("/school/notices", "/school/notices?school=900028", f"/school/notices?notice={a_notice}"):
        html = b.get(url).text
        assert "Bonly" in html and not _leaks(html, a_notice)


@pytest.mark.parametrize("variant", ["own-of-a", "upper", "guessed", "malformed", "path-trick"])
def test_other_schools_notice_is_answered_like_a_missing_one(two_schools: Clients, a_notice: str,
                                                             variant: str) -> None:
    """Opening A's notice (in any spelling) gives B the same 404 page as an id that does not exist."""
    _, b = two_schools
    target = {"own-of-a": a_notice, "upper": a_notice.upper(), "guessed": str(uuid.uuid4()),
              "malformed": "1 OR 1=1", "path-trick": f"..%2F{a_notice}"}[variant]
    missing = b.get(f"/school/notices/{uuid.uuid4()}")
    r = b.get(f"/school/notices/{target}")
    assert r.status_code == missing.status_code == 404
    assert r.text == missing.text and not _leaks(r.text, a_notice)


def test_b_cannot_acknowledge_as_or_for_a(two_schools: Clients, a_notice: str, sink: RecordingSink) -> None:
    """B posting an acknowledgement of A's notice, with B's token or A's replayed token, sends nothing."""
    a, b = two_schools
    a_token = csrf_of(a.get(f"/school/notices/{a_notice}").text)
    b_token = csrf_of(b.get("/school/notices").text)
    with_b = b.post(f"/school/notices/{a_notice}/acknowledge", data={"csrf_token": b_token})
    with_a = b.post(f"/school/notices/{a_notice}/acknowledge", data={"csrf_token": a_token})
    extra = b.post(f"/school/notices/{a_notice}/acknowledge", data={"csrf_token": b_token, "school_urn": "900028"})
    assert (with_b.status_code, with_a.status_code, extra.status_code) == (404, 403, 404)
    assert sink.sent == [] and not any(_leaks(r.text, a_notice) for r in (with_b, with_a, extra))


def test_swapped_session_tokens_do_not_cross(two_schools: Clients, a_notice: str, sink: RecordingSink) -> None:
    """A's form token is useless in B's session and B's in A's: CSRF tokens are per session."""
    a, b = two_schools
    b_token = csrf_of(b.get("/school/notices").text)
    r = a.post(f"/school/notices/{a_notice}/acknowledge", data={"csrf_token": b_token})
    assert r.status_code == 403 and sink.sent == []


def test_b_probing_leaves_no_trace_on_as_notice(two_schools: Clients, a_notice: str, db: Database) -> None:
    """B's attempts neither mark A's notice read nor audit a view of it by B."""
    a, b = two_schools
    b.get(f"/school/notices/{a_notice}")
    with db.session() as s:
        assert s.get(NoticeRead, a_notice) is None
        seen_by_b = s.scalars(select(ViewAudit).where(ViewAudit.subject_id == a_notice,
                                                      ViewAudit.scope == SCHOOL_B)).all()
    assert seen_by_b == []
    assert "is-new" in a.get("/school/notices").text  # still new for A


def test_a_still_acknowledges_its_own(two_schools: Clients, a_notice: str, sink: RecordingSink) -> None:
    """After B's attempts, A's own acknowledgement works and is A's."""
    a, _ = two_schools
    token = csrf_of(a.get(f"/school/notices/{a_notice}").text)
    assert "Acknowledged." in a.post(f"/school/notices/{a_notice}/acknowledge", data={"csrf_token": token}).text
    assert [str(x.notice_id) for x in sink.sent] == [a_notice] and sink.sent[0].school_urn == "900028"
