"""A national year on disk: written as one JSON Lines file per agency as it is generated, read back lazily.

Neither side holds the year in memory: `write_year` appends each notification to its agency's file as
`producers.national.year` yields it, and `read_year` merges the four files by produced instant, validating each
line as `mash publish` does.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

from mash.night import FILE_NAMES
from producers import national
from producers.cli import validate_line
from producers.simulator import REFERENCE_SEED, to_jsonl
from schemas.models import AgencyType, Record

__all__ = ["YEAR_START", "read_year", "write_year"]

#: The default first instant of a national year: the financial year 2025/26 (wholly in the past, so no
#: `occurred` or `reported` instant is in the future when it is published).
YEAR_START = "2025-04-01T00:00:00+01:00"


def _agency(record: Record) -> AgencyType:
    agency: AgencyType = record.envelope.source.agency_type  # type: ignore[attr-defined]
    return agency


def write_year(out: Path, *, count: int, seed: int, start: str = YEAR_START, hours: float = 8760.0,
               reference_seed: int = REFERENCE_SEED) -> dict[str, int]:
    """Write `count` national notifications over `hours` from `start` into `out`, one file per agency that sent
    something; returns the records written per file name."""
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, int] = {}
    with ExitStack() as files:
        opened: dict[AgencyType, IO[str]] = {}
        records = national.year(datetime.fromisoformat(start), seed=seed, count=count,
                                span=timedelta(hours=hours), reference_seed=reference_seed)
        for record in records:
            agency = _agency(record)
            if agency not in opened:  # only agencies that sent: `mash publish` refuses an empty file
                opened[agency] = files.enter_context((out / FILE_NAMES[agency]).open("w", encoding="utf-8"))
            opened[agency].write(to_jsonl((record,)))
            written[FILE_NAMES[agency]] = written.get(FILE_NAMES[agency], 0) + 1
    return written


def _read(path: Path, agency: AgencyType, now: datetime) -> Iterator[Record]:
    with path.open("rb") as lines:
        for number, line in enumerate(lines, start=1):
            record = validate_line(line, agency, now)
            if isinstance(record, list):
                rules = "; ".join(f"{field}: {rule}" for field, rule in record)
                raise ValueError(f"{path.name} line {number}: {rules}")
            if record is not None:
                yield record


def read_year(directory: Path) -> Iterator[Record]:
    """Every notification of the agency files in `directory` (as `write_year` wrote them), in produced order."""
    now = datetime.now(UTC)
    sources = [_read(directory / name, agency, now) for agency, name in FILE_NAMES.items()
               if (directory / name).exists()]
    if not sources:
        raise FileNotFoundError(f"{directory}: no agency files ({', '.join(FILE_NAMES.values())})")
    yield from heapq.merge(*sources, key=_order)


def _order(record: Record) -> tuple[datetime, str]:
    """The generator's order: produced instant, then notification id."""
    envelope = record.envelope  # type: ignore[attr-defined]
    return envelope.produced, str(envelope.notification_id)
