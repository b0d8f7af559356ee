"""One guard around faust-streaming 0.15.3's consumer, applied once when the worker app is built.

faust treats a jump in fetched offsets (read 10, next record 50) as a gap of compacted or transactional
records and records it as acknowledged (`Consumer._add_gap`), so its next commit passes every offset in the
jump. None of our input topics is compacted or transactional: a jump means records were not delivered
(seen after SIGKILL restarts). The worker's offset guard (`broker._offsets`) seeks back and processes them;
this patch stops faust from committing past them meanwhile. It patches a private method, so `apply` checks
that the method still exists and refuses to start if it does not (a faust upgrade must revisit this);
tests/broker/test_offsets.py checks the same.
"""

from __future__ import annotations

from typing import Any

import structlog
from faust.transport.consumer import Consumer

from broker.errors import ConfigurationError

__all__ = ["apply", "target_exists"]

_log = structlog.get_logger(component="faust-guard")
_TARGET = "_add_gap"
_applied = False


async def _refuse_gap(self: Any, tp: Any, offset_from: int, offset_to: int) -> None:
    _log.warning("offset gap not acknowledged", topic=tp.topic, partition=tp.partition,
                 offset_from=offset_from, offset_to=offset_to)


def target_exists() -> bool:
    """Whether faust still has the method this guard replaces."""
    return callable(getattr(Consumer, _TARGET, None))


def apply() -> None:
    """Install the guard (idempotent); refuse to run on a faust without the method."""
    global _applied
    if _applied:
        return
    if not target_exists():
        raise ConfigurationError(f"faust Consumer.{_TARGET} is gone: revisit broker/_faust_patches.py")
    setattr(Consumer, _TARGET, _refuse_gap)
    _applied = True
