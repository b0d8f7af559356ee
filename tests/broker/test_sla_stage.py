"""The SLA tracker stage (broker.sla_stage) over recording fakes of its I/O boundaries: clocks open, stop and
fall due once; acknowledgements from the wrong recipient are refused and audited; nothing stops a partition."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from aiokafka.errors import KafkaConnectionError

from broker import sla
from broker._tally import BUCKET_SECONDS
from broker.batch import Received
from broker.metrics import Metrics, OpenClocks
from broker.outlet import Inbound, partition_of
from broker.sla import ack_of
from broker.sla_stage import CLOCKS_TABLE, HELD_TABLE, SlaOutcome, SlaStage, partition_runner
from schemas.models import AuditEvent, AuditRecord, DeadLetter, Record, Route, SlaEvent, SlaState
from tests.broker.kafka_fakes import DictState, RecordingOutlet, prepared_codec
from tests.broker.test_sla import (
    T0,
    URN,
    decision,
    edt_alert,
    notice,
    recall,
    referral,
    school_ack,
)

CODEC = prepared_codec()
PART = partition_of(URN.encode(), 6)
SAME_PART_URN = "900008"  # another school whose URN falls in the same partition as URN's
OTHER_PART_URN = "900002"  # one in another partition
TOPICS = {"EncompassNotice": "t.route.encompass", "FrontDoorReferral": "t.route.frontdoor",
          "EmergencyDutyAlert": "t.route.emergency-duty", "Recall": "t.route.encompass"}
ACKS = "t.feedback.acknowledgements"


def _recipient(record: Record) -> str:
    ack = ack_of(record)
    return ack.by if ack else str(getattr(record, "school_urn", None) or getattr(record, "recipient", None)
                                  or getattr(record, "authority", ""))


def _msg(record: Record, *, offset: int = 0, at: datetime = T0, partition: int | None = None,
         topic: str | None = None, raw: bytes | None = None) -> Inbound:
    """The record as read from its topic, by default in its recipient's partition (as the producers key it)."""
    name = topic or TOPICS.get(type(record).__name__, ACKS)
    value = raw if raw is not None else CODEC.encode(record, name)
    where = partition_of(_recipient(record).encode(), 6) if partition is None else partition
    return Inbound(name, where, offset, b"key", value, int(at.timestamp() * 1000), {})


def _stage(outlet: RecordingOutlet, state: DictState, metrics: Metrics | None = None) -> SlaStage:
    return SlaStage(codec=CODEC, outlet=outlet, state=state, metrics=metrics)


def _fresh() -> tuple[RecordingOutlet, DictState]:
    return RecordingOutlet(), DictState({CLOCKS_TABLE: {}, HELD_TABLE: {}})


def _events(outlet: RecordingOutlet) -> list[tuple[SlaState, datetime]]:
    return [(r.state, r.at) for r in outlet.of("sla.events") if isinstance(r, SlaEvent)]


def _audits(outlet: RecordingOutlet) -> list[str]:
    return [r.purpose for r in outlet.of("audit") if isinstance(r, AuditRecord) and r.event is AuditEvent.ACKNOWLEDGED]


async def test_routed_notice_starts_a_clock_in_its_partition() -> None:
    """STARTED keyed by the output id; the clock is written in the record's partition."""
    outlet, state = _fresh()
    n = notice()
    assert await _stage(outlet, state).handle(_msg(n)) is SlaOutcome.OPENED
    [sent] = [s for s in outlet.sent if s.short == "sla.events"]
    assert sent.key == str(n.notice_id) and isinstance(sent.record, SlaEvent)
    assert (sent.record.state, sent.record.route, sent.record.recipient) == (SlaState.STARTED, Route.ENCOMPASS,
                                                                             n.school_urn)
    assert state.writes == [(PART, CLOCKS_TABLE, str(n.notice_id))]


async def test_redelivered_item_emits_nothing() -> None:
    """The same record read again: UNCHANGED, no second STARTED."""
    outlet, state = _fresh()
    stage = _stage(outlet, state)
    await stage.handle(_msg(notice()))
    assert await stage.handle(_msg(notice())) is SlaOutcome.UNCHANGED
    assert [s for s, _ in _events(outlet)] == [SlaState.STARTED]


