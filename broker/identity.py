"""Identity keys for children and adults: NHS number when valid, else a keyed hash of demographics.

Pure: no I/O, no clock reads.  A key is never raw personal data:

* `nhs:<hex HMAC-SHA256(secret, "nhs|<10 digits>")>` when the NHS number is present and passes the mod-11
  check digit (the DESIGN's chosen primary key; hashed because every key becomes a Kafka key of a changelog
  topic, and raw personal data is never a Kafka key);
* `dem:<hex HMAC-SHA256(secret, "given|family|YYYY-MM-DD|POSTCODE")>` from the normalised demographics;
* `unb:<hex HMAC-SHA256(secret, "mother_key|YYYY-MM-DD")>` for an unborn child (mother's key + due date).

When a person carries both a valid NHS number and full demographics, `PersonKeys.aliases` holds the
demographic key, so the chronology can join notifications that only had one of the two.

Error messages and notes name field paths and rules only, never values.
"""

from __future__ import annotations

import hashlib
import hmac
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from broker.errors import BrokerError
from schemas.models import (
    AdultRole,
    AdultSubject,
    ChildSubject,
    HealthSafeguardingNotification,
    PoliceChildConcern,
    PoliceDomesticAbuseIncident,
    ProbationRiskNotification,
    YouthJusticeNotification,
)

__all__ = [
    "AgencyNotification",
    "IdentityError",
    "PersonKeys",
    "Subjects",
    "adults_of",
    "children_of",
    "nhs_key",
    "nhs_number_valid",
    "normalise_name",
    "normalise_postcode",
    "person_key",
    "subjects",
    "unborn_key",
]

AgencyNotification = (
    PoliceDomesticAbuseIncident
    | PoliceChildConcern
    | HealthSafeguardingNotification
    | ProbationRiskNotification
    | YouthJusticeNotification
)

_NHS_WEIGHTS = (10, 9, 8, 7, 6, 5, 4, 3, 2)
_DEMOGRAPHIC_FIELDS = ("given_name", "family_name", "date_of_birth", "postcode")
_NHS_RULE = "fails the NHS number mod-11 check digit rule"


class IdentityError(BrokerError):
    """No identity key can be made for a person; the message names the field path and the rule."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class PersonKeys:
    """A person's primary key, the other keys that mean the same person, and notes (field paths + rules)."""

    primary: str
    aliases: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def all(self) -> tuple[str, ...]:
        """The primary key followed by the aliases."""
        return (self.primary, *self.aliases)


@dataclass(frozen=True)
class Subjects:
    """The identity keys of everyone a notification is about.

    `children` is in body order (for a youth justice notification: its one child).  `adults` pairs each
    adult's role with its keys, in the order of `adults_of(notification)`; an adult with neither a valid
    NHS number nor full demographics (e.g. an unnamed suspect) has keys None and a note.
    """

    children: tuple[PersonKeys, ...]
    adults: tuple[tuple[AdultRole, PersonKeys | None], ...]
    notes: tuple[str, ...] = ()

    def adult(self, role: AdultRole) -> PersonKeys | None:
        """The keys of the first adult with `role`, or None."""
        for adult_role, keys in self.adults:
            if adult_role is role and keys is not None:
                return keys
        return None


# ------------------------------------------------------------------------------------ normalisation
def nhs_number_valid(s: str | None) -> bool:
    """True for 10 digits (spaces allowed) whose 10th is the mod-11 check digit of the first 9.

    Check digit: 11 - (sum of digit x weight, weights 10..2, mod 11); 11 becomes 0; 10 is invalid.
    """
    if s is None:
        return False
    compact = s.replace(" ", "")
    if len(compact) != 10 or not compact.isascii() or not compact.isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(compact[:9], _NHS_WEIGHTS, strict=True))
    check = 11 - total % 11
    if check == 11:
        check = 0
    if check == 10:
        return False
    return check == int(compact[9])


def normalise_name(s: str | None) -> str:
    """Unicode NFKD, combining marks dropped, casefolded, letters only ("O'Brien-Smith" -> "obriensmith")."""
    if not s:
        return ""
    if s.isascii():  # the same result, without the Unicode passes: no marks to drop, casefold is lower
        return "".join(filter(str.isalpha, s.lower()))
    decomposed = unicodedata.normalize("NFKD", s)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    folded = unicodedata.normalize("NFKD", stripped.casefold())
    return "".join(c for c in folded if c.isalpha() and not unicodedata.combining(c))


def normalise_postcode(s: str | None) -> str:
    """Upper-case with all whitespace removed ("sy1 1aa" -> "SY11AA")."""
    if not s:
        return ""
    return "".join(s.split()).upper()


def _hmac_hex(secret: bytes, message: str) -> str:
    if not secret:
        raise IdentityError("identity secret: must not be empty", field="identity_secret")
    return hmac.new(secret, message.encode("utf-8"), hashlib.sha256).hexdigest()


# ---------------------------------------------------------------------------------------------- keys
def nhs_key(secret: bytes, nhs_number: str) -> str:
    """`nhs:<hex HMAC-SHA256(secret, "nhs|" + digits)>` for a number (spaces ignored); never the raw number."""
    return "nhs:" + _hmac_hex(secret, "nhs|" + nhs_number.replace(" ", ""))


