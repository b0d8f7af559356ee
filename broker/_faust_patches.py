"""Three adjustments of faust-streaming 0.15.3's consumer, and one check, applied when the worker app is built.

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

The third rewrites faust's per-record hand-over in its drain loop (`Consumer._drain_messages`), which is
`await wait_first(callback(message), suspend_flow.wait())` followed by `set_read_offset(tp, offset)`:

- It keeps seeks. faust drops a fetched record whose offset is below the partition's read offset, and sets that
  offset after each hand-over returns. A seek made while a hand-over waits on a full stream buffer (the worker's
  offset guard seeking back, the watchdog, or faust's own seek to the committed offsets after a rebalance) was
  overwritten when the hand-over returned, so the re-fetched records were dropped: with nothing newer to come,
  the partition stalled until the watchdog re-seeked it (21 s in a rebalance benchmark run). The read offset is
  now set only if no seek was made while the record was handed over (`Consumer.seek` and `seek_wait` count per
  partition, `Consumer.perform_seek` for all, and the value is compared), and only if the record reached the
  stream: faust also set it after a hand-over that a rebalance had interrupted, so that record, when fetched
  again, was dropped.
- With `direct` (the `direct_delivery` setting, on by default) it hands records over directly while the flow is
  active. faust's `wait_first` makes four tasks, an `asyncio.wait`, and cancels three, for every record, so that
  a rebalance can interrupt a delivery blocked on a full stream buffer. Under load that was most of the worker's
  per-record overhead and fed the agents so slowly that their batches stayed small (router 18-22, SLA tracker
  35-39 records a batch with 8,000 queued); directly, a saturated worker's CPU per notification fell by ~15% and
  its batches grew 2-3x (docs/benchmarks.md). What is given up: a delivery already blocked on a full stream
  buffer when a rebalance starts finishes when the agent makes room, instead of being abandoned; the agents'
  reader tasks keep draining faust's buffers into their own queues, and the worker leaves records of partitions
  revoked since their fetch to their new owner (`broker._offsets`). While the flow is suspended, and with
  `direct` off, faust's own `wait_first` hands each record over.

The rewrite refuses to run unless faust's two statements are found exactly once.

The check (`require_compiled_streams`): the worker refuses to run on faust's pure-Python stream iterator, which
acknowledges the events it skips after a rebalance (see there).
"""

from __future__ import annotations

import functools
import inspect
import re
import textwrap
from types import MappingProxyType
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer
from faust.transport.consumer import Consumer, ThreadDelegateConsumer
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

from broker.errors import ConfigurationError

__all__ = ["apply", "delivery_target", "fetch_targets_exist", "patch_drain", "require_compiled_streams",
           "target_exists", "tune_fetch"]

_log = structlog.get_logger(component="faust-guard")
_TARGET = "_add_gap"
_FACTORY = "_create_worker_consumer"
_FETCH_ATTRS = ("_fetch_min_bytes", "_fetch_max_wait_ms")
_applied = False
_fetch: dict[str, int] = {}
_factory: Any = None
_DRAIN = "_drain_messages"
_HANDOVER = re.compile(r"await self\.wait_first\(\s*callback\(message\),\s*self\.suspend_flow\.wait\(\)\s*\)"
                       r"(?P<gap>\s*)set_read_offset\(tp, offset\)")
_REWRITE = ("_mash_seen = (self._mash_seeks, self._mash_tp_seeks.get(tp), get_read_offset(tp)); "
            "_mash_delivered = await self._mash_hand_over(callback, message)"
            "\\g<gap>if _mash_delivered and _mash_seen == "
            "(self._mash_seeks, self._mash_tp_seeks.get(tp), get_read_offset(tp)): set_read_offset(tp, offset)")
_SEEKS = ("seek", "perform_seek")
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


