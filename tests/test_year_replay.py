"""The year replay's bookkeeping (benchmarks.year): each notification counted once, only the in-flight kept."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from benchmarks.year import Replay


def _tail(accepted: set[str], disclosed: set[str]) -> Any:
    """What `Replay.take` reads of an AuditTail: the ids it has seen accepted and disclosed since the last take."""
    return SimpleNamespace(accepted=set(accepted), disclosed=set(disclosed))


def test_each_notification_counts_once_however_many_outputs() -> None:
    """A notification disclosed on several routes, or seen again after it was counted, is routed once."""
    run = Replay(expected=3, published=3, unaccepted={"a", "b", "c"}, unrouted={"a", "b", "c"})
    run.take(_tail({"a", "b"}, {"a"}))
    run.take(_tail({"a"}, {"a", "b"}))  # a's second output, a redelivered ACCEPTED
    assert (run.accepted, run.routed, run.lost) == (2, 2, 1)
    assert run.unrouted == {"c"} and run.unaccepted == {"c"}


def test_take_forgets_what_it_counted() -> None:
    """After a take the tail's sets are empty: the replay holds only the notifications still in flight."""
    tail = _tail({"a"}, {"a"})
    run = Replay(expected=1, published=1, unaccepted={"a"}, unrouted={"a"})
    run.take(tail)
    assert tail.accepted == set() and tail.disclosed == set() and run.unrouted == set()


def test_lines_report_wall_time_rate_and_routes() -> None:
    """The printed result names the rate, each route's records, dead letters and lost."""
    run = Replay(expected=10, published=10, routed=10, first_send=100.0, last_routed=105.0,
                 routes={"route.frontdoor": 8, "route.encompass": 6}, peak_rss_mb={"worker": 200.0})
    text = "\n".join(run.lines("bench-year-x"))
    assert "5.0 s => 2 notifications/s" in text
    assert "frontdoor 8, encompass 6; 14 in all" in text
    assert "dead-lettered 0" in text and "(published - routed) 0" in text


def test_lines_name_the_workers_and_each_ones_memory() -> None:
    """A replay with two workers says so, and reports each worker's peak RSS apart from the driver's."""
    run = Replay(expected=1, workers=2, published=1, routed=1, first_send=1.0, last_routed=2.0,
                 peak_rss_mb={"worker1": 300.0, "worker2": 280.0, "driver": 90.0})
    text = "\n".join(run.lines("bench-year-y"))
    assert "1 notifications published, 2 workers" in text
    assert "worker1 300 MB, worker2 280 MB, driver 90 MB" in text
    assert ", 1 worker  [" in "\n".join(Replay(expected=1, published=1).lines("p"))
