"""Identity keys: NHS check digit, normalisation, keyed demographic hashes, aliases, unborn children."""

from __future__ import annotations

from datetime import date
from string import hexdigits
from typing import Any

import pytest

from broker.errors import BrokerError
from broker.identity import (
    IdentityError,
    PersonKeys,
    nhs_key,
    nhs_number_valid,
    normalise_name,
    normalise_postcode,
    person_key,
    subjects,
    unborn_key,
)
from schemas.models import AdultRole, HealthSetting
from tests.broker.factories import (
    SECRET,
    adult,
    child,
    health_notification,
    police_incident,
    probation_notification,
    youth_justice_notification,
)


def _check_digit(first_nine: str) -> int | None:
    """Independent statement of the rule: weights 10..2, 11 - (sum mod 11), 11 -> 0, 10 -> no number."""
    weights = [10, 9, 8, 7, 6, 5, 4, 3, 2]
    remainder = sum(w * int(d) for w, d in zip(weights, first_nine, strict=True)) % 11
    digit = 11 - remainder
    if digit == 11:
        return 0
    if digit == 10:
        return None
    return digit


def _key(secret: bytes = SECRET, path: str = "", **overrides: Any) -> PersonKeys:
    """person_key over synthetic demographics ("Test Child-One"), any field overridden."""
    fields: dict[str, Any] = {
        "nhs_number": None,
        "given_name": "Test",
        "family_name": "Child-One",
        "date_of_birth": date(2016, 5, 1),
        "postcode": "SY1 1AA",
    }
    fields.update(overrides)
    return person_key(secret, path=path, **fields)


# --------------------------------------------------------------------------------------- NHS number
def test_published_example_is_valid() -> None:
    """943 476 5919 passes: 9*10+4*9+3*8+4*7+7*6+6*5+5*4+9*3+1*2 = 299, 299 mod 11 = 2, 11 - 2 = 9."""
    assert nhs_number_valid("9434765919")
    assert nhs_number_valid("943 476 5919")


def test_wrong_check_digit_is_invalid() -> None:
    """Changing only the check digit of a valid number makes it invalid."""
    assert not any(nhs_number_valid(f"943476591{d}") for d in range(10) if d != 9)


def test_check_digit_matches_independent_algorithm() -> None:
    """For a spread of 9-digit prefixes, exactly the independently computed check digit is accepted."""
    for prefix in ("999000101", "401023213", "123456789", "999999999", "000000001", "485777345"):
        expected = _check_digit(prefix)
        accepted = [d for d in range(10) if nhs_number_valid(prefix + str(d))]
        assert accepted == ([] if expected is None else [expected]), prefix


def test_remainder_eleven_means_check_digit_zero() -> None:
    """When the weighted sum is a multiple of 11 the check digit is 0 (000000014: 1*3 + 4*2 = 11 -> 0)."""
    assert _check_digit("000000014") == 0  # 1*3 + 4*2 = 11
    assert nhs_number_valid("0000000140")


def test_check_digit_ten_is_never_valid() -> None:
    """Prefix 000000040 (4*3 = 12, 12 mod 11 = 1, 11 - 1 = 10) has no valid NHS number at all."""
    assert _check_digit("000000040") is None
    assert not any(nhs_number_valid(f"000000040{d}") for d in range(10))


@pytest.mark.parametrize("value", ["", "943476591", "94347659190", "94347659l9", "٩٤٣٤٧٦٥٩١٩", None])
def test_malformed_numbers_are_invalid(value: str | None) -> None:
    """Wrong length, letters, non-ASCII digits and None are invalid."""
    assert not nhs_number_valid(value)


# ------------------------------------------------------------------------------------ normalisation
def test_accents_are_dropped() -> None:
    """'Zoë' and 'Zoe' normalise alike (NFKD, combining marks dropped)."""
    assert normalise_name("Zoë") == normalise_name("Zoe") == "zoe"


def test_case_and_punctuation_are_dropped() -> None:
    """Casefolded, letters only: O'Brien-Smith -> obriensmith; spaces and full stops go too."""
    assert normalise_name("O'Brien-Smith") == "obriensmith"
    assert normalise_name("  mary ann. ") == normalise_name("MARY-ANN") == "maryann"
    assert normalise_name("STRAẞE") == normalise_name("strasse")


def test_compatibility_forms_are_folded() -> None:
    """NFKD folds compatibility characters (the 'ﬁ' ligature, full-width letters)."""
    assert normalise_name("ﬁnn") == "finn"
    assert normalise_name("ＴＥＳＴ") == "test"


