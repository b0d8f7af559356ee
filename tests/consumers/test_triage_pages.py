"""The DV triage agenda: per meeting date, MARAC-flagged first with the criteria met and what each agency shared;
marking an item discussed sends TriageItemDiscussed before confirming; CSV export (no names, no formulas) and a
printable page; every item shown, exported or marked is audited."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from consumers.database import Database
from consumers.roles import Role
from consumers.tables import TriageDiscussion, ViewAudit
from schemas import models as m
from tests.consumers.authority_data import (
    MEETING,
    SHROPSHIRE,
    apply,
    cheap_hashes,  # noqa: F401  (fixture)
    child,
    marac,
    recall,
    referral,
    signed_in,
    triage_item,
)
from tests.consumers.conftest import RecordingSink, csrf_of

DAY = MEETING.date().isoformat()

pytestmark = pytest.mark.usefixtures("cheap_hashes")


def chair(db: Database, client: TestClient) -> TestClient:
    """The client signed in as Shropshire's triage chair."""
    return signed_in(client, db, "chair-a", Role.TRIAGE_CHAIR, SHROPSHIRE)


def _agenda(db: Database) -> tuple[m.DvTriageItem, m.DvTriageItem, m.DvTriageItem, m.DvTriageItem]:
    victim = "dem:shared-victim"
    plain = triage_item(risk_level=m.RiskLevel.STANDARD, source_reference="WMP-PLAIN", victim_key=victim)
    own = triage_item(marac=True, marac_criteria=[m.MaracCriterion.DASH_HIGH, m.MaracCriterion.DASH_14_PLUS_TICKS],
                      risk_level=m.RiskLevel.HIGH, ticks=16, source_reference="WMP-OWNFLAG")
    late = triage_item(source_reference="WMP-LATEFLAG", agency_type=m.AgencyType.HEALTH, victim_key=victim)
    other_day = triage_item(source_reference="WMP-NEXTDAY", meeting_at=MEETING + timedelta(days=1))
    shared = referral(SHROPSHIRE, child(given="Sharedchild"), notification_id=plain.notification_id,
                      summary="Synthetic: shared by police")
    apply(db, plain, own, late, other_day, shared, marac(late))
    return plain, own, late, other_day


def test_agenda_puts_marac_first_with_criteria_and_what_was_shared(db: Database, app_client: TestClient) -> None:
    """Flagged items (own criteria, then a late MARAC referral's) before the rest; another date's item absent."""
    _agenda(db)
    html = chair(db, app_client).get(f"/triage?date={DAY}").text
    assert html.index("WMP-OWNFLAG") < html.index("WMP-LATEFLAG") < html.index("WMP-PLAIN")
    assert "WMP-NEXTDAY" not in html and "Tuesday 24 Nov 2026" in html and "09:00 cut-off" in html
    assert "DASH risk high; 14 or more DASH ticks" in html and "3 or more incidents in 12 months" in html
    assert "flagged by a later MARAC referral" in html and "16 DASH ticks" in html
    assert "Synthetic: shared by police" in html and "Sharedchild" in html
    assert "Also on this agenda for the same people" in html  # the police and health items share a victim
    assert "2 MARAC-flagged" in html and "3 still to discuss" in html


def test_default_date_is_the_next_meeting_and_pager_moves(db: Database, app_client: TestClient) -> None:
    """Without a date the next meeting with items is shown; links lead to the following one."""
    _agenda(db)
    html = chair(db, app_client).get("/triage").text
    assert "WMP-OWNFLAG" in html and "/triage?date=2026-11-25" in html


