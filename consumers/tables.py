"""The database tables (SQLAlchemy 2). Views rebuilt from topics, and the app's own state beside them.

Rebuildable from Kafka: `encompass_notices` (route.encompass) and `encompass_acks` (feedback.acknowledgements).
The app's own: accounts, sessions, sign-in attempts, reads, the view audit and the morning alerts.
Every instant is stored as UTC; no table holds a child's name or date of birth except the notice view, and
a recalled notice's details are erased from it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "Account",
    "AlertNotice",
    "Base",
    "CumulativeAlert",
    "Decision",
    "EmergencyAck",
    "EmergencyAlert",
    "EncompassAck",
    "EncompassNotice",
    "MaracFlag",
    "MorningAlert",
    "NoticeRead",
    "OpsDeadLetter",
    "OpsRedrive",
    "OpsSlaEvent",
    "Referral",
    "ReferralChildRow",
    "SignInAttempt",
    "TriageDiscussion",
    "TriageItem",
    "UtcDateTime",
    "ViewAudit",
    "ViewSkip",
    "WebSession",
]


class UtcDateTime(TypeDecorator[datetime]):
    """An aware UTC instant on every dialect (SQLite keeps naive UTC text, PostgreSQL timestamptz)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Refuse naive instants; store UTC."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("instants must carry an offset")
        utc = value.astimezone(UTC)
        return utc if dialect.name == "postgresql" else utc.replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        """Always hand back an aware UTC instant."""
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base of every table (one metadata, one Alembic history)."""


class EncompassNotice(Base):
    """A school's Encompass notice (view of route.encompass); a recall erases the child's details."""

    __tablename__ = "encompass_notices"
    notice_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    school_urn: Mapped[str] = mapped_column(String(7), index=True)
    authority: Mapped[str | None] = mapped_column(String(9))
    notification_id: Mapped[str | None] = mapped_column(String(36))
    given_name: Mapped[str | None] = mapped_column(String(100))
    family_name: Mapped[str | None] = mapped_column(String(100))
    date_of_birth: Mapped[date | None] = mapped_column(Date)
    incident_occurred: Mapped[datetime | None] = mapped_column(UtcDateTime)
    child_present: Mapped[bool | None] = mapped_column(Boolean)
    police_reference: Mapped[str | None] = mapped_column(String(64))
    welfare_check_made: Mapped[bool | None] = mapped_column(Boolean)
    safety_caveats: Mapped[str | None] = mapped_column(Text)
    due: Mapped[datetime | None] = mapped_column(UtcDateTime)
    calendar_verified: Mapped[bool | None] = mapped_column(Boolean)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
    withdrawn: Mapped[bool] = mapped_column(Boolean, default=False)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    withdrawn_reason: Mapped[str | None] = mapped_column(String(20))

    __table_args__ = (Index("ix_encompass_notices_school_received", "school_urn", "received_at"),)


class EncompassAck(Base):
    """A notice's acknowledgement (written by the app after Kafka took it; also rebuilt from the topic)."""

    __tablename__ = "encompass_acks"
    notice_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    school_urn: Mapped[str] = mapped_column(String(7), index=True)
    acknowledged_at: Mapped[datetime] = mapped_column(UtcDateTime)
    by_role: Mapped[str] = mapped_column(String(50))
    account_id: Mapped[int | None] = mapped_column(Integer)


class NoticeRead(Base):
    """The first time anyone at the school opened a notice (until then it is 'new')."""

    __tablename__ = "notice_reads"
    notice_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    school_urn: Mapped[str] = mapped_column(String(7))
    first_read_at: Mapped[datetime] = mapped_column(UtcDateTime)
    account_id: Mapped[int] = mapped_column(Integer)


class Account(Base):
    """A person's sign-in: a role and a scope; no personal name is kept (an optional work email for alerts)."""

    __tablename__ = "accounts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20))
    scope: Mapped[str] = mapped_column(String(16), index=True)
    email: Mapped[str | None] = mapped_column(String(254))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class WebSession(Base):
    """A server-side session: only the SHA-256 of the cookie's token is stored."""

    __tablename__ = "web_sessions"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)


class SignInAttempt(Base):
    """A sign-in attempt, for the rate limit."""

    __tablename__ = "signin_attempts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), index=True)
    client: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    succeeded: Mapped[bool] = mapped_column(Boolean)