def test_postcode_upper_case_without_spaces() -> None:
    """'sy1 1aa' -> 'SY11AA', any whitespace removed."""
    assert normalise_postcode("sy1 1aa") == "SY11AA"
    assert normalise_postcode(" SY1\t1AA ") == "SY11AA"


# ---------------------------------------------------------------------------------------- person key
def test_valid_nhs_number_is_primary_with_demographic_alias() -> None:
    """NHS number + full demographics: primary nhs:<keyed hash of the number>, the demographic key as alias."""
    keys = _key(nhs_number="9434765919")
    assert keys.primary == nhs_key(SECRET, "9434765919") == _key(nhs_number="943 476 5919").primary
    assert len(keys.aliases) == 1 and keys.aliases[0].startswith("dem:")
    assert keys.aliases[0] == _key().primary


def test_nhs_key_is_keyed_and_holds_no_number() -> None:
    """nhs:<hex HMAC-SHA256(secret, 'nhs|'+digits)>: 64 hex digits, never the number; another secret differs."""
    key = nhs_key(SECRET, "9434765919")
    assert key.startswith("nhs:") and len(key) == 4 + 64 and all(c in hexdigits for c in key[4:])
    assert "9434765919" not in key and key != nhs_key(b"another-test-secret", "9434765919")


def test_demographic_key_ignores_spelling_variants() -> None:
    """Accents, case, punctuation and postcode spacing do not change the demographic key."""
    a = _key(given_name="Zoë", family_name="O'Brien-Smith", postcode="sy1 1aa")
    b = _key(given_name="ZOE", family_name="obrien smith", postcode="SY11AA")
    assert a.primary == b.primary and a.primary.startswith("dem:")


def test_demographic_key_is_keyed_and_holds_no_personal_data() -> None:
    """The key is an HMAC: another secret gives another key, and no name, date or postcode shows."""
    key = _key().primary
    other = _key(b"another-test-secret").primary
    assert key != other
    assert key.startswith("dem:") and len(key) == 4 + 64 and all(c in hexdigits for c in key[4:])


def test_demographic_key_differs_by_each_field() -> None:
    """Each demographic field contributes to the key."""
    base = _key().primary
    for change in (
        {"given_name": "Testa"},
        {"family_name": "Child-Two"},
        {"date_of_birth": date(2016, 5, 2)},
        {"postcode": "SY1 1AB"},
    ):
        assert _key(**change).primary != base, change


def test_invalid_nhs_number_falls_back_to_demographics_with_note() -> None:
    """A failing check digit with full demographics gives the demographic key and a note naming the field."""
    keys = _key(path="children[0].", nhs_number="9434765918")
    assert keys.primary == _key().primary
    assert keys.aliases == ()
    assert keys.notes and keys.notes[0].startswith("children[0].nhs_number:")
    assert "9434765918" not in keys.notes[0]


def test_invalid_nhs_number_without_demographics_is_an_error() -> None:
    """A failing check digit and no demographics: IdentityError naming the path and rule, not the value."""
    with pytest.raises(IdentityError) as caught:
        _key(path="children[1].", nhs_number="9434765918", postcode=None)
    message = str(caught.value)
    assert isinstance(caught.value, BrokerError)
    assert caught.value.field == "children[1].nhs_number"
    assert "mod-11" in message and "children[1].postcode" in message
    assert "9434765918" not in message and "Test" not in message


def test_missing_demographics_without_nhs_names_the_fields() -> None:
    """No NHS number and missing demographics: the error names each missing field."""
    with pytest.raises(IdentityError) as caught:
        _key(given_name="--", date_of_birth=None)
    assert "given_name" in str(caught.value) and "date_of_birth" in str(caught.value)


def test_empty_secret_is_refused() -> None:
    """An empty HMAC secret is a configuration mistake, refused."""
    with pytest.raises(IdentityError):
        _key(b"")


def test_unborn_key_is_mother_plus_due_date() -> None:
    """unb:<hmac(mother key|due date)>: same mother and date agree, another date differs."""
    mother = nhs_key(SECRET, "9434765919")
    a = unborn_key(SECRET, mother, date(2026, 3, 1))
    assert a.startswith("unb:") and a == unborn_key(SECRET, mother, date(2026, 3, 1))
    assert a != unborn_key(SECRET, mother, date(2026, 3, 2))
    assert "9434765919" not in a


