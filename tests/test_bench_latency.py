"""The pipeline benchmark's latency bookkeeping (benchmarks.pipeline): what counts as a notification's own output."""

from __future__ import annotations

from benchmarks.pipeline import DEFERRED_MS, _own_latencies


def test_a_later_marac_referral_is_counted_apart_and_every_other_output_is_timed() -> None:
    """A MARAC referral long after its notification's first output (raised by a later incident) is set apart;
    a prompt one, and a late output on any other route, stay in the latencies (a slow route is not hidden)."""
    appended = {"a": 1_000, "b": 2_000}
    first = {"a": 1_040, "b": 2_030}
    outputs = [("a", "route.frontdoor", 1_040), ("a", "route.marac", 1_045),
               ("a", "route.marac", 1_040 + DEFERRED_MS + 1), ("b", "route.dvtriage", 2_030),
               ("b", "route.encompass", 2_030 + 5 * DEFERRED_MS)]
    lat, deferred = _own_latencies(outputs, appended, first)
    assert deferred == 1
    assert sorted(lat) == [30, 40, 45, 5 * DEFERRED_MS + 30]
