"""Demo accounts for the local authority's pages (never in production): frontdoor-, triage- and edt-<ONS code>
for the authorities with most referrals in the view (the seeds' authorities when the view is empty)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from argon2 import PasswordHasher
from sqlalchemy import func, select

from consumers.auth import create_account
from consumers.database import Database
from consumers.roles import Role
from consumers.tables import Account, Referral

__all__ = ["PREFIXES", "make_authority_accounts"]

SEEDS = ("E06000051", "E06000059", "E10000013")  # Shropshire, Dorset, Gloucestershire
PREFIXES = {Role.FRONT_DOOR: "frontdoor", Role.TRIAGE_CHAIR: "triage", Role.EMERGENCY_DUTY: "edt"}


def _busiest(db: Database, count: int) -> list[str]:
    with db.session() as s:
        rows = s.execute(select(Referral.authority, func.count()).where(Referral.withdrawn.is_(False))
                         .group_by(Referral.authority).order_by(func.count().desc(), Referral.authority)
                         .limit(count)).all()
    found = [a for a, _ in rows]
    return found + [a for a in SEEDS if a not in found][: max(0, count - len(found))]


def make_authority_accounts(db: Database, count: int) -> list[tuple[str, Role, str, str]]:
    """(account, role, authority, password) per role for each authority; an existing one gets a new password."""
    out = []
    now = datetime.now(UTC)
    for authority in _busiest(db, count):
        for role, prefix in PREFIXES.items():
            username, password = f"{prefix}-{authority}", secrets.token_urlsafe(12)
            with db.session() as s, s.begin():
                account = s.scalar(select(Account).where(Account.username == username))
                if account is None:
                    create_account(s, username, password, role, authority, None, now)
                else:
                    account.password_hash, account.active = PasswordHasher().hash(password), True
            out.append((username, role, authority, password))
    return out
