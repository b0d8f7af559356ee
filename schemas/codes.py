"""The one definition of each code pattern (full match only, ASCII digits only), with its rule text.

Every pattern is anchored with `\\A...\\Z` and used with `fullmatch`: `$` would also match before a trailing
newline, and `\\d` without re.ASCII would accept non-ASCII digits. The contract (schemas.models), the producer
CLI and the worker (broker.authority, broker.app) all use these.

Authority codes: the home authority of a child is the authority that runs children's services (the front door,
Operation Encompass, DV triage): a unitary authority (E06), metropolitan district (E08), London borough (E09),
county (E10) or Welsh principal area (W06). Other ONS code types (E07 non-metropolitan districts, E05 wards,
E12 regions ...) are refused: routing to them would reach no front door. A well-formed code of those types is
accepted even when this deployment has no configuration for it (the worker routes it with the defaults and
names it 'unconfigured'), because a published list would go stale and holding a notification back is worse.
"""

from __future__ import annotations

import re

__all__ = [
    "ONS_AUTHORITY",
    "ONS_AUTHORITY_RULE",
    "ONS_SHAPE",
    "REFERENCE",
    "REFERENCE_RULE",
    "URN",
    "URN_RULE",
    "is_authority_code",
    "is_reference",
    "is_urn",
]

#: Any ONS statistical code of England or Wales: E or W then 8 ASCII digits.
ONS_SHAPE = re.compile(r"\A[EW][0-9]{8}\Z")
#: A children's services authority: E06, E08, E09, E10 or W06, then 6 ASCII digits.
ONS_AUTHORITY = re.compile(r"\A(?:E0[689]|E10|W06)[0-9]{6}\Z")
ONS_AUTHORITY_RULE = "must be an ONS children's services authority code: E06, E08, E09, E10 or W06 then 6 digits"
#: A school or nursery URN (Get Information About Schools): 6 or 7 ASCII digits.
URN = re.compile(r"\A[0-9]{6,7}\Z")
URN_RULE = "must be a 6 or 7 digit school URN"
#: A sender's reference: letters, digits and / _ . : - only (no spaces, so no names), 1-64 characters.
REFERENCE = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9/_.:-]{0,63}\Z")
REFERENCE_RULE = "must be 1-64 characters of letters, digits and / _ . : - (no spaces)"


def is_authority_code(code: str) -> bool:
    """True for a well-formed children's services authority code (configured here or not)."""
    return ONS_AUTHORITY.fullmatch(code) is not None


def is_urn(code: str) -> bool:
    """True for a well-formed school URN."""
    return URN.fullmatch(code) is not None


def is_reference(code: str) -> bool:
    """True for a well-formed sender's reference."""
    return REFERENCE.fullmatch(code) is not None
