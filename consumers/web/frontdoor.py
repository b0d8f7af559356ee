"""The front door (MASH) pages of one authority: the worklist (open referrals and cumulative-concern alerts by
deadline), a referral or alert with its decision form, and a child's cross-agency chronology.

Every query is scoped by the signed-in authority; another authority's item is answered exactly as an item that
does not exist. A decision is a `FrontDoorDecision` on `feedback.acknowledgements`, awaited (acks=all) before
the page says it is recorded; its reasons are kept in the database (the record has no field for them yet).
Every item shown, decided or opened is audited (who, what, when; never a name).
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from consumers.acknowledge import AckUnavailable
from consumers.auth import audit
from consumers.frontdoor_view import (
    WorkItem,
    child_key_of,
    chronology,
    decisions_for,
    find_alert,
    find_referral,
    record_decision,
    worklist,
)
from consumers.roles import Principal, Role
from consumers.web.authority_common import not_found, send_feedback
from consumers.web.common import AppState, check_csrf, page, require, state_of
from schemas.models import FrontDoorDecision, FrontDoorResponse, Rag

__all__ = ["router"]

router = APIRouter(prefix="/frontdoor")
front_door = Depends(require(Role.FRONT_DOOR))
KINDS = {"referral": "frontdoor_referral", "alert": "cumulative_alert"}
RESPONSES = [r for r in FrontDoorResponse if r is not FrontDoorResponse.UNKNOWN]
RATINGS = [Rag.RED, Rag.AMBER, Rag.GREEN]
REASON_MAX = 2000


@router.get("")
def worklist_page(request: Request, principal: Principal = front_door) -> Response:
    """Open referrals and cumulative-concern alerts, soonest deadline first; recent decisions below."""
    state = state_of(request)
    with state.db.session() as s, s.begin():
        items = worklist(s, principal.scope)
        decided = decisions_for(s, principal.scope)
        for kind, audit_kind in KINDS.items():
            audit(s, principal, "LIST", audit_kind, [i.item_id for i in items if i.kind == kind], state.now())
    return page(request, "frontdoor_worklist.html", principal=principal, items=items, decided=decided)


def _find(state: AppState, principal: Principal, kind: str, item_id: str) -> WorkItem | None:
    with state.db.session() as s, s.begin():
        return (find_referral if kind == "referral" else find_alert)(s, principal.scope, item_id)


def _item_page(request: Request, principal: Principal, kind: str, item_id: str) -> Response:
    state = state_of(request)
    with state.db.session() as s, s.begin():
        item = (find_referral if kind == "referral" else find_alert)(s, principal.scope, item_id)
        if item is None:
            return not_found(request, principal)
        audit(s, principal, "VIEW", KINDS[kind], [item.item_id], state.now())
        history = None
        if kind == "alert":
            key = child_key_of(s, principal.scope, "alert", item.item_id)
            if key is not None:
                history = chronology(s, principal.scope, key)
                audit(s, principal, "VIEW", "child_chronology", [history.digest], state.now())
    return page(request, "frontdoor_item.html", principal=principal, item=item, history=history,
                responses=RESPONSES, ratings=RATINGS, flash=request.query_params.get("decided"), form=None,
                errors=[])


@router.get("/referrals/{referral_id}")
def referral_page(request: Request, referral_id: str, principal: Principal = front_door) -> Response:
    """One referral: children, caveats, consent and lawful basis, the sender's narrative, the decision form."""
    return _item_page(request, principal, "referral", referral_id)


@router.get("/alerts/{alert_id}")
def alert_page(request: Request, alert_id: str, principal: Principal = front_door) -> Response:
    """One cumulative-concern alert with the child's chronology and the decision form."""
    return _item_page(request, principal, "alert", alert_id)


@router.get("/referrals/{referral_id}/children/{position}")
def child_chronology(request: Request, referral_id: str, position: str, principal: Principal = front_door) -> Response:
    """A referral's child: every referral this authority received about the child, oldest first."""
    state = state_of(request)
    with state.db.session() as s, s.begin():
        item = find_referral(s, principal.scope, referral_id)
        index = int(position) if position.isdigit() and len(position) < 4 else None
        key = child_key_of(s, principal.scope, "referral", item.item_id, index) if item and index is not None \
            else None
        if item is None or key is None:
            return not_found(request, principal)
        history = chronology(s, principal.scope, key, current=item.item_id)
        audit(s, principal, "VIEW", "child_chronology", [history.digest], state.now())
    return page(request, "frontdoor_chronology.html", principal=principal, item=item, history=history)


