"""The fuzz generator: seeded and pure, every bad case present, every bad record refused, every valid one not."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from producers.fuzz import BAD_CASES, OVERSIZED_BYTES, Fuzzed, fuzz
from schemas.codec import Codec, UnknownSchemaId
from schemas.errors import SchemaError
from schemas.rules import notification_errors
from schemas.topics import intake_records
from tests.schemas.helpers import unit_codec

NOW = datetime(2026, 11, 23, 20, 30, tzinfo=UTC)
COUNT = 700
PREFIX = "mash"
CODEC = unit_codec(intake_records(PREFIX))


def _fuzz(now: datetime, seed: int, count: int) -> list[Fuzzed]:
    """fuzz() with the unit codec prepared for the intake topics."""
    return fuzz(now, seed, count, codec=CODEC, prefix=PREFIX)


@pytest.fixture(scope="module")
def records() -> list[Fuzzed]:
    """One fuzz run of COUNT records at NOW."""
    return _fuzz(NOW, seed=11, count=COUNT)


def _refusal(record: Fuzzed, codec: Codec, received: datetime) -> str | None:
    """Why intake's pure path (decode, then the agency and instant rules) refuses a record, or None."""
    try:
        decoded = codec.decode(record.value)
    except SchemaError as exc:
        return type(exc).__name__
    errors = notification_errors(decoded, record.agency, received)
    return "; ".join(f for f, _ in errors) or None


def test_every_bad_record_is_refused_by_the_pure_path(records: list[Fuzzed]) -> None:
    """Each bad record fails decoding or the intake rules (at NOW and an hour later), so it must be dead-lettered."""
    codec = CODEC
    for received in (NOW, NOW + timedelta(hours=1)):
        accepted = [r.case for r in records if not r.valid and _refusal(r, codec, received) is None]
        assert accepted == []


def test_every_valid_record_is_accepted_by_the_pure_path(records: list[Fuzzed]) -> None:
    """Each valid record decodes and breaks no intake rule when received at NOW or later."""
    codec = CODEC
    valid = [r for r in records if r.valid]
    assert len(valid) == COUNT // 10
    assert [r.notification_id for r in valid if _refusal(r, codec, NOW + timedelta(minutes=5)) is not None] == []


def test_every_bad_case_is_generated(records: list[Fuzzed]) -> None:
    """All bad cases appear (each at least 20 times in 700 records, oversized once)."""
    cases = Counter(r.case for r in records)
    assert set(cases) == {*BAD_CASES, "valid"}
    assert cases["oversized"] == 1
    assert min(n for case, n in cases.items() if case not in ("oversized", "valid")) >= 20


def test_oversized_value_is_near_the_broker_limit(records: list[Fuzzed]) -> None:
    """The oversized value is ~1,040,000 bytes: accepted by the broker, too large to travel inside a dead letter."""
    (big,) = [r for r in records if r.case == "oversized"]
    assert big.value is not None and OVERSIZED_BYTES - 64 <= len(big.value) <= OVERSIZED_BYTES


def test_same_seed_same_records() -> None:
    """The generator is pure: the same now, seed and count give the same records; another seed differs."""
    assert _fuzz(NOW, seed=3, count=60) == _fuzz(NOW, seed=3, count=60)
    assert _fuzz(NOW, seed=3, count=60) != _fuzz(NOW, seed=4, count=60)


def test_valid_ids_are_unique_per_run() -> None:
    """Two runs at different instants send valid notifications with different ids (no conflicting resends)."""
    first = {r.notification_id for r in _fuzz(NOW, seed=3, count=60) if r.valid}
    second = {r.notification_id for r in _fuzz(NOW + timedelta(minutes=1), seed=3, count=60) if r.valid}
    assert first and not first & second


def test_trailing_newline_authority_code_is_among_the_cases(records: list[Fuzzed]) -> None:
    """The issue's reproducer, a home authority 'E06000051\\n', is generated and refused on its field path."""
    codec = CODEC
    found = []
    for r in records:
        if r.case == "bad-authority-code" and r.value and b"E06000051\n" in r.value:
            with pytest.raises(SchemaError) as caught:
                codec.decode(r.value)
            found.append(str(caught.value))
    assert found and all("envelope.home_local_authority" in text for text in found)


def test_framing_cases_are_refused_for_their_reason(records: list[Fuzzed]) -> None:
    """Single-object bytes are refused naming that framing; an unregistered schema id is an UnknownSchemaId."""
    single = [r for r in records if r.case == "single-object"]
    unknown = [r for r in records if r.case == "unknown-schema-id"]
    assert single and unknown
    for r in single:
        assert r.value is not None and r.value[:2] == b"\xc3\x01"
        with pytest.raises(SchemaError, match="single-object encoding"):
            CODEC.decode(r.value)
    for r in unknown:
        with pytest.raises(UnknownSchemaId):
            CODEC.decode(r.value)