def test_mark_discussed_is_sent_before_it_is_confirmed(db: Database, app_client: TestClient,
                                                       sink: RecordingSink) -> None:
    """TriageItemDiscussed (with the meeting's MARAC answer) reaches Kafka first; then the agenda shows it."""
    _, own, _, _ = _agenda(db)
    client = chair(db, app_client)
    token = csrf_of(client.get(f"/triage?date={DAY}").text)
    page = client.post(f"/triage/items/{own.item_id}/discussed", data={"csrf_token": token, "marac_referred": "yes"})
    assert page.status_code == 200 and "Marked discussed" in page.text and "referred to MARAC" in page.text
    [sent] = sink.sent
    assert isinstance(sent, m.TriageItemDiscussed)
    assert (sent.item_id, sent.authority, sent.marac_referred) == (own.item_id, SHROPSHIRE, True)
    again = client.post(f"/triage/items/{own.item_id}/discussed", data={"csrf_token": token, "marac_referred": "no"})
    assert "already marked discussed" in again.text and len(sink.sent) == 1


def test_discussed_needs_the_marac_answer_and_kafka(db: Database, app_client: TestClient,
                                                    sink: RecordingSink) -> None:
    """No MARAC answer: 400, nothing sent. Kafka down: 503, nothing recorded. Withdrawn item: 409."""
    plain, _, _, _ = _agenda(db)
    client = chair(db, app_client)
    token = csrf_of(client.get(f"/triage?date={DAY}").text)
    url = f"/triage/items/{plain.item_id}/discussed"
    assert client.post(url, data={"csrf_token": token}).status_code == 400
    sink.fail = True
    failed = client.post(url, data={"csrf_token": token, "marac_referred": "no"})
    assert failed.status_code == 503 and "could not be recorded" in failed.text
    with db.session() as s:
        assert s.scalars(select(TriageDiscussion)).all() == []
    apply(db, recall(plain, m.Route.DV_TRIAGE, SHROPSHIRE))
    assert client.post(url, data={"csrf_token": token, "marac_referred": "no"}).status_code == 409
    assert sink.sent == []


def test_csv_export_has_the_agenda_without_names_or_formulas(db: Database, app_client: TestClient) -> None:
    """One row per item in agenda order; references and short references only; a formula-like value is quoted."""
    _agenda(db)
    apply(db, triage_item(source_reference="=HYPERLINK", risk_level=m.RiskLevel.LOW))
    r = chair(db, app_client).get(f"/triage/agenda.csv?date={DAY}")
    assert r.headers["content-type"].startswith("text/csv")
    assert f'dv-triage-{SHROPSHIRE}-{DAY}.csv' in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [row["source_reference"] for row in rows] == ["WMP-OWNFLAG", "WMP-LATEFLAG", "WMP-PLAIN", "'=HYPERLINK"]
    assert rows[0]["marac_criteria"] == "DASH_HIGH DASH_14_PLUS_TICKS" and rows[0]["status"] == "TO_DISCUSS"
    assert "Sharedchild" not in r.text and "dem:" not in r.text and rows[0]["victim_ref"].startswith("C-")


def test_printable_agenda_has_no_forms_and_is_audited(db: Database, app_client: TestClient) -> None:
    """The print page lists the items without forms; list, print and export are each audited per item."""
    _agenda(db)
    client = chair(db, app_client)
    html = client.get(f"/triage/print?date={DAY}").text
    assert "WMP-OWNFLAG" in html and "<form method=\"post\" action=\"/triage" not in html and "printable" in html
    client.get(f"/triage/agenda.csv?date={DAY}")
    with db.session() as s:
        actions = [a.action for a in s.scalars(select(ViewAudit).order_by(ViewAudit.id))]
    assert actions.count("PRINT") == 3 and actions.count("EXPORT") == 3


def test_malformed_date_is_not_found(db: Database, app_client: TestClient) -> None:
    """A date that is not YYYY-MM-DD is answered 404 on every agenda view."""
    client = chair(db, app_client)
    for url in ("/triage?date=2026-13-01", "/triage/print?date=x", "/triage/agenda.csv?date=1%20OR%201"):
        assert client.get(url).status_code == 404
