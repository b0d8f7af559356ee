"""How the stream's table values are stored: the routing state dataclasses as JSON (via pydantic)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter

from broker.intake import Seen
from broker.routing import ChildState, PriorOutput, VictimHistory

__all__ = ["Routed", "dump", "load_child", "load_routed", "load_seen", "load_victim"]


@dataclass(frozen=True)
class Routed:
    """What the router remembers of a routed notification: its outputs (for recall) and its subjects."""

    authority: str
    produced: tuple[PriorOutput, ...]
    child_keys: tuple[str, ...]


_CHILD = TypeAdapter(ChildState)
_VICTIM = TypeAdapter(VictimHistory)
_ROUTED = TypeAdapter(Routed)
_SEEN = TypeAdapter(Seen)


def dump(value: ChildState | VictimHistory | Routed | Seen) -> Any:
    """A state value as JSON-ready data."""
    adapters: dict[type, TypeAdapter[Any]] = {
        ChildState: _CHILD,
        VictimHistory: _VICTIM,
        Routed: _ROUTED,
        Seen: _SEEN,
    }
    adapter = adapters[type(value)]
    return adapter.dump_python(value, mode="json")


def load_child(data: Any) -> ChildState:
    """A child's state from its stored JSON."""
    return _CHILD.validate_python(data)


def load_victim(data: Any) -> VictimHistory:
    """A victim's history from its stored JSON."""
    return _VICTIM.validate_python(data)


def load_routed(data: Any) -> Routed:
    """A routed record from its stored JSON."""
    return _ROUTED.validate_python(data)


def load_seen(data: Any) -> Seen:
    """An intake record from its stored JSON."""
    return _SEEN.validate_python(data)
