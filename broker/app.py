"""The faust worker: wiring only. Two agents, each at-least-once with concurrency 1, scaled by partitions.

1. intake (the four intake topics, keyed by notification id) -> `broker.intake_stage.IntakeStage`;
2. router (`internal.accepted`, keyed by home authority, so one authority's state lives in one partition)
   -> `broker.router_stage.RouterStage` over the `broker.casebook` tables.

Acknowledgement is manual (`stream.noack()`, `event.ack()`): a record is acknowledged only after its
outcome (outputs, audit, state changelog) is durable, and only in offset order (`broker._offsets`), so
faust's periodic commit never passes a record that has no outcome. `received` is the broker's append time
of the intake record (intake topics use LogAppendTime), so a redelivery derives the same outputs.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import faust
import structlog
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import IllegalStateError
from aiokafka.structs import TopicPartition

from broker import _faust_patches, casebook, sla_stage
from broker._deadlines import DefaultDeadlines
from broker._offsets import OffsetGuard
from broker.batch import Received
from broker.errors import ConfigurationError
from broker.faults import Faults
from broker.intake_stage import SEEN_TABLE, IntakeStage
from broker.logs import configure_logging, get_logger
from broker.metrics import Metrics
from broker.outlet import DurableTables, Inbound, KafkaOutlet
from broker.reference import DEFAULT_SCHOOLS, School, load_schools
from broker.router_stage import RouterStage
from broker.settings import Settings
from broker.topics import INTAKE_TOPICS, ROUTE_TOPICS, catalogue
from broker.watchdog import Action as WatchAction
from broker.watchdog import StallWatch
from schemas.codec import Codec
from schemas.kafka_auth import KafkaAuth
from schemas.registry import SchemaRegistry

__all__ = ["Stage", "create_app", "faust_app", "run_worker", "serve_stage"]

log = get_logger("worker")
_GAUGE_EVERY = 60.0  # seconds between recomputations of the open-clock gauges (each a pass over every open clock)
class Stage(Protocol):
    """What `_serve` drives: a stage settling a batch of records to their outcomes."""

    async def handle_batch(self, items: Sequence[Received]) -> Sequence[Any]: ...


async def _seek(consumer: Any, tp: Any, offset: int) -> None:
    """Seek one partition in faust's consumer thread (`seek_wait`). `Consumer.seek` calls aiokafka's seek from the
    event loop's thread while the consumer thread fetches: a worker crashed on it (aiokafka's fetcher, `KeyError`
    on its buffered records) when the re-seek after a resume made seeks frequent at rebalances."""
    await consumer.seek_wait({tp: offset})


class _Progress:
    """What each agent is doing (for the watchdog) and where each partition stands (the offset guard)."""

    def __init__(self, bootstrap: str, group: str, auth: KafkaAuth | None = None) -> None:
        self.guard = OffsetGuard()
        self._auth = auth or KafkaAuth()
        self.busy: dict[str, float] = {}
        self._bootstrap = bootstrap
        self._group = group

    async def committed(self, tps: list[Any], consumer: Any) -> dict[Any, int]:
        """The group's committed offsets of partitions, else their log start (auto.offset.reset=earliest)."""
        admin = AIOKafkaAdminClient(bootstrap_servers=self._bootstrap, client_id=f"{self._group}-guard",
                                    **self._auth.aiokafka())
        await admin.start()
        try:
            offsets = await admin.list_consumer_group_offsets(
                self._group, partitions=[TopicPartition(tp.topic, tp.partition) for tp in tps]
            )
        finally:
            await admin.close()
        out: dict[Any, int] = {}
        missing = []
        for tp in tps:
            meta = offsets.get(TopicPartition(tp.topic, tp.partition))
            if meta is not None and meta.offset >= 0:
                out[tp] = int(meta.offset)
            else:
                missing.append(tp)
        if missing:
            earliest = await consumer.earliest_offsets(*missing)
            out.update({tp: int(earliest.get(tp, 0) or 0) for tp in missing})
        return out

    async def positions(self, consumer: Any) -> dict[Any, int]:
        """The next offset to process of every assigned input partition: the guard's, else the group's commit
        (one lookup for all the partitions the guard does not track yet)."""
        tps = [tp for tp in consumer.assignment() if not tp.topic.endswith("-changelog")]
        known = {tp: self.guard.position(tp) for tp in tps}
        out = {tp: pos for tp, pos in known.items() if pos is not None}
        unknown = [tp for tp, pos in known.items() if pos is None]
        if unknown:
            out.update(await self.committed(unknown, consumer))
        return out

    async def reseek(self, consumer: Any) -> int:
        """Seek every assigned input partition to the next offset to process: the guard's, else the group's
        commit. Returns how many were sought. See `_reseek_on_resume` for why."""
        sought = 0
        for tp, pos in (await self.positions(consumer)).items():
            try:
                await _seek(consumer, tp, pos)
                sought += 1
            except IllegalStateError:  # revoked meanwhile: its new owner starts at the group's commit
                continue
        return sought