def require_compiled_streams() -> None:
    """Refuse to run on faust's pure-Python stream iterator (`NO_CYTHON` set, or faust's compiled extension
    missing). After a rebalance a stream skips the events fetched in the previous consumer generation; the
    pure-Python iterator (`Stream._py_aiter`) acknowledges them as it skips them, even on a manual-ack stream, so
    faust's commit could pass records the worker never processed (lost if the partition then moves or the worker
    dies). The compiled iterator skips them unacknowledged, and they are read again after faust's seek."""
    import faust.streams

    if getattr(faust.streams, "_CStreamIterator", None) is None:
        raise ConfigurationError("faust's compiled stream iterator is not available (NO_CYTHON set, or faust "
                                 "installed without its extension): its pure-Python one acknowledges records it "
                                 "skips after a rebalance; unset NO_CYTHON or reinstall faust-streaming")


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
    hand-over (exactly once) is not there."""
    drain = _original_drain or getattr(Consumer, _DRAIN, None)
    if not callable(drain) or not all(callable(getattr(Consumer, name, None)) for name in _SEEKS) \
            or not callable(getattr(ThreadDelegateConsumer, "seek_wait", None)):
        return None
    try:
        source = textwrap.dedent(inspect.getsource(drain))
    except (OSError, TypeError):
        return None
    rewritten, found = _HANDOVER.subn(_REWRITE, source)
    return rewritten if found == 1 else None


def _counting_all(seek: Any) -> Any:
    """faust's seek of every partition to its committed offset, counted before and after (so a hand-over
    spanning either end sees it)."""

    @functools.wraps(seek)
    async def counted(self: Any) -> Any:
        self._mash_seeks += 1
        try:
            return await seek(self)
        finally:
            self._mash_seeks += 1

    return counted


def _counting_one(seek: Any) -> Any:
    """faust's seek of one partition, counted for that partition before and after."""

    @functools.wraps(seek)
    async def counted(self: Any, partition: Any, offset: int) -> Any:
        seeks = self.__dict__.setdefault("_mash_tp_seeks", {})
        seeks[partition] = seeks.get(partition, 0) + 1
        try:
            return await seek(self, partition, offset)
        finally:
            seeks[partition] += 1

    return counted


def _counting_many(seek_wait: Any) -> Any:
    """faust's seek of several partitions in its consumer thread (`seek_wait`), counted for each."""

    @functools.wraps(seek_wait)
    async def counted(self: Any, partitions: Any) -> Any:
        seeks = self.__dict__.setdefault("_mash_tp_seeks", {})
        for tp in partitions:
            seeks[tp] = seeks.get(tp, 0) + 1
        try:
            return await seek_wait(self, partitions)
        finally:
            for tp in partitions:
                seeks[tp] += 1

    return counted


async def _hand_over(self: Any, callback: Any, message: Any) -> bool:
    """Hand a fetched record to the agents' streams; whether it reached them. Directly while the flow is active
    (with `direct`), else with faust's `wait_first`, which a suspended flow (a rebalance) interrupts."""
    if self._mash_direct and not self.suspend_flow.is_set():
        await callback(message)
        return True
    delivery = callback(message)
    return delivery in (await self.wait_first(delivery, self.suspend_flow.wait())).done


def patch_drain(*, direct: bool) -> None:
    """Install the rewritten hand-over in faust's drain loop (once; later calls only set `direct`); refuse to run
    on a faust without it."""
    global _original_drain
    Consumer._mash_direct = direct  # type: ignore[attr-defined]
    if _original_drain is not None:
        return
    rewritten = delivery_target()
    if rewritten is None:
        raise ConfigurationError(f"faust Consumer.{_DRAIN} changed: revisit broker/_faust_patches.py")
    import faust.transport.consumer as module

    scope: dict[str, Any] = {}
    exec(compile(rewritten, module.__file__ or "faust/transport/consumer.py", "exec"), vars(module), scope)
    _original_drain = getattr(Consumer, _DRAIN)
    Consumer._mash_seeks = 0  # type: ignore[attr-defined]  # each consumer counts its own from its first seek
    Consumer._mash_tp_seeks = MappingProxyType({})  # type: ignore[attr-defined]  # each its own, from its first
    Consumer.perform_seek = _counting_all(Consumer.perform_seek)  # type: ignore[method-assign]
    Consumer.seek = _counting_one(Consumer.seek)  # type: ignore[method-assign]
    ThreadDelegateConsumer.seek_wait = _counting_many(ThreadDelegateConsumer.seek_wait)  # type: ignore[method-assign]
    Consumer._mash_hand_over = _hand_over  # type: ignore[attr-defined]
    setattr(Consumer, _DRAIN, scope[_DRAIN])
