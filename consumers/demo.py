"""Demo school accounts for the main job (never in production): dsl-<URN> for the schools with most notices."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from argon2 import PasswordHasher
from sqlalchemy import func, select

from broker.reference import load_schools
from consumers.auth import create_account
from consumers.database import Database
from consumers.roles import Role
from consumers.tables import Account, EncompassNotice

__all__ = ["make_demo_accounts"]


def _busiest(db: Database, count: int) -> list[tuple[str, int]]:
    with db.session() as s:
        rows = s.execute(select(EncompassNotice.school_urn, func.count()).group_by(EncompassNotice.school_urn)
                         .order_by(func.count().desc(), EncompassNotice.school_urn).limit(count)).all()
    found = [(urn, int(n)) for urn, n in rows]
    spare = [urn for urn in load_schools() if urn not in {u for u, _ in found}]
    return found + [(urn, 0) for urn in spare[: count - len(found)]]


def make_demo_accounts(db: Database, count: int) -> list[tuple[str, str, int, str]]:
    """(account, URN, notices, password) for each demo account; an existing one gets a new password."""
    out = []
    now = datetime.now(UTC)
    for urn, notices in _busiest(db, count):
        username, password = f"dsl-{urn}", secrets.token_urlsafe(12)
        with db.session() as s, s.begin():
            account = s.scalar(select(Account).where(Account.username == username))
            if account is None:
                create_account(s, username, password, Role.SCHOOL_DSL, urn, f"dsl-{urn}@school.invalid", now)
            else:
                account.password_hash, account.active = PasswordHasher().hash(password), True
        out.append((username, urn, notices, password))
    return out
