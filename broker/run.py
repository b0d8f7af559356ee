"""The main job's broker-side steps: when last night was, and a summary of the topics read back.

Publishing the simulated night sits above the broker and the producers, in mash.night."""

from __future__ import annotations

import asyncio
import collections
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from broker.reader import read_topics
from broker.settings import Settings
from broker.topics import INTAKE_TOPICS, ROUTE_TOPICS, catalogue
from schemas.codec import Codec
from schemas.models import AuditRecord

__all__ = ["LONDON", "last_night", "print_summary", "topic_counts"]

LONDON = ZoneInfo("Europe/London")


def last_night(now: datetime) -> datetime:
    """18:00 London time of the latest night whose notifications are all reported by `now`.

    A simulated night runs 15 hours from 18:00 and reports lag up to 12 hours, so the night must have begun
    at least 27 hours before `now`.
    """
    latest = (now - timedelta(hours=27)).astimezone(LONDON)
    evening = datetime.combine(latest.date(), time(18, 0), LONDON)
    if evening > latest:
        evening = datetime.combine(latest.date() - timedelta(days=1), time(18, 0), LONDON)
    return evening.astimezone(UTC)


async def topic_counts(settings: Settings) -> dict[str, collections.Counter[str]]:
    """Per topic: records by record name, read back from the topics and decoded."""
    cat = catalogue(settings.topic_prefix)
    shorts = [*INTAKE_TOPICS.values(), *ROUTE_TOPICS.values(), "feedback.rejections", "deadletter", "audit"]
    names = {cat.name(s): s for s in shorts}
    codec = Codec()
    result: dict[str, collections.Counter[str]] = {s: collections.Counter() for s in shorts}
    for rec in await read_topics(settings.kafka_bootstrap, names, auth=settings.kafka_auth()):
        try:
            record = rec.decode(codec)
            kind = record.event.value if isinstance(record, AuditRecord) else type(record).__name__
        except Exception:  # an undecodable record is itself worth counting
            kind = "(undecodable)"
        result[names[rec.topic]][kind] += 1
    return result


def _settled(counts: dict[str, collections.Counter[str]]) -> bool:
    """Whether intake has decided every record on the intake topics (by the audit trail)."""
    received = sum(sum(counts[short].values()) for short in INTAKE_TOPICS.values())
    decided = sum(counts["audit"][kind] for kind in ("ACCEPTED", "REJECTED", "DUPLICATE_DROPPED"))
    return decided >= received > 0


async def print_summary(settings: Settings, *, settle: float = 0.0) -> dict[str, collections.Counter[str]]:
    """Print per-topic counts; with `settle`, first wait (up to that many seconds) until intake has an outcome
    for every intake record (accepted, rejected or dropped) and nothing grows any more between two looks."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settle
    counts = await topic_counts(settings)
    while settle and loop.time() < deadline:
        await asyncio.sleep(3)
        last, counts = counts, await topic_counts(settings)
        if _settled(counts) and counts == last:
            break
    agency_of = {v: k for k, v in INTAKE_TOPICS.items()}
    print("topic                         records  by kind")
    for short, c in counts.items():
        label = f"{short} ({agency_of[short].value})" if short in agency_of else short
        kinds = ", ".join(f"{k}={n}" for k, n in sorted(c.items())) or "-"
        print(f"{label:32} {sum(c.values()):6}  {kinds}")
    return counts


