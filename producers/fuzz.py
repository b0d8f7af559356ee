"""Fuzzed intake records: bad ones every intake must dead-letter, mixed with valid ones it must accept.

A pure, seeded generator (same `now`, seed, count and schema ids: same records). Each record is raw (key,
value bytes, the agency whose intake topic it goes to), so it can carry what no SDK would send: broken framing
(Avro single-object encoding among it), an unregistered schema id, trailing or missing bytes, and contract
breaks written straight into the Avro datum without validation. Values are in the Confluent wire format with
the schema ids of a codec prepared for the intake topics (`intake_records(prefix)` of schemas.topics). Naive instants
are not representable (Avro timestamp-millis carries no zone), so they are not among the cases. All synthetic.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from producers.simulator import generate
from schemas._avro import to_datum
from schemas.codec import HEADER_SIZE, Codec, frame
from schemas.models import AGENCY_BODIES, LONDON, AgencyType, Envelope, Record
from schemas.topics import intake_topic

__all__ = ["BAD_CASES", "OVERSIZED_BYTES", "Fuzzed", "fuzz"]

#: Size of the oversized values: under the broker's and producer's ~1 MiB limits, far over any contract.
OVERSIZED_BYTES = 1_040_000
_RUN_NAMESPACE = uuid.UUID("0b8f3c52-7d0e-4c1a-9a43-5f2d6e1c9b70")
VALID_EVERY = 10  # one record in ten is valid
OVERSIZED_EVERY = 1000  # oversized values are costly: one per thousand records (at least one per run)
Datum = dict[str, Any]
Encoder = Callable[[type[Record], AgencyType, Mapping[str, Any]], bytes]
_UNREGISTERED = (2**31 - 2**20, 2**31 - 1)  # schema ids far above any a registry has handed out


@dataclass(frozen=True)
class Fuzzed:
    """One record to publish raw to `agency`'s intake topic; `case` says what is wrong ("valid" if nothing)."""

    case: str
    agency: AgencyType
    key: bytes | None
    value: bytes | None
    notification_id: uuid.UUID | None = None

    @property
    def valid(self) -> bool:
        """True for a valid record (it must be accepted)."""
        return self.case == "valid"


class _Base:
    """A valid simulated record as a mutable Avro datum, with a fresh notification id."""

    def __init__(self, record: Record, rng: random.Random, encoder: Encoder) -> None:
        self._encoder = encoder
        self.model = type(record)
        self.agency = _agency(record)
        self.datum: Datum = to_datum(record)
        self.nid = uuid.UUID(int=rng.getrandbits(128), version=4)
        self.datum["envelope"]["notification_id"] = str(self.nid)

    @property
    def envelope(self) -> Datum:
        """The envelope datum."""
        env: Datum = self.datum["envelope"]
        return env

    @property
    def on(self) -> date:
        """The occurrence date (London)."""
        occurred: datetime = self.envelope["occurred"]
        return occurred.astimezone(LONDON).date()

    def children(self) -> list[Datum]:
        """The child datums (`children` or the single `child`)."""
        return list(self.datum.get("children") or ([self.datum["child"]] if "child" in self.datum else []))

    def adults(self) -> list[Datum]:
        """The adult datums (victim, suspect, person, adults)."""
        named = [self.datum[k] for k in ("victim", "suspect", "person") if k in self.datum]
        return named + list(self.datum.get("adults") or [])

    def encode(self) -> bytes:
        """The (possibly broken) datum in the Confluent wire format, unvalidated."""
        return self._encoder(self.model, self.agency, self.datum)

    def body(self) -> bytes:
        """The Avro body alone (no header)."""
        return self.encode()[HEADER_SIZE:]

    def fuzzed(self, case: str, value: bytes | None = None, agency: AgencyType | None = None) -> Fuzzed:
        """This base as a fuzzed record (by default its datum encoded, to its own agency's topic)."""
        return Fuzzed(case, agency or self.agency, str(self.nid).encode(), self.encode() if value is None else value,
                      self.nid)


def _envelope(record: Record) -> Envelope:
    envelope: Envelope = record.envelope  # type: ignore[attr-defined]
    return envelope


def _agency(record: Record) -> AgencyType:
    return _envelope(record).source.agency_type


