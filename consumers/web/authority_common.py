"""What the local authority's pages share: template filters (time left, RAG, short labels), the one answer for
an item that is not the authority's, meeting-date parsing, and sending an acknowledgement record to Kafka."""

from __future__ import annotations

from datetime import date, datetime
from typing import cast

from fastapi import Request
from starlette.responses import Response

from consumers.feedback import FeedbackSink
from consumers.roles import Principal
from consumers.web.common import AppState, page, templates
from schemas.models import Record

__all__ = ["not_found", "parse_day", "send_feedback", "time_left"]


def time_left(due: datetime | None, now: datetime) -> str:
    """'3 h 12 min left', '1 day 2 h left' or 'overdue by 40 min'."""
    if due is None:
        return ""
    seconds = int((due - now).total_seconds())
    minutes = abs(seconds) // 60
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    parts = ([f"{days} day{'s' if days != 1 else ''}"] if days else []) + ([f"{hours} h"] if hours else [])
    if not days:
        parts.append(f"{mins} min")
    text = " ".join(parts)
    return f"{text} left" if seconds >= 0 else f"overdue by {text}"


def urgency(due: datetime | None, now: datetime) -> str:
    """A CSS class for how close a deadline is: overdue, soon (under 2 hours) or ''."""
    if due is None:
        return ""
    left = (due - now).total_seconds()
    return "overdue" if left < 0 else "soon" if left < 7200 else ""


def rag_label(rag: str | None) -> str:
    """RED, AMBER, GREEN, or 'Not rated'."""
    return rag if rag in ("RED", "AMBER", "GREEN") else "Not rated"


CRITERIA = {
    "DASH_HIGH": "DASH risk high",
    "DASH_14_PLUS_TICKS": "14 or more DASH ticks",
    "ESCALATION_3_INCIDENTS_12_MONTHS": "3 or more incidents in 12 months",
    "REPEAT_WITHIN_12_MONTHS_OF_MARAC": "repeat within 12 months of a MARAC referral",
    "PROFESSIONAL_JUDGEMENT": "professional judgement",
}
KINDS = {
    "PoliceDomesticAbuseIncident": "Domestic abuse incident",
    "PoliceChildConcern": "Child concern",
    "HealthSafeguardingNotification": "Health safeguarding notification",
    "ProbationRiskNotification": "Probation risk notification",
    "YouthJusticeNotification": "Youth justice notification",
}
BASES = {
    "CHILDREN_ACT_1989_S17": "Children Act 1989 s17",
    "CHILDREN_ACT_1989_S47": "Children Act 1989 s47",
    "CHILDREN_ACT_2004_S11": "Children Act 2004 s11",
    "CRIME_AND_DISORDER_ACT_1998_S115": "Crime and Disorder Act 1998 s115",
    "UK_GDPR_ART6_1E_PUBLIC_TASK": "UK GDPR Art 6(1)(e) public task",
    "DPA_2018_SCH8_SAFEGUARDING": "DPA 2018 Sch 8 safeguarding",
    "UNKNOWN": "Not recorded",
}

templates.env.filters["criterion"] = lambda code: CRITERIA.get(str(code), str(code))
templates.env.filters["kind_label"] = lambda code: KINDS.get(str(code), str(code or ""))
templates.env.filters["basis"] = lambda code: BASES.get(str(code), str(code or ""))
templates.env.filters["time_left"] = time_left
templates.env.filters["urgency"] = urgency
templates.env.filters["rag_label"] = rag_label


def not_found(request: Request, principal: Principal) -> Response:
    """The one answer for an item that is not this authority's, whether or not it exists."""
    return page(request, "not_found.html", status_code=404, principal=principal)


def parse_day(value: str | None) -> date | None:
    """A meeting date from `YYYY-MM-DD` (None when malformed)."""
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


async def send_feedback(state: AppState, record: Record) -> None:
    """Send an acknowledgement record through the app's sink (a `consumers.feedback.FeedbackSink`)."""
    await cast(FeedbackSink, state.sink).send(record)
