"""Recording stand-ins for the worker's two I/O boundaries (`broker.outlet.Outlet`, `StateWriter`).

The stages under test are the worker's own classes; only the broker behind them is replaced. A fake can be
told to fail: `fail[short] = exc` raises on send to that topic, `too_large` refuses values over a size.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from aiokafka.errors import MessageSizeTooLargeError

from broker.outlet import Encoded, Send
from broker.topics import catalogue
from schemas.codec import Codec
from schemas.models import Record
from schemas.registry import InMemoryRegistry

__all__ = ["DictState", "RecordingOutlet", "Sent", "prepared_codec"]


def prepared_codec(prefix: str = "t") -> Codec:
    """The product's codec over an in-memory registry, prepared for every topic of the catalogue under `prefix`."""
    codec = Codec(InMemoryRegistry())
    cat = catalogue(prefix)
    asyncio.run(codec.prepare({cat.name(spec.name): spec.records for spec in cat.specs if spec.records}))
    return codec


@dataclass(frozen=True)
class Sent:
    """One record the stage sent."""

    short: str
    key: str | bytes | None
    record: Record
    partition: int | None


@dataclass
class RecordingOutlet:
    """Records every send; can refuse oversize values or fail chosen topics."""

    too_large: int = 1_000_000
    fail: dict[str, list[BaseException]] = field(default_factory=dict)
    sent: list[Sent] = field(default_factory=list)

    def partitions(self, short: str) -> int:
        """Every topic has 6 partitions here."""
        return 6

    async def send_all(self, items: Sequence[Send]) -> None:
        """Record the sends (after encoding, as the worker does), or raise the planned failure. A record sent as
        the bytes it was read from (`Encoded`) is recorded as its record."""
        plain = [(short, key, r.record if isinstance(r, Encoded) else r, p) for short, key, r, _, p in items]
        for short, _, record, _ in plain:
            failures = self.fail.get(short)
            if failures:
                raise failures.pop(0)
            if len(record.model_dump_json()) > self.too_large:
                raise MessageSizeTooLargeError("value too large")
        self.sent.extend(Sent(short, key, record, partition) for short, key, record, partition in plain)

    def of(self, short: str) -> list[Record]:
        """The records sent to one topic."""
        return [s.record for s in self.sent if s.short == short]


@dataclass
class DictState:
    """Tables as dicts; every write is recorded with its partition."""

    tables: dict[str, dict[str, Any]]
    writes: list[tuple[int, str, str]] = field(default_factory=list)

    def view(self) -> Mapping[str, Mapping[str, Any]]:
        """The tables."""
        return self.tables

    async def write(self, groups: Iterable[tuple[int, Iterable[tuple[str, str, Any]], Any]]) -> None:
        """Apply the writes (each group inside its runner, as the worker does); a value of None deletes the key."""
        for partition, writes, run in groups:
            for name, key, value in writes:
                table = self.tables.setdefault(name, {})
                run(partial(table.pop, key, None) if value is None else partial(table.__setitem__, key, value))
                self.writes.append((partition, name, key))
