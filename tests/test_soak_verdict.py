"""The soak benchmark's verdict (benchmarks.soak): the slope of memory over the second half of a run decides
"flat" or "GROWING", in MB per 10 minutes."""

from __future__ import annotations

from benchmarks.soak import Soak, slope_mb_per_10min


def test_slope_is_in_mb_per_ten_minutes() -> None:
    """A line rising 1 MB a minute has a slope of 10 MB per 10 minutes; a constant has 0; one sample has 0."""
    assert abs(slope_mb_per_10min([(60.0 * i, 100.0 + i) for i in range(10)]) - 10.0) < 1e-9
    assert slope_mb_per_10min([(60.0 * i, 150.0) for i in range(10)]) == 0.0
    assert slope_mb_per_10min([(0.0, 1.0)]) == 0.0


def test_warm_up_growth_is_forgiven_and_a_leak_is_not() -> None:
    """Growth in the first half (warm-up) with a flat second half is "flat"; steady growth is "GROWING"."""
    soak = Soak(rate=50, minutes=60, prefix="t")
    for i in range(60):
        soak.add(60.0 * i, "worker", (100 + min(i, 20) * 3) * 1024)  # grows 60 MB, then flat
        soak.add(60.0 * i, "leaky", (100 + i) * 1024)  # 1 MB a minute throughout
    lines = {line.split()[0]: line for line in soak.lines(tolerance=2.0)[2:]}
    assert lines["worker"].endswith("flat")
    assert lines["leaky"].endswith("GROWING")
