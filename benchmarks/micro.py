"""In-process CPU per notification, no Kafka: what the worker's Python costs before any I/O (process CPU time,
so a busy machine slows it less than wall time would).

The simulated mix goes through the product's own pieces with an in-memory schema registry: the SDK's check and
encode, the codec's decode (split into the Avro read and the pydantic validation), the casebook's routing
(`broker.casebook.on_notification` over dict tables), and the three real stages (`IntakeStage`, `RouterStage`,
and `SlaStage` over the router's outputs) end to end over an outlet that encodes every send as the worker's
does and a state writer that serialises every write to JSON as faust's changelog does.

    .venv/bin/python -m benchmarks.micro [count]
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog
from faust.serializers import codecs

from broker import casebook
from broker._deadlines import DefaultDeadlines
from broker.batch import Received
from broker.intake_stage import SEEN_TABLE, IntakeStage
from broker.outlet import Inbound, Send, encode_sends, partition_of
from broker.reference import DEFAULT_SCHOOLS, load_schools
from broker.router_stage import RouterStage
from broker.run import last_night
from broker.sla_stage import TABLES as SLA_TABLES
from broker.sla_stage import SlaStage
from broker.topics import INTAKE_TOPICS, ROUTE_TOPICS, catalogue
from producers.simulator import simulate_night
from schemas.codec import Codec
from schemas.models import AgencyType, Record
from schemas.registry import InMemoryRegistry
from schemas.rules import notification_errors

__all__ = ["ALL_STAGES", "MicroResult", "run_micro"]
_JSON = codecs.get_codec("json")  # faust's table value codec

ALL_STAGES = "all three stages (the worker's Python, no I/O)"

PREFIX = "micro"
SECRET = b"micro-benchmark-secret"
BATCH = 500
_SIX = collections.defaultdict(lambda: 6)  # every topic has 6 partitions here
_DEVNULL = open(os.devnull, "w")  # noqa: SIM115 - the log sink for the whole process


@dataclass
class _EncodingOutlet:
    """The worker's outlet without Kafka: every send is encoded with the real codec, then kept."""

    codec: Codec
    names: Mapping[str, str]
    sent: list[tuple[str, bytes | None, bytes, Mapping[str, bytes] | None, int]] = field(default_factory=list)

    def partitions(self, short: str) -> int:
        return 6

    async def send_all(self, items: Sequence[Send]) -> None:
        raw = encode_sends(self.codec, items, self.names, _SIX)
        for (short, *_), (_, partition, raw_key, value, headers) in zip(items, raw, strict=True):
            self.sent.append((short, raw_key, value, dict(headers), partition))


class _StoredTable:
    """A table read as the worker reads a faust store: each value decoded from its stored JSON on `get`."""

    def __init__(self, data: dict[str, bytes]) -> None:
        self._data = data

    def get(self, key: str, default: Any = None) -> Any:
        raw = self._data.get(key)
        return default if raw is None else _JSON.loads(raw)

    def values(self) -> Iterable[Any]:
        return [_JSON.loads(raw) for raw in self._data.values()]


@dataclass
class _JsonState:
    """Tables of faust-encoded JSON: each write encoded for the store and again for the changelog record, each
    read decoded, as `broker.outlet.DurableTables` over faust's stores does (faust's JSON codec, which uses
    orjson when it is installed)."""

    tables: dict[str, dict[str, bytes]]
    bytes_written: int = 0

    def view(self) -> Mapping[str, _StoredTable]:
        return {name: _StoredTable(data) for name, data in self.tables.items()}

    async def write(self, groups: Iterable[tuple[int, Iterable[tuple[str, str, Any]], Any]]) -> None:
        for _, writes, _ in groups:
            for name, key, value in writes:
                table = self.tables.setdefault(name, {})
                if value is None:
                    table.pop(key, None)
                    continue
                table[key] = _JSON.dumps(value)
                self.bytes_written += len(_JSON.dumps(value))  # the changelog record's own encoding


