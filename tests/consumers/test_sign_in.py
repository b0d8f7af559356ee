"""Sign-in: argon2id hashes, CSRF on the form, rate limit, secure cookies, sessions that expire, sign-out."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select

from consumers.database import Database
from consumers.roles import Role
from consumers.tables import Account, SignInAttempt
from tests.consumers.conftest import Clock, add_account, csrf_of, sign_in


def test_password_is_stored_as_argon2id(db: Database) -> None:
    """No password is kept, only an argon2id hash."""
    add_account(db, "dsl-a")
    with db.session() as s:
        account = s.scalar(select(Account))
    assert account is not None and account.password_hash.startswith("$argon2id$")


def test_sign_in_lands_on_the_role_page_with_a_secure_cookie(db: Database, app_client: TestClient) -> None:
    """A DSL lands on the school notices; the cookie is __Host-, Secure, HttpOnly, SameSite=Strict."""
    add_account(db, "dsl-a")
    token = csrf_of(app_client.get("/sign-in").text)
    r = app_client.post("/sign-in", data={"username": "dsl-a", "password": "correct horse battery staple",
                                          "csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == Role.SCHOOL_DSL.home
    cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith("__Host-mash_session="))
    assert all(flag in cookie for flag in ("Secure", "HttpOnly", "SameSite=strict", "Path=/"))


def test_sign_in_form_without_its_csrf_token_is_refused(db: Database, app_client: TestClient) -> None:
    """A sign-in post whose token does not match the form's cookie is refused (login CSRF)."""
    add_account(db, "dsl-a")
    app_client.get("/sign-in")
    r = app_client.post("/sign-in", data={"username": "dsl-a", "password": "correct horse battery staple",
                                          "csrf_token": "forged"})
    assert r.status_code == 400 and "Signed in as" not in r.text


def test_wrong_password_and_unknown_account_answer_alike(db: Database, app_client: TestClient) -> None:
    """Both get the same 401 page, so account names cannot be probed."""
    add_account(db, "dsl-a")
    wrong = sign_in(app_client, "dsl-a", "not the password at all")
    unknown = sign_in(app_client, "nobody-here", "not the password at all")
    assert wrong.status_code == unknown.status_code == 401  # type: ignore[attr-defined]
    assert "not recognised" in wrong.text and "not recognised" in unknown.text  # type: ignore[attr-defined]


def test_sign_in_is_rate_limited_per_account(db: Database, app_client: TestClient, clock: Clock) -> None:
    """After 5 failures in 15 minutes even the right password is refused, until the window passes."""
    add_account(db, "dsl-a")
    for _ in range(5):
        sign_in(app_client, "dsl-a", "guess guess guess")
    assert sign_in(app_client, "dsl-a").status_code == 429  # type: ignore[attr-defined]
    clock.at += timedelta(minutes=16)
    assert sign_in(app_client, "dsl-a").status_code == 200  # type: ignore[attr-defined]
    with db.session() as s:
        assert s.scalar(select(SignInAttempt).where(SignInAttempt.succeeded.is_(True))) is not None


def test_session_expires_when_idle(db: Database, app_client: TestClient, clock: Clock) -> None:
    """31 idle minutes later the session is gone and the page asks to sign in again."""
    add_account(db, "dsl-a")
    sign_in(app_client, "dsl-a")
    assert app_client.get("/school/notices").status_code == 200
    clock.at += timedelta(minutes=31)
    r = app_client.get("/school/notices", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/sign-in"


def test_session_ends_after_its_maximum_even_in_use(db: Database, app_client: TestClient, clock: Clock) -> None:
    """Used every 20 minutes, a session still ends 12 hours after sign-in."""
    add_account(db, "dsl-a")
    sign_in(app_client, "dsl-a")
    for _ in range(36):
        clock.at += timedelta(minutes=20)
        app_client.get("/school/notices")
    assert app_client.get("/school/notices", follow_redirects=False).status_code == 303


def test_sign_out_needs_csrf_and_kills_the_session(db: Database, app_client: TestClient) -> None:
    """Sign-out without the token is refused; with it, the old cookie no longer works."""
    add_account(db, "dsl-a")
    sign_in(app_client, "dsl-a")
    page = app_client.get("/school/notices").text
    assert app_client.post("/sign-out", data={"csrf_token": "nope"}).status_code == 403
    cookies = dict(app_client.cookies)
    app_client.post("/sign-out", data={"csrf_token": csrf_of(page)})
    app_client.cookies.update(cookies)  # a replayed cookie
    assert app_client.get("/school/notices", follow_redirects=False).status_code == 303


def test_other_roles_cannot_open_school_pages(db: Database, app_client: TestClient) -> None:
    """A front door account (issue 11's role) is signed in but refused the school feed."""
    add_account(db, "fd-shropshire", role=Role.FRONT_DOOR, scope="E06000051")
    sign_in(app_client, "fd-shropshire")
    assert app_client.get("/school/notices").status_code == 403


def test_disabled_account_loses_its_session(db: Database, app_client: TestClient) -> None:
    """Disabling an account ends its live sessions at the next request."""
    add_account(db, "dsl-a")
    sign_in(app_client, "dsl-a")
    with db.session() as s, s.begin():
        account = s.scalar(select(Account))
        assert account is not None
        account.active = False
    assert app_client.get("/school/notices", follow_redirects=False).status_code == 303
