"""Accounts, sign-in (argon2id hashes, rate limited), server-side sessions that expire, CSRF tokens, audit."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from consumers.roles import Principal, Role, scope_problem
from consumers.settings import WebSettings
from consumers.tables import Account, SignInAttempt, ViewAudit, WebSession

__all__ = [
    "AccountError",
    "RateLimited",
    "audit",
    "create_account",
    "csrf_ok",
    "end_session",
    "resolve_session",
    "sign_in",
    "start_session",
]

_HASHER = PasswordHasher()
_DUMMY_HASH = _HASHER.hash("not-a-password-of-anyone")
MIN_PASSWORD = 12


class AccountError(ValueError):
    """An account could not be created (the message names the rule, never the password)."""


class RateLimited(Exception):
    """Too many failed sign-ins for this account name or client lately."""


def create_account(session: Session, username: str, password: str, role: Role, scope: str,
                   email: str | None, now: datetime) -> Account:
    """A new active account with an argon2id hash of the password."""
    problem = scope_problem(role, scope)
    if problem:
        raise AccountError(problem)
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"the password must have at least {MIN_PASSWORD} characters")
    if not username or len(username) > 64 or not username.isascii() or not username.replace("-", "").isalnum():
        raise AccountError("the account name must be 1-64 ASCII letters, digits or hyphens")
    if session.scalar(select(Account.id).where(Account.username == username)) is not None:
        raise AccountError("an account with this name already exists")
    account = Account(username=username, password_hash=_HASHER.hash(password), role=role.value, scope=scope,
                      email=email, active=True, created_at=now)
    session.add(account)
    session.flush()
    return account


def _failures(session: Session, column: InstrumentedAttribute[str], value: str, since: datetime) -> int:
    return session.scalar(
        select(func.count()).select_from(SignInAttempt).where(
            column == value, SignInAttempt.at >= since, SignInAttempt.succeeded.is_(False)
        )
    ) or 0


def _check_rate(session: Session, username: str, client: str, now: datetime, settings: WebSettings) -> None:
    since = now - timedelta(minutes=settings.signin_window_minutes)
    if _failures(session, SignInAttempt.username, username, since) >= settings.signin_max_failures:
        raise RateLimited
    if _failures(session, SignInAttempt.client, client, since) >= settings.signin_client_max_failures:
        raise RateLimited


def _verify(account: Account | None, password: str) -> bool:
    try:
        return _HASHER.verify(account.password_hash if account else _DUMMY_HASH, password) and account is not None
    except (VerificationError, InvalidHashError):
        return False


def sign_in(session: Session, username: str, password: str, client: str, now: datetime,
            settings: WebSettings) -> Account | None:
    """The active account if the password matches; RateLimited after too many recent failures."""
    username = username[:64]
    _check_rate(session, username, client[:64], now, settings)
    account = session.scalar(select(Account).where(Account.username == username, Account.active.is_(True)))
    ok = _verify(account, password)
    session.add(SignInAttempt(username=username, client=client[:64], at=now, succeeded=ok))
    if ok and account is not None and _HASHER.check_needs_rehash(account.password_hash):
        account.password_hash = _HASHER.hash(password)
    return account if ok else None


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(session: Session, account: Account, now: datetime, settings: WebSettings) -> str:
    """A new session for the account (a fresh token each sign-in); returns the cookie's value."""
    token = secrets.token_urlsafe(32)
    session.add(WebSession(token_hash=_digest(token), account_id=account.id, csrf_token=secrets.token_urlsafe(32),
                           created_at=now, last_seen_at=now,
                           expires_at=now + timedelta(hours=settings.session_max_hours)))
    return token


def resolve_session(session: Session, token: str | None, now: datetime, settings: WebSettings) -> Principal | None:
    """The signed-in principal, or None when the token is unknown, expired (idle or absolute) or disabled."""
    if not token:
        return None
    row = session.get(WebSession, _digest(token))
    if row is None:
        return None
    account = session.get(Account, row.account_id)
    idle = now - row.last_seen_at > timedelta(minutes=settings.session_idle_minutes)
    if idle or now >= row.expires_at or account is None or not account.active:
        session.delete(row)
        return None
    row.last_seen_at = now
    return Principal(account_id=account.id, username=account.username, role=Role(account.role), scope=account.scope,
                     session_id=row.token_hash, csrf_token=row.csrf_token)


def end_session(session: Session, principal: Principal) -> None:
    """Sign out: the session's row is deleted, so the cookie is worthless even if kept."""
    session.execute(delete(WebSession).where(WebSession.token_hash == principal.session_id))


def csrf_ok(expected: str, given: str | None) -> bool:
    """Constant-time comparison of a form's CSRF token with the session's."""
    return bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())


def audit(session: Session, principal: Principal, action: str, kind: str, ids: Iterable[str], now: datetime) -> None:
    """One audit row per subject seen or acted on: who, what, when (never a name)."""
    for subject in ids:
        session.add(ViewAudit(at=now, account_id=principal.account_id, role=principal.role.value,
                              scope=principal.scope, action=action, subject_kind=kind, subject_id=subject))
