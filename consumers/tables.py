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
    Boolean,
    Date,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
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
    "EncompassAck",
    "EncompassNotice",
    "MorningAlert",
    "NoticeRead",
    "SignInAttempt",
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
