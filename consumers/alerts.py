"""The morning alert: on each of a school's school days, at a set local time (default 07:30 Europe/London),
one email to the school's DSLs saying how many new, unacknowledged notices wait. Never a child's details.

An outbox in the database makes it safe: one decision per school per school day (NOTHING or PENDING, unique
on school and date), every notice announced by at most one alert (unique on notice), and a PENDING alert is
sent on every tick until the SMTP server accepts it; only then is it SENT. A crash between the server's
acceptance and the SENT mark would send it again with the same Message-ID (the one window left).
"""

from __future__ import annotations

import smtplib
import time as clock
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from zoneinfo import ZoneInfo

from sqlalchemy import exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from broker.calendar import school_day
from broker.logs import get_logger
from broker.reference import load_schools
from consumers.database import Database
from consumers.roles import Role
from consumers.settings import WebSettings
from consumers.tables import Account, AlertNotice, EncompassAck, EncompassNotice, MorningAlert

__all__ = ["alert_date", "plan_alerts", "run_alerts", "send_pending", "tick"]

LONDON = ZoneInfo("Europe/London")
log = get_logger("consumers.alerts")
Mailer = Callable[[EmailMessage, WebSettings], None]


def alert_date(now: datetime, authority: str, web: WebSettings) -> date | None:
    """Today's local date when `now` is in the alert window of one of the authority's school days."""
    local = now.astimezone(LONDON)
    start = datetime.combine(local.date(), web.alert_time, tzinfo=LONDON)
    if not start <= local < start + timedelta(minutes=web.alert_window_minutes):
        return None
    return local.date() if school_day(local.date(), authority).is_school_day else None


def _schools_with_recipients(session: Session) -> list[str]:
    query = select(Account.scope).where(Account.role == Role.SCHOOL_DSL.value, Account.active.is_(True),
                                        Account.email.is_not(None)).distinct()
    return sorted(session.scalars(query))


def _authority(session: Session, urn: str, reference: dict[str, str]) -> str:
    found = session.scalar(select(EncompassNotice.authority).where(
        EncompassNotice.school_urn == urn, EncompassNotice.authority.is_not(None)).limit(1))
    return found or reference.get(urn, "")


def _unannounced(session: Session, urn: str) -> list[str]:
    query = select(EncompassNotice.notice_id).where(
        EncompassNotice.school_urn == urn,
        EncompassNotice.withdrawn.is_(False),
        ~exists().where(EncompassAck.notice_id == EncompassNotice.notice_id),
        ~exists().where(AlertNotice.notice_id == EncompassNotice.notice_id),
    )
    return sorted(session.scalars(query))


def _decide(session: Session, urn: str, day: date, now: datetime) -> None:
    if session.scalar(select(MorningAlert.id).where(MorningAlert.school_urn == urn, MorningAlert.alert_date == day)):
        return
    notices = _unannounced(session, urn)
    try:
        with session.begin_nested():
            alert = MorningAlert(school_urn=urn, alert_date=day, status="PENDING" if notices else "NOTHING",
                                 notice_count=len(notices), attempts=0, created_at=now)
            session.add(alert)
            session.flush()
            session.add_all(AlertNotice(notice_id=n, alert_id=alert.id) for n in notices)
    except IntegrityError:  # another scheduler decided first
        log.info("alert.already_decided", school=urn)


def plan_alerts(db: Database, now: datetime, web: WebSettings) -> None:
    """Decide today's alert for every school whose alert window is open and that has not been decided."""
    reference = {urn: s.authority for urn, s in load_schools().items()}
    with db.session() as s, s.begin():
        for urn in _schools_with_recipients(s):
            day = alert_date(now, _authority(s, urn, reference), web)
            if day is not None:
                _decide(s, urn, day, now)