@dataclass
class MicroResult:
    """Microseconds per notification of each piece, and what the stages produced."""

    count: int
    us: dict[str, float]
    outputs_per_notification: float
    sends_per_notification: dict[str, float]
    writes_bytes_per_notification: float

    def lines(self) -> list[str]:
        """The result as printable lines."""
        out = [f"in-process CPU per notification ({self.count} simulated notifications, one core):"]
        out += [f"  {name:<44} {us:8.0f} us" for name, us in self.us.items()]
        sends = ", ".join(f"{k} {v:.2f}" for k, v in self.sends_per_notification.items())
        out.append(f"  outputs (routed) per notification {self.outputs_per_notification:.2f}; sends per notification: "
                   f"{sends}; state JSON {self.writes_bytes_per_notification:.0f} B")
        return out


def _timed(fn: Callable[[], Any], n: int, repeat: int = 3) -> tuple[float, Any]:
    """Best of `repeat` (the machine is shared): microseconds per item, and the last result."""
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.process_time()
        out = fn()
        best = min(best, time.process_time() - t0)
    return best * 1e6 / n, out


async def _prepare() -> Codec:
    codec = Codec(InMemoryRegistry())
    cat = catalogue(PREFIX)
    await codec.prepare({cat.name(s.name): s.records for s in cat.specs if s.records})
    return codec


def _agency(r: Record) -> AgencyType:
    agency: AgencyType = r.envelope.source.agency_type  # type: ignore[attr-defined]
    return agency


async def run_micro(count: int = 1000, seed: int = 2024) -> MicroResult:
    """Run every piece over `count` simulated notifications and time it."""
    _logging(logging.INFO)
    codec = await _prepare()
    cat = catalogue(PREFIX)
    now = datetime.now(UTC)
    schools = load_schools(DEFAULT_SCHOOLS)
    warm = simulate_night(last_night(now), seed + 1, 200)  # imports, caches and first-call costs out of the way
    await _stages(codec, warm, [cat.intake(_agency(r)) for r in warm],
                  [codec.encode(r, cat.intake(_agency(r))) for r in warm], schools, now)
    records = simulate_night(last_night(now), seed, count)
    n = len(records)
    us: dict[str, float] = {}
    topics = [cat.intake(_agency(r)) for r in records]
    us["SDK check (field rules)"], errors = _timed(
        lambda: [notification_errors(r, _agency(r), now) for r in records], n)
    assert not any(errors), "the simulated night breaks a rule"
    us["SDK encode (Avro, Confluent framing)"], values = _timed(
        lambda: [codec.encode(r, t) for r, t in zip(records, topics, strict=True)], n)
    us["decode: Avro read (fastavro)"], data = _timed(lambda: [codec.peek(v) for v in values], n)
    models = [type(r) for r in records]
    us["decode: pydantic validation"], _ = _timed(
        lambda: [m.model_validate(d) for m, d in zip(models, data, strict=True)], n)
    us["decode: whole (codec.decode)"], decoded = _timed(lambda: [codec.decode(v) for v in values], n)

    # The casebook alone: routing each notification against fresh dict tables, writes applied in order.
    deadlines = DefaultDeadlines()

    def route_all() -> int:
        tables: dict[str, dict[str, Any]] = {name: {} for name in casebook.TABLES}
        outputs = 0
        for r in decoded:
            step = casebook.on_notification(r, received=now, tables=tables, schools=schools,
                                            secret=SECRET, deadlines=deadlines)
            casebook.apply_writes(tables, step.writes)
            outputs += len(step.outputs)
        return outputs

    us["casebook.on_notification (routing, state)"], outputs = _timed(route_all, n)

    runs = [await _stages(codec, records, topics, values, schools, now) for _ in range(2)]
    intake_us, router_us, sla_us = (min(r[i] for r in runs) for i in (0, 1, 4))
    sends, state_bytes = runs[0][2], runs[0][3]
    us["intake stage end to end (decode..encode)"] = intake_us
    us["router stage end to end (decode..encode)"] = router_us
    us["SLA tracker over the routed outputs"] = sla_us
    us[ALL_STAGES] = intake_us + router_us + sla_us
    per_line = _log_line_us()
    lines = 3 / BATCH  # one per stage per batch: the per-notification lines are debug (not rendered at INFO)
    us[f"  of which INFO log lines ({lines:.3f} at {per_line:.0f} us)"] = lines * per_line
    return MicroResult(n, us, outputs / n, sends, state_bytes)


