"""The worker's stall rule: re-seek a partition whose lag makes no progress, then exit if it stays stuck."""

from __future__ import annotations

from broker.watchdog import Action, StallWatch


def test_progress_is_never_a_stall() -> None:
    """A partition whose committed offset moves is fine however large its lag."""
    w = StallWatch(patience=10)
    for t in range(0, 100, 5):
        action, stalls = w.check(float(t), {"p0": t}, {"p0": 1000})
        assert action is Action.NOTHING and stalls == []


def test_caught_up_partition_is_not_a_stall() -> None:
    """No lag (the processing position is the high watermark) is idle, not stalled."""
    w = StallWatch(patience=10)
    for t in range(0, 100, 5):
        assert w.check(float(t), {"p0": 50, "p1": 50}, {"p0": 50, "p1": 50})[0] is Action.NOTHING


def test_one_record_of_lag_that_never_moves_is_a_stall() -> None:
    """A lag of exactly one record that does not move is a stall (one unprocessed record is not idle)."""
    w = StallWatch(patience=10)
    actions = [w.check(float(t), {"p0": 49}, {"p0": 50})[0] for t in range(0, 30, 5)]
    assert Action.RESEEK in actions


def test_stuck_partition_reseeks_then_exits() -> None:
    """Lag without progress past the patience: first RESEEK, and EXIT when still stuck after another patience."""
    w = StallWatch(patience=10)
    assert w.check(0.0, {"p0": 15}, {"p0": 50})[0] is Action.NOTHING
    assert w.check(5.0, {"p0": 15}, {"p0": 50})[0] is Action.NOTHING
    action, stalls = w.check(11.0, {"p0": 15}, {"p0": 50})
    assert action is Action.RESEEK and stalls[0].lag == 35
    assert w.check(15.0, {"p0": 15}, {"p0": 50})[0] is Action.NOTHING
    assert w.check(22.0, {"p0": 15}, {"p0": 50})[0] is Action.EXIT


def test_reseek_that_works_resets_the_watch() -> None:
    """When the re-seek gets the partition moving, the next stall starts the sequence again."""
    w = StallWatch(patience=10)
    w.check(0.0, {"p0": 15}, {"p0": 50})
    assert w.check(11.0, {"p0": 15}, {"p0": 50})[0] is Action.RESEEK
    assert w.check(12.0, {"p0": 30}, {"p0": 50})[0] is Action.NOTHING
    assert w.check(23.0, {"p0": 30}, {"p0": 50})[0] is Action.RESEEK


def test_never_committed_partition_with_lag_is_a_stall() -> None:
    """A partition with no committed offset and records waiting counts from offset 0."""
    w = StallWatch(patience=10)
    w.check(0.0, {"p0": None}, {"p0": 7})
    assert w.check(11.0, {"p0": None}, {"p0": 7})[0] is Action.RESEEK
