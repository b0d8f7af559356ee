"""Three adjustments of faust-streaming 0.15.3's consumer, applied when the worker app is built.

faust treats a jump in fetched offsets (read 10, next record 50) as a gap of compacted or transactional
records and records it as acknowledged (`Consumer._add_gap`), so its next commit passes every offset in the
jump. None of our input topics is compacted or transactional: a jump means records were not delivered
(seen after SIGKILL restarts). The worker's offset guard (`broker._offsets`) seeks back and processes them;
this patch stops faust from committing past them meanwhile. It patches a private method, so `apply` checks
that the method still exists and refuses to start if it does not (a faust upgrade must revisit this);
tests/broker/test_offsets.py checks the same.

The second sets the fetch wait of the consumer faust builds, which faust hard-codes (`fetch.min.bytes` 1,
`fetch.max.wait.ms` 1500): with a trickle of records on many partitions every fetch returns at once with a
record or two, so the consumer thread spins through hundreds of fetch requests a second (each encoding and
decoding ~70 partitions in Python). Waiting up to 100 ms for 4 KB (the defaults in `broker.settings`) cuts that:
at 100 notifications/s the worker's CPU fell by about a third (8.7 -> 5.4 ms per notification) for ~18 ms more
median latency; an idle worker uses 2% of a core instead of 1% (docs/benchmarks.md). Under load a fetch
always finds 4 KB and returns at once. `tune_fetch` wraps faust's consumer factory and sets the two values
aiokafka's consumer reads when it starts; it too refuses to run on a faust or aiokafka without them.

The third delivers fetched records to the agents' streams directly while the flow is active. faust's drain loop
(`Consumer._drain_messages`) hands each record over with `wait_first(callback(message), suspend_flow.wait())`:
four tasks made, an `asyncio.wait`, three cancelled, for every record, so that a rebalance can interrupt a
delivery blocked on a full stream buffer. Under load that was most of the worker's per-record overhead and fed
the agents so slowly that their batches stayed small (router 18-22, SLA tracker 35-39 records a batch with 8,000
queued). `deliver_directly` rewrites that one expression (faust's code otherwise as it is) to
`await callback(message)` while the flow is active and faust's own `wait_first` when it is suspended: a saturated
worker's CPU per notification fell by ~15% and its batches grew 2-3x (docs/benchmarks.md). What is given up: a
delivery already blocked on a full stream buffer when a rebalance starts finishes when the agent makes room,
instead of being abandoned; the agents' reader tasks keep draining faust's buffers into their own queues, and the
worker leaves records of partitions revoked since their fetch to their new owner (`broker._offsets`). The
rewrite refuses to run unless faust's expression is found exactly once.
"""

from __future__ import annotations

import inspect
import re
import textwrap
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer
from faust.transport.consumer import Consumer
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

from broker.errors import ConfigurationError

__all__ = ["apply", "deliver_directly", "delivery_target", "fetch_targets_exist", "target_exists", "tune_fetch"]

_log = structlog.get_logger(component="faust-guard")
_TARGET = "_add_gap"
_FACTORY = "_create_worker_consumer"
_FETCH_ATTRS = ("_fetch_min_bytes", "_fetch_max_wait_ms")
_applied = False
_fetch: dict[str, int] = {}
_factory: Any = None
_DRAIN = "_drain_messages"
_HANDOVER = re.compile(r"await self\.wait_first\(\s*callback\(message\),\s*self\.suspend_flow\.wait\(\)\s*\)")
_DIRECT = ("await (callback(message) if not self.suspend_flow.is_set() "
           "else self.wait_first(callback(message), self.suspend_flow.wait()))")
_original_drain: Any = None


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


def fetch_targets_exist() -> bool:
    """Whether faust still builds its consumer in the method `tune_fetch` wraps, and aiokafka's consumer still
    reads the two attributes when it starts."""
    return callable(getattr(AIOKafkaConsumerThread, _FACTORY, None)) and all(
        attr in AIOKafkaConsumer.start.__code__.co_names for attr in _FETCH_ATTRS)


def tune_fetch(*, min_bytes: int, max_wait_ms: int) -> None:
    """Make the worker consumers faust builds from now on fetch with these values (later calls replace them)."""
    global _factory
    if not fetch_targets_exist():
        raise ConfigurationError("faust's consumer factory or aiokafka's fetch settings moved: revisit "
                                 "broker/_faust_patches.py")
    _fetch.update({"_fetch_min_bytes": min_bytes, "_fetch_max_wait_ms": max_wait_ms})
    if _factory is not None:
        return
    _factory = getattr(AIOKafkaConsumerThread, _FACTORY)

    def create(self: Any, transport: Any) -> Any:
        consumer = _factory(self, transport)
        for attr, value in _fetch.items():
            setattr(consumer, attr, value)
        return consumer

    setattr(AIOKafkaConsumerThread, _FACTORY, create)


def delivery_target() -> str | None:
    """The source of faust's drain loop with its per-record hand-over rewritten, or None when the loop or the
    expression (exactly once) is not there."""
    drain = _original_drain or getattr(Consumer, _DRAIN, None)
    if not callable(drain):
        return None
    try:
        source = textwrap.dedent(inspect.getsource(drain))
    except (OSError, TypeError):
        return None
    rewritten, found = _HANDOVER.subn(_DIRECT, source)
    return rewritten if found == 1 else None


def deliver_directly() -> None:
    """Install the direct hand-over in faust's drain loop (idempotent); refuse to run on a faust without it."""
    global _original_drain
    if _original_drain is not None:
        return
    rewritten = delivery_target()
    if rewritten is None:
        raise ConfigurationError(f"faust Consumer.{_DRAIN} changed: revisit broker/_faust_patches.py")
    import faust.transport.consumer as module

    scope: dict[str, Any] = {}
    exec(compile(rewritten, module.__file__ or "faust/transport/consumer.py", "exec"), vars(module), scope)
    _original_drain = getattr(Consumer, _DRAIN)
    setattr(Consumer, _DRAIN, scope[_DRAIN])
