"""The floor of one worker process (benchmarks.floor): the arithmetic that turns parts into a bound."""

from __future__ import annotations

import pytest

from benchmarks.floor import Floor, consumed_per_notification


def test_the_worker_reads_its_intake_record_and_every_record_it_wrote_to_a_topic_it_consumes() -> None:
    """Reads per notification: 1 intake record + internal.accepted + route topics; audit, changelogs and SLA
    events (written, never read by the worker) do not count."""
    written = {"internal.accepted": 100, "route.frontdoor": 80, "route.encompass": 60, "audit": 340,
               "worker-people-changelog": 291, "sla.events": 240}
    assert consumed_per_notification(written, 100) == pytest.approx(1 + 2.4)


def test_the_floor_adds_the_clients_share_to_the_python_and_bounds_notifications_per_second() -> None:
    """17 records written at 25 us and 4 read at 5 us on top of 1,500 us of Python: a 1,945 us floor, at most
    514 notifications/s, and what the worker spent above it is the machinery's."""
    f = Floor(python_us=1500, written=17, read=4, produce_us=25, consume_us=5, measured_us=2700)
    assert f.client_us == pytest.approx(445)
    assert f.floor_us == pytest.approx(1945)
    assert f.ceiling_per_s == pytest.approx(1e6 / 1945)
    assert f.machinery_us == pytest.approx(755)
    assert "at most 514 notifications/s" in f.lines()[0]
    assert "755 us (28%)" in f.lines()[1]


def test_faust_reading_takes_the_bare_consumers_place_in_the_floor_and_the_rest_is_the_machinery() -> None:
    """With faust's 100 us a record read in place of the bare consumer's 5 us, 4 reads add 380 us: a 2,325 us
    floor (at most 430 notifications/s), and 375 us of the 2,700 spent is left to the rest of the machinery."""
    f = Floor(python_us=1500, written=17, read=4, produce_us=25, consume_us=5, measured_us=2700, faust_read_us=100)
    assert f.faust_floor_us == pytest.approx(2325)
    assert f.machinery_us == pytest.approx(375)
    lines = f.lines()
    assert "at most 430 notifications/s" in lines[1]
    assert "375 us (14%)" in lines[2]