Case = Callable[[_Base, random.Random, datetime], Fuzzed | None]
_CONTROLS = ("\x00", "\x07", "\x1b[31m", "\r", "\n", "\x1b]0;x\x07", "\x85", "\x7f", "\t")
_SUMMARY_CONTROLS = ("\x00", "\x07", "\x1b[2J", "\rX", "\x0b", "\x9b")
_BIDI = ("\u202e", "\u202a", "\u202b", "\u202c", "\u202d", "\u2066", "\u2067", "\u2068", "\u2069", "\u200f")
_BAD_ONS = ("E06000051\n", " E06000051", "E06000051 ", "e06000051", "E0600005", "E060000511", "E07000001",
            "X12345678", "E05000001", "E06000051\r\n", "")
_BAD_URNS = ("123456\n", " 123456", "12345", "12345678", "12a456", "")
_BAD_REFERENCES = ("PPN/1\n", "PPN 1", "/PPN", "-PPN", "P" * 65, "PPN\x001", "")
_ABSURD_DATES = (date(1, 1, 1), date(1850, 1, 1), date(9999, 12, 31), date(1880, 6, 30))


def _pick(rng: random.Random, items: list[Datum]) -> Datum | None:
    return rng.choice(items) if items else None


def _trailing(b: _Base, rng: random.Random, now: datetime) -> Fuzzed:
    return b.fuzzed("trailing-bytes", b.encode() + rng.randbytes(rng.randint(1, 16)))


def _truncated(b: _Base, rng: random.Random, now: datetime) -> Fuzzed:
    data = b.encode()
    return b.fuzzed("truncated", data[: rng.randrange(HEADER_SIZE, len(data))])


def _no_magic(b: _Base, rng: random.Random, now: datetime) -> Fuzzed:
    return b.fuzzed("no-magic", b.body())


def _single_object(b: _Base, rng: random.Random, now: datetime) -> Fuzzed:
    """The Avro single-object encoding this product used before the registry: C3 01, a fingerprint, the body."""
    return b.fuzzed("single-object", b"\xc3\x01" + rng.randbytes(8) + b.body())


def _unknown_schema_id(b: _Base, rng: random.Random, now: datetime) -> Fuzzed:
    return b.fuzzed("unknown-schema-id", frame(rng.randint(*_UNREGISTERED), b.body()))


def _random_bytes(b: _Base, rng: random.Random, now: datetime) -> Fuzzed:
    data = rng.randbytes(rng.randint(1, 512))
    return b.fuzzed("random-bytes", (b"\x01" + data[1:]) if data[:1] == b"\x00" else data)


def _empty(b: _Base, rng: random.Random, now: datetime) -> Fuzzed:
    return Fuzzed("empty-value", b.agency, str(b.nid).encode(), b"", None)


def _null(b: _Base, rng: random.Random, now: datetime) -> Fuzzed:
    return Fuzzed("null-value", b.agency, str(b.nid).encode(), None, None)


def _child_dob_absurd(b: _Base, rng: random.Random, now: datetime) -> Fuzzed | None:
    child = _pick(rng, [c for c in b.children() if not c.get("unborn")])
    if child is None:
        return None
    child["date_of_birth"] = rng.choice(_ABSURD_DATES)
    return b.fuzzed("child-dob-absurd")


def _child_dob_future(b: _Base, rng: random.Random, now: datetime) -> Fuzzed | None:
    child = _pick(rng, [c for c in b.children() if not c.get("unborn")])
    if child is None:
        return None
    born = date(rng.randint(2030, 2034), rng.randint(1, 12), rng.randint(1, 28))
    child["date_of_birth"] = born if born > b.on else b.on + timedelta(days=rng.randint(1, 2000))
    return b.fuzzed("child-dob-future")


def _child_too_old(b: _Base, rng: random.Random, now: datetime) -> Fuzzed | None:
    child = _pick(rng, [c for c in b.children() if not c.get("unborn")])
    if child is None:
        return None
    child["date_of_birth"] = b.on.replace(year=b.on.year - rng.randint(18, 40), day=1)
    return b.fuzzed("child-over-17")


def _adult_dob(b: _Base, rng: random.Random, now: datetime) -> Fuzzed | None:
    adult = _pick(rng, b.adults())
    if adult is None:
        return None
    adult["date_of_birth"] = rng.choice((*_ABSURD_DATES, b.on + timedelta(days=rng.randint(1, 4000))))
    return b.fuzzed("adult-dob-implausible")


def _person(b: _Base, rng: random.Random) -> Datum | None:
    people = [p for p in b.children() + b.adults() if p.get("given_name")]
    return _pick(rng, people)


def _control_in_name(b: _Base, rng: random.Random, now: datetime) -> Fuzzed | None:
    person = _person(b, rng)
    if person is None:
        return None
    person["given_name"] = person["given_name"][:50] + rng.choice(_CONTROLS)
    return b.fuzzed("control-in-name")


