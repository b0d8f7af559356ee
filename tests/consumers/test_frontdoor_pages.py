"""The front door worklist: open items by deadline with RAG, time left, education-contact flag, caveats, consent
and lawful basis; a decision (with an optional RAG change and its reason) is on Kafka before it is confirmed;
the child's chronology; every view audited without names."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from consumers.database import Database
from consumers.roles import Role
from consumers.tables import Decision, ViewAudit
from schemas import models as m
from tests.consumers.authority_data import (
    SHROPSHIRE,
    apply,
    cheap_hashes,  # noqa: F401  (fixture)
    child,
    cumulative,
    recall,
    referral,
    signed_in,
)
from tests.consumers.conftest import NOW, RecordingSink, csrf_of

pytestmark = pytest.mark.usefixtures("cheap_hashes")


def front_door(db: Database, client: TestClient) -> TestClient:
    """The client signed in as Shropshire's front door."""
    return signed_in(client, db, "fd-a", Role.FRONT_DOOR, SHROPSHIRE)


def test_worklist_sorted_by_deadline_with_rag_time_left_and_flags(db: Database, app_client: TestClient) -> None:
    """Soonest deadline first (a RED one, a cumulative alert, a standard one); RAG, time left, flags, caveats."""
    red = referral(children=[child(given="Redchild")], rag=m.Rag.RED, decision_due=NOW + timedelta(hours=3))
    plain = referral(children=[child(given="Plainchild", education_status=m.EducationStatus.HOME_EDUCATED,
                                     school_urn=None, education_contact_needed=True)],
                     consent=m.ConsentStatus.UNKNOWN, lawful_basis=m.LawfulBasis.UNKNOWN,
                     decision_due=NOW + timedelta(hours=30))
    alert = cumulative()
    apply(db, plain, alert, red)
    html = front_door(db, app_client).get("/frontdoor").text
    assert html.index("Redchild") < html.index("Cumulative concern") < html.index("Plainchild")
    assert "3 h 0 min left" in html and ">RED<" in html and "Not rated" in html
    assert "Education contact needed" in html and "Confidential address (Victim)" in html
    assert "Not sought risk of harm" in html and "Children Act 2004 s11" in html
    assert html.count('class="warn"') >= 2  # consent and lawful basis not recorded stand out


def test_referral_shows_consent_lawful_basis_children_and_narrative(db: Database, app_client: TestClient) -> None:
    """The referral page carries everything the referral does, and links each child's chronology."""
    r = referral()
    apply(db, r)
    html = front_door(db, app_client).get(f"/frontdoor/referrals/{r.referral_id}").text
    assert "Not sought risk of harm" in html and "Children Act 2004 s11" in html and "Official sensitive" in html
    assert "Alexa Testchild" in html and "4 Mar 2016" in html and "neighbours called police" in html
    assert f"/frontdoor/referrals/{r.referral_id}/children/0" in html
    assert r.children[0].child_key not in html


def _decide(client: TestClient, path: str, **form: str) -> object:
    token = csrf_of(client.get(path).text)
    return client.post(f"{path}/decision", data={"csrf_token": token, **form})


def test_decision_with_rag_change_is_sent_before_it_is_confirmed(db: Database, app_client: TestClient,
                                                                 sink: RecordingSink) -> None:
    """The FrontDoorDecision reaches Kafka first; the page then shows it, with both reasons, and the item leaves."""
    r = referral()
    apply(db, r)
    client = front_door(db, app_client)
    path = f"/frontdoor/referrals/{r.referral_id}"
    page = _decide(client, path, response="CHILD_IN_NEED_ASSESSMENT", reason="Synthetic: repeat incidents",
                   rag="RED", rag_reason="Synthetic: escalation")
    assert page.status_code == 200 and "Decision recorded" in page.text  # type: ignore[attr-defined]
    [sent] = sink.sent
    assert isinstance(sent, m.FrontDoorDecision)
    assert (sent.referral_id, sent.authority, sent.response, sent.rag, sent.decided) == (
        r.referral_id, SHROPSHIRE, m.FrontDoorResponse.CHILD_IN_NEED_ASSESSMENT, m.Rag.RED, NOW)
    assert "Synthetic: escalation" in page.text and "(was Not rated)" in page.text  # type: ignore[attr-defined]
    with db.session() as s:
        row = s.get(Decision, str(r.referral_id))
    assert row is not None and (row.previous_rag, row.rag_reason, row.reason) == (
        "UNKNOWN", "Synthetic: escalation", "Synthetic: repeat incidents")
    assert str(r.referral_id) not in client.get("/frontdoor").text.split("Recent decisions")[0]


def test_incomplete_decisions_are_refused_and_send_nothing(db: Database, app_client: TestClient,
                                                           sink: RecordingSink) -> None:
    """No response, no reason, or a RAG change without its reason: 400, the form kept, nothing sent."""
    r = referral()
    apply(db, r)
    client = front_door(db, app_client)
    path = f"/frontdoor/referrals/{r.referral_id}"
    for form, message in (({"response": "", "reason": "x"}, "Choose the response"),
                          ({"response": "EARLY_HELP", "reason": " "}, "Give the reason for the decision"),
                          ({"response": "EARLY_HELP", "reason": "x", "rag": "GREEN"}, "changing the RAG"),
                          ({"response": "BOGUS", "reason": "x"}, "Choose the response")):
        page = _decide(client, path, **form)
        assert page.status_code == 400 and message in page.text  # type: ignore[attr-defined]
    assert sink.sent == []


