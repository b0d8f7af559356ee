"""The school feed: a DSL's own notices, one notice, and its acknowledgement. Every query is scoped by the
signed-in school's URN; another school's notice is answered exactly as a notice that does not exist."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from consumers.acknowledge import AckUnavailable
from consumers.auth import audit
from consumers.encompass_view import record_ack
from consumers.roles import Principal, Role
from consumers.school_feed import NoticeView, find_notice, mark_read, notices_for
from consumers.web.common import AppState, check_csrf, page, require, state_of
from schemas.models import EncompassAcknowledgement

__all__ = ["router"]

router = APIRouter(prefix="/school")
school = Depends(require(Role.SCHOOL_DSL))
KIND = "encompass_notice"


def not_found(request: Request, principal: Principal) -> Response:
    """The one answer for a notice that is not this school's, whether or not it exists."""
    return page(request, "not_found.html", status_code=404, principal=principal)


@router.get("/notices")
def notices(request: Request, principal: Principal = school) -> Response:
    """The school's notices, newest first; each one shown is audited."""
    state = state_of(request)
    with state.db.session() as s, s.begin():
        views = notices_for(s, principal.scope)
        audit(s, principal, "LIST", KIND, [v.notice_id for v in views], state.now())
    return page(request, "school_notices.html", principal=principal, notices=views,
                new_count=sum(v.new for v in views))


@router.get("/notices/{notice_id}")
def notice(request: Request, notice_id: str, principal: Principal = school) -> Response:
    """One of the school's notices (opening it marks it read); audited."""
    state = state_of(request)
    with state.db.session() as s, s.begin():
        view = find_notice(s, principal.scope, notice_id)
        if view is None:
            return not_found(request, principal)
        mark_read(s, principal.scope, view.notice_id, principal.account_id, state.now())
        audit(s, principal, "VIEW", KIND, [view.notice_id], state.now())
    return page(request, "school_notice.html", principal=principal, notice=view,
                flash=request.query_params.get("ack"))


def _lookup(state: AppState, principal: Principal, notice_id: str) -> NoticeView | None:
    with state.db.session() as s, s.begin():
        return find_notice(s, principal.scope, notice_id)


def _record(state: AppState, principal: Principal, ack: EncompassAcknowledgement) -> None:
    with state.db.session() as s, s.begin():
        record_ack(s, ack, principal.account_id)
        audit(s, principal, "ACKNOWLEDGE", KIND, [str(ack.notice_id)], state.now())


@router.post("/notices/{notice_id}/acknowledge")
async def acknowledge(request: Request, notice_id: str, csrf_token: str = Form(""),
                      principal: Principal = school) -> Response:
    """Send the acknowledgement to Kafka and wait for it; only then record it and say it is done."""
    check_csrf(principal, csrf_token)
    state = state_of(request)
    view = await run_in_threadpool(_lookup, state, principal, notice_id)
    if view is None:
        return not_found(request, principal)
    target = f"/school/notices/{view.notice_id}"
    if view.withdrawn:
        return page(request, "school_notice.html", status_code=409, principal=principal, notice=view, flash="withdrawn")
    if view.acknowledged_at is not None:
        return RedirectResponse(f"{target}?ack=already", status_code=303)
    ack = EncompassAcknowledgement(notice_id=view.notice_id, school_urn=principal.scope, acknowledged=state.now(),
                                   by_role="DSL")
    try:
        await state.sink.send(ack)
    except AckUnavailable:
        return page(request, "school_notice.html", status_code=503, principal=principal, notice=view, flash="failed")
    await run_in_threadpool(_record, state, principal, ack)
    return RedirectResponse(f"{target}?ack=done", status_code=303)
