"""Isolation by role and authority: two authorities' sessions (Shropshire and Dorset) on one app, against every
endpoint of the front door, triage and emergency duty pages. Another authority's item is answered exactly like
one that does not exist, lists never show it whatever the query says, nothing is sent or recorded for it, and
every other role is refused every page."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import select

from consumers.database import Database
from consumers.roles import Role
from consumers.settings import WebSettings
from consumers.tables import Decision, EmergencyAck, TriageDiscussion, ViewAudit
from consumers.web import edt, frontdoor, triage
from consumers.web.app import create_app
from schemas import models as m
from tests.consumers.authority_data import (
    DORSET,
    MEETING,
    SHROPSHIRE,
    add_user,
    apply,
    cheap_hashes,  # noqa: F401  (fixture)
    child,
    cumulative,
    edt_alert,
    referral,
    triage_item,
)
from tests.consumers.conftest import SCHOOL_A, Clock, RecordingSink, csrf_of, sign_in

DAY = MEETING.date().isoformat()
ROLE_OF = {"frontdoor": Role.FRONT_DOOR, "triage": Role.TRIAGE_CHAIR, "emergency-duty": Role.EMERGENCY_DUTY}
# (method, path template, role); {referral} {alert} {item} {edt} are filled with an authority's ids
ENDPOINTS = [
    ("GET", "/frontdoor", Role.FRONT_DOOR),
    ("GET", "/frontdoor/referrals/{referral}", Role.FRONT_DOOR),
    ("GET", "/frontdoor/alerts/{alert}", Role.FRONT_DOOR),
    ("GET", "/frontdoor/referrals/{referral}/children/0", Role.FRONT_DOOR),
    ("POST", "/frontdoor/referrals/{referral}/decision", Role.FRONT_DOOR),
    ("POST", "/frontdoor/alerts/{alert}/decision", Role.FRONT_DOOR),
    ("GET", "/triage?date=" + DAY, Role.TRIAGE_CHAIR),
    ("GET", "/triage/print?date=" + DAY, Role.TRIAGE_CHAIR),
    ("GET", "/triage/agenda.csv?date=" + DAY, Role.TRIAGE_CHAIR),
    ("POST", "/triage/items/{item}/discussed", Role.TRIAGE_CHAIR),
    ("GET", "/emergency-duty", Role.EMERGENCY_DUTY),
    ("POST", "/emergency-duty/alerts/{edt}/acknowledge", Role.EMERGENCY_DUTY),
]
ITEM_ENDPOINTS = [e for e in ENDPOINTS if "{" in e[1]]
LIST_ENDPOINTS = [e for e in ENDPOINTS if "{" not in e[1]]
FORM = {"response": "EARLY_HELP", "reason": "Synthetic", "marac_referred": "yes"}

pytestmark = pytest.mark.usefixtures("cheap_hashes")


@dataclass
class Authority:
    """One authority's synthetic items and the words that would betray them."""

    ids: dict[str, str]
    markers: tuple[str, ...]


def _authority(code: str, name: str) -> tuple[Authority, list[m.Record]]:
    ref = f"{name.upper()}-REF"
    r = referral(code, child(given=f"{name}child", family=f"{name}family"), source_reference=ref + "1")
    a = cumulative(code)
    i = triage_item(code, source_reference=ref + "2", notification_id=r.notification_id)
    e = edt_alert(code, source_reference=ref + "3", notification_id=r.notification_id)
    ids = {"referral": str(r.referral_id), "alert": str(a.alert_id), "item": str(i.item_id), "edt": str(e.alert_id)}
    return Authority(ids, (f"{name}child", f"{name}family", ref, *ids.values())), [r, a, i, e]


@dataclass
class World:
    """Both authorities' items, one app, signed-in clients per (role, authority)."""

    a: Authority
    b: Authority
    clients: dict[tuple[Role, str], TestClient]
    school: TestClient
    ops: TestClient
    anonymous: TestClient
    db: Database
    sink: RecordingSink


@pytest.fixture
def world(db: Database, web: WebSettings, sink: RecordingSink, clock: Clock) -> Iterator[World]:
    """Shropshire (A) and Dorset (B) with a referral, alert, triage item and EDT alert each; every role's session."""
    a, a_records = _authority(SHROPSHIRE, "Shropshire")
    b, b_records = _authority(DORSET, "Dorset")
    apply(db, *a_records, *b_records)
    app = create_app(web, db, sink, clock)
    clients: dict[tuple[Role, str], TestClient] = {}
    opened = []
    for role in ROLE_OF.values():
        for code in (SHROPSHIRE, DORSET):
            name = f"{role.value.lower().replace('_', '-')}-{code}"
            add_user(db, name, role, code)
            client = TestClient(app, base_url="https://testserver")
            client.__enter__()
            sign_in(client, name)
            clients[(role, code)] = client
            opened.append(client)
    extra = []
    for name, role, scope in (("dsl-a", Role.SCHOOL_DSL, SCHOOL_A), ("ops-1", Role.OPERATIONS, "")):
        add_user(db, name, role, scope)
        client = TestClient(app, base_url="https://testserver")
        client.__enter__()
        sign_in(client, name)
        extra.append(client)
    anonymous = TestClient(app, base_url="https://testserver")
    anonymous.__enter__()
    yield World(a, b, clients, extra[0], extra[1], anonymous, db, sink)
    for c in [*opened, *extra, anonymous]:
        c.__exit__(None, None, None)