class ViewAudit(Base):
    """Append-only: who (account, role, scope) saw or did what (subject kind and id) when. Never a name."""

    __tablename__ = "view_audit"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    account_id: Mapped[int] = mapped_column(Integer, index=True)
    role: Mapped[str] = mapped_column(String(20))
    scope: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(20))
    subject_kind: Mapped[str] = mapped_column(String(40))
    subject_id: Mapped[str] = mapped_column(String(64), index=True)


class MorningAlert(Base):
    """One decision per school per school day: NOTHING to announce, PENDING (to send) or SENT."""

    __tablename__ = "morning_alerts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    school_urn: Mapped[str] = mapped_column(String(7))
    alert_date: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(10), index=True)
    notice_count: Mapped[int] = mapped_column(Integer)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    __table_args__ = (UniqueConstraint("school_urn", "alert_date", name="uq_morning_alerts_school_date"),)


class AlertNotice(Base):
    """Which alert announced a notice (the primary key makes every notice announced once)."""

    __tablename__ = "alert_notices"
    notice_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("morning_alerts.id", ondelete="CASCADE"), index=True)


class ViewSkip(Base):
    """A record the view consumer could not use (coordinates and reason only), for operations."""

    __tablename__ = "view_skips"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    topic: Mapped[str] = mapped_column(String(249))
    partition: Mapped[int] = mapped_column(Integer)
    offset: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (UniqueConstraint("topic", "partition", "offset", name="uq_view_skips_coordinates"),)


# --- Issue 11: the local authority's pages (front door, DV triage, emergency duty). Rebuildable from Kafka:
# referrals and their children (route.frontdoor), cumulative-concern alerts, triage items, MARAC referrals,
# emergency duty alerts (their route topics) and decisions / discussions read back from
# feedback.acknowledgements (rows with no account). The app's own: the reasons typed with a decision
# (not on Kafka yet) and emergency duty acknowledgements (no Kafka record for them yet).


class Referral(Base):
    """A front door referral (view of route.frontdoor); a recall or an amendment erases its details."""

    __tablename__ = "frontdoor_referrals"
    referral_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    authority: Mapped[str] = mapped_column(String(9), index=True)
    notification_id: Mapped[str | None] = mapped_column(String(36), index=True)
    supersedes_referral: Mapped[str | None] = mapped_column(String(36))
    agency_type: Mapped[str | None] = mapped_column(String(20))
    organisation_code: Mapped[str | None] = mapped_column(String(64))
    source_reference: Mapped[str | None] = mapped_column(String(64))
    kind: Mapped[str | None] = mapped_column(String(64))
    occurred: Mapped[datetime | None] = mapped_column(UtcDateTime)
    received: Mapped[datetime | None] = mapped_column(UtcDateTime)
    decision_due: Mapped[datetime | None] = mapped_column(UtcDateTime, index=True)
    adult_risk_only: Mapped[bool | None] = mapped_column(Boolean)
    risk_level: Mapped[str | None] = mapped_column(String(20))
    priority: Mapped[str | None] = mapped_column(String(20))
    security_marking: Mapped[str | None] = mapped_column(String(30))
    lawful_basis: Mapped[str | None] = mapped_column(String(40))
    consent: Mapped[str | None] = mapped_column(String(50))
    safety_caveats: Mapped[str | None] = mapped_column(Text)
    summary: Mapped[str | None] = mapped_column(Text)
    rag: Mapped[str | None] = mapped_column(String(10))
    rag_reason: Mapped[str | None] = mapped_column(String(500))
    first_seen_at: Mapped[datetime] = mapped_column(UtcDateTime)
    withdrawn: Mapped[bool] = mapped_column(Boolean, default=False)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    withdrawn_reason: Mapped[str | None] = mapped_column(String(20))
    superseded_by: Mapped[str | None] = mapped_column(String(36))