def _log_line_us(n: int = 5000) -> float:
    """Microseconds to render one per-record INFO line like the stages' (console renderer, to /dev/null)."""
    log = structlog.get_logger(component="router")
    nid = "8b8436fe-307f-441c-87eb-1e7120982bdb"

    def lines() -> None:
        for i in range(n):
            log.info("routed", topic="mash.internal.accepted", partition=3, offset=i, notification_id=nid,
                     why=None, outputs=2, broadcast=False)

    return _timed(lines, n)[0]


def _logging(level: int) -> None:
    """The worker's structlog set-up (console renderer), rendering to /dev/null: the cost stays, the noise goes."""
    structlog.configure(
        processors=[structlog.contextvars.merge_contextvars, structlog.processors.add_log_level,
                    structlog.processors.TimeStamper(fmt="iso", utc=True), structlog.dev.ConsoleRenderer(colors=False)],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=_DEVNULL), cache_logger_on_first_use=False)


async def _stages(codec: Codec, records: Sequence[Record], topics: Sequence[str], values: Sequence[bytes],
                  schools: Mapping[str, Any], now: datetime) -> tuple[float, float, dict[str, float], float, float]:
    """The three real stages over the records, in batches of 500 as the worker takes them, on fresh state:
    (intake us, router us, sends per notification per topic (intake and router), state JSON bytes per
    notification (intake and router), SLA tracker us)."""
    n = len(records)
    cat = catalogue(PREFIX)
    names = {s.name: cat.name(s.name) for s in cat.specs}
    intake_out = _EncodingOutlet(codec, names)
    intake_state = _JsonState({SEEN_TABLE: {}})
    intake = IntakeStage(codec=codec, secret=SECRET, agencies={cat.name(t): a for a, t in INTAKE_TOPICS.items()},
                         outlet=intake_out, state=intake_state)
    ms = int(now.timestamp() * 1000)
    keys = [str(r.envelope.notification_id).encode() for r in records]  # type: ignore[attr-defined]
    inbound = [Inbound(t, partition_of(k, 6), i, k, v, ms, {})
               for i, (k, t, v) in enumerate(zip(keys, topics, values, strict=True))]
    t0 = time.process_time()
    for i in range(0, n, BATCH):
        await intake.handle_batch([Received(m) for m in inbound[i:i + BATCH]])
    intake_us = (time.process_time() - t0) * 1e6 / n

    router_out = _EncodingOutlet(codec, names)
    router_state = _JsonState({name: {} for name in casebook.TABLES})
    router = RouterStage(codec=codec, secret=SECRET, schools=schools, deadlines=DefaultDeadlines(),
                         outlet=router_out, state=router_state)
    accepted = [Inbound(names["internal.accepted"], p, i, k, v, ms, h or {})
                for i, (short, k, v, h, p) in enumerate(intake_out.sent) if short == "internal.accepted"]
    t0 = time.process_time()
    for i in range(0, len(accepted), BATCH):
        await router.handle_batch([Received(m) for m in accepted[i:i + BATCH]])
    router_us = (time.process_time() - t0) * 1e6 / n

    tracker = SlaStage(codec=codec, outlet=_EncodingOutlet(codec, names), state=_JsonState({t: {} for t in SLA_TABLES}))
    routed = [Inbound(names[short], p, i, k, v, ms, {}) for i, (short, k, v, _, p) in enumerate(router_out.sent)
              if short in ROUTE_TOPICS.values()]
    t0 = time.process_time()
    for i in range(0, len(routed), BATCH):
        await tracker.handle_batch([Received(m) for m in routed[i:i + BATCH]])
    sla_us = (time.process_time() - t0) * 1e6 / n
    sends: dict[str, float] = {}
    for short, *_ in [*intake_out.sent, *router_out.sent]:
        sends[short] = sends.get(short, 0) + 1 / n
    return intake_us, router_us, dict(sorted(sends.items())), (intake_state.bytes_written
                                                                + router_state.bytes_written) / n, sla_us


def main() -> None:
    """Print the micro-benchmark."""
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    for line in asyncio.run(run_micro(count)).lines():
        print(line)


if __name__ == "__main__":
    main()
