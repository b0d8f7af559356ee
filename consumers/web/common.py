"""What every page module shares: app state, the signed-in principal, role checks, templates, CSRF."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import Response

from consumers.acknowledge import AckSink
from consumers.auth import csrf_ok, resolve_session
from consumers.database import Database
from consumers.roles import Principal, Role
from consumers.settings import WebSettings

__all__ = [
    "AppState",
    "Forbidden",
    "SignInRequired",
    "cookie_name",
    "page",
    "principal_of",
    "require",
    "templates",
]

LONDON = ZoneInfo("Europe/London")
templates = Jinja2Templates(directory=str(Path(__file__).resolve().parent / "templates"))


def _london(value: datetime | None) -> str:
    return value.astimezone(LONDON).strftime("%a %-d %b %Y, %H:%M") if value else ""


def _day(value: date | None) -> str:
    return value.strftime("%-d %b %Y") if value else ""


templates.env.filters["london"] = _london
templates.env.filters["day"] = _day
templates.env.filters["label"] = lambda code: str(code).replace("_", " ").capitalize()


@dataclass(frozen=True)
class AppState:
    """What the pages need: settings, the database, the acknowledgement sink and a clock."""

    web: WebSettings
    db: Database
    sink: AckSink
    clock: Callable[[], datetime]

    def now(self) -> datetime:
        """The current instant (UTC)."""
        return self.clock().astimezone(UTC)


class SignInRequired(Exception):
    """No valid session: the page sends the browser to sign in."""


class Forbidden(Exception):
    """Signed in, but this page is not for this role, or the form's CSRF token is wrong."""


def state_of(request: Request) -> AppState:
    """The app's state."""
    state: AppState = request.app.state.mash
    return state


def cookie_name(web: WebSettings) -> str:
    """`__Host-` prefixed when secure (browsers then insist on Secure, Path=/ and no Domain)."""
    return "__Host-mash_session" if web.cookie_secure else "mash_session"


def principal_of(request: Request) -> Principal | None:
    """The signed-in principal for the request's session cookie, or None."""
    state = state_of(request)
    token = request.cookies.get(cookie_name(state.web))
    if not token:
        return None
    with state.db.session() as s, s.begin():
        return resolve_session(s, token, state.now(), state.web)


def require(*roles: Role) -> Callable[[Request], Principal]:
    """A dependency: the principal, if signed in with one of the roles."""

    def dependency(request: Request) -> Principal:
        principal = principal_of(request)
        if principal is None:
            raise SignInRequired
        if principal.role not in roles:
            raise Forbidden
        return principal

    return dependency


def check_csrf(principal: Principal, token: str | None) -> None:
    """Forbidden unless the form carries the session's CSRF token."""
    if not csrf_ok(principal.csrf_token, token):
        raise Forbidden


def page(request: Request, name: str, status_code: int = 200, **context: Any) -> Response:
    """Render a template (autoescaped) with the common context."""
    return templates.TemplateResponse(request, name, {"now": state_of(request).now(), **context},
                                      status_code=status_code)
