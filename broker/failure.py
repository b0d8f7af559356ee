"""How the worker tells a failure worth retrying from one that will fail again, and how it retries.

Transient: Kafka unreachable or slow (aiokafka's retriable errors, timeouts, connection errors) and our own
errors flagged `retriable`. These are retried with capped exponential backoff, for as long as it takes: a
record is never acknowledged past a transient failure. Everything else is deterministic (bad data, a bug,
a record too large for the producer): the record goes to the dead letter at once with the stage that
failed, so it can be redriven after a fix.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiokafka.errors import KafkaError

from broker.errors import BrokerError
from broker.logs import get_logger

__all__ = ["StageFailed", "is_transient", "persist"]

T = TypeVar("T")
_log = get_logger("failure")


class StageFailed(BrokerError):
    """A deterministic failure of one stage of handling a record (the record is dead-lettered)."""

    def __init__(self, stage: str, cause: BaseException) -> None:
        super().__init__(f"{stage}: {type(cause).__name__}")
        self.stage = stage
        self.cause = cause


def is_transient(exc: BaseException) -> bool:
    """True for failures that may succeed when retried (the broker restarting, a timeout)."""
    if isinstance(exc, KafkaError):
        return bool(getattr(exc, "retriable", False)) or type(exc).__name__ in _TRANSIENT_NAMES
    if isinstance(exc, BrokerError):
        return exc.retriable
    return isinstance(exc, asyncio.TimeoutError | TimeoutError | ConnectionError)


# aiokafka raises these without `retriable` set although a retry after the broker returns succeeds.
_TRANSIENT_NAMES = frozenset({"KafkaConnectionError", "KafkaTimeoutError", "ProducerClosed", "NodeNotReadyError"})


async def persist(
    stage: str,
    attempt: Callable[[], Awaitable[T]],
    *,
    first_delay: float = 0.2,
    max_delay: float = 15.0,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> T:
    """Run `attempt` until it succeeds, retrying transient failures with backoff.

    A deterministic failure is raised as `StageFailed(stage, cause)`; cancellation passes through.
    """
    delay = first_delay
    tries = 0
    while True:
        try:
            return await attempt()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not is_transient(exc):
                raise StageFailed(stage, exc) from exc
            tries += 1
            _log.warning("transient failure; retrying", stage=stage, error=type(exc).__name__, tries=tries,
                         delay=round(delay, 2))
            await sleep(delay)
            delay = min(delay * 2, max_delay)