def _bidi_in_name(b: _Base, rng: random.Random, now: datetime) -> Fuzzed | None:
    person = _person(b, rng)
    if person is None:
        return None
    name = person["given_name"][:50]
    person["given_name"] = name[:1] + rng.choice(_BIDI) + name[1:]
    return b.fuzzed("bidi-in-name")


def _control_in_summary(b: _Base, rng: random.Random, now: datetime) -> Fuzzed:
    b.datum["summary"] = "SYNTHETIC NARRATIVE" + rng.choice(_SUMMARY_CONTROLS) + " end"
    return b.fuzzed("control-in-summary")


def _bidi_in_summary(b: _Base, rng: random.Random, now: datetime) -> Fuzzed:
    b.datum["summary"] = "SYNTHETIC " + rng.choice(_BIDI) + "NARRATIVE"
    return b.fuzzed("bidi-in-summary")


def _long_name(b: _Base, rng: random.Random, now: datetime) -> Fuzzed | None:
    person = _person(b, rng)
    if person is None:
        return None
    person["family_name"] = "Synthetic" * rng.randint(12, 60)
    return b.fuzzed("over-long-name")


def _long_summary(b: _Base, rng: random.Random, now: datetime) -> Fuzzed:
    b.datum["summary"] = "SYNTHETIC NARRATIVE. " * rng.randint(200, 400)
    return b.fuzzed("over-long-summary")


def _bad_authority(b: _Base, rng: random.Random, now: datetime) -> Fuzzed:
    b.envelope["home_local_authority"] = rng.choice(_BAD_ONS)
    return b.fuzzed("bad-authority-code")


def _bad_urn(b: _Base, rng: random.Random, now: datetime) -> Fuzzed | None:
    child = _pick(rng, [c for c in b.children() if c["education"]["urn"]])
    if child is None:
        return None
    child["education"]["urn"] = rng.choice(_BAD_URNS)
    return b.fuzzed("bad-urn")


def _bad_reference(b: _Base, rng: random.Random, now: datetime) -> Fuzzed:
    field = "police_reference" if "police_reference" in b.datum and rng.random() < 0.5 else None
    (b.datum if field else b.envelope)[field or "source_reference"] = rng.choice(_BAD_REFERENCES)
    return b.fuzzed("bad-reference")


def _wrong_topic(b: _Base, rng: random.Random, now: datetime) -> Fuzzed:
    others = [a for a in AGENCY_BODIES if a is not b.agency]
    return b.fuzzed("wrong-agency-topic", agency=rng.choice(others))


def _agency_mismatch(b: _Base, rng: random.Random, now: datetime) -> Fuzzed:
    b.envelope["source"]["agency_type"] = rng.choice([a.value for a in AGENCY_BODIES if a is not b.agency])
    return b.fuzzed("agency-type-mismatch")


def _future_occurred(b: _Base, rng: random.Random, now: datetime) -> Fuzzed:
    ahead = now + timedelta(minutes=rng.randint(60, 60 * 24 * 400))
    b.envelope.update(occurred=ahead, reported=ahead, produced=ahead)
    return b.fuzzed("future-occurred")


def _future_reported(b: _Base, rng: random.Random, now: datetime) -> Fuzzed:
    ahead = now + timedelta(minutes=rng.randint(60, 60 * 24 * 30))
    b.envelope.update(reported=ahead, produced=ahead)
    return b.fuzzed("future-reported")


def _reported_before_occurred(b: _Base, rng: random.Random, now: datetime) -> Fuzzed:
    b.envelope["reported"] = b.envelope["occurred"] - timedelta(minutes=rng.randint(1, 600))
    return b.fuzzed("reported-before-occurred")


def _unknown_enum(b: _Base, rng: random.Random, now: datetime) -> Fuzzed:
    name = rng.choice(("action", "security_marking", "lawful_basis", "source"))
    if name == "source":
        b.envelope["source"]["agency_type"] = "UNKNOWN"
    else:
        b.envelope[name] = "UNKNOWN"
    return b.fuzzed("unknown-enum")


def _action_rules(b: _Base, rng: random.Random, now: datetime) -> Fuzzed:
    if rng.random() < 0.5:
        b.envelope.update(action="AMEND", supersedes=None)
    else:
        b.envelope.update(action="NEW", supersedes=str(uuid.UUID(int=rng.getrandbits(128), version=4)))
    return b.fuzzed("action-rules")


