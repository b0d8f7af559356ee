"""The lag evaluator (broker.lag), pure: Burrow's documented rules per partition, and the sliding window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from broker.lag import Commit, LagBook, LagStatus, LagWindow, evaluate

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def _commits(*rows: tuple[int, int]) -> list[Commit]:
    """Commits a minute apart from T0: (offset, high-water mark)."""
    return [Commit(T0 + timedelta(minutes=i), offset, hw) for i, (offset, hw) in enumerate(rows)]


def _now(commits: list[Commit], seconds: int = 30) -> datetime:
    return commits[-1].at + timedelta(seconds=seconds)


def test_zero_current_lag_is_ok() -> None:
    """Caught up: OK whatever the window looked like."""
    commits = _commits((10, 50), (10, 60), (60, 60))
    assert evaluate(commits, high_water=60, now=_now(commits)).status is LagStatus.OK


def test_zero_lag_within_the_window_is_ok() -> None:
    """Rule 1: any commit in the window with zero lag -> OK, even though the lag is now growing."""
    commits = _commits((50, 50), (55, 60), (56, 70), (57, 80))
    result = evaluate(commits, high_water=80, now=_now(commits))
    assert (result.status, result.lag) == (LagStatus.OK, 23)


def test_offset_not_moving_with_lag_is_stalled() -> None:
    """Rule 2: the committed offset does not change over the window while the lag stays or grows -> STALLED."""
    commits = _commits((10, 50), (10, 55), (10, 55), (10, 70))
    assert evaluate(commits, high_water=70, now=_now(commits)).status is LagStatus.STALLED


def test_moving_offsets_with_lag_not_shrinking_is_warn() -> None:
    """Rule 3: offsets increase but the lag increases or stays in every interval -> WARN."""
    commits = _commits((10, 50), (20, 60), (30, 75), (40, 85))
    result = evaluate(commits, high_water=85, now=_now(commits))
    assert result.status is LagStatus.WARN and "not shrinking" in result.reason


def test_lag_shrinking_in_one_interval_is_ok() -> None:
    """Offsets moving and the lag shrinking at least once: OK (the consumer is keeping up)."""
    commits = _commits((10, 50), (30, 60), (50, 65), (60, 80))
    assert evaluate(commits, high_water=80, now=_now(commits)).status is LagStatus.OK


def test_no_commit_for_longer_than_the_window_is_stopped() -> None:
    """Rule 4: now - last commit > last commit - first commit (with lag) -> STOPPED."""
    commits = _commits((10, 50), (20, 60), (30, 70))  # a 2-minute window
    assert evaluate(commits, high_water=70, now=_now(commits, 121)).status is LagStatus.STOPPED
    assert evaluate(commits, high_water=70, now=_now(commits, 119)).status is not LagStatus.STOPPED


def test_stopped_takes_precedence_over_zero_lag_in_the_window() -> None:
    """Burrow checks STOPPED before the zero-lag exemption: a consumer that went quiet with work waiting."""
    commits = _commits((50, 50), (60, 60))
    assert evaluate(commits, high_water=90, now=_now(commits, 3600)).status is LagStatus.STOPPED


def test_caught_up_consumer_is_never_stopped() -> None:
    """No commits for a day but nothing to read: OK."""
    commits = _commits((50, 50), (60, 60))
    assert evaluate(commits, high_water=60, now=_now(commits, 86400)).status is LagStatus.OK


def test_patience_delays_stopped() -> None:
    """A floor under the window: a consumer quiet for less than `patience` is not STOPPED yet."""
    commits = _commits((10, 50))
    assert evaluate(commits, high_water=50, now=_now(commits, 30)).status is LagStatus.STOPPED
    patient = evaluate(commits, high_water=50, now=_now(commits, 30), patience=timedelta(minutes=1))
    assert patient.status is LagStatus.OK


def test_rewind_is_a_warning_with_its_reason() -> None:
    """A committed offset going backwards (a reset): WARN, reason 'rewind'."""
    commits = _commits((40, 80), (20, 85), (30, 90))
    result = evaluate(commits, high_water=90, now=_now(commits))
    assert result.status is LagStatus.WARN and "rewind" in result.reason


def test_no_commits() -> None:
    """No commit ever: OK on an empty partition, STOPPED with records waiting."""
    assert evaluate([], high_water=0, now=T0).status is LagStatus.OK
    assert evaluate([], high_water=5, now=T0).status is LagStatus.STOPPED


def test_window_records_moves_and_keeps_the_last_n() -> None:
    """Samples at an unchanged offset (with lag) are not commits; the window keeps the last `size` commits."""
    window = LagWindow(size=3)
    for i, offset in enumerate([1, 1, 2, 3, 3, 4, 5]):
        window.observe(T0 + timedelta(minutes=i), offset, 100)
    assert [c.offset for c in window.commits] == [3, 4, 5]


def test_window_with_commit_times_sees_repeated_commits() -> None:
    """With commit times known, the same offset committed again is a commit: a stuck committer is STALLED."""
    window = LagWindow()
    for i in range(4):
        at = T0 + timedelta(minutes=i)
        window.observe(at, 10, 50 + i, committed_at=at)
    assert window.evaluate(T0 + timedelta(minutes=3, seconds=10)).status is LagStatus.STALLED


def test_window_min_distance_merges_close_commits() -> None:
    """Commits closer than min_distance replace the previous one."""
    window = LagWindow(min_distance=timedelta(seconds=30))
    for i, offset in enumerate([1, 2, 3]):
        window.observe(T0 + timedelta(seconds=10 * i), offset, 100)
    assert [c.offset for c in window.commits] == [3]


def test_idle_caught_up_group_is_refreshed() -> None:
    """A caught-up group's samples count as commits, so a burst right after an idle hour is not STOPPED."""
    window = LagWindow()
    for i in range(61):
        window.observe(T0 + timedelta(minutes=i), 50, 50)
    window.observe(T0 + timedelta(minutes=61), 50, 80)
    assert window.evaluate(T0 + timedelta(minutes=61)).status is LagStatus.OK


