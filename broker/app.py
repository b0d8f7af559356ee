"""The faust worker: a thin adapter around intake, identity and routing.

Two stages, each at-least-once with agent concurrency 1, scaled by partitions:

1. intake (the four intake topics, keyed by notification id): decode against the schema catalogue,
   validate, refuse conflicts, drop resends; invalid -> dead letter + rejection to the sender; accepted ->
   `internal.accepted` keyed by home local authority, then audit, then remember the notification.
2. router (`internal.accepted`, keyed by home authority, so one authority's state lives in one partition):
   identity, chronology, routing; outputs are sent and acknowledged *before* the state that records them is
   written, so a crash re-routes from the same state and re-derives the same output ids.

`received` is the broker's append time of the intake record (intake topics use LogAppendTime), so a
redelivery computes the same deadlines and the same outputs.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar, cast
from uuid import UUID

import faust

from broker import _faust_patches, state
from broker._deadlines import DefaultDeadlines
from broker.errors import BrokerError, SchemaError
from broker.identity import AgencyNotification, subjects
from broker.intake import Seen, Verdict, admit, content_hash, derived_id
from broker.logs import configure_logging, get_logger
from broker.reference import DEFAULT_SCHOOLS, School, load_schools
from broker.routing import ChildState, RoutingContext, VictimHistory, route
from broker.settings import Settings
from broker.topics import INTAKE_TOPICS, ROUTE_TOPICS, catalogue
from broker.watchdog import Action as WatchAction
from broker.watchdog import StallWatch
from schemas.codec import Codec, InvalidPayload
from schemas.models import (
    REFERENCE,
    AgencyType,
    AuditEvent,
    AuditRecord,
    DeadLetter,
    FieldError,
    FrontDoorReferral,
    Recall,
    Record,
    Rejection,
    Route,
)

__all__ = ["create_app"]

log = get_logger("worker")
T = TypeVar("T")
Handler = Callable[[Any], Awaitable[None]]


def _instant(ms: int) -> datetime:
    """An instant from epoch milliseconds (Kafka timestamps), exactly."""
    return datetime.fromtimestamp(ms // 1000, UTC).replace(microsecond=(ms % 1000) * 1000)


def _append_time(message: Any) -> datetime:
    """The broker's append time of a consumed record (faust gives seconds as a float)."""
    return _instant(round(message.timestamp * 1000))