async def _serve(app: faust.App, name: str, stream: faust.StreamT[bytes], stage: Stage, progress: _Progress,
                 *, batch: int) -> None:
    """Take what has arrived (up to `batch` records), settle it through the stage, then acknowledge in offset
    order: a record is acknowledged only after its outcome is durable, and never past one without an outcome.

    A reader task iterates faust's manual-ack stream and queues each event with a copy of its context (faust's
    table stores find a record's partition from the current event); this loop drains the queue in batches.
    """
    noack: Any = stream.noack()  # type: ignore[attr-defined]  # faust's documented manual-ack stream
    queue: asyncio.Queue[tuple[Any, contextvars.Context]] = asyncio.Queue(maxsize=batch)

    async def read() -> None:
        async for event in noack.events():
            await queue.put((event, contextvars.copy_context()))

    reader = asyncio.ensure_future(read())
    try:
        while True:
            waiting = asyncio.ensure_future(queue.get())
            done, _ = await asyncio.wait({waiting, reader}, return_when=asyncio.FIRST_COMPLETED)
            if waiting not in done:
                waiting.cancel()
                reader.result()  # the stream ended or failed: let faust see it
                return
            items = [waiting.result()]
            while len(items) < batch and not queue.empty():
                items.append(queue.get_nowait())
            await _settle(app, name, items, stage, progress)
    finally:
        reader.cancel()


async def _settle(app: faust.App, name: str, items: list[tuple[Any, contextvars.Context]], stage: Stage,
                  progress: _Progress) -> None:
    guard = progress.guard
    assigned = set(app.consumer.assignment())
    unknown = list(dict.fromkeys(e.message.tp for e, _ in items
                                 if e.message.tp in assigned and not guard.knows(e.message.tp)))
    if unknown:  # partitions first seen since an assignment: start them at the group's commit (one lookup)
        for part, committed in (await progress.committed(unknown, app.consumer)).items():
            guard.start(part, committed)
    plan = guard.triage([(e.message.tp, e.message.offset) for e, _ in items], assigned)
    for i in plan.redelivered:
        items[i][0].ack()
    if plan.stale:
        first = items[plan.stale[0]][0].message
        log.info("records of partitions revoked since they were fetched left to their new owner", agent=name,
                 records=len(plan.stale), topic=first.tp.topic, partition=first.tp.partition)
    for key, target in plan.seeks.items():
        tp: Any = key
        log.warning("offsets skipped by the consumer; seeking back", topic=tp.topic, partition=tp.partition,
                    expected=target)
        try:
            await _seek(app.consumer, tp, target)
        except IllegalStateError:  # revoked meanwhile: its new owner starts at the group's commit
            guard.forget([tp])
        except Exception:  # the batch's ready records count as done in the guard: never leave them unsettled
            log.error("seek failed; exiting for the supervisor", agent=name, topic=tp.topic, partition=tp.partition)
            os._exit(70)
    ready = [items[i] for i in plan.ready]
    if not ready:
        return
    progress.busy[name] = time.monotonic()
    try:
        await stage.handle_batch([Received(Inbound.of(e.message), ctx.run) for e, ctx in ready])
    except asyncio.CancelledError:
        raise  # shutting down: the records stay unacknowledged and are read again
    except BaseException:
        log.error("records left unacknowledged: no outcome could be recorded; exiting for the supervisor",
                  agent=name, records=len(ready), first_offset=ready[0][0].message.offset)
        os._exit(70)
    finally:
        progress.busy.pop(name, None)
    for event, _ in ready:
        event.ack()


