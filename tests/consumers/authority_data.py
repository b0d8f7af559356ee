"""Synthetic records for the local authority's views (referrals, alerts, triage items, MARAC referrals, emergency
duty alerts, recalls), and applying them as the view consumer does. All names and references are made up."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import inspect, select

from broker.reader import Consumed
from consumers import auth
from consumers.auth import create_account
from consumers.database import Database
from consumers.roles import Role
from consumers.tables import (
    CumulativeAlert,
    Decision,
    EmergencyAck,
    EmergencyAlert,
    MaracFlag,
    Referral,
    ReferralChildRow,
    TriageDiscussion,
    TriageItem,
)
from consumers.view_consumer import apply_batch
from schemas import models as m
from tests.consumers.conftest import NOW, PASSWORD, sign_in

SHROPSHIRE, DORSET = "E06000051", "E06000059"
#: Tuesday 24 Nov 2026, 09:30 London (GMT): the meeting after the Monday evening of NOW.
MEETING = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
TABLES = (Referral, ReferralChildRow, CumulativeAlert, Decision, TriageItem, MaracFlag, TriageDiscussion,
          EmergencyAlert, EmergencyAck)


@pytest.fixture
def cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2id at minimal cost for the accounts a test makes and signs in with (the code path is unchanged;
    the school feed's sign-in tests keep the production parameters)."""
    monkeypatch.setattr(auth, "_HASHER", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))


def child(given: str = "Alexa", family: str = "Testchild", key: str | None = None, **over: Any) -> m.ReferralChild:
    """A child on a referral (a fresh synthetic key unless given)."""
    values: dict[str, Any] = dict(child_key=key or "dem:" + uuid.uuid4().hex, given_name=given, family_name=family,
                                  date_of_birth=date(2016, 3, 4), education_status=m.EducationStatus.SCHOOL,
                                  school_urn="900028", present=True)
    values.update(over)
    return m.ReferralChild.model_validate(values)


def referral(authority: str = SHROPSHIRE, *children: m.ReferralChild, **over: Any) -> m.FrontDoorReferral:
    """A police domestic abuse referral received at NOW, due one working day later."""
    values: dict[str, Any] = dict(
        referral_id=uuid.uuid4(), notification_id=uuid.uuid4(), authority=authority,
        agency_type=m.AgencyType.POLICE, organisation_code="WMP", source_reference="WMP-" + uuid.uuid4().hex[:6],
        kind="PoliceDomesticAbuseIncident", occurred=NOW - timedelta(hours=4), received=NOW,
        decision_due=NOW + timedelta(days=1), children=list(children) or [child()], risk_level=m.RiskLevel.MEDIUM,
        priority=m.Priority.ROUTINE, security_marking=m.SecurityMarking.OFFICIAL_SENSITIVE,
        lawful_basis=m.LawfulBasis.CHILDREN_ACT_2004_S11, consent=m.ConsentStatus.NOT_SOUGHT_RISK_OF_HARM,
        safety_caveats=[m.SafetyCaveat(type=m.CaveatType.CONFIDENTIAL_ADDRESS, applies_to_role=m.AdultRole.VICTIM)],
        summary="Synthetic narrative: neighbours called police.", rag=m.Rag.UNKNOWN, rag_reason="standard",
    )
    values.update(over)
    return m.FrontDoorReferral.model_validate(values)


def cumulative(authority: str = SHROPSHIRE, key: str | None = None, **over: Any) -> m.CumulativeConcernAlert:
    """A threshold cumulative-concern alert raised at NOW."""
    values: dict[str, Any] = dict(
        alert_id=uuid.uuid4(), child_key=key or "dem:" + uuid.uuid4().hex, authority=authority,
        trigger=m.CumulativeTrigger.THRESHOLD, notification_ids=[uuid.uuid4() for _ in range(3)],
        agency_types=[m.AgencyType.POLICE, m.AgencyType.HEALTH], window_start=NOW - timedelta(days=90),
        window_end=NOW - timedelta(hours=1), raised=NOW)
    values.update(over)
    return m.CumulativeConcernAlert.model_validate(values)


