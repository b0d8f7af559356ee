"""Recording stand-ins for the worker's two I/O boundaries (`broker.outlet.Outlet`, `StateWriter`).

The stages under test are the worker's own classes; only the broker behind them is replaced. A fake can be
told to fail: `fail[short] = exc` raises on send to that topic, `too_large` refuses values over a size.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiokafka.errors import MessageSizeTooLargeError

from schemas.codec import Codec
from schemas.models import Record

__all__ = ["DictState", "RecordingOutlet", "Sent"]


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
    codec: Codec = field(default_factory=Codec)

    def partitions(self, short: str) -> int:
        """Every topic has 6 partitions here."""
        return 6

    async def send(self, short: str, key: str | bytes | None, record: Record, *,
                   headers: Mapping[str, bytes] | None = None, partition: int | None = None) -> Awaitable[Any]:
        """Record the send (after encoding, as the worker does), or raise the planned failure."""
        failures = self.fail.get(short)
        if failures:
            raise failures.pop(0)
        if len(self.codec.encode(record)) > self.too_large:
            raise MessageSizeTooLargeError("value too large")
        self.sent.append(Sent(short, key, record, partition))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

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

    async def write(self, partition: int, writes: Iterable[tuple[str, str, Any]]) -> None:
        """Apply the writes."""
        for name, key, value in writes:
            self.tables.setdefault(name, {})[key] = value
            self.writes.append((partition, name, key))
