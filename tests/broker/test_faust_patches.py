"""The worker's adjustments of faust's consumer (broker._faust_patches)."""

from __future__ import annotations

import faust

from broker import _faust_patches


def test_the_fetch_settings_still_have_their_targets() -> None:
    """faust still builds its consumer in the wrapped factory and aiokafka still reads the two fetch attributes
    when it starts (else the worker refuses to start)."""
    assert _faust_patches.fetch_targets_exist()


async def test_consumers_faust_builds_fetch_with_the_tuned_values() -> None:
    """After `tune_fetch`, the consumer faust's consumer thread builds carries the tuned fetch wait and size, and
    a second call replaces them (one wrapper, not two)."""
    app = faust.App("fetch-probe", broker="kafka://127.0.0.1:9", web_enabled=False)
    thread = app.consumer._thread  # faust's consumer thread, whose factory the patch wraps
    try:
        _faust_patches.tune_fetch(min_bytes=1234, max_wait_ms=56)
        consumer = thread._create_worker_consumer(app.transport)
        assert (consumer._fetch_min_bytes, consumer._fetch_max_wait_ms) == (1234, 56)
        _faust_patches.tune_fetch(min_bytes=4096, max_wait_ms=100)
        again = thread._create_worker_consumer(app.transport)
        assert (again._fetch_min_bytes, again._fetch_max_wait_ms) == (4096, 100)
    finally:
        _faust_patches.tune_fetch(min_bytes=4096, max_wait_ms=100)
