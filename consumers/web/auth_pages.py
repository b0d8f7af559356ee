"""Sign in (CSRF by a pre-session cookie, rate limited), sign out, and the front door of the app."""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from consumers.auth import RateLimited, csrf_ok, end_session, sign_in, start_session
from consumers.roles import Principal, Role
from consumers.web.common import check_csrf, cookie_name, page, principal_of, require, state_of

__all__ = ["router"]

router = APIRouter()
SIGNIN_COOKIE = "mash_signin_csrf"
_ANY = tuple(Role)


def _form(request: Request, status_code: int = 200, message: str | None = None) -> Response:
    token = secrets.token_urlsafe(32)
    response = page(request, "sign_in.html", status_code=status_code, csrf_token=token, message=message)
    web = state_of(request).web
    response.set_cookie(SIGNIN_COOKIE, token, max_age=1800, httponly=True, secure=web.cookie_secure, samesite="strict")
    return response


@router.get("/")
def home(request: Request) -> Response:
    """Signed in: the role's own page; otherwise the sign-in page."""
    principal = principal_of(request)
    return RedirectResponse(principal.role.home if principal else "/sign-in", status_code=303)


@router.get("/sign-in")
def sign_in_form(request: Request) -> Response:
    """The sign-in form."""
    principal = principal_of(request)
    if principal is not None:
        return RedirectResponse(principal.role.home, status_code=303)
    return _form(request)


def _signed_in(request: Request, token: str, home: str) -> Response:
    web = state_of(request).web
    response = RedirectResponse(home, status_code=303)
    response.set_cookie(cookie_name(web), token, max_age=web.session_max_hours * 3600, httponly=True,
                        secure=web.cookie_secure, samesite="strict", path="/")
    response.delete_cookie(SIGNIN_COOKIE)
    return response


@router.post("/sign-in")
def sign_in_submit(request: Request, username: str = Form(""), password: str = Form(""),
                   csrf_token: str = Form("")) -> Response:
    """Check the form's token, the rate limit and the password; start a new session."""
    if not csrf_ok(request.cookies.get(SIGNIN_COOKIE, ""), csrf_token):
        return _form(request, 400, "The form had expired. Please try again.")
    state = state_of(request)
    client = request.client.host if request.client else "unknown"
    try:
        with state.db.session() as s, s.begin():
            account = sign_in(s, username.strip(), password, client, state.now(), state.web)
            token = start_session(s, account, state.now(), state.web) if account else None
            home = Role(account.role).home if account else ""
    except RateLimited:
        return _form(request, 429, "Too many failed attempts. Please wait 15 minutes and try again.")
    if token is None:
        return _form(request, 401, "The account name or password was not recognised.")
    return _signed_in(request, token, home)


@router.post("/sign-out")
def sign_out(request: Request, csrf_token: str = Form("")) -> Response:
    """End the session (its row is deleted) and forget the cookie."""
    principal: Principal = require(*_ANY)(request)
    check_csrf(principal, csrf_token)
    state = state_of(request)
    with state.db.session() as s, s.begin():
        end_session(s, principal)
    response = RedirectResponse("/sign-in", status_code=303)
    response.delete_cookie(cookie_name(state.web), path="/", secure=state.web.cookie_secure, httponly=True)
    return response
