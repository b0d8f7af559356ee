"""The emergency duty team's page of one authority: out-of-hours alerts, newest first, with acknowledgement.

The acknowledgement is DATABASE ONLY for now (no Kafka record exists for it; see `consumers.edt_view`): the page
says so, and the alert's SLA clock on the broker is not stopped by it. Scoped by the signed-in authority;
every alert shown or acknowledged is audited.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from consumers.auth import audit
from consumers.edt_view import alerts_for, find_alert, record_ack
from consumers.roles import Principal, Role
from consumers.web.authority_common import not_found
from consumers.web.common import check_csrf, page, require, state_of

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
def acknowledge(request: Request, alert_id: str, csrf_token: str = Form(""), principal: Principal = duty) -> Response:
    """DATABASE ONLY: record that the team has the alert (the first acknowledgement stands)."""
    check_csrf(principal, csrf_token)
    state = state_of(request)
    with state.db.session() as s, s.begin():
        alert = find_alert(s, principal.scope, alert_id)
        if alert is None:
            return not_found(request, principal)
        if alert.withdrawn:
            outcome = "withdrawn"
        elif record_ack(s, alert.alert_id, principal.scope, state.now(), principal.account_id):
            audit(s, principal, "ACKNOWLEDGE", KIND, [alert.alert_id], state.now())
            outcome = "done"
        else:
            outcome = "already"
    return RedirectResponse(f"/emergency-duty?ack={outcome}&alert={alert.alert_id}#alert-{alert.alert_id}",
                            status_code=303)