def faust_app(settings: Settings, group: str, datadir: Path, *, partitions: int, replication: int) -> faust.App:
    """The worker's faust application (no agents yet), with faust patched as the worker runs it (see
    `broker._faust_patches`): at-least-once, acks=all, the fetch tuning, the drain loop's hand-over."""
    _faust_patches.apply()
    _faust_patches.require_compiled_streams()
    _faust_patches.patch_drain(direct=settings.direct_delivery)
    _faust_patches.tune_fetch(min_bytes=settings.fetch_min_bytes, max_wait_ms=settings.fetch_max_wait_ms)
    return faust.App(
        group,
        broker=f"kafka://{settings.kafka_bootstrap}",
        store=settings.table_store,
        datadir=str(datadir),
        web_enabled=False,
        topic_replication_factor=replication,
        topic_partitions=partitions,
        processing_guarantee="at_least_once",
        producer_acks=-1,
        producer_linger=0.005,  # batch the sends of a settled batch into few produce requests
        producer_max_batch_size=512 * 1024,
        broker_commit_every=100,
        broker_commit_interval=1.0,
        consumer_auto_offset_reset="earliest",
        table_cleanup_interval=3600.0,
        # No standby replicas (faust's default is 1). A standby store can skip changelog records: faust's recovery
        # resumes the standby partitions, then clears its changelog queue when it resumes the flow, dropping what
        # was fetched meanwhile, and the store's offset moves past the gap. Taking a partition over, faust trusts
        # that offset: after a rebalance under load, standby stores replayed from it came out hundreds of keys
        # short (people, notifications, referrals, open SLA clocks). Without standbys a worker taking a partition
        # over replays its changelog from its own store's offset, gap-free (docs/benchmarks.md, eighth pass;
        # tests/integration/test_stores.py).
        table_standby_replicas=0,
        broker_session_timeout=10.0,
        broker_heartbeat_interval=3.0,
        stream_wait_empty=False,
        **_faust_credentials(settings.kafka_auth()),
    )


def serve_stage(app: faust.App, name: str, topic: Any, stage: Stage, settings: Settings,
                progress: _Progress | None = None) -> None:
    """Serve one stage from `topic` with a faust agent of concurrency 1 (named `broker.app.<name>_agent`) over
    `_serve`'s batching, offset guard and acknowledgements: the worker's three stages, sharing one `progress`, and
    `benchmarks.faust_floor`'s stage that does no work (a progress of its own)."""
    progress = progress or _Progress(settings.kafka_bootstrap, app.conf.id, settings.kafka_auth())

    async def agent(stream: faust.StreamT[bytes]) -> None:
        await _serve(app, name, stream, stage, progress, batch=settings.batch_size)

    app.agent(topic, concurrency=1, name=f"{__name__}.{name}_agent")(agent)


