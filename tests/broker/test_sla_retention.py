"""Closed SLA clocks are deleted from the tracker's table after the retention window (broker.sla.purge, through
broker.sla_stage.SlaStage.tick); open clocks, breached ones included, stay. A deletion is a changelog tombstone."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import faust

from broker import sla
from broker.batch import Received, direct
from broker.outlet import DurableTables, partition_of
from broker.sla_stage import CLOCKS_TABLE, SlaStage
from schemas.models import Route, SlaEvent
from tests.broker.factories import SHROPSHIRE
from tests.broker.test_sla import T0, decision, recall, referral
from tests.broker.test_sla_stage import CODEC, _fresh, _msg

PART = partition_of(SHROPSHIRE.encode(), 6)
KEEP = sla.SlaRules().retain_closed


def _clock(phase: sla.Phase, closed_at: datetime | None = None) -> sla.Clock:
    return sla.Clock(referral().referral_id, Route.FRONT_DOOR, SHROPSHIRE, SHROPSHIRE, PART, T0,
                     T0 + timedelta(days=1), T0 + timedelta(hours=20), phase=phase, closed_at=closed_at)


def test_purge_deletes_a_closed_clock_only_after_retention() -> None:
    """MET or CANCELLED: kept until `closed_at + retain_closed`, deleted from then; an open clock never."""
    closed = T0 + timedelta(hours=3)
    for phase in (sla.Phase.MET, sla.Phase.CANCELLED):
        clock = _clock(phase, closed)
        assert sla.purge(clock, closed + KEEP - timedelta(seconds=1), sla.SlaRules()) == sla.Step()
        assert sla.purge(clock, closed + KEEP, sla.SlaRules()).purged == (clock.output_id,)
    breached = replace(_clock(sla.Phase.OPEN), breached=True)
    assert sla.purge(breached, T0 + 10 * KEEP, sla.SlaRules()) == sla.Step()
    assert sla.purge(None, T0 + 10 * KEEP, sla.SlaRules()) == sla.Step()


async def test_tick_deletes_closed_clocks_past_retention_and_keeps_open_ones() -> None:
    """Closed clocks leave the table at retention (no event), open ones stay, also after an index rebuild."""
    outlet, state = _fresh()
    stage = SlaStage(codec=CODEC, outlet=outlet, state=state)
    met, cancelled, unacked = referral("met"), referral("cancelled"), referral("unacked")
    await stage.handle_batch([Received(_msg(r, offset=i, topic="t.route.frontdoor"))
                              for i, r in enumerate((met, cancelled, unacked))])
    closed_at = T0 + timedelta(hours=2)
    await stage.handle(_msg(decision(met.referral_id, closed_at), offset=3))
    withdrawn = recall(cancelled.referral_id, Route.FRONT_DOOR, SHROPSHIRE, closed_at)
    await stage.handle(_msg(withdrawn, offset=4, topic="t.route.frontdoor"))
    await stage.tick(closed_at + KEEP - timedelta(minutes=1), [PART])
    assert {str(r.referral_id) for r in (met, cancelled, unacked)} <= set(state.tables[CLOCKS_TABLE])
    events = len(outlet.of("sla.events"))
    await stage.tick(closed_at + KEEP, [PART])
    assert set(state.tables[CLOCKS_TABLE]) == {str(unacked.referral_id)}
    assert len(outlet.of("sla.events")) == events  # deleting is not an SLA event
    assert all(isinstance(e, SlaEvent) for e in outlet.of("sla.events"))

    outlet2, state2 = _fresh()
    state2.tables[CLOCKS_TABLE] = dict(state.tables[CLOCKS_TABLE])
    rebuilt = SlaStage(codec=CODEC, outlet=outlet2, state=state2)  # no index yet: built from the table at its tick
    late = referral("late-met")
    await rebuilt.handle(_msg(late, offset=5, topic="t.route.frontdoor"))
    await rebuilt.handle(_msg(decision(late.referral_id, closed_at), offset=6))
    await rebuilt.tick(closed_at + KEEP, [PART])
    assert set(state2.tables[CLOCKS_TABLE]) == {str(unacked.referral_id)}

    await stage.handle(_msg(decision(met.referral_id, closed_at + KEEP), offset=7))
    assert str(met.referral_id) not in state.tables[CLOCKS_TABLE]  # held (and in time expired), never reopened
    assert outlet.of("deadletter") == []


class _Sender:
    """Records what DurableTables sends to the changelog."""

    def __init__(self) -> None:
        self.raw: list[Any] = []

    async def send_raw(self, raw: list[Any]) -> dict[tuple[str, int], int]:
        self.raw.extend(raw)
        return {(r[0], r[1]): i for i, r in enumerate(self.raw)}


async def test_durable_tables_delete_a_key_with_a_changelog_tombstone() -> None:
    """A write of None removes the key from a faust table's store and sends a null value (a tombstone)."""
    app = faust.App("retention-probe", store="memory://", broker="kafka://127.0.0.1:1")
    table = app.Table(CLOCKS_TABLE, partitions=6, key_type=str)
    sender = _Sender()
    tables = DurableTables({CLOCKS_TABLE: table}, sender)  # type: ignore[arg-type]
    await tables.write([(PART, [(CLOCKS_TABLE, "kept", {"v": 1}), (CLOCKS_TABLE, "gone", {"v": 2})], direct)])
    await tables.write([(PART, [(CLOCKS_TABLE, "gone", None), (CLOCKS_TABLE, "never", None)], direct)])
    assert list(table.data.keys()) == ["kept"]
    assert [(r[2], r[3]) for r in sender.raw[2:]] == [(b'"gone"', None), (b'"never"', None)]
