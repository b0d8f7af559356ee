"""Guards around faust-streaming 0.15.3's consumer, applied once when the worker app is built.

faust treats a jump in offsets (read offset 10, next record 50) as a gap of compacted or transactional
records and acknowledges it, so the commit moves past it. None of our input topics is compacted or
transactional, so here a jump means records were skipped; we saw it happen after a SIGKILL restart, where
routed notifications went missing while the consumer group showed no lag. With this guard the gap is not
acknowledged: the commit stays below it, the lag stays visible, and the stall watchdog re-seeks to the
committed offset, which re-reads the skipped records (at-least-once; outputs are idempotent).
"""

from __future__ import annotations

from typing import Any

import structlog
from faust.transport.consumer import Consumer

__all__ = ["apply"]

_log = structlog.get_logger(component="faust-guard")
_applied = False


async def _refuse_gap(self: Any, tp: Any, offset_from: int, offset_to: int) -> None:
    _log.warning("offset gap not acknowledged", topic=tp.topic, partition=tp.partition,
                 offset_from=offset_from, offset_to=offset_to)


def apply() -> None:
    """Install the guards (idempotent)."""
    global _applied
    if not _applied:
        Consumer._add_gap = _refuse_gap  # type: ignore[method-assign]
        _applied = True
