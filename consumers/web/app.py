"""The app: security headers, error pages, static files, and the routers of each role's pages.

Issue 11's front door, triage and emergency duty pages, and the operations pages, are more routers here,
each guarded by `require(Role...)` and scoped by the principal's authority, on the same sessions and DB.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.responses import Response

from consumers.acknowledge import AckSink
from consumers.database import Database
from consumers.settings import WebSettings
from consumers.web import auth_pages, edt, frontdoor, ops, school_pages, triage
from consumers.web.common import AppState, Forbidden, SignInRequired, page, principal_of

__all__ = ["create_app"]

STATIC = Path(__file__).resolve().parent / "static"
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def _now() -> datetime:
    return datetime.now(UTC)


async def _headers(request: Request, call_next: Callable[[Request], object]) -> Response:
    response: Response = await call_next(request)  # type: ignore[misc]
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    if request.url.scheme == "https":
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    return response


async def _sign_in_required(request: Request, exc: Exception) -> Response:
    return RedirectResponse("/sign-in", status_code=303)


async def _forbidden(request: Request, exc: Exception) -> Response:
    return page(request, "forbidden.html", status_code=403, principal=None)


async def _http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 400
    return page(request, "not_found.html", status_code=404 if status == 404 else status,
                principal=principal_of(request))


def create_app(web: WebSettings, db: Database, sink: AckSink, clock: Callable[[], datetime] = _now) -> FastAPI:
    """The app over this database, sending acknowledgements to this sink."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await sink.start()
        try:
            yield
        finally:
            await sink.stop()

    app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.mash = AppState(web=web, db=db, sink=sink, clock=clock)
    app.middleware("http")(_headers)
    app.add_exception_handler(SignInRequired, _sign_in_required)
    app.add_exception_handler(Forbidden, _forbidden)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _http_error)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.include_router(auth_pages.router)
    app.include_router(school_pages.router)
    app.include_router(frontdoor.router)
    app.include_router(triage.router)
    app.include_router(edt.router)
    app.include_router(ops.router)
    return app