def triage_item(authority: str = SHROPSHIRE, **over: Any) -> m.DvTriageItem:
    """A DV triage item for the MEETING (not MARAC-flagged unless said)."""
    values: dict[str, Any] = dict(
        item_id=uuid.uuid4(), notification_id=uuid.uuid4(), authority=authority, agency_type=m.AgencyType.POLICE,
        source_reference="WMP-" + uuid.uuid4().hex[:6], victim_key="dem:" + uuid.uuid4().hex,
        perpetrator_key="dem:" + uuid.uuid4().hex, child_keys=["dem:" + uuid.uuid4().hex],
        risk_level=m.RiskLevel.MEDIUM, ticks=6, meeting_at=MEETING, marac=False, marac_criteria=[],
        occurred=NOW - timedelta(hours=5))
    values.update(over)
    return m.DvTriageItem.model_validate(values)


def marac(item: m.DvTriageItem, *criteria: m.MaracCriterion, **over: Any) -> m.MaracReferral:
    """A MARAC referral naming a triage item."""
    values: dict[str, Any] = dict(
        referral_id=uuid.uuid4(), notification_id=uuid.uuid4(), triage_item_id=item.item_id,
        authority=item.authority, victim_key=item.victim_key,
        criteria=list(criteria) or [m.MaracCriterion.ESCALATION_3_INCIDENTS_12_MONTHS], occurred=NOW)
    values.update(over)
    return m.MaracReferral.model_validate(values)


def edt_alert(authority: str = SHROPSHIRE, **over: Any) -> m.EmergencyDutyAlert:
    """An out-of-hours alert received at NOW."""
    values: dict[str, Any] = dict(
        alert_id=uuid.uuid4(), notification_id=uuid.uuid4(), authority=authority, agency_type=m.AgencyType.POLICE,
        source_reference="WMP-" + uuid.uuid4().hex[:6], reason="HIGH_RISK_WITH_CHILDREN",
        child_keys=["dem:" + uuid.uuid4().hex], received=NOW,
        safety_caveats=[m.SafetyCaveat(type=m.CaveatType.DO_NOT_CONTACT_NAMED_PARENT,
                                       applies_to_role=m.AdultRole.SUSPECT)])
    values.update(over)
    return m.EmergencyDutyAlert.model_validate(values)


def recall(of: m.Record, route: m.Route, recipient: str, issued: datetime = NOW,
           reason: m.RecallReason = m.RecallReason.WITHDRAWN) -> m.Recall:
    """The recall of an output."""
    oid = next(getattr(of, f) for f in ("referral_id", "alert_id", "item_id") if hasattr(of, f))
    return m.Recall(recall_id=uuid.uuid4(), recalled_output_id=oid, route=route, recipient=recipient,
                    notification_id=uuid.uuid4(), reason=reason, issued=issued)


def apply(db: Database, *records: m.Record, at: datetime = NOW) -> None:
    """Apply records through the view consumer's batch path (one transaction), each read at `at`."""
    ms = int(at.timestamp() * 1000)
    batch = [(Consumed("t.route.x", 0, n, None, b"", ms), r) for n, r in enumerate(records)]
    apply_batch(db, batch)


def snapshot(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every authority table, comparable."""
    out = {}
    with db.session() as s:
        for table in TABLES:
            cols = [c.key for c in inspect(table).columns]
            rows = [tuple(getattr(r, c) for c in cols) for r in s.scalars(select(table))]
            out[table.__tablename__] = sorted(rows, key=repr)
    return out


def add_user(db: Database, username: str, role: Role, scope: str) -> None:
    """An account with the test password."""
    with db.session() as s, s.begin():
        create_account(s, username, PASSWORD, role, scope, None, NOW)


def signed_in(client: TestClient, db: Database, username: str, role: Role, scope: str) -> TestClient:
    """The client, signed in with a new account of this role and scope."""
    add_user(db, username, role, scope)
    sign_in(client, username)
    return client


def ids(items: Iterator[Any]) -> list[str]:
    """String ids."""
    return [str(i) for i in items]
