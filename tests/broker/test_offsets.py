"""The offset guard (broker._offsets) and the faust guard it relies on (broker._faust_patches)."""

from __future__ import annotations

from broker import _faust_patches
from broker._offsets import OffsetGuard, Position


def test_processes_only_the_next_offset_from_the_commit() -> None:
    """From committed offset 10: 10 is NEXT, 9 is REDELIVERED, 12 is AHEAD (11 was never delivered)."""
    g = OffsetGuard()
    g.start("tp", 10)
    assert g.place("tp", 10) is Position.NEXT
    g.done("tp", 10)
    assert g.place("tp", 9) is Position.REDELIVERED
    assert g.place("tp", 12) is Position.AHEAD


def test_a_hole_asks_for_one_seek_back_until_the_missing_offset_arrives() -> None:
    """AHEAD asks to seek back to the next offset once; after NEXT, a later hole asks again."""
    g = OffsetGuard()
    g.start("tp", 3)
    assert g.place("tp", 7) is Position.AHEAD
    assert g.needs_seek("tp") == 3
    assert g.needs_seek("tp") is None
    assert g.place("tp", 3) is Position.NEXT
    g.done("tp", 3)
    assert g.place("tp", 9) is Position.AHEAD
    assert g.needs_seek("tp") == 4


def test_forgetting_a_partition_restarts_it_from_the_commit() -> None:
    """After a rebalance the partition is unknown until started again."""
    g = OffsetGuard()
    g.start("a", 1)
    g.start("b", 1)
    g.forget(["a"])
    assert not g.knows("a") and g.knows("b")
    g.forget()
    assert not g.knows("b")


def test_a_batch_is_triaged_in_order_and_a_revoked_partition_is_left_alone() -> None:
    """Mixed batch: a's 5 and 6 are ready (the guard moves to 7), its 4 is a redelivery, its 9 asks one seek back
    to 7; b was revoked since its records were fetched (the rebalance race of a worker joining under load): its
    records are stale, neither ready nor acknowledged, no seek for them and the guard untouched."""
    g = OffsetGuard()
    g.start("a", 5)
    plan = g.triage([("a", 5), ("b", 40), ("a", 4), ("a", 6), ("a", 9), ("b", 41)], assigned={"a"})
    assert plan.ready == [0, 3] and plan.redelivered == [2] and plan.stale == [1, 5]
    assert plan.seeks == {"a": 7}
    assert g.position("a") == 7 and not g.knows("b")


def test_the_patched_faust_method_still_exists() -> None:
    """faust still has Consumer._add_gap, the one private method the worker replaces (else it refuses to start)."""
    assert _faust_patches.target_exists()