@dataclass(frozen=True)
class DecisionForm:
    """What the practitioner typed."""

    response: str
    reason: str
    rag: str
    rag_reason: str

    def problems(self, current_rag: str) -> list[str]:
        """What is wrong with the form (empty when it can be sent)."""
        out = []
        if self.response not in {r.value for r in RESPONSES}:
            out.append("Choose the response.")
        if not self.reason.strip():
            out.append("Give the reason for the decision.")
        if len(self.reason) > REASON_MAX or len(self.rag_reason) > REASON_MAX:
            out.append(f"Reasons can be at most {REASON_MAX} characters.")
        if self.rag and self.rag not in {r.value for r in RATINGS}:
            out.append("Choose RED, AMBER or GREEN, or keep the rating.")
        elif self.changes_rag(current_rag) and not self.rag_reason.strip():
            out.append("Give the reason for changing the RAG rating.")
        return out

    def changes_rag(self, current_rag: str) -> bool:
        """Whether the form changes the RAG rating."""
        return bool(self.rag) and self.rag != current_rag


def _record(state: AppState, principal: Principal, kind: str, decision: FrontDoorDecision, form: DecisionForm,
            previous: str) -> None:
    changed = form.changes_rag(previous)
    with state.db.session() as s, s.begin():
        record_decision(s, decision, reason=form.reason.strip(), previous_rag=previous if changed else None,
                        rag_reason=form.rag_reason.strip() if changed else None, account_id=principal.account_id)
        audit(s, principal, "DECIDE", KINDS[kind], [str(decision.referral_id)], state.now())


async def _decide(request: Request, principal: Principal, kind: str, item_id: str, form: DecisionForm,
                  csrf_token: str) -> Response:
    check_csrf(principal, csrf_token)
    state = state_of(request)
    item = await run_in_threadpool(_find, state, principal, kind, item_id)
    if item is None:
        return not_found(request, principal)
    target = f"/frontdoor/{kind}s/{item.item_id}"

    def again(status: int, flash: str | None, errors: list[str]) -> Response:
        return page(request, "frontdoor_item.html", status_code=status, principal=principal, item=item, history=None,
                    responses=RESPONSES, ratings=RATINGS, flash=flash, form=form, errors=errors)

    if item.withdrawn:
        return again(409, "withdrawn", [])
    if item.decision is not None:
        return RedirectResponse(f"{target}?decided=already", status_code=303)
    problems = form.problems(item.rag)
    if problems:
        return again(400, None, problems)
    rag = Rag(form.rag) if form.rag else Rag(item.rag)
    decision = FrontDoorDecision(referral_id=item.item_id, authority=principal.scope,
                                 response=FrontDoorResponse(form.response), rag=rag, decided=state.now())
    try:
        await send_feedback(state, decision)
    except AckUnavailable:
        return again(503, "failed", [])
    await run_in_threadpool(_record, state, principal, kind, decision, form, item.rag)
    return RedirectResponse(f"{target}?decided=done", status_code=303)


@router.post("/referrals/{referral_id}/decision")
async def decide_referral(request: Request, referral_id: str, response: str = Form(""), reason: str = Form(""),
                          rag: str = Form(""), rag_reason: str = Form(""), csrf_token: str = Form(""),
                          principal: Principal = front_door) -> Response:
    """Record the decision on a referral: on Kafka first, then here, then confirmed."""
    return await _decide(request, principal, "referral", referral_id, DecisionForm(response, reason, rag, rag_reason),
                         csrf_token)


@router.post("/alerts/{alert_id}/decision")
async def decide_alert(request: Request, alert_id: str, response: str = Form(""), reason: str = Form(""),
                       rag: str = Form(""), rag_reason: str = Form(""), csrf_token: str = Form(""),
                       principal: Principal = front_door) -> Response:
    """Record the decision on a cumulative-concern alert (a FrontDoorDecision naming the alert)."""
    return await _decide(request, principal, "alert", alert_id, DecisionForm(response, reason, rag, rag_reason),
                         csrf_token)