def _oversized(b: _Base, rng: random.Random, now: datetime) -> Fuzzed:
    b.datum["summary"] = ""
    overhead = len(b.encode()) + 4  # the summary's length prefix grows to 3-4 bytes
    b.datum["summary"] = "S" * (OVERSIZED_BYTES - overhead)
    return b.fuzzed("oversized")


_CASES: dict[str, Case] = {
    "trailing-bytes": _trailing,
    "truncated": _truncated,
    "no-magic": _no_magic,
    "single-object": _single_object,
    "unknown-schema-id": _unknown_schema_id,
    "random-bytes": _random_bytes,
    "empty-value": _empty,
    "null-value": _null,
    "child-dob-absurd": _child_dob_absurd,
    "child-dob-future": _child_dob_future,
    "child-over-17": _child_too_old,
    "adult-dob-implausible": _adult_dob,
    "control-in-name": _control_in_name,
    "bidi-in-name": _bidi_in_name,
    "control-in-summary": _control_in_summary,
    "bidi-in-summary": _bidi_in_summary,
    "over-long-name": _long_name,
    "over-long-summary": _long_summary,
    "bad-authority-code": _bad_authority,
    "bad-urn": _bad_urn,
    "bad-reference": _bad_reference,
    "wrong-agency-topic": _wrong_topic,
    "agency-type-mismatch": _agency_mismatch,
    "future-occurred": _future_occurred,
    "future-reported": _future_reported,
    "reported-before-occurred": _reported_before_occurred,
    "unknown-enum": _unknown_enum,
    "action-rules": _action_rules,
}
#: Every kind of bad record, in the order they are cycled through ("oversized" is rationed).
BAD_CASES: tuple[str, ...] = (*_CASES, "oversized")


def _bad(case: str, pool: list[Record], rng: random.Random, now: datetime, encoder: Encoder) -> Fuzzed:
    """A bad record of `case`, from the first base in a random walk of the pool that the case applies to."""
    make = _oversized if case == "oversized" else _CASES[case]
    for _ in range(len(pool)):
        made = make(_Base(rng.choice(pool), rng, encoder), rng, now)
        if made is not None:
            return made
    raise ValueError(f"no simulated record fits the fuzz case {case}")


def _plan(count: int) -> Iterator[str]:
    """The case of each record: every tenth valid, one oversized per thousand, the rest cycling the cases."""
    cycle = 0
    for i in range(count):
        if i % VALID_EVERY == VALID_EVERY - 1:
            yield "valid"
        elif i % OVERSIZED_EVERY == 3:
            yield "oversized"
        else:
            yield tuple(_CASES)[cycle % len(_CASES)]
            cycle += 1


def _renamed(records: list[Record], now: datetime) -> list[Record]:
    """The records with notification ids (and the `supersedes` pointing at them) unique to this `now`, so a
    second run with the same seed sends new notifications rather than conflicting resends."""
    ids = {_envelope(r).notification_id: uuid.uuid5(_RUN_NAMESPACE, f"{now.isoformat()}|{_envelope(r).notification_id}")
           for r in records}
    out = []
    for record in records:
        env = _envelope(record)
        before = env.supersedes
        update = {"notification_id": ids[env.notification_id],
                  "supersedes": ids.get(before, before) if before else None}
        out.append(record.model_copy(update={"envelope": env.model_copy(update=update)}))
    return out


def fuzz(now: datetime, seed: int, count: int, *, codec: Codec, prefix: str) -> list[Fuzzed]:
    """`count` records (about 90% bad, every bad case once per cycle, 10% valid), all occurring before `now`.

    `codec` must be prepared for the intake topics of `prefix` (`await codec.prepare(intake_records(prefix))`).
    """

    def encoder(model: type[Record], agency: AgencyType, datum: Mapping[str, Any]) -> bytes:
        return codec.encode_datum(model, datum, intake_topic(prefix, agency))

    rng = random.Random(seed)
    plan = list(_plan(count))
    n_valid = plan.count("valid")
    simulated = list(generate(now - timedelta(hours=48), seed=seed, count=n_valid + 300, span=timedelta(hours=24)))
    valid, pool = iter(_renamed(simulated[:n_valid], now)), simulated[n_valid:]
    out = []
    for case in plan:
        if case == "valid":
            record = next(valid)
            nid: uuid.UUID = record.envelope.notification_id  # type: ignore[attr-defined]
            value = codec.encode(record, intake_topic(prefix, _agency(record)))
            out.append(Fuzzed("valid", _agency(record), str(nid).encode(), value, nid))
        else:
            out.append(_bad(case, pool, rng, now, encoder))
    return out