# ----------------------------------------------------------------------------------------- subjects
def test_subjects_of_police_incident_in_body_order_with_roles() -> None:
    """Children come back in body order; victim and suspect by role."""
    incident = police_incident([child(1), child(2), child(3, nhs=False)])
    who = subjects(incident, SECRET)
    assert [k.primary[:4] for k in who.children] == ["nhs:", "nhs:", "dem:"]
    assert who.children[0].primary != who.children[1].primary
    assert [role for role, _ in who.adults] == [AdultRole.VICTIM, AdultRole.SUSPECT]
    assert who.adult(AdultRole.VICTIM) is not None


def test_unidentifiable_adult_gets_no_key_and_a_note() -> None:
    """An unnamed suspect does not stop the notification: key None and a note naming the field."""
    incident = police_incident([child(1)], suspect=adult(AdultRole.SUSPECT, nhs=False, given_name=None))
    who = subjects(incident, SECRET)
    assert who.adults[1] == (AdultRole.SUSPECT, None)
    assert any(note.startswith("suspect:") for note in who.notes)


def test_invalid_child_nhs_without_demographics_names_the_child() -> None:
    """An invalid NHS number on the 2nd child with no demographics: error naming children[1].nhs_number."""
    bad = child(2, nhs="9434765918", given_name=None)
    with pytest.raises(IdentityError) as caught:
        subjects(police_incident([child(1), bad]), SECRET)
    assert caught.value.field == "children[1].nhs_number"


def test_invalid_child_nhs_with_demographics_is_noted() -> None:
    """An invalid NHS number with demographics: demographic key, note naming children[0].nhs_number."""
    who = subjects(police_incident([child(1, nhs="9434765918")]), SECRET)
    assert who.children[0].primary.startswith("dem:")
    assert any(n.startswith("children[0].nhs_number") for n in who.notes)


def test_alias_lets_nhs_and_demographic_notifications_meet() -> None:
    """The demographic-only key of a child equals the alias recorded when both were given."""
    with_nhs = subjects(health_notification([child(1)]), SECRET).children[0]
    without = subjects(health_notification([child(1, nhs=False)]), SECRET).children[0]
    assert without.primary in with_nhs.aliases


def test_unborn_child_keyed_by_mother_with_alias_per_mother_key() -> None:
    """An unborn child's key comes from the mother's key (+ alias from the mother's alias)."""
    mother = adult(AdultRole.MOTHER, 4)
    note = health_notification([child(unborn=True, mother_index=0)], setting=HealthSetting.MIDWIFERY, adults=[mother])
    who = subjects(note, SECRET)
    mother_keys = who.adults[0][1]
    assert mother_keys is not None
    unborn = who.children[0]
    assert unborn.primary == unborn_key(SECRET, mother_keys.primary, date(2026, 3, 1))
    assert unborn.aliases == (unborn_key(SECRET, mother_keys.aliases[0], date(2026, 3, 1)),)


def test_unborn_child_with_unidentifiable_mother_is_an_error() -> None:
    """No mother key -> no unborn key: IdentityError naming children[0].mother_index."""
    mother = adult(AdultRole.MOTHER, nhs=False, postcode=None)
    note = health_notification([child(unborn=True)], setting=HealthSetting.MIDWIFERY, adults=[mother])
    with pytest.raises(IdentityError) as caught:
        subjects(note, SECRET)
    assert caught.value.field == "children[0].mother_index"


def test_probation_and_youth_justice_subjects() -> None:
    """Probation: the person on probation and no children; youth justice: its one child."""
    probation = subjects(probation_notification(), SECRET)
    assert probation.children == () and probation.adult(AdultRole.PERSON_ON_PROBATION) is not None
    yj = subjects(youth_justice_notification(), SECRET)
    assert len(yj.children) == 1 and yj.adults == ()


def test_ascii_names_take_the_fast_path_with_the_same_result() -> None:
    """An ASCII name normalises exactly as the full Unicode path does (NFKD, marks dropped, casefold, letters)."""
    import unicodedata

    def full(s: str) -> str:
        folded = unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", s).casefold())
        return "".join(c for c in folded if c.isalpha() and not unicodedata.combining(c))

    names = ["O'Brien-Smith", "  mary ann. ", "MARY-ANN", "d'Arcy 3rd", "X Æ", "Jean-Luc", "", "\t\x7fAb1"]
    names += ["".join(chr(c) for c in range(32, 127))]
    for name in names:
        assert normalise_name(name) == full(name), name
