"""The emergency duty team's page of one authority: out-of-hours alerts, newest first, with acknowledgement.

An acknowledgement is an `ItemAcknowledgement` on `feedback.acknowledgements` (acks=all, awaited before the
page confirms; it stops the alert's SLA clock), then recorded in the database. Scoped by the signed-in authority;
every alert shown or acknowledged is audited.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from consumers.acknowledge import AckUnavailable
from consumers.auth import audit
from consumers.edt_view import alerts_for, find_alert, record_ack
from consumers.roles import Principal, Role
from consumers.web.authority_common import not_found, send_feedback
from consumers.web.common import check_csrf, page, require, state_of
from schemas.models import ItemAcknowledgement, Route

__all__ = ["router"]

router = APIRouter(prefix="/emergency-duty")
duty = Depends(require(Role.EMERGENCY_DUTY))
KIND = "emergency_duty_alert"


@router.get("")
def alerts_page(request: Request, principal: Principal = duty) -> Response:
    """The authority's out-of-hours alerts, newest first; each one shown is audited."""
    state = state_of(request)
    with state.db.session() as s, s.begin():
        alerts = alerts_for(s, principal.scope)
        audit(s, principal, "LIST", KIND, [a.alert_id for a in alerts], state.now())
    flash = request.query_params.get("ack")
    return page(request, "edt_alerts.html", principal=principal, alerts=alerts, flash=flash,
                flashed=request.query_params.get("alert"),
                open_count=sum(a.acknowledged_at is None and not a.withdrawn for a in alerts))


@router.post("/alerts/{alert_id}/acknowledge")
async def acknowledge(request: Request, alert_id: str, csrf_token: str = Form(""),
                      principal: Principal = duty) -> Response:
    """Acknowledge an alert: an `ItemAcknowledgement` on Kafka (acks=all, awaited; it stops the SLA clock), then
    the database (the first acknowledgement stands)."""
    check_csrf(principal, csrf_token)
    state = state_of(request)
    alert = await run_in_threadpool(_find_open, state, principal, alert_id)
    if alert is None:
        return not_found(request, principal)
    outcome = "withdrawn" if alert.withdrawn else "already" if alert.acknowledged_at is not None else "done"
    if outcome == "done":
        ack = ItemAcknowledgement(output_id=UUID(alert.alert_id), route=Route.EMERGENCY_DUTY,
                                  recipient=principal.scope, acknowledged=state.now(), by_role="EMERGENCY_DUTY")
        try:
            await send_feedback(state, ack)
        except AckUnavailable:
            return RedirectResponse(f"/emergency-duty?ack=failed&alert={alert.alert_id}", status_code=303)
        outcome = await run_in_threadpool(_record_ack, state, principal, alert.alert_id)
    return RedirectResponse(f"/emergency-duty?ack={outcome}&alert={alert.alert_id}#alert-{alert.alert_id}",
                            status_code=303)


def _find_open(state: Any, principal: Principal, alert_id: str) -> Any:
    with state.db.session() as s:
        return find_alert(s, principal.scope, alert_id)


def _record_ack(state: Any, principal: Principal, alert_id: str) -> str:
    with state.db.session() as s, s.begin():
        if record_ack(s, alert_id, principal.scope, state.now(), principal.account_id):
            audit(s, principal, "ACKNOWLEDGE", KIND, [alert_id], state.now())
            return "done"
        return "already"
