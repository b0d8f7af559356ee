"""structlog, configured once per process."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from typing import Any

import structlog

__all__ = ["configure_logging", "debug_enabled", "get_logger", "offset_span"]

_configured = False


def configure_logging(*, json: bool = False, level: int = logging.INFO) -> None:
    """Configure structlog once; later calls are no-ops. Logs go to stderr; never log names or dates of birth."""
    global _configured
    if _configured:
        return
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    _configured = True


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    """A logger bound to a component name."""
    return structlog.get_logger(component=name)  # type: ignore[no-any-return]


def debug_enabled(log: structlog.typing.FilteringBoundLogger) -> bool:
    """Whether `log` renders DEBUG lines (so a per-record line's fields are worth building)."""
    return bool(log.is_enabled_for(logging.DEBUG))


def offset_span(messages: Iterable[Any]) -> str:
    """Where a batch's records sit, for its summary line: `topic/partition:first-last` per partition, in order of
    first appearance (records carry `topic`, `partition` and `offset`; no personal data)."""
    spans: dict[tuple[str, int], list[int]] = {}
    for m in messages:
        span = spans.get((m.topic, m.partition))
        if span is None:
            spans[(m.topic, m.partition)] = [m.offset, m.offset]
        else:
            span[0], span[1] = min(span[0], m.offset), max(span[1], m.offset)
    return " ".join(f"{t}/{p}:{a}-{b}" for (t, p), (a, b) in spans.items())