async def test_acknowledged_in_time_gives_started_then_met() -> None:
    """The school acknowledges two hours in: MET at its instant, audited; later ticks emit nothing."""
    outlet, state = _fresh()
    stage, n = _stage(outlet, state), notice()
    await stage.handle(_msg(n))
    ack_at = T0 + timedelta(hours=2)
    assert await stage.handle(_msg(school_ack(n.notice_id, ack_at), offset=1)) is SlaOutcome.ACKNOWLEDGED
    assert await stage.tick(T0 + timedelta(days=2), [PART]) == []
    assert _events(outlet) == [(SlaState.STARTED, T0), (SlaState.MET, ack_at)]
    assert len(_audits(outlet)) == 1 and "MET" in _audits(outlet)[0]


async def test_never_acknowledged_gives_at_risk_then_breached_once() -> None:
    """Ticks through the day: AT_RISK at 80 %, BREACHED at the deadline, each once however often it ticks."""
    outlet, state = _fresh()
    stage, n = _stage(outlet, state), notice(due=T0 + timedelta(hours=10))
    await stage.handle(_msg(n))
    for minutes in range(0, 13 * 60, 5):
        await stage.tick(T0 + timedelta(minutes=minutes), [PART])
    assert _events(outlet) == [(SlaState.STARTED, T0), (SlaState.AT_RISK, T0 + timedelta(hours=8)),
                               (SlaState.BREACHED, n.due)]
    assert state.writes[-1][0] == PART


async def test_a_deadline_reached_exactly_at_a_tick_breaches_at_the_next_one() -> None:
    """BREACHED needs the deadline passed: a tick exactly at it gives nothing (the clock stays scheduled), the
    next tick breaches it; once breached, no tick has anything left to do for it (it leaves the schedule)."""
    outlet, state = _fresh()
    stage, n = _stage(outlet, state), notice(due=T0 + timedelta(hours=10))
    await stage.handle(_msg(n))
    assert [e.state for e in await stage.tick(n.due, [PART])] == [SlaState.AT_RISK]
    assert await stage.tick(n.due, [PART]) == []
    assert [e.state for e in await stage.tick(n.due + timedelta(seconds=1), [PART])] == [SlaState.BREACHED]
    index = stage._index[PART]
    assert index.due == [] and index.tally.totals()[Route.ENCOMPASS].open == 1


async def test_a_tick_takes_only_the_clocks_falling_due() -> None:
    """Two hundred breached clocks nobody acknowledged stay open but off the schedule; one fresh clock is all a
    later tick takes (and it fires exactly as if every clock were checked)."""
    outlet, state = _fresh()
    stage = _stage(outlet, state)
    old = [notice(f"old{i}", due=T0 + timedelta(hours=1)) for i in range(200)]
    for i, n in enumerate(old):
        await stage.handle(_msg(n, offset=i))
    await stage.tick(T0 + timedelta(hours=2), [PART])
    fresh = notice("fresh", due=T0 + timedelta(hours=12))
    await stage.handle(_msg(fresh, offset=200, at=T0 + timedelta(hours=2)))
    index = stage._index[PART]
    assert [oid for _, oid in index.due] == [fresh.notice_id.int] and index.tally.totals()[Route.ENCOMPASS].open == 201
    fired = await stage.tick(T0 + timedelta(hours=11), [PART])
    assert [(e.output_id, e.state) for e in fired] == [(fresh.notice_id, SlaState.AT_RISK)]


async def test_tick_checks_only_owned_partitions() -> None:
    """A worker that does not own the clock's partition never fires it."""
    outlet, state = _fresh()
    stage = _stage(outlet, state)
    await stage.handle(_msg(notice()))
    assert await stage.tick(T0 + timedelta(days=2), [p for p in range(6) if p != PART]) == []
    assert [s for s, _ in _events(outlet)] == [SlaState.STARTED]


async def test_a_partition_assigned_later_is_indexed_alone() -> None:
    """A partition taken over after others are indexed is built from its own clocks: the indexed partitions are
    kept as they were (their table values are not decoded again), and the new one's clocks are scheduled and counted."""
    outlet, state = _fresh()
    stage = _stage(outlet, state)
    here, there = notice("here"), notice("there", urn=OTHER_PART_URN)
    await stage.handle(_msg(here, offset=0))
    await stage.handle(_msg(there, offset=1))
    other = partition_of(OTHER_PART_URN.encode(), 6)
    await stage.tick(T0, [PART])
    kept = stage._index[PART]
    key = next(k for k, v in state.tables[CLOCKS_TABLE].items() if v["partition"] == PART)
    state.tables[CLOCKS_TABLE][key] = {"partition": PART}  # undecodable: fails if the build reads it again
    await stage.tick(T0, [PART, other])
    assert stage._index[PART] is kept
    assert [oid for _, oid in stage._index[other].due] == [there.notice_id.int]
    assert stage._index[other].tally.totals()[Route.ENCOMPASS].open == 1


