"""What the stages need to process records in batches with the guarantees of one-at-a-time processing.

`Received` pairs a consumed record with a runner for its faust context: faust's table stores find the partition
of a read or write from the current event, so every table access for a record runs inside the context captured
when that record was delivered. `Overlay` lets the decisions of a batch see the state written by earlier
records of the same batch (per partition) before anything is written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from broker.outlet import Inbound

__all__ = ["Overlay", "Received", "direct"]

T = TypeVar("T")
Runner = Callable[[Callable[[], Any]], Any]


def direct(fn: Callable[[], T]) -> T:
    """Run in the current context (tests, and state adapters that need no event context)."""
    return fn()


@dataclass(frozen=True)
class Received:
    """A consumed record and the runner of its delivery context."""

    msg: Inbound
    run: Runner = direct


class _TableOverlay:
    def __init__(self, pending: Mapping[str, Any], base: Any) -> None:
        self._pending, self._base = pending, base

    def get(self, key: str, default: Any = None) -> Any:
        if key in self._pending:
            return self._pending[key]
        return default if self._base is None else self._base.get(key, default)

    def __getitem__(self, key: str) -> Any:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __contains__(self, key: object) -> bool:
        return self.get(str(key)) is not None


@dataclass
class Overlay:
    """Tables as the next record of a batch should see them: staged writes over the stored state."""

    base: Mapping[str, Any]
    pending: dict[int, dict[str, dict[str, Any]]] = field(default_factory=dict)

    def view(self, partition: int) -> Mapping[str, Any]:
        """A read-only tables view for one partition."""
        staged = self.pending.get(partition, {})
        return {name: _TableOverlay(staged.get(name, {}), table) for name, table in self.base.items()}

    def stage(self, partition: int, writes: Iterable[tuple[str, str, Any]]) -> None:
        """Record writes that later records of the batch must see."""
        staged = self.pending.setdefault(partition, {})
        for name, key, value in writes:
            staged.setdefault(name, {})[key] = value