def _call(client: TestClient, method: str, url: str, token: str | None = None) -> object:
    if method == "GET":
        return client.get(url, follow_redirects=False)
    return client.post(url, data={"csrf_token": token or csrf_of(client.get("/").text), **FORM},
                       follow_redirects=False)


def _leaks(text: str, authority: Authority) -> bool:
    return any(marker in text for marker in authority.markers)


def test_every_authority_endpoint_is_covered() -> None:
    """The endpoints tested here are all the routes of the front door, triage and emergency duty routers."""
    routes = {(method, r.path) for router in (frontdoor.router, triage.router, edt.router) for r in router.routes
              if isinstance(r, APIRoute) for method in r.methods}
    tested = {(method, path.split("?")[0].replace("/0", "/{position}")
               .replace("{referral}", "{referral_id}").replace("{alert}", "{alert_id}")
               .replace("{item}", "{item_id}").replace("{edt}", "{alert_id}")) for method, path, _ in ENDPOINTS}
    assert routes == tested


def test_other_authoritys_item_is_answered_like_a_missing_one(world: World) -> None:
    """On every item endpoint, Dorset's session on Shropshire's id (or a malformed one) gets the same 404 page as
    an id that does not exist; nothing is sent, recorded or audited for Shropshire's items."""
    for method, path, role in ITEM_ENDPOINTS:
        b = world.clients[(role, DORSET)]
        token = csrf_of(b.get("/").text)
        missing = _call(b, method, path.format(**{k: str(uuid.uuid4()) for k in world.a.ids}), token)
        probed = _call(b, method, path.format(**world.a.ids), token)
        malformed = _call(b, method, path.format(**{k: "1 OR 1=1" for k in world.a.ids}), token)
        for r in (probed, malformed):
            assert r.status_code == missing.status_code == 404, (method, path)  # type: ignore[attr-defined]
            assert r.text == missing.text and not _leaks(r.text, world.a), (method, path)  # type: ignore[attr-defined]
    assert world.sink.sent == []
    with world.db.session() as s:
        assert s.scalars(select(Decision)).all() == s.scalars(select(TriageDiscussion)).all() == []
        assert s.scalars(select(EmergencyAck)).all() == []
        seen = s.scalars(select(ViewAudit).where(ViewAudit.scope == DORSET,
                                                 ViewAudit.subject_id.in_(list(world.a.ids.values())))).all()
    assert seen == []


def test_lists_show_only_own_authority_whatever_the_query(world: World) -> None:
    """On every list, each authority sees its own items only, even with the other's code or ids in the query."""
    for _, path, role in LIST_ENDPOINTS:
        for code, own, other in ((SHROPSHIRE, world.a, world.b), (DORSET, world.b, world.a)):
            client = world.clients[(role, code)]
            joiner = "&" if "?" in path else "?"
            other_code = DORSET if code == SHROPSHIRE else SHROPSHIRE
            for extra in ("", f"{joiner}authority={other_code}&scope={other_code}",
                          f"{joiner}item={other.ids['item']}&referral={other.ids['referral']}"):
                r = client.get(path + extra)
                assert r.status_code == 200 and not _leaks(r.text, other), (path, code, extra)
                assert any(marker in r.text for marker in own.markers), (path, code, extra)


def test_every_other_role_is_refused(world: World) -> None:
    """Every endpoint refuses every other role (the same authority's other teams, a school, operations) with 403,
    and sends a browser without a session to sign in."""
    for method, path, role in ENDPOINTS:
        url = path.format(**world.a.ids)
        others = [c for (r, code), c in world.clients.items() if r is not role and code == SHROPSHIRE]
        for client in [*others, world.school, world.ops]:
            r = _call(client, method, url)
            assert r.status_code == 403 and not _leaks(r.text, world.a), (method, path)  # type: ignore[attr-defined]
        r = _call(world.anonymous, method, url, token="x")
        assert r.status_code == 303 and r.headers["location"] == "/sign-in", (method, path)  # type: ignore[attr-defined]
    assert world.sink.sent == []


POSTS = [e for e in ITEM_ENDPOINTS if e[0] == "POST"]


def test_replayed_form_token_of_the_other_authority_is_refused(world: World) -> None:
    """On every form, Shropshire's CSRF token in Dorset's session (and the reverse) is refused: 403, nothing sent."""
    for method, path, role in POSTS:
        a, b = world.clients[(role, SHROPSHIRE)], world.clients[(role, DORSET)]
        a_token, b_token = csrf_of(a.get("/").text), csrf_of(b.get("/").text)
        assert _call(b, method, path.format(**world.a.ids), a_token).status_code == 403  # type: ignore[attr-defined]
        assert _call(a, method, path.format(**world.a.ids), b_token).status_code == 403  # type: ignore[attr-defined]
    assert world.sink.sent == []


def test_own_authority_still_acts_on_its_own(world: World) -> None:
    """After Dorset's probing of every form, Shropshire acts on its own items, each recorded under Shropshire."""
    for method, path, role in POSTS:
        _call(world.clients[(role, DORSET)], method, path.format(**world.a.ids))
        r = _call(world.clients[(role, SHROPSHIRE)], method, path.format(**world.a.ids))
        assert r.status_code == 303, (method, path)  # type: ignore[attr-defined]
    assert len(world.sink.sent) == 4
    assert {getattr(x, "authority", getattr(x, "recipient", None)) for x in world.sink.sent} == {SHROPSHIRE}
    with world.db.session() as s:
        rows = [*s.scalars(select(Decision)), *s.scalars(select(TriageDiscussion)), *s.scalars(select(EmergencyAck))]
    assert len(rows) == 4 and {r.authority for r in rows} == {SHROPSHIRE}