def compose(alert: MorningAlert, recipients: list[str], web: WebSettings) -> EmailMessage:
    """The alert email: how many notices and the link; nothing about any child."""
    plural = "notice" if alert.notice_count == 1 else "notices"
    msg = EmailMessage()
    msg["From"] = web.mail_from
    msg["To"] = ", ".join(recipients)
    msg["Subject"] = f"Operation Encompass: {alert.notice_count} new {plural} for your school"
    domain = web.mail_from.rpartition("@")[2] or "mash.invalid"
    msg["Message-ID"] = f"<encompass-alert-{alert.id}-{alert.school_urn}-{alert.alert_date.isoformat()}@{domain}>"
    msg.set_content(
        f"Good morning,\n\nThere {'is' if alert.notice_count == 1 else 'are'} {alert.notice_count} new Operation "
        f"Encompass {plural} for school URN {alert.school_urn}, not yet acknowledged.\n"
        f"Please sign in to read and acknowledge {'it' if alert.notice_count == 1 else 'them'} before the "
        f"school day starts:\n\n{web.public_url.rstrip('/')}/school/notices\n\n"
        "For safety this email never contains a child's details.\n"
    )
    return msg


def smtp_send(msg: EmailMessage, web: WebSettings) -> None:
    """Send through the configured SMTP server (STARTTLS and login when configured)."""
    with smtplib.SMTP(web.smtp_host, web.smtp_port, timeout=web.smtp_timeout_seconds) as smtp:
        if web.smtp_starttls:
            smtp.starttls()
        if web.smtp_user and web.smtp_password:
            smtp.login(web.smtp_user, web.smtp_password.get_secret_value())
        smtp.send_message(msg)


def _recipients(session: Session, urn: str) -> list[str]:
    query = select(Account.email).where(Account.role == Role.SCHOOL_DSL.value, Account.scope == urn,
                                        Account.active.is_(True), Account.email.is_not(None))
    return sorted({e for e in session.scalars(query) if e})


def _error(exc: Exception) -> str:
    code = getattr(exc, "smtp_code", None)
    return f"{type(exc).__name__}{f' {code}' if code else ''}"


def _send_one(db: Database, alert_id: int, web: WebSettings, mailer: Mailer, now: datetime) -> bool:
    with db.session() as s, s.begin():
        alert = s.get(MorningAlert, alert_id)
        if alert is None or alert.status != "PENDING":
            return False
        msg = compose(alert, _recipients(s, alert.school_urn), web)
        try:
            mailer(msg, web)
        except (OSError, smtplib.SMTPException) as exc:
            alert.attempts += 1
            alert.last_error = _error(exc)
            log.warning("alert.retry", alert=alert.id, school=alert.school_urn, attempts=alert.attempts,
                        error=alert.last_error)
            return False
        alert.attempts += 1
        alert.status, alert.sent_at, alert.last_error = "SENT", now, None
        log.info("alert.sent", alert=alert.id, school=alert.school_urn, notices=alert.notice_count)
        return True


def send_pending(db: Database, now: datetime, web: WebSettings, mailer: Mailer = smtp_send) -> int:
    """Try every PENDING alert once; returns how many were sent."""
    with db.session() as s:
        ids = list(s.scalars(select(MorningAlert.id).where(MorningAlert.status == "PENDING").order_by(MorningAlert.id)))
    return sum(_send_one(db, alert_id, web, mailer, now) for alert_id in ids)


def tick(db: Database, web: WebSettings, now: datetime | None = None, mailer: Mailer = smtp_send) -> int:
    """One pass of the scheduler: decide what is due, then send whatever is pending."""
    at = now or datetime.now(UTC)
    plan_alerts(db, at, web)
    return send_pending(db, at, web, mailer)


def run_alerts(db: Database, web: WebSettings, *, once: bool = False) -> None:
    """The scheduler: a tick every `alert_poll_seconds` (forever, or once)."""
    while True:
        try:
            tick(db, web)
        except Exception as exc:  # a database hiccup must not end the scheduler
            log.error("alert.tick_failed", error=type(exc).__name__)
        if once:
            return
        clock.sleep(web.alert_poll_seconds)
