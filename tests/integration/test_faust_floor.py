"""The faust read floor (benchmarks.faust_floor) on the real broker: the worker's faust app and serving loop
serve a stage of their own."""

from __future__ import annotations

from benchmarks.faust_floor import run_faust_floor
from broker.settings import Settings


def test_the_workers_faust_app_and_serving_loop_read_a_loaded_topic_to_its_end(kafka: str) -> None:
    """`faust_app` and `serve_stage` (the worker's own) hand every loaded record to the stage in batches, and the
    child reports what a record cost: the benchmark cannot rot unnoticed."""
    result = run_faust_floor(Settings(kafka_bootstrap=kafka), count=600, work_ms=1.0, timeout_s=180)
    assert result.records >= 600
    assert 1 <= result.batches <= result.records
    assert result.cpu_us > 0
    assert "us CPU per record" in result.lines()[0]