class ReferralChildRow(Base):
    """A child listed on a referral (deleted when the referral is recalled or replaced)."""

    __tablename__ = "frontdoor_referral_children"
    referral_id: Mapped[str] = mapped_column(ForeignKey("frontdoor_referrals.referral_id", ondelete="CASCADE"),
                                             primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    authority: Mapped[str] = mapped_column(String(9))
    child_key: Mapped[str] = mapped_column(String(128))
    given_name: Mapped[str | None] = mapped_column(String(100))
    family_name: Mapped[str | None] = mapped_column(String(100))
    date_of_birth: Mapped[date | None] = mapped_column(Date)
    unborn: Mapped[bool] = mapped_column(Boolean, default=False)
    education_status: Mapped[str] = mapped_column(String(20))
    school_urn: Mapped[str | None] = mapped_column(String(7))
    education_contact_needed: Mapped[bool] = mapped_column(Boolean, default=False)
    present: Mapped[bool | None] = mapped_column(Boolean)

    __table_args__ = (Index("ix_frontdoor_children_authority_key", "authority", "child_key"),)


class CumulativeAlert(Base):
    """A cumulative-concern alert (view of route.cumulative-concern)."""

    __tablename__ = "cumulative_alerts"
    alert_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    authority: Mapped[str] = mapped_column(String(9), index=True)
    child_key: Mapped[str | None] = mapped_column(String(128))
    trigger: Mapped[str | None] = mapped_column(String(20))
    notification_ids: Mapped[str | None] = mapped_column(Text)
    agency_types: Mapped[str | None] = mapped_column(Text)
    window_start: Mapped[datetime | None] = mapped_column(UtcDateTime)
    window_end: Mapped[datetime | None] = mapped_column(UtcDateTime)
    raised: Mapped[datetime | None] = mapped_column(UtcDateTime)
    decision_due: Mapped[datetime | None] = mapped_column(UtcDateTime)
    first_seen_at: Mapped[datetime] = mapped_column(UtcDateTime)
    withdrawn: Mapped[bool] = mapped_column(Boolean, default=False)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    withdrawn_reason: Mapped[str | None] = mapped_column(String(20))


class Decision(Base):
    """A front door decision on a referral or a cumulative-concern alert (first one kept). The reasons are the
    app's own (FrontDoorDecision has no field for them yet); a row read back from Kafka has no account."""

    __tablename__ = "frontdoor_decisions"
    subject_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    authority: Mapped[str] = mapped_column(String(9), index=True)
    response: Mapped[str] = mapped_column(String(40))
    rag: Mapped[str] = mapped_column(String(10))
    decided_at: Mapped[datetime] = mapped_column(UtcDateTime)
    reason: Mapped[str | None] = mapped_column(Text)
    previous_rag: Mapped[str | None] = mapped_column(String(10))
    rag_reason: Mapped[str | None] = mapped_column(Text)
    account_id: Mapped[int | None] = mapped_column(Integer)


class TriageItem(Base):
    """A DV triage item (view of route.dvtriage); holds keys, never names."""

    __tablename__ = "dv_triage_items"
    item_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    authority: Mapped[str] = mapped_column(String(9))
    notification_id: Mapped[str | None] = mapped_column(String(36))
    agency_type: Mapped[str | None] = mapped_column(String(20))
    source_reference: Mapped[str | None] = mapped_column(String(64))
    victim_key: Mapped[str | None] = mapped_column(String(128))
    perpetrator_key: Mapped[str | None] = mapped_column(String(128))
    child_keys: Mapped[str | None] = mapped_column(Text)
    risk_level: Mapped[str | None] = mapped_column(String(20))
    ticks: Mapped[int | None] = mapped_column(Integer)
    meeting_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    marac: Mapped[bool] = mapped_column(Boolean, default=False)
    marac_criteria: Mapped[str | None] = mapped_column(Text)
    occurred: Mapped[datetime | None] = mapped_column(UtcDateTime)
    first_seen_at: Mapped[datetime] = mapped_column(UtcDateTime)
    withdrawn: Mapped[bool] = mapped_column(Boolean, default=False)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    withdrawn_reason: Mapped[str | None] = mapped_column(String(20))

    __table_args__ = (Index("ix_dv_triage_items_authority_meeting", "authority", "meeting_at"),)


class MaracFlag(Base):
    """A MARAC referral (view of route.marac): flags the triage item it names, whenever it arrives."""

    __tablename__ = "marac_referrals"
    referral_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    authority: Mapped[str] = mapped_column(String(9))
    triage_item_id: Mapped[str | None] = mapped_column(String(36), index=True)
    notification_id: Mapped[str | None] = mapped_column(String(36))
    criteria: Mapped[str | None] = mapped_column(Text)
    occurred: Mapped[datetime | None] = mapped_column(UtcDateTime)
    first_seen_at: Mapped[datetime] = mapped_column(UtcDateTime)
    withdrawn: Mapped[bool] = mapped_column(Boolean, default=False)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class TriageDiscussion(Base):
    """The meeting discussed an item (first one kept); a row read back from Kafka has no account."""

    __tablename__ = "dv_triage_discussions"
    item_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    authority: Mapped[str] = mapped_column(String(9), index=True)
    marac_referred: Mapped[bool] = mapped_column(Boolean)
    discussed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    account_id: Mapped[int | None] = mapped_column(Integer)


class EmergencyAlert(Base):
    """An out-of-hours alert for the emergency duty team (view of route.emergency-duty)."""

    __tablename__ = "emergency_duty_alerts"
    alert_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    authority: Mapped[str] = mapped_column(String(9))
    notification_id: Mapped[str | None] = mapped_column(String(36))
    agency_type: Mapped[str | None] = mapped_column(String(20))
    source_reference: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(String(64))
    child_keys: Mapped[str | None] = mapped_column(Text)
    received: Mapped[datetime | None] = mapped_column(UtcDateTime)
    safety_caveats: Mapped[str | None] = mapped_column(Text)
    first_seen_at: Mapped[datetime] = mapped_column(UtcDateTime)
    withdrawn: Mapped[bool] = mapped_column(Boolean, default=False)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    withdrawn_reason: Mapped[str | None] = mapped_column(String(20))

    __table_args__ = (Index("ix_emergency_duty_alerts_authority_received", "authority", "received"),)


class EmergencyAck(Base):
    """The emergency duty team acknowledged an alert (sent to Kafka as an ItemAcknowledgement first)."""

    __tablename__ = "emergency_duty_acks"
    alert_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    authority: Mapped[str] = mapped_column(String(9), index=True)
    acknowledged_at: Mapped[datetime] = mapped_column(UtcDateTime)
    by_role: Mapped[str] = mapped_column(String(50))
    account_id: Mapped[int] = mapped_column(Integer)


# --- Issue 9: the operations dashboard. Rebuildable from Kafka: `ops_sla_events` (sla.events) and
# `ops_dead_letters` (deadletter). The app's own: `ops_redrives` (who redrove which dead letter, once).


class OpsSlaEvent(Base):
    """One SLA event (view of sla.events), keyed by its derived id, so a re-read adds nothing."""

    __tablename__ = "ops_sla_events"
    sla_event_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    output_id: Mapped[str] = mapped_column(String(36), index=True)
    route: Mapped[str] = mapped_column(String(30))
    recipient: Mapped[str] = mapped_column(String(128))
    state: Mapped[str] = mapped_column(String(20))
    due: Mapped[datetime] = mapped_column(UtcDateTime)
    at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    calendar_verified: Mapped[bool] = mapped_column(Boolean, default=True)


class OpsDeadLetter(Base):
    """A dead letter (view of deadletter): where it came from and why; the raw bytes only when whole."""

    __tablename__ = "ops_dead_letters"
    dead_letter_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    source_topic: Mapped[str] = mapped_column(String(249))
    source_partition: Mapped[int] = mapped_column(Integer)
    source_offset: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(String(500), index=True)
    stage: Mapped[str] = mapped_column(String(100))
    notification_id: Mapped[str | None] = mapped_column(String(36))
    raw_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    raw_value: Mapped[bytes | None] = mapped_column(LargeBinary)
    raw_size: Mapped[int | None] = mapped_column(Integer)
    raw_truncated: Mapped[bool] = mapped_column(Boolean, default=False)
    at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


class OpsRedrive(Base):
    """DATABASE ONLY: a dead letter's redrive (claimed PENDING before the send, DONE after; at most one)."""

    __tablename__ = "ops_redrives"
    dead_letter_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    status: Mapped[str] = mapped_column(String(10))
    account_id: Mapped[int] = mapped_column(Integer)
    requested_at: Mapped[datetime] = mapped_column(UtcDateTime)
    done_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    target_topic: Mapped[str] = mapped_column(String(249))
    target_partition: Mapped[int | None] = mapped_column(Integer)
    target_offset: Mapped[int | None] = mapped_column(BigInteger)
