"""The simulated night: published through the producer SDK, or written as one JSON Lines file per agency."""

from __future__ import annotations

import asyncio
import collections
from datetime import UTC, datetime
from pathlib import Path

from broker.run import last_night
from broker.settings import Settings
from producers.sdk import AgencyClient
from producers.simulator import simulate_night, to_jsonl
from schemas.models import AgencyType, Record

__all__ = ["FILE_NAMES", "publish_night", "write_night"]

#: One file per agency; each name (without `.jsonl`) is an `--agency` value of `mash publish`.
FILE_NAMES = {
    AgencyType.POLICE: "police.jsonl",
    AgencyType.HEALTH: "health.jsonl",
    AgencyType.PROBATION: "probation.jsonl",
    AgencyType.YOUTH_JUSTICE: "youth_justice.jsonl",
}


def _begin(start: str | None) -> datetime:
    return datetime.fromisoformat(start) if start else last_night(datetime.now(UTC))


def _agency(record: Record) -> AgencyType:
    agency: AgencyType = record.envelope.source.agency_type  # type: ignore[attr-defined]
    return agency


async def publish_night(settings: Settings, *, count: int, seed: int, start: str | None = None) -> dict[str, int]:
    """Publish `count` simulated notifications; returns how many went to each agency."""
    records = simulate_night(_begin(start), seed, count)
    counts: dict[str, int] = collections.Counter()
    clients = {a: AgencyClient(settings, a) for a in FILE_NAMES}
    try:
        pending = []
        for record in records:
            agency = _agency(record)
            pending.append(await clients[agency].send(record))
            counts[agency.value] += 1
        await asyncio.gather(*(p for p in pending))
    finally:
        for c in clients.values():
            await c.stop()
    return dict(counts)


def write_night(out: Path, *, count: int, seed: int, start: str | None = None) -> dict[str, int]:
    """Write the simulated night into `out`, one file per agency that sent something (`mash publish` refuses
    an empty file); returns the records written per file name."""
    by_agency: dict[AgencyType, list[Record]] = {a: [] for a in FILE_NAMES}
    for record in simulate_night(_begin(start), seed, count):
        by_agency[_agency(record)].append(record)
    out.mkdir(parents=True, exist_ok=True)
    written = {}
    for agency, records in by_agency.items():
        if records:
            (out / FILE_NAMES[agency]).write_text(to_jsonl(records), encoding="utf-8")
            written[FILE_NAMES[agency]] = len(records)
    return written