def create_app(settings: Settings, *, schools: dict[str, School] | None = None) -> faust.App:
    """Build the worker application for one topic prefix."""
    configure_logging(json=settings.log_json)
    structlog.contextvars.bind_contextvars(worker=settings.worker_id)
    cat = catalogue(settings.topic_prefix)
    codec = Codec(SchemaRegistry(settings.registry_url))
    secret = settings.identity_secret.get_secret_value().encode()
    datadir = Path(settings.worker_data_dir).resolve() / settings.topic_prefix
    datadir.mkdir(parents=True, exist_ok=True)
    group = f"{settings.topic_prefix}-worker"
    auth = settings.kafka_auth()
    app = faust_app(settings, group, datadir, partitions=cat.spec("internal.accepted").partitions,
                    replication=cat.replication(settings.profile))
    progress = _Progress(settings.kafka_bootstrap, group, auth)
    shorts = ["internal.accepted", "audit", "deadletter", "feedback.rejections", "feedback.acknowledgements",
              "sla.events", *ROUTE_TOPICS.values()]
    outlet = KafkaOutlet(settings.kafka_bootstrap, {s: cat.name(s) for s in shorts},
                         {s: cat.spec(s).partitions for s in shorts}, codec, {s: cat.spec(s).records for s in shorts},
                         auth=auth)
    parts = cat.spec("intake.police").partitions
    store = _store_options(settings)
    seen = app.Table(SEEN_TABLE, partitions=parts, key_type=str, options=store)
    tables = {name: app.Table(name, partitions=parts, key_type=str, options=store) for name in casebook.TABLES}
    intake_names = {cat.name(short): agency for agency, short in INTAKE_TOPICS.items()}
    faults = Faults.parse(settings.fault_plan)
    metrics = Metrics()
    intake = IntakeStage(codec=codec, secret=secret, agencies=intake_names, outlet=outlet,
                         state=DurableTables({SEEN_TABLE: seen}, outlet), faults=faults, metrics=metrics)
    directory = schools if schools is not None else _load_schools(settings)
    router = RouterStage(codec=codec, secret=secret, schools=directory,
                         deadlines=DefaultDeadlines(), outlet=outlet, state=DurableTables(tables, outlet),
                         faults=faults, metrics=metrics)
    sla_tables = {name: app.Table(name, partitions=parts, key_type=str, options=store) for name in sla_stage.TABLES}
    tracker = sla_stage.SlaStage(codec=codec, outlet=outlet, state=DurableTables(sla_tables, outlet),
                                 runner_for=sla_stage.partition_runner, metrics=metrics, faults=faults)
    sla_names = {cat.name(s) for s in sla_stage.INPUT_TOPICS}
    sla_topic = app.topic(*sla_names, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
    intake_topic = app.topic(*intake_names, key_type=bytes, value_type=bytes, key_serializer="raw",
                             value_serializer="raw")
    accepted_topic = app.topic(cat.name("internal.accepted"), key_type=bytes, value_type=bytes,
                               key_serializer="raw", value_serializer="raw")

    serve_stage(app, "intake", intake_topic, intake, settings, progress)
    serve_stage(app, "router", accepted_topic, router, settings, progress)
    serve_stage(app, "sla", sla_topic, tracker, settings, progress)

    gauged = [0.0]  # monotonic time the open-clock gauges were last computed

    @app.timer(settings.sla_tick_seconds)  # type: ignore[untyped-decorator]
    async def sla_tick() -> None:
        """Emit due AT_RISK / BREACHED events for the clocks of the partitions this worker owns (every worker)."""
        if app.rebalancing or app.in_recovery:
            return
        owned = {tp.partition for tp in app.consumer.assignment() if tp.topic in sla_names}
        now = datetime.now(UTC)
        try:
            await tracker.tick(now, owned)
        except Exception as exc:  # the next tick tries again; clocks are idempotent (derived event ids)
            log.warning("SLA tick failed; retrying at the next tick", error=type(exc).__name__)
            return
        if time.monotonic() - gauged[0] >= _GAUGE_EVERY:  # a pass over every open clock: not at every tick
            gauged[0] = time.monotonic()
            metrics.open_clocks(tracker.open_clocks(now))

    @app.task  # type: ignore[untyped-decorator]
    async def warm_up() -> None:
        """Connect the producer and register / look up every schema the worker writes, before the first batch;
        serve the metrics."""
        await outlet.start()
        if settings.metrics_port:
            try:
                metrics.serve(settings.metrics_port, settings.metrics_host)
            except OSError as exc:
                log.warning("metrics port unavailable; not serving metrics", port=settings.metrics_port,
                            error=type(exc).__name__)
        metrics.worker_up(settings.worker_id)

    _install_watch(app, progress, settings, forget=lambda tps: tracker.forget(
        {tp.partition for tp in tps if tp.topic in sla_names}))
    return app


def _faust_credentials(auth: KafkaAuth) -> dict[str, Any]:
    """faust's `broker_credentials` for the settings' security protocol (nothing for PLAINTEXT)."""
    if auth.sasl:
        assert auth.username is not None and auth.password is not None
        return {"broker_credentials": faust.SASLCredentials(
            username=auth.username, password=auth.password.get_secret_value(), ssl_context=auth.ssl_context(),
            mechanism=faust.types.auth.SASLMechanism.SCRAM_SHA_512)}
    if auth.tls:
        return {"broker_credentials": faust.SSLCredentials(auth.ssl_context())}
    return {}


def _reseek_on_resume(flow: Any, reseek: Callable[[], Any]) -> None:
    """Re-seek the input partitions whenever faust's flow control resumes.

    `FlowControlEvent.resume()` clears every stream buffer (faust's channel queues are made with
    `clear_on_resume=True`), dropping the records in them without acknowledging them. After a rebalance faust
    resumes the partitions' fetching, seeks them to the committed offsets and only then resumes the flow
    (`faust/tables/recovery.py`, `on_recovery_completed`), so records fetched and delivered after that seek are
    dropped while the consumer's position stays past them: with nothing newer to follow them (no jump for the
    offset guard to see), the partition stalled until the watchdog re-seeked it (20-25 s, in about one
    rebalance benchmark run in three). Nothing was lost (a dropped record is not acknowledged, so never
    committed); seeking each partition back to the next offset to process after every resume re-reads them,
    and the offset guard acknowledges what was already settled."""
    resume = flow.resume

    def resumed() -> None:
        resume()
        try:
            task = asyncio.get_running_loop().create_task(reseek())
        except RuntimeError:  # no running loop (the app is not started): nothing was delivered yet
            return
        _pending.add(task)
        task.add_done_callback(_pending.discard)

    flow.resume = resumed


_pending: set[asyncio.Task[Any]] = set()  # keeps the re-seek tasks referenced until they finish


def _install_watch(app: faust.App, progress: _Progress, settings: Settings,
                   forget: Callable[[Any], None]) -> None:
    """Rebalance hooks (forget partitions) and the stall watchdog timer; log readiness."""

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def _revoked(_app: Any, revoked: Any, **_: Any) -> None:
        progress.guard.forget(revoked)
        forget(revoked)

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]
    async def _assigned(_app: Any, assigned: Any, **_: Any) -> None:
        progress.guard.forget(assigned)
        forget(assigned)

    @app.on_rebalance_complete.connect  # type: ignore[arg-type]
    async def _ready(_app: Any, **_: Any) -> None:
        # At every log level: operators and test harnesses wait for this line.
        print(f"worker ready: {settings.worker_id} prefix={settings.topic_prefix}", file=sys.stderr, flush=True)

    async def reseek() -> None:
        try:
            sought = await progress.reseek(app.consumer)
        except Exception as exc:  # the watchdog remains the net: a stalled partition is re-seeked by it
            log.warning("re-seek after the flow resumed failed", error=type(exc).__name__)
            return
        log.info("input partitions re-sought after the flow resumed", partitions=sought)

    _reseek_on_resume(app.flow_control, reseek)
    watch = StallWatch(patience=20.0)

    @app.timer(5.0)  # type: ignore[untyped-decorator]
    async def watchdog() -> None:
        """Re-seek a partition with lag whose processing position has not moved (faust can stop fetching it)."""
        if app.rebalancing or app.in_recovery or progress.busy:
            return
        consumer: Any = app.consumer
        positions = await progress.positions(consumer)
        if not positions:
            return
        highwaters = await consumer.highwaters(*positions)
        action, stalls = watch.check(time.monotonic(), positions, highwaters)
        for st in stalls:
            log.warning("partition stalled", topic=st.partition.topic, partition=st.partition.partition,  # type: ignore[attr-defined]
                        lag=st.lag, seconds=round(st.seconds), action=action.value)
        if action is WatchAction.RESEEK:
            for st in stalls:
                await _seek(consumer, st.partition, positions[st.partition])
        elif action is WatchAction.EXIT:
            log.error("partitions still stalled after a re-seek; exiting for the supervisor to restart")
            os._exit(70)


