"""Who may use which pages: a role and a scope (a school URN, an authority's ONS code, or none).

The school feed uses SCHOOL_DSL; the front door, triage chair and emergency duty pages (one authority each)
and the operations pages plug into the same accounts, sessions and app with the other roles.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from schemas.codes import is_authority_code, is_urn

__all__ = ["Principal", "Role", "scope_problem"]


class Role(str, Enum):
    """A kind of account."""

    SCHOOL_DSL = "SCHOOL_DSL"
    FRONT_DOOR = "FRONT_DOOR"
    TRIAGE_CHAIR = "TRIAGE_CHAIR"
    EMERGENCY_DUTY = "EMERGENCY_DUTY"
    OPERATIONS = "OPERATIONS"

    @property
    def scope_kind(self) -> str:
        """What the scope of this role names: 'school', 'authority' or 'none'."""
        if self is Role.SCHOOL_DSL:
            return "school"
        if self is Role.OPERATIONS:
            return "none"
        return "authority"

    @property
    def home(self) -> str:
        """The page a signed-in account of this role lands on."""
        return _HOMES[self]


_HOMES = {
    Role.SCHOOL_DSL: "/school/notices",
    Role.FRONT_DOOR: "/frontdoor",
    Role.TRIAGE_CHAIR: "/triage",
    Role.EMERGENCY_DUTY: "/emergency-duty",
    Role.OPERATIONS: "/operations",
}


def scope_problem(role: Role, scope: str) -> str | None:
    """Why a scope does not fit a role, or None when it does."""
    kind = role.scope_kind
    if kind == "school" and not is_urn(scope):
        return "a school account's scope must be the school's URN (6 or 7 digits)"
    if kind == "authority" and not is_authority_code(scope):
        return "an authority account's scope must be the authority's ONS code"
    if kind == "none" and scope:
        return "an operations account has no scope"
    return None


@dataclass(frozen=True)
class Principal:
    """The signed-in account, as the pages see it (never a person's name)."""

    account_id: int
    username: str
    role: Role
    scope: str
    session_id: str
    csrf_token: str
