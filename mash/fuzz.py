"""`mash fuzz`: publish fuzzed records raw to the intake topics, then check every one got its outcome.

Every bad record must have exactly one dead letter (matched by its source topic, partition and offset); every
valid one must be accepted (an ACCEPTED audit record for its notification id). The report counts both, and
any record missing or dead-lettered more than once makes the run fail.
"""

from __future__ import annotations

import asyncio
import collections
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from broker.reader import read_topics
from broker.settings import Settings
from broker.topics import catalogue
from producers.fuzz import Fuzzed, fuzz
from schemas.codec import Codec, codec_for
from schemas.errors import TransportError
from schemas.models import AuditEvent, AuditRecord, DeadLetter
from schemas.topics import intake_records

__all__ = ["FuzzReport", "Sent", "run_fuzz"]

Coordinates = tuple[str, int, int]
MAX_REQUEST = 1_048_576  # the producer's default; the oversized values stay just under it


@dataclass(frozen=True)
class Sent:
    """A fuzzed record and where it landed."""

    record: Fuzzed
    topic: str
    partition: int
    offset: int

    @property
    def coordinates(self) -> Coordinates:
        """(topic, partition, offset)."""
        return self.topic, self.partition, self.offset


@dataclass
class FuzzReport:
    """What became of a fuzz run's records."""

    bad_sent: int = 0
    dead_lettered_once: int = 0
    dead_lettered_more: int = 0
    bad_missing: int = 0
    bad_accepted: int = 0
    valid_sent: int = 0
    valid_accepted: int = 0
    valid_dead_lettered: int = 0
    valid_missing: int = 0
    missing_by_case: collections.Counter[str] = field(default_factory=collections.Counter)

    @property
    def ok(self) -> bool:
        """True when every bad record was dead-lettered exactly once and every valid one accepted."""
        return (self.dead_lettered_once == self.bad_sent and self.valid_accepted == self.valid_sent
                and not (self.dead_lettered_more or self.bad_accepted or self.valid_dead_lettered))

    def lines(self) -> list[str]:
        """The counts, one per line."""
        out = [
            f"bad sent              {self.bad_sent}",
            f"  dead-lettered once  {self.dead_lettered_once}",
            f"  dead-lettered >1    {self.dead_lettered_more}",
            f"  accepted (wrongly)  {self.bad_accepted}",
            f"  missing             {self.bad_missing}",
            f"valid sent            {self.valid_sent}",
            f"  accepted            {self.valid_accepted}",
            f"  dead-lettered       {self.valid_dead_lettered}",
            f"  missing             {self.valid_missing}",
        ]
        out += [f"missing {case}: {n}" for case, n in sorted(self.missing_by_case.items())]
        return out


async def publish_raw(settings: Settings, records: list[Fuzzed]) -> list[Sent]:
    """Publish every record as is (no validation, no encoding) to its agency's intake topic."""
    cat = catalogue(settings.topic_prefix)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all", enable_idempotence=True,
                                client_id="mash-fuzz", linger_ms=5, max_request_size=MAX_REQUEST,
                                **settings.kafka_auth().aiokafka())
    try:
        await producer.start()
        futures = [await producer.send(cat.intake(r.agency), key=r.key, value=r.value) for r in records]
        metadata = [await f for f in futures]
    except KafkaError as exc:
        raise TransportError(f"fuzz publish failed: {type(exc).__name__}") from exc
    finally:
        await producer.stop()
    return [Sent(r, m.topic, m.partition, m.offset) for r, m in zip(records, metadata, strict=True)]


async def outcomes(settings: Settings) -> tuple[collections.Counter[Coordinates], set[str]]:
    """Dead letters per source coordinates, and the notification ids audited ACCEPTED, read back from Kafka."""
    cat = catalogue(settings.topic_prefix)
    codec = Codec()
    letters: collections.Counter[Coordinates] = collections.Counter()
    accepted: set[str] = set()
    shorts = [cat.name("deadletter"), cat.name("audit")]
    for rec in await read_topics(settings.kafka_bootstrap, shorts, registry_url=settings.registry_url,
                                 auth=settings.kafka_auth()):
        try:
            record = rec.decode(codec)
        except Exception:  # an undecodable record on these topics is not an outcome of ours
            continue
        if isinstance(record, DeadLetter):
            letters[record.source_topic, record.source_partition, record.source_offset] += 1
        elif isinstance(record, AuditRecord) and record.event is AuditEvent.ACCEPTED and record.notification_id:
            accepted.add(str(record.notification_id))
    return letters, accepted


def tally(sent: list[Sent], letters: collections.Counter[Coordinates], accepted: set[str]) -> FuzzReport:
    """The report of what was sent against the outcomes found."""
    report = FuzzReport()
    for s in sent:
        n = letters[s.coordinates]
        was_accepted = s.record.notification_id is not None and str(s.record.notification_id) in accepted
        if s.record.valid:
            report.valid_sent += 1
            report.valid_accepted += was_accepted
            report.valid_dead_lettered += n > 0
            report.valid_missing += not was_accepted and n == 0
        else:
            report.bad_sent += 1
            report.dead_lettered_once += n == 1
            report.dead_lettered_more += n > 1
            report.bad_accepted += was_accepted
            report.bad_missing += n == 0
        if n == 0 and not was_accepted:
            report.missing_by_case[s.record.case] += 1
    return report


async def await_outcomes(settings: Settings, sent: list[Sent], *, timeout: float, settle: float = 5.0) -> FuzzReport:
    """Poll the dead-letter and audit topics until every record has an outcome (or `timeout`), then once more
    after `settle` seconds so late duplicates are counted."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + timeout
    while True:
        report = tally(sent, *await outcomes(settings))
        if not (report.bad_missing or report.valid_missing) or loop.time() > give_up:
            break
        await asyncio.sleep(3.0)
    await asyncio.sleep(settle)
    return tally(sent, *await outcomes(settings))


async def run_fuzz(settings: Settings, *, count: int, seed: int, timeout: float = 300.0,
                   now: datetime | None = None) -> FuzzReport:
    """Generate, publish raw and check `count` fuzzed records against the running worker (their schemas are
    registered under the intake topics' subjects first)."""
    codec = await codec_for(settings.registry_url, intake_records(settings.topic_prefix))
    try:
        records = fuzz(now or datetime.now(UTC), seed, count, codec=codec, prefix=settings.topic_prefix)
    finally:
        await codec.aclose()
    sent = await publish_raw(settings, records)
    return await await_outcomes(settings, sent, timeout=timeout)
