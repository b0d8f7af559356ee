"""The daily Domestic Violence Triage agenda of one authority: per meeting date, MARAC-flagged items first with
the criteria met and what each agency shared; mark an item discussed (and whether the meeting referred it to
MARAC: a `TriageItemDiscussed` on Kafka before the page confirms); the agenda as CSV and as a printable page.
Every query is scoped by the signed-in authority; every item shown, exported or marked is audited."""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from broker.authority import authority_or_default
from consumers.acknowledge import AckUnavailable
from consumers.auth import audit
from consumers.roles import Principal, Role
from consumers.triage_view import LONDON, AgendaItem, agenda, find_item, meeting_dates, record_discussion
from consumers.web.authority_common import not_found, parse_day, send_feedback
from consumers.web.common import AppState, check_csrf, page, require, state_of
from schemas.models import TriageItemDiscussed

__all__ = ["router"]

router = APIRouter(prefix="/triage")
chair = Depends(require(Role.TRIAGE_CHAIR))
KIND = "dv_triage_item"
CSV_COLUMNS = ["meeting_date", "order", "item_ref", "item_id", "agency", "source_reference", "incident_occurred",
               "risk_level", "dash_ticks", "marac_flagged", "marac_criteria", "children", "victim_ref",
               "perpetrator_ref", "status", "discussed_at", "referred_to_marac"]


def _default_day(state: AppState, authority: str, dates: list[date]) -> date:
    today = state.now().astimezone(LONDON).date()
    return next((d for d in dates if d >= today), today)


def _agenda(state: AppState, principal: Principal, raw: str | None, action: str
            ) -> tuple[date, list[AgendaItem], list[date]] | None:
    wanted = parse_day(raw)
    if raw and wanted is None:
        return None
    with state.db.session() as s, s.begin():
        dates = meeting_dates(s, principal.scope)
        day = wanted or _default_day(state, principal.scope, dates)
        items = agenda(s, principal.scope, day)
        audit(s, principal, action, KIND, [i.item_id for i in items], state.now())
    return day, items, dates


def _context(principal: Principal, day: date, items: list[AgendaItem], dates: list[date]) -> dict[str, Any]:
    config = authority_or_default(principal.scope)
    earlier = [d for d in dates if d < day]
    later = [d for d in dates if d > day]
    live = [i for i in items if not i.withdrawn]
    return dict(principal=principal, day=day, items=items, config=config,
                previous=earlier[-1] if earlier else None, following=later[0] if later else None,
                flagged=sum(i.marac for i in live), open_count=sum(i.discussed_at is None for i in live))


@router.get("")
def agenda_page(request: Request, date: str | None = None, principal: Principal = chair) -> Response:
    """The agenda of a meeting date (default: the next meeting with items, or today)."""
    found = _agenda(state_of(request), principal, date, "LIST")
    if found is None:
        return not_found(request, principal)
    day, items, dates = found
    return page(request, "triage_agenda.html", flash=request.query_params.get("marked"),
                **_context(principal, day, items, dates))


@router.get("/print")
def agenda_print(request: Request, date: str | None = None, principal: Principal = chair) -> Response:
    """The agenda as a printable page (no forms)."""
    found = _agenda(state_of(request), principal, date, "PRINT")
    if found is None:
        return not_found(request, principal)
    day, items, dates = found
    return page(request, "triage_print.html", **_context(principal, day, items, dates))


def _cell(value: object) -> str:
    """A CSV cell that a spreadsheet will not run as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


@router.get("/agenda.csv")
def agenda_csv(request: Request, date: str | None = None, principal: Principal = chair) -> Response:
    """The agenda as CSV (references and keys' short references only; no names)."""
    found = _agenda(state_of(request), principal, date, "EXPORT")
    if found is None:
        return not_found(request, principal)
    day, items, _ = found
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for n, i in enumerate(items, start=1):
        status = "WITHDRAWN" if i.withdrawn else "DISCUSSED" if i.discussed_at else "TO_DISCUSS"
        occurred = i.occurred.astimezone(LONDON).isoformat() if i.occurred else ""
        discussed = i.discussed_at.astimezone(LONDON).isoformat() if i.discussed_at else ""
        referred = "" if i.marac_referred is None else ("yes" if i.marac_referred else "no")
        writer.writerow([_cell(v) for v in (
            day.isoformat(), n, i.ref, i.item_id, i.agency_type, i.source_reference, occurred, i.risk_level,
            i.ticks, "yes" if i.marac else "no", " ".join(i.criteria), i.children, i.victim_ref, i.perpetrator_ref,
            status, discussed, referred)])
    name = f"dv-triage-{principal.scope}-{day.isoformat()}.csv"
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _lookup(state: AppState, principal: Principal, item_id: str) -> AgendaItem | None:
    with state.db.session() as s, s.begin():
        return find_item(s, principal.scope, item_id)


def _record(state: AppState, principal: Principal, discussed: TriageItemDiscussed) -> None:
    with state.db.session() as s, s.begin():
        record_discussion(s, discussed, principal.account_id)
        audit(s, principal, "DISCUSS", KIND, [str(discussed.item_id)], state.now())


@router.post("/items/{item_id}/discussed")
async def mark_discussed(request: Request, item_id: str, marac_referred: str = Form(""), csrf_token: str = Form(""),
                         principal: Principal = chair) -> Response:
    """Mark an item discussed, saying whether the meeting referred it to MARAC: on Kafka first, then confirmed."""
    check_csrf(principal, csrf_token)
    state = state_of(request)
    item = await run_in_threadpool(_lookup, state, principal, item_id)
    if item is None:
        return not_found(request, principal)
    assert item.meeting_at is not None
    day = item.meeting_at.astimezone(LONDON).date()

    def back(flash: str) -> Response:
        return RedirectResponse(f"/triage?date={day.isoformat()}&marked={flash}#item-{item.item_id}", status_code=303)

    def again(status: int, flash: str) -> Response:
        found = _agenda(state, principal, day.isoformat(), "LIST")
        assert found is not None
        return page(request, "triage_agenda.html", status_code=status, flash=flash, **_context(principal, *found))

    if item.withdrawn:
        return await run_in_threadpool(again, 409, "withdrawn")
    if item.discussed_at is not None:
        return back("already")
    if marac_referred not in ("yes", "no"):
        return await run_in_threadpool(again, 400, "choose")
    discussed = TriageItemDiscussed(item_id=item.item_id, authority=principal.scope,
                                    marac_referred=marac_referred == "yes", discussed=state.now())
    try:
        await send_feedback(state, discussed)
    except AckUnavailable:
        return await run_in_threadpool(again, 503, "failed")
    await run_in_threadpool(_record, state, principal, discussed)
    return back("done")
