"""Failure classification and retry (broker.failure)."""

from __future__ import annotations

import pytest
from aiokafka.errors import KafkaConnectionError, MessageSizeTooLargeError, RequestTimedOutError

from broker.errors import ConfigurationError, TransportError
from broker.failure import StageFailed, is_transient, persist


@pytest.mark.parametrize("exc", [KafkaConnectionError(), RequestTimedOutError(), TimeoutError(), TransportError("x")])
def test_broker_trouble_is_transient(exc: BaseException) -> None:
    """Unreachable broker, timeouts and retriable product errors are transient."""
    assert is_transient(exc)


@pytest.mark.parametrize("exc", [MessageSizeTooLargeError(), ValueError(), ConfigurationError("x"), KeyError("k")])
def test_bad_data_and_bugs_are_deterministic(exc: BaseException) -> None:
    """A record too large, a bug or bad configuration will fail again: not transient."""
    assert not is_transient(exc)


async def test_persist_retries_transient_failures_until_success() -> None:
    """Three transient failures then success: the result comes back, with three backoff sleeps."""
    calls, sleeps = [], []

    async def attempt() -> str:
        calls.append(1)
        if len(calls) <= 3:
            raise KafkaConnectionError("down")
        return "ok"

    async def sleep(d: float) -> None:
        sleeps.append(d)

    assert await persist("s", attempt, sleep=sleep) == "ok"
    assert len(sleeps) == 3 and sleeps == sorted(sleeps)


async def test_persist_raises_a_deterministic_failure_with_its_stage() -> None:
    """A deterministic failure is raised once as StageFailed naming the stage, the cause kept."""

    async def attempt() -> None:
        raise MessageSizeTooLargeError()

    with pytest.raises(StageFailed) as info:
        await persist("router.emit", attempt)
    assert info.value.stage == "router.emit"
    assert isinstance(info.value.cause, MessageSizeTooLargeError)