def test_kafka_failure_is_not_confirmed(db: Database, app_client: TestClient, sink: RecordingSink) -> None:
    """When Kafka does not take the decision, the page says so and nothing is recorded."""
    r = referral()
    apply(db, r)
    client = front_door(db, app_client)
    sink.fail = True
    page = _decide(client, f"/frontdoor/referrals/{r.referral_id}", response="EARLY_HELP", reason="x")
    assert page.status_code == 503 and "could not be recorded" in page.text  # type: ignore[attr-defined]
    with db.session() as s:
        assert s.scalars(select(Decision)).all() == []


def test_second_decision_and_withdrawn_referral(db: Database, app_client: TestClient, sink: RecordingSink) -> None:
    """A second decision sends nothing ('already decided'); a withdrawn referral cannot be decided (409)."""
    r, gone = referral(), referral()
    apply(db, r, gone)
    client = front_door(db, app_client)
    token = csrf_of(client.get(f"/frontdoor/referrals/{gone.referral_id}").text)
    apply(db, recall(gone, m.Route.FRONT_DOOR, SHROPSHIRE))
    refused = client.post(f"/frontdoor/referrals/{gone.referral_id}/decision",
                          data={"csrf_token": token, "response": "EARLY_HELP", "reason": "x"})
    assert refused.status_code == 409 and "Alexa" not in refused.text
    path = f"/frontdoor/referrals/{r.referral_id}"
    _decide(client, path, response="EARLY_HELP", reason="x")
    again = client.post(f"{path}/decision", data={"csrf_token": token, "response": "NO_FURTHER_ACTION", "reason": "y"})
    assert "already decided" in again.text and len(sink.sent) == 1


def test_cumulative_alert_is_decided_with_a_decision_naming_it(db: Database, app_client: TestClient,
                                                               sink: RecordingSink) -> None:
    """An alert shows the child's chronology and is decided by a FrontDoorDecision naming the alert."""
    key = "dem:alert-child"
    alert = cumulative(key=key)
    apply(db, referral(SHROPSHIRE, child(key=key, given="Alertchild")), alert)
    client = front_door(db, app_client)
    html = client.get(f"/frontdoor/alerts/{alert.alert_id}").text
    assert "Chronology of child C-" in html and "Domestic abuse incident" in html and key not in html
    _decide(client, f"/frontdoor/alerts/{alert.alert_id}", response="EARLY_HELP", reason="Synthetic")
    [sent] = sink.sent
    assert isinstance(sent, m.FrontDoorDecision) and sent.referral_id == alert.alert_id


def test_chronology_shows_the_fourth_referral_before_an_assessment(db: Database, app_client: TestClient) -> None:
    """Four referrals about one child, three closed with no assessment: visible at a glance on the chronology."""
    key = "dem:fourth-referral"
    made = [referral(SHROPSHIRE, child(key=key, given="Fourth"), agency_type=a, occurred=NOW - timedelta(days=d))
            for a, d in ((m.AgencyType.HEALTH, 50), (m.AgencyType.POLICE, 20), (m.AgencyType.YOUTH_JUSTICE, 9),
                         (m.AgencyType.POLICE, 1))]
    decisions = [m.FrontDoorDecision(referral_id=r.referral_id, authority=SHROPSHIRE,
                                     response=m.FrontDoorResponse.NO_FURTHER_ACTION, decided=NOW) for r in made[:3]]
    apply(db, *made, *decisions)
    client = front_door(db, app_client)
    assert "4 referrals for this child" in client.get("/frontdoor").text
    html = client.get(f"/frontdoor/referrals/{made[3].referral_id}/children/0").text
    assert "4 referrals" in html and "none has led to an assessment" in html
    assert html.count("No further action") == 3 and "this referral" in html
    assert html.index("Health") < html.index("Youth justice") and key not in html


def test_every_view_is_audited_without_names(db: Database, app_client: TestClient) -> None:
    """List, referral, chronology and decision each leave audit rows: account, role, scope, subject; no name."""
    r = referral()
    apply(db, r)
    client = front_door(db, app_client)
    client.get(f"/frontdoor/referrals/{r.referral_id}/children/0")
    _decide(client, f"/frontdoor/referrals/{r.referral_id}", response="EARLY_HELP", reason="Synthetic")
    with db.session() as s:
        audits = s.scalars(select(ViewAudit).order_by(ViewAudit.id)).all()
    assert [(a.action, a.subject_kind) for a in audits] == [
        ("LIST", "frontdoor_referral"), ("VIEW", "child_chronology"), ("VIEW", "frontdoor_referral"),
        ("DECIDE", "frontdoor_referral"), ("VIEW", "frontdoor_referral")]
    assert all(a.scope == SHROPSHIRE and a.role == "FRONT_DOOR" and "Alexa" not in a.subject_id for a in audits)
    assert r.children[0].child_key not in {a.subject_id for a in audits}
