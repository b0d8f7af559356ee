"""A codec prepared against `InMemoryRegistry` (no HTTP), for unit tests of anything that encodes or decodes."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping

from schemas.codec import Codec
from schemas.models import ALL_RECORDS, Record
from schemas.registry import InMemoryRegistry

__all__ = ["TOPIC", "unit_codec"]

TOPIC = "t.unit"


def unit_codec(topics: Mapping[str, Iterable[type[Record]]] | None = None) -> Codec:
    """A codec over a fresh InMemoryRegistry, prepared for `topics` (default: every record on TOPIC).
    Call it outside a running event loop (it runs `prepare` with asyncio.run)."""
    codec = Codec(InMemoryRegistry())
    asyncio.run(codec.prepare(topics if topics is not None else {TOPIC: ALL_RECORDS}))
    return codec