def create_app(settings: Settings, *, schools: dict[str, School] | None = None) -> faust.App:
    """Build the worker application for one topic prefix."""
    configure_logging(json=settings.log_json)
    _faust_patches.apply()
    cat = catalogue(settings.topic_prefix)
    codec = Codec()
    deadlines = DefaultDeadlines()
    secret = settings.identity_secret.get_secret_value().encode()
    directory = schools if schools is not None else _load_schools()
    datadir = Path(settings.worker_data_dir).resolve() / settings.topic_prefix
    datadir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        f"{settings.topic_prefix}-worker",
        broker=f"kafka://{settings.kafka_bootstrap}",
        store=settings.table_store,
        datadir=str(datadir),
        web_enabled=False,
        topic_replication_factor=cat.replication(settings.profile),
        topic_partitions=cat.spec("internal.accepted").partitions,
        processing_guarantee="at_least_once",
        producer_acks=-1,
        broker_commit_every=100,
        consumer_auto_offset_reset="earliest",
        table_cleanup_interval=3600.0,
        broker_session_timeout=10.0,
        broker_heartbeat_interval=3.0,
    )

    stages: dict[str, tuple[str, float]] = {}
    stall_watch = StallWatch(patience=20.0)

    def stage(agent: str, name: str) -> None:
        stages[agent] = (name, time.monotonic())

    @app.timer(5.0)  # type: ignore[untyped-decorator]
    async def watchdog() -> None:
        """Warn when an agent has sat in one stage (other than waiting for input) for over 30 s."""
        now = time.monotonic()
        for agent, (name, since) in stages.items():
            if name != "waiting for input" and now - since > 30:
                log.warning("agent stalled", agent=agent, stage=name, seconds=round(now - since))
        consumer: Any = app.consumer  # faust internals: committed offsets of the assigned input partitions
        busy = any(name != "waiting for input" for name, _ in stages.values())
        if app.in_recovery or app.rebalancing or busy:
            return
        tps = [tp for tp in consumer.assignment() if not tp.topic.endswith("-changelog")]
        if not tps:
            return
        highwaters = await consumer.highwaters(*tps)
        committed = {tp: consumer._committed_offset.get(tp) for tp in tps}
        action, stalls = stall_watch.check(now, committed, highwaters)
        for st in stalls:
            log.warning("partition stalled", topic=st.partition.topic, partition=st.partition.partition,  # type: ignore[attr-defined]
                        lag=st.lag, seconds=round(st.seconds), action=action.value)
        if action is WatchAction.RESEEK:
            await consumer.perform_seek()
        elif action is WatchAction.EXIT:
            log.error("partitions still stalled after a re-seek; exiting for the supervisor to restart")
            os._exit(70)

    def raw(name: str) -> faust.TopicT:
        return app.topic(name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")

    intake_names = {cat.name(short): agency for agency, short in INTAKE_TOPICS.items()}
    intake_topic = app.topic(
        *intake_names, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
    )
    accepted = raw(cat.name("internal.accepted"))
    route_topics = {r: raw(cat.name(short)) for r, short in ROUTE_TOPICS.items()}
    rejections = raw(cat.name("feedback.rejections"))
    dead_letters = raw(cat.name("deadletter"))
    audit = raw(cat.name("audit"))

    parts = cat.spec("intake.police").partitions
    seen = app.Table("intake-seen", partitions=parts, key_type=str)
    routed = app.Table("routed", partitions=parts, key_type=str)
    children = app.Table("children", partitions=parts, key_type=str)
    aliases = app.Table("aliases", partitions=parts, key_type=str)
    victims = app.Table("victims", partitions=parts, key_type=str)

    def send(topic: faust.TopicT, key: str | None, record: Record, headers: dict[str, bytes] | None = None) -> Any:
        return topic.send(
            key=key.encode() if key is not None else None, value=codec.encode(record), headers=headers or {}
        )

    def audit_record(
        event: AuditEvent, at: datetime, *, notification_id: UUID | None, purpose: str, **extra: Any
    ) -> Awaitable[Any]:
        rec = AuditRecord(
            audit_id=derived_id("audit", event.value, notification_id, extra.get("output_id"), purpose),
            event=event,
            notification_id=notification_id,
            purpose=purpose,
            at=at,
            **extra,
        )
        sent: Awaitable[Any] = send(audit, str(notification_id) if notification_id else None, rec)
        return sent

    async def refuse(
        message: Any, agency: AgencyType, reason: str, errors: list[tuple[str, str]], record: Record | None
    ) -> None:
        at = _append_time(message)
        nid: UUID | None = None
        sref: str | None = None
        if record is not None:
            env = record.envelope  # type: ignore[attr-defined]
            nid, sref = env.notification_id, env.source_reference
        else:
            datum = codec.peek(message.value)
            env_d = datum.get("envelope") if datum else None
            if isinstance(env_d, dict):
                ref = env_d.get("source_reference")
                sref = ref if isinstance(ref, str) and REFERENCE.match(ref) else None
                raw_id = env_d.get("notification_id")
                nid = raw_id if isinstance(raw_id, UUID) else None
        field_errors = [FieldError(field=f, rule=r) for f, r in errors]
        letter = DeadLetter(
            dead_letter_id=derived_id("deadletter", message.topic, message.partition, message.offset),
            source_topic=message.topic,
            source_partition=message.partition,
            source_offset=message.offset,
            reason=reason,
            errors=field_errors,
            notification_id=nid,
            raw_key=message.key,
            raw_value=message.value,
            at=at,
        )
        rejection = Rejection(
            rejection_id=derived_id("rejection", message.topic, message.partition, message.offset),
            agency_type=agency,
            source_reference=sref,
            notification_id=nid,
            errors=field_errors,
            rejected=at,
        )
        futures = [
            await send(dead_letters, str(nid) if nid else None, letter),
            await send(rejections, sref or (message.key or b"").decode(errors="replace"), rejection),
            await audit_record(
                AuditEvent.REJECTED, at, notification_id=nid, purpose=f"rejected at intake: {reason}"
            ),
        ]
        await asyncio.gather(*futures)
        log.warning(
            "rejected",
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            notification_id=str(nid) if nid else None,
            reason=reason,
            fields=[f for f, _ in errors],
        )

    async def serve(agent: str, busy: str, stream: faust.StreamT[bytes], handle: Handler) -> None:
        """One message at a time through `handle`, with the agent's stage kept for the watchdog."""
        stage(agent, "waiting for input")
        async for event in stream.events():
            stage(agent, busy)
            try:
                await handle(event.message)
            finally:
                stage(agent, "waiting for input")

    @app.agent(intake_topic, concurrency=1)
    async def intake(stream: faust.StreamT[bytes]) -> None:
        await serve("intake", "deciding", stream, admit_one)

    async def admit_one(message: Any) -> None:
        agency = intake_names[message.topic]
        received = _append_time(message)
        try:
            record = codec.decode(message.value)
        except InvalidPayload as exc:
            await refuse(message, agency, "INVALID", exc.errors, None)
            return
        except SchemaError as exc:
            await refuse(message, agency, "UNDECODABLE", [("(message)", str(exc))], None)
            return
        env = record.envelope  # type: ignore[attr-defined]
        nid = str(env.notification_id)
        prior = seen.get(nid)
        outcome = admit(
            record, agency=agency, seen=state.load_seen(prior) if prior else None, received=received
        )
        if outcome.verdict is Verdict.ACCEPT:
            notification = cast(AgencyNotification, record)  # admit() checked the kind
            try:
                subjects(notification, secret)  # every subject must be identifiable before we accept
            except BrokerError as exc:
                field = getattr(exc, "field", "(record)")
                await refuse(message, agency, "INVALID", [(field, str(exc).split(": ", 1)[-1])], record)
                return
        if outcome.verdict in (Verdict.INVALID, Verdict.CONFLICT):
            await refuse(message, agency, outcome.verdict.value, list(outcome.errors), record)
            return
        if outcome.verdict is Verdict.DUPLICATE:
            await (await audit_record(
                AuditEvent.DUPLICATE_DROPPED, received, notification_id=env.notification_id,
                purpose="resent with identical content: dropped",
            ))
            log.info("duplicate dropped", topic=message.topic, offset=message.offset, notification_id=nid)
            return
        ms = str(int(received.timestamp() * 1000)).encode()
        fut = await send(accepted, env.home_local_authority, record, {"received-ms": ms})
        afut = await audit_record(
            AuditEvent.ACCEPTED, received, notification_id=env.notification_id,
            purpose=f"{type(record).__name__} accepted from {agency.value}",
            lawful_basis=env.lawful_basis,
        )
        stage("intake", "awaiting acks of the forward and its audit")
        await asyncio.gather(fut, afut)
        stage("intake", "recording")
        seen[nid] = state.dump(Seen(content_hash(record), env.home_local_authority, int(ms)))
        log.info("accepted", topic=message.topic, partition=message.partition, offset=message.offset,
                 notification_id=nid)

    def lookup(table: Any, load: Callable[[Any], T], authority: str, keys: list[str]) -> dict[str, T]:
        """State of each key (and of the primary key an alias points at) within one authority."""
        out: dict[str, T] = {}
        for key in keys:
            for k in {key, aliases.get(f"{authority}|{key}") or key}:
                value = table.get(f"{authority}|{k}")
                if value is not None:
                    out[k] = load(value)
        return out

    def child_states(authority: str, keys: list[str]) -> dict[str, ChildState]:
        return lookup(children, state.load_child, authority, keys)

    def victim_states(authority: str, keys: list[str]) -> dict[str, VictimHistory]:
        return lookup(victims, state.load_victim, authority, keys)

    @app.agent(accepted, concurrency=1)
    async def router(stream: faust.StreamT[bytes]) -> None:
        await serve("router", "routing", stream, route_one)

    async def route_one(message: Any) -> None:
        notification = cast(AgencyNotification, codec.decode(message.value))  # intake accepted it
        env = notification.envelope
        nid = str(env.notification_id)
        la = env.home_local_authority
        headers = dict(message.headers or [])
        received = _instant(int(headers.get("received-ms", b"0")))
        if routed.get(nid) is not None:
            log.info("already routed", offset=message.offset, notification_id=nid)
            return
        who = subjects(notification, secret)
        child_keys = [k for p in who.children for k in p.all]
        adult_keys = [k for _, p in who.adults if p is not None for k in p.all]
        prior = routed.get(str(env.supersedes)) if env.supersedes else None
        ctx = RoutingContext(
            children=child_states(la, child_keys),
            victims=victim_states(la, adult_keys),
            prior_outputs=state.load_routed(prior).produced if prior else (),
            schools=directory,
        )
        decision = route(notification, ctx=ctx, received=received, secret=secret, deadlines=deadlines)
        futures = []
        for out in decision.outputs:
            futures.append(await send(route_topics[out.route], out.recipient, out.payload))
            recall = isinstance(out.payload, Recall)
            futures.append(await audit_record(
                AuditEvent.RECALLED if recall else AuditEvent.DISCLOSED, received,
                notification_id=env.notification_id, purpose=out.purpose, output_id=out.output_id,
                route=out.route, recipient=out.recipient, lawful_basis=out.lawful_basis,
            ))
        stage("router", "awaiting acks of outputs and audits")
        await asyncio.gather(*futures)
        stage("router", "recording")
        # Outputs are acknowledged; now record the state that says so (the routed marker last).
        for alias, primary in decision.aliases:
            aliases[f"{la}|{alias}"] = primary
        touched: dict[str, ChildState] = {}
        for key, entry in decision.chronology:
            cur = touched.get(key) or child_states(la, [key]).get(key) or ChildState()
            if all(e.notification_id != entry.notification_id for e in cur.chronology):
                cur = ChildState((*cur.chronology, entry), cur.alerts, cur.open_referral)
            touched[key] = cur
        for key, marker in decision.cumulative_markers:
            cur = touched.get(key) or child_states(la, [key]).get(key) or ChildState()
            if all(a.alert_id != marker.alert_id for a in cur.alerts):
                cur = ChildState(cur.chronology, (*cur.alerts, marker), cur.open_referral)
            touched[key] = cur
        referred = any(isinstance(o.payload, FrontDoorReferral) for o in decision.outputs)
        for key, cur in touched.items():
            open_ref = cur.open_referral or referred
            children[f"{la}|{key}"] = state.dump(ChildState(cur.chronology, cur.alerts, open_ref))
        for key, incident in decision.victim_updates:
            hist = victim_states(la, [key]).get(key) or VictimHistory()
            if all(i.notification_id != incident.notification_id for i in hist.incidents):
                victims[f"{la}|{key}"] = state.dump(VictimHistory((*hist.incidents, incident)))
        # The changelog writes above go to several topics; a crash can land some and lose others. Wait until
        # they are all acknowledged before the marker that says "routed", or a restart would skip this
        # notification with its chronology entry lost.
        stage("router", "awaiting the state changelog")
        await app.producer.flush()
        routed[nid] = state.dump(state.Routed(la, decision.produced, tuple(p.primary for p in who.children)))
        log.info(
            "routed",
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            notification_id=nid,
            outputs={r.value: len(decision.of_route(r)) for r in Route if decision.of_route(r)},
        )

    return app


def _load_schools() -> dict[str, School]:
    try:
        return load_schools(DEFAULT_SCHOOLS)
    except (OSError, BrokerError):
        log.warning("no schools directory; Encompass notices use authority defaults")
        return {}