async def test_tracker_down_across_the_deadline_breaches_once_after_restart() -> None:
    """A new stage over the same tables (a restart), ticking a day late: AT_RISK and BREACHED once; another
    restart ticks nothing new."""
    outlet, state = _fresh()
    await _stage(outlet, state).handle(_msg(notice()))
    late = T0 + timedelta(days=1, hours=1)
    first = await _stage(outlet, state).tick(late, [PART])
    assert [e.state for e in first] == [SlaState.AT_RISK, SlaState.BREACHED]
    assert await _stage(outlet, state).tick(late + timedelta(minutes=1), [PART]) == []


async def test_wrong_school_acknowledgement_is_refused_and_audited() -> None:
    """Another school's acknowledgement: refused (audited), the clock still runs and breaches."""
    outlet, state = _fresh()
    stage, n = _stage(outlet, state), notice()
    await stage.handle(_msg(n))
    wrong = school_ack(n.notice_id, T0 + timedelta(hours=1), urn=SAME_PART_URN)
    assert await stage.handle(_msg(wrong, offset=1)) is SlaOutcome.ACKNOWLEDGED
    [purpose] = _audits(outlet)
    assert "not the item's recipient" in purpose
    [audit] = [r for r in outlet.of("audit") if isinstance(r, AuditRecord)]
    assert (audit.recipient, audit.route, audit.output_id) == (SAME_PART_URN, Route.ENCOMPASS, n.notice_id)
    await stage.tick(n.due + timedelta(seconds=1), [PART])
    assert SlaState.BREACHED in [s for s, _ in _events(outlet)]


async def test_acknowledgement_read_in_another_partition_is_forwarded_to_its_recipients() -> None:
    """Keyed by the notice id (another partition): re-sent once to the school's partition, MET when read there."""
    outlet, state = _fresh()
    stage, n = _stage(outlet, state), notice()
    await stage.handle(_msg(n))
    ack = school_ack(n.notice_id, T0 + timedelta(hours=1))
    elsewhere = (PART + 1) % 6
    assert await stage.handle(_msg(ack, partition=elsewhere)) is SlaOutcome.FORWARDED
    [fwd] = [s for s in outlet.sent if s.short == "feedback.acknowledgements"]
    assert (fwd.key, fwd.partition, fwd.record) == (URN, PART, ack)
    assert await stage.handle(_msg(fwd.record, offset=1)) is SlaOutcome.ACKNOWLEDGED
    assert [s for s, _ in _events(outlet)] == [SlaState.STARTED, SlaState.MET]


async def test_wrong_school_in_another_partition_never_closes_the_clock() -> None:
    """Another school's acknowledgement goes to that school's partition: held there, expired (audited) after a
    week; the notice's clock breaches."""
    outlet, state = _fresh()
    stage, n = _stage(outlet, state), notice()
    await stage.handle(_msg(n))
    wrong = school_ack(n.notice_id, T0 + timedelta(hours=1), urn=OTHER_PART_URN)
    assert await stage.handle(_msg(wrong, offset=1)) is SlaOutcome.ACKNOWLEDGED
    await stage.tick(T0 + timedelta(days=8), range(6))
    assert [s for s, _ in _events(outlet)] == [SlaState.STARTED, SlaState.AT_RISK, SlaState.BREACHED]
    assert ["no such item" in p for p in _audits(outlet)] == [False, True]


async def test_recall_cancels_and_a_later_acknowledgement_is_ignored() -> None:
    """A recall: CANCELLED; the school's acknowledgement afterwards is audited as ignored, no event."""
    outlet, state = _fresh()
    stage, n = _stage(outlet, state), notice()
    await stage.handle(_msg(n))
    gone = recall(n.notice_id, Route.ENCOMPASS, n.school_urn, T0 + timedelta(hours=1))
    assert await stage.handle(_msg(gone, offset=1)) is SlaOutcome.CANCELLED
    await stage.handle(_msg(school_ack(n.notice_id, T0 + timedelta(hours=2)), offset=2))
    assert [s for s, _ in _events(outlet)] == [SlaState.STARTED, SlaState.CANCELLED]
    assert "recalled" in _audits(outlet)[0]


