"""The emergency duty page: out-of-hours alerts newest first with caveats and children, acknowledgement recorded
in the database only (and said so), withdrawn alerts shown as such."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from consumers.database import Database
from consumers.roles import Role
from consumers.tables import EmergencyAck, ViewAudit
from schemas import models as m
from tests.consumers.authority_data import (
    SHROPSHIRE,
    apply,
    cheap_hashes,  # noqa: F401  (fixture)
    child,
    edt_alert,
    recall,
    referral,
    signed_in,
)
from tests.consumers.conftest import NOW, RecordingSink, csrf_of

pytestmark = pytest.mark.usefixtures("cheap_hashes")


def duty(db: Database, client: TestClient) -> TestClient:
    """The client signed in as Shropshire's emergency duty team."""
    return signed_in(client, db, "edt-a", Role.EMERGENCY_DUTY, SHROPSHIRE)


def test_alerts_newest_first_with_children_and_caveats(db: Database, app_client: TestClient) -> None:
    """The newest alert leads; the children come from the referral of the same notification; caveats shown."""
    older = edt_alert(source_reference="WMP-OLDER", received=NOW - timedelta(hours=2))
    newer = edt_alert(source_reference="WMP-NEWER")
    apply(db, older, newer, referral(SHROPSHIRE, child(given="Nightchild"), notification_id=newer.notification_id))
    html = duty(db, app_client).get("/emergency-duty").text
    assert html.index("WMP-NEWER") < html.index("WMP-OLDER")
    assert "Nightchild" in html and "Do not contact named parent (Suspect)" in html
    assert "2 not yet acknowledged" in html


def test_acknowledge_goes_to_kafka_then_the_database(db: Database, app_client: TestClient,
                                                     sink: RecordingSink) -> None:
    """Acknowledging sends one ItemAcknowledgement for the alert, records it here (first one stands), audited."""
    alert = edt_alert()
    apply(db, alert)
    client = duty(db, app_client)
    token = csrf_of(client.get("/emergency-duty").text)
    page = client.post(f"/emergency-duty/alerts/{alert.alert_id}/acknowledge", data={"csrf_token": token})
    assert "Acknowledged: the broker has it" in page.text
    [sent] = sink.sent
    assert isinstance(sent, m.ItemAcknowledgement) and sent.output_id == alert.alert_id
    assert (sent.route, sent.recipient) == (m.Route.EMERGENCY_DUTY, SHROPSHIRE)
    again = client.post(f"/emergency-duty/alerts/{alert.alert_id}/acknowledge", data={"csrf_token": token})
    assert "already acknowledged" in again.text
    with db.session() as s:
        [ack] = s.scalars(select(EmergencyAck)).all()
        actions = [a.action for a in s.scalars(select(ViewAudit).where(ViewAudit.subject_id == str(alert.alert_id)))]
    assert (ack.authority, ack.acknowledged_at, ack.by_role) == (SHROPSHIRE, NOW, "EMERGENCY_DUTY")
    assert actions.count("ACKNOWLEDGE") == 1


def test_withdrawn_alert_cannot_be_acknowledged(db: Database, app_client: TestClient) -> None:
    """A recalled alert shows withdrawn, without its children, and refuses acknowledgement."""
    alert = edt_alert()
    apply(db, alert, referral(SHROPSHIRE, child(given="Hiddenchild"), notification_id=alert.notification_id),
          recall(alert, m.Route.EMERGENCY_DUTY, SHROPSHIRE))
    client = duty(db, app_client)
    html = client.get("/emergency-duty").text
    assert "Withdrawn alert" in html and "Hiddenchild" not in html
    token = csrf_of(html)
    page = client.post(f"/emergency-duty/alerts/{alert.alert_id}/acknowledge", data={"csrf_token": token})
    assert "has been withdrawn" in page.text
    with db.session() as s:
        assert s.scalars(select(EmergencyAck)).all() == []