def test_lag_book_tracks_partitions_separately() -> None:
    """Each (group, topic, partition) has its own window; forget drops one."""
    book = LagBook(patience=timedelta(0))
    for i in range(3):
        at = T0 + timedelta(minutes=i)
        book.observe(("g", "t", 0), at, 10 * (i + 1), 10 * (i + 1))
        book.observe(("g", "t", 1), at, 5, 50 + i, committed_at=at)
    result = book.evaluate(T0 + timedelta(minutes=2, seconds=5))
    assert result[("g", "t", 0)].status is LagStatus.OK
    assert result[("g", "t", 1)].status is LagStatus.STALLED
    book.forget([("g", "t", 1)])
    assert list(book.evaluate(T0)) == [("g", "t", 0)]


@given(st.lists(st.tuples(st.integers(0, 1000), st.integers(0, 1000)), min_size=1, max_size=12),
       st.integers(0, 10_000))
def test_status_is_ok_whenever_caught_up(rows: list[tuple[int, int]], quiet: int) -> None:
    """Property: whatever the window, zero current lag is OK and the reported lag is never negative."""
    commits = _commits(*rows)
    result = evaluate(commits, high_water=commits[-1].offset, now=_now(commits, quiet))
    assert result.status is LagStatus.OK and result.lag == 0
    assert evaluate(commits, high_water=0, now=_now(commits, quiet)).lag == 0


def test_lag_metrics_are_a_state_set() -> None:
    """Each evaluated partition: its lag in records, and 1 on its current status, 0 on the others."""
    from broker.metrics import Metrics

    book = LagBook(patience=timedelta(0))
    for i in range(3):
        at = T0 + timedelta(minutes=i)
        book.observe(("mash-worker", "t.route.encompass", 2), at, 5, 50 + i, committed_at=at)
    metrics = Metrics()
    metrics.lag(book.evaluate(T0 + timedelta(minutes=2, seconds=5)))
    text = metrics.exposition().decode()
    where = 'group="mash-worker",partition="2"'
    topic = 'topic="t.route.encompass"'
    assert f"mash_consumer_lag_records{{{where},{topic}}} 47.0" in text
    assert f'mash_consumer_lag_status{{{where},status="STALLED",{topic}}} 1.0' in text
    assert f'mash_consumer_lag_status{{{where},status="OK",{topic}}} 0.0' in text