async def test_acknowledgement_read_before_its_item_is_held_then_applied() -> None:
    """Topics interleave: the acknowledgement first is held (audited); the item then starts and meets at once."""
    outlet, state = _fresh()
    stage, n = _stage(outlet, state), notice()
    await stage.handle(_msg(school_ack(n.notice_id, T0 + timedelta(hours=1))))
    await stage.handle(_msg(n, offset=1))
    assert [s for s, _ in _events(outlet)] == [SlaState.STARTED, SlaState.MET]
    assert ["held" in p for p in _audits(outlet)] == [True, False]


async def test_unknown_item_acknowledgement_expires_on_tick() -> None:
    """An acknowledgement for an item that never comes: held, then ignored (audited) after a week; once."""
    outlet, state = _fresh()
    stage = _stage(outlet, state)
    await stage.handle(_msg(school_ack(notice("ghost").notice_id, T0)))
    await stage.tick(T0 + timedelta(days=8), [PART])
    await stage.tick(T0 + timedelta(days=9), [PART])
    assert len(_audits(outlet)) == 2 and "no such item" in _audits(outlet)[1]


async def test_front_door_decision_closes_a_referral_and_edt_clock_is_one_hour() -> None:
    """A decision by the authority: MET; an EDT alert's clock is due an hour after receipt."""
    outlet, state = _fresh()
    stage, r, e = _stage(outlet, state), referral(), edt_alert()
    await stage.handle_batch([Received(_msg(r)), Received(_msg(e, offset=1)),
                              Received(_msg(decision(r.referral_id, T0 + timedelta(hours=3)), offset=2))])
    events = [ev for ev in outlet.of("sla.events") if isinstance(ev, SlaEvent)]
    assert [(ev.route, ev.state) for ev in events] == [(Route.FRONT_DOOR, SlaState.STARTED),
                                                       (Route.EMERGENCY_DUTY, SlaState.STARTED),
                                                       (Route.FRONT_DOOR, SlaState.MET)]
    assert events[1].due == T0 + timedelta(hours=1)


async def test_a_batch_gives_what_one_record_at_a_time_gives() -> None:
    """Item, wrong acknowledgement, right acknowledgement: the same sends and state either way."""
    n = notice()
    msgs = [_msg(n), _msg(school_ack(n.notice_id, T0, urn=SAME_PART_URN), offset=1),
            _msg(school_ack(n.notice_id, T0 + timedelta(hours=1)), offset=2)]
    one_out, one_state = _fresh()
    for m in msgs:
        await _stage(one_out, one_state).handle(m)
    batch_out, batch_state = _fresh()
    await _stage(batch_out, batch_state).handle_batch([Received(m) for m in msgs])
    assert [s.record for s in batch_out.sent] == [s.record for s in one_out.sent]
    assert batch_state.tables == one_state.tables


async def test_bad_records_are_dead_lettered_and_the_partition_goes_on() -> None:
    """Undecodable bytes and a non-acknowledgement on the acknowledgements topic: dead-lettered with their stage;
    the next record is tracked."""
    outlet, state = _fresh()
    stage, n = _stage(outlet, state), notice()
    garbage = _msg(n, topic=ACKS, raw=b"\x00\x00\x00\x00\x09junk")
    not_ack = _msg(n, topic=ACKS, offset=1, raw=CODEC.encode(n, TOPICS["EncompassNotice"]))
    outcomes = await stage.handle_batch([Received(garbage), Received(not_ack), Received(_msg(n, offset=2))])
    assert outcomes == [SlaOutcome.DEAD_LETTERED, SlaOutcome.DEAD_LETTERED, SlaOutcome.OPENED]
    letters = [r for r in outlet.of("deadletter") if isinstance(r, DeadLetter)]
    assert [(d.stage, d.source_offset) for d in letters] == [("sla.decode", 0), ("sla.track", 1)]