def _store_options(settings: Settings) -> dict[str, int]:
    """RocksDB options of every table store (faust's `Table(options=...)`). faust's defaults give each store (one
    per table and partition: 36 here) 64 MB write buffers, three of them, and its own 2 GB block cache, so a
    worker's memory grows with what it writes for as long as it runs; these bound each store."""
    mb = 1024 * 1024
    return {"write_buffer_size": settings.table_write_buffer_mb * mb, "max_write_buffer_number": 2,
            "block_cache_size": settings.table_block_cache_mb * mb,
            "block_cache_compressed_size": settings.table_block_cache_mb * mb // 4}


def _load_schools(settings: Settings) -> dict[str, School]:
    """The schools directory (MASH_SCHOOLS_FILE, else the shipped one); without one the worker refuses to start (it
    would route notices blind)."""
    path = Path(settings.schools_file) if settings.schools_file else DEFAULT_SCHOOLS
    try:
        return load_schools(path)
    except OSError as exc:
        raise ConfigurationError(f"schools directory not readable: {path} ({type(exc).__name__})") from exc


def _dump_tasks(*_: object) -> None:
    """Print every asyncio task's await chain (file:line per frame) to stderr: diagnoses a stalled worker."""
    for task in asyncio.all_tasks():
        print(f"task {task.get_name()}", file=sys.stderr)
        coro: object = task.get_coro()
        while coro is not None:
            frame = getattr(coro, "cr_frame", None) or getattr(coro, "ag_frame", None)
            if frame is not None:
                print(f"  {frame.f_code.co_filename}:{frame.f_lineno} {frame.f_code.co_name}", file=sys.stderr)
            coro = getattr(coro, "cr_await", None) or getattr(coro, "ag_await", None)


def _dump_growth(first: Any) -> None:
    """Print the allocation sites that grew most since `first` (MASH_TRACEMALLOC=1, SIGUSR2)."""
    import tracemalloc

    for stat in tracemalloc.take_snapshot().compare_to(first, "traceback")[:12]:
        print(f"grew {stat.size_diff / 1e6:8.1f} MB in {stat.count_diff:8d} blocks", file=sys.stderr)
        for line in stat.traceback.format()[-8:]:
            print("    " + line, file=sys.stderr)


def _restore_lost_stores(app: faust.App, settings: Settings) -> None:
    """Rebuild lost table stores in bulk (`broker.restore`) on a loop of its own, before faust starts. If that
    fails, faust's own recovery rebuilds them (slower, same result: a store without an offset is replayed from
    the changelog's start)."""
    from broker.restore import restore, stores

    candidates = stores(app.tables.values())  # outside the loop below: faust's stores keep the current loop
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(restore(candidates, settings.kafka_bootstrap, settings.kafka_auth()))
    except Exception as exc:
        log.warning("bulk restore of lost table stores failed; faust's recovery will rebuild them",
                    error=type(exc).__name__, reason=str(exc))
    finally:
        loop.close()


def run_worker(settings: Settings) -> None:
    """Run the stream worker until interrupted (SIGTERM/SIGINT stop it; SIGQUIT prints a task dump)."""
    from faust import Worker

    from broker.acl_admin import check_production

    check_production(settings)  # production: no development secret, TLS, ACLs enforced; else ConfigurationError
    faust_app = create_app(settings)
    if settings.table_bulk_restore:
        _restore_lost_stores(faust_app, settings)
    sys.argv = sys.argv[:1]

    class _Worker(Worker):
        def _install_signal_handlers_unix(self) -> None:
            super()._install_signal_handlers_unix()
            self.loop.add_signal_handler(signal.SIGQUIT, _dump_tasks)
            if os.environ.get("MASH_TRACEMALLOC"):  # diagnosing memory growth: SIGUSR2 prints what grew
                import tracemalloc

                tracemalloc.start(8)
                first = tracemalloc.take_snapshot()
                self.loop.add_signal_handler(signal.SIGUSR2, _dump_growth, first)

    _Worker(faust_app, loglevel=settings.faust_log_level).execute_from_commandline()