def person_key(
    secret: bytes,
    *,
    nhs_number: str | None,
    given_name: str | None,
    family_name: str | None,
    date_of_birth: date | None,
    postcode: str | None,
    path: str = "",
) -> PersonKeys:
    """The person's keys: `nhs:` when the NHS number is valid, else `dem:`; both when both are possible.

    `path` prefixes field names in errors and notes (e.g. "children[0]."). An NHS number that fails the
    check digit falls back to the demographic key (noted); IdentityError when no key can be made.
    """
    given = normalise_name(given_name)
    family = normalise_name(family_name)
    code = normalise_postcode(postcode)
    present = {
        "given_name": bool(given),
        "family_name": bool(family),
        "date_of_birth": date_of_birth is not None,
        "postcode": bool(code),
    }
    missing = [name for name in _DEMOGRAPHIC_FIELDS if not present[name]]
    demographic: str | None = None
    if not missing and date_of_birth is not None:
        demographic = "dem:" + _hmac_hex(secret, f"{given}|{family}|{date_of_birth.isoformat()}|{code}")

    has_nhs = nhs_number is not None and nhs_number.strip() != ""
    if has_nhs and nhs_number_valid(nhs_number):
        assert nhs_number is not None
        primary = nhs_key(secret, nhs_number)
        return PersonKeys(primary=primary, aliases=(demographic,) if demographic else ())
    if demographic is not None:
        notes = (f"{path}nhs_number: {_NHS_RULE}; demographic key used",) if has_nhs else ()
        return PersonKeys(primary=demographic, notes=notes)
    wanted = ", ".join(f"{path}{name}" for name in missing)
    if has_nhs:
        raise IdentityError(
            f"{path}nhs_number: {_NHS_RULE}, and no demographic key is possible without {wanted}",
            field=f"{path}nhs_number",
        )
    raise IdentityError(
        f"{path}nhs_number: required (valid, mod-11 check digit) unless {wanted} given "
        f"(given_name, family_name, date_of_birth and postcode are all needed)",
        field=f"{path}{missing[0]}",
    )


def unborn_key(secret: bytes, mother_key: str, expected_due_date: date) -> str:
    """`unb:<hex HMAC-SHA256(secret, "mother_key|YYYY-MM-DD")>`: an unborn child by mother and due date."""
    if not mother_key:
        raise IdentityError("mother key: must not be empty", field="mother_key")
    return "unb:" + _hmac_hex(secret, f"{mother_key}|{expected_due_date.isoformat()}")


def _subject_key(secret: bytes, person: ChildSubject | AdultSubject, path: str) -> PersonKeys:
    return person_key(
        secret,
        nhs_number=person.nhs_number,
        given_name=person.given_name,
        family_name=person.family_name,
        date_of_birth=person.date_of_birth,
        postcode=person.postcode,
        path=path,
    )


def adults_of(notification: AgencyNotification) -> tuple[tuple[str, AdultSubject], ...]:
    """(field path, adult) in a fixed order; an unborn child's `mother_index` indexes this order.

    Police domestic abuse incident: (victim, suspect); child concern and health: `adults`; probation: the
    person on probation; youth justice: none.
    """
    match notification:
        case PoliceDomesticAbuseIncident():
            return (("victim", notification.victim), ("suspect", notification.suspect))
        case PoliceChildConcern() | HealthSafeguardingNotification():
            return tuple((f"adults[{i}]", a) for i, a in enumerate(notification.adults))
        case ProbationRiskNotification():
            return (("person", notification.person),)
        case YouthJusticeNotification():
            return ()


def children_of(notification: AgencyNotification) -> tuple[tuple[str, ChildSubject], ...]:
    """(field path, child) in body order."""
    if isinstance(notification, YouthJusticeNotification):
        return (("child", notification.child),)
    return tuple((f"children[{i}]", c) for i, c in enumerate(notification.children))


def subjects(notification: AgencyNotification, secret: bytes) -> Subjects:
    """Keys of the notification's children (body order, with aliases) and adults (by role).

    Children must be identifiable (IdentityError naming the field path otherwise). Adults need not be:
    an unidentifiable adult gets None and a note. An unborn child's primary key is built from the mother's
    primary key, with one alias per mother alias, so the two routes to the mother meet.
    """
    notes: list[str] = []
    adult_paths = adults_of(notification)
    adults: list[tuple[AdultRole, PersonKeys | None]] = []
    for path, adult in adult_paths:
        try:
            found = _subject_key(secret, adult, f"{path}.")
        except IdentityError as exc:
            if exc.field == "identity_secret":
                raise
            adults.append((adult.role, None))
            notes.append(f"{path}: no identity key (neither a valid nhs_number nor full demographics)")
            continue
        notes.extend(found.notes)
        adults.append((adult.role, found))

    children: list[PersonKeys] = []
    for path, child in children_of(notification):
        if child.unborn:
            children.append(_unborn(secret, child, path, adults))
            continue
        keys = _subject_key(secret, child, f"{path}.")
        notes.extend(keys.notes)
        children.append(keys)
    return Subjects(children=tuple(children), adults=tuple(adults), notes=tuple(notes))


def _unborn(
    secret: bytes, child: ChildSubject, path: str, adults: Sequence[tuple[AdultRole, PersonKeys | None]]
) -> PersonKeys:
    index = child.mother_index
    if index is None or index >= len(adults):
        raise IdentityError(
            f"{path}.mother_index: must point at an adult of the notification", field=f"{path}.mother_index"
        )
    mother = adults[index][1]
    if mother is None:
        raise IdentityError(
            f"{path}.mother_index: the mother has no identity key (needs a valid nhs_number or full demographics)",
            field=f"{path}.mother_index",
        )
    if child.expected_due_date is None:
        raise IdentityError(
            f"{path}.expected_due_date: required for an unborn child", field=f"{path}.expected_due_date"
        )
    due = child.expected_due_date
    return PersonKeys(
        primary=unborn_key(secret, mother.primary, due),
        aliases=tuple(unborn_key(secret, alias, due) for alias in mother.aliases),
    )