async def test_transient_failure_is_retried_not_dead_lettered() -> None:
    """The broker unreachable once while emitting: retried, STARTED once, nothing dead-lettered."""
    outlet, state = _fresh()
    outlet.fail["sla.events"] = [KafkaConnectionError("down")]
    assert await _stage(outlet, state).handle(_msg(notice())) is SlaOutcome.OPENED
    assert [s for s, _ in _events(outlet)] == [SlaState.STARTED] and outlet.of("deadletter") == []


async def test_metrics_count_events_and_open_clocks() -> None:
    """SLA events counted by route and state; open clocks, at risk and the oldest age per route after a tick."""
    outlet, state = _fresh()
    metrics = Metrics()
    stage = _stage(outlet, state, metrics)
    await stage.handle(_msg(notice(due=T0 + timedelta(hours=10))))
    now = T0 + timedelta(hours=9)
    await stage.tick(now, [PART])
    metrics.open_clocks(stage.open_clocks(now))
    text = metrics.exposition().decode()
    assert 'mash_sla_events_total{route="ENCOMPASS",state="STARTED"} 1.0' in text
    assert 'mash_sla_events_total{route="ENCOMPASS",state="AT_RISK"} 1.0' in text
    assert 'mash_sla_open_clocks{route="ENCOMPASS"} 1.0' in text
    assert 'mash_sla_at_risk_clocks{route="ENCOMPASS"} 1.0' in text
    assert 'mash_sla_oldest_open_age_seconds{route="ENCOMPASS"} 32400.0' in text
    assert 'mash_sla_open_clocks{route="FRONT_DOOR"} 0.0' in text
    await stage.handle(_msg(school_ack(notice().notice_id, T0 + timedelta(hours=11)), offset=1))
    assert 'mash_sla_met_late_total{route="ENCOMPASS"} 1.0' in metrics.exposition().decode()


def test_worker_metrics_have_base_units_and_suffixes() -> None:
    """Counters end in _total, the latency histogram is in seconds, unverified deadlines counted by authority."""
    metrics = Metrics()
    metrics.notification_in("POLICE", "PoliceDomesticAbuseIncident")
    metrics.output_routed(Route.ENCOMPASS, calendar_verified=False, authority="E06000051")
    metrics.dead_lettered("INVALID", "intake")
    metrics.routed_latency(0.3)
    metrics.worker_up("w1")
    text = metrics.exposition().decode()
    for line in ('mash_notifications_in_total{agency="POLICE",kind="PoliceDomesticAbuseIncident"} 1.0',
                 'mash_outputs_total{route="ENCOMPASS"} 1.0',
                 'mash_calendar_unverified_deadlines_total{authority="E06000051",route="ENCOMPASS"} 1.0',
                 'mash_dead_letters_total{reason="INVALID",stage="intake"} 1.0',
                 'mash_end_to_end_latency_seconds_bucket{le="0.5"} 1.0',
                 'mash_worker_up{worker="w1"} 1.0'):
        assert line in text


def test_partition_runner_gives_faust_stores_the_partition() -> None:
    """Inside the runner faust's current_event() names the partition (faust's private variable still exists)."""
    from faust.streams import current_event

    seen = partition_runner(4)(lambda: current_event().message.partition)  # type: ignore[union-attr]
    assert seen == 4 and current_event() is None


async def test_report_from_the_events_the_stage_emits() -> None:
    """Three notices: one met, one late, one never acknowledged; re-emitted events count once. The report
    (mash sla report's rules) gives met 1, late 1, breached 2, compliance 33.3 %, median and p95."""
    from mash.sla import collect, default_authority, render_csv, report

    outlet, state = _fresh()
    stage = _stage(outlet, state)
    notices = [notice(f"r{i}", due=T0 + timedelta(hours=10)) for i in range(3)]
    for i, n in enumerate(notices):
        await stage.handle(_msg(n, offset=i))
    await stage.handle(_msg(school_ack(notices[0].notice_id, T0 + timedelta(hours=1)), offset=3))
    await stage.handle(_msg(school_ack(notices[1].notice_id, T0 + timedelta(hours=12)), offset=4))
    await stage.tick(T0 + timedelta(hours=13), [PART])
    events = [e for e in outlet.of("sla.events") if isinstance(e, SlaEvent)]
    rows = report(collect(events + events).values(), start=T0.date(), end=T0.date(),
                  authority_of=default_authority({URN: "E06000051"}))
    [row] = [r.values() for r in rows]
    assert (row["route"], row["authority"], row["clocks"], row["met"], row["late"], row["breached"]) == (
        "ENCOMPASS", "E06000051", 3, 1, 1, 2)
    assert (row["compliance_pct"], row["median_ack_minutes"], row["p95_ack_minutes"]) == (33.3, 390.0, 720.0)
    assert render_csv(rows).splitlines()[0].startswith("route,authority,clocks,met,late,breached")


def test_report_filters_by_period_route_and_authority() -> None:
    """Clocks due outside the dates, on another route or in another authority are left out."""
    from mash.sla import History, report

    def h(route: Route, recipient: str, days: int) -> History:
        return History(ack_of(school_ack(notice().notice_id, T0)).output_id,  # type: ignore[union-attr]
                       route, recipient, T0 + timedelta(days=days))

    clocks = [h(Route.FRONT_DOOR, "E06000051", 0), h(Route.FRONT_DOOR, "E06000059", 0),
              h(Route.DV_TRIAGE, "E06000051", 0), h(Route.FRONT_DOOR, "E06000051", 5)]
    rows = report(clocks, start=T0.date(), end=T0.date(), route="FRONT_DOOR", authority="E06000051")
    assert [(r.route, r.authority, r.values()["open"]) for r in rows] == [("FRONT_DOOR", "E06000051", 1)]


def _exact_open(state: DictState, now: datetime) -> dict[Route, tuple[int, int, float]]:
    """Open clocks per route straight from the table: count, at risk or breached, age of the oldest."""
    out: dict[Route, tuple[int, int, float]] = {}
    for raw in state.tables[CLOCKS_TABLE].values():
        clock = sla.Clock.from_json(raw)
        if clock.open:
            n, risky, age = out.get(clock.route, (0, 0, 0.0))
            out[clock.route] = (n + 1, risky + (clock.at_risk or clock.breached),
                                max(age, (now - clock.start).total_seconds()))
    return out


def _nothing_missed(state: DictState, now: datetime) -> None:
    """After a tick at `now`, no open clock in the table is past its at-risk instant or its deadline unmarked."""
    for raw in state.tables[CLOCKS_TABLE].values():
        clock = sla.Clock.from_json(raw)
        if clock.open:
            assert clock.at_risk or clock.at_risk_at > now
            assert clock.breached or clock.due >= now


def _agrees(reported: dict[Route, OpenClocks], exact: dict[Route, tuple[int, int, float]]) -> None:
    assert {r: (o.open, o.at_risk) for r, o in reported.items() if o.open} == {r: e[:2] for r, e in exact.items()}
    for route, (_, _, age) in exact.items():
        assert age <= reported[route].oldest_age_seconds < age + BUCKET_SECONDS


async def test_open_clock_gauges_match_the_table_through_breaches_late_acks_and_recalls() -> None:
    """Random notices, ticks, late and on-time acknowledgements and recalls: every tick marks each clock falling
    due (checked in the table), and the tracker's counted clocks give the same open / at-risk counts as a scan of
    the table (oldest age within the hour), before and after a restart rebuilds the cache from the table."""
    rng = random.Random(8)
    outlet, state = _fresh()
    stage, now, offset, known = _stage(outlet, state), T0, 0, []
    for step in range(400):
        now += timedelta(minutes=rng.randrange(1, 90))
        choice = rng.random()
        if choice < 0.45 or not known:
            n = notice(f"g{step}", due=now + timedelta(minutes=rng.randrange(30, 600)))
            record: Record = n
            known.append(n.notice_id)
        elif choice < 0.75:
            record = school_ack(rng.choice(known), now)
        elif choice < 0.85:
            record = recall(rng.choice(known), Route.ENCOMPASS, URN, now)
        else:
            await stage.tick(now, [PART])
            _nothing_missed(state, now)
            _agrees(stage.open_clocks(now), _exact_open(state, now))
            continue
        offset += 1
        await stage.handle(_msg(record, offset=offset, at=now))
    await stage.tick(now, [PART])
    exact = _exact_open(state, now)
    assert exact[Route.ENCOMPASS][0] > 20  # the sequence left breached clocks open, so the check means something
    _agrees(stage.open_clocks(now), exact)
    restarted = _stage(outlet, state)
    await restarted.tick(now, [PART])
    _agrees(restarted.open_clocks(now), exact)
