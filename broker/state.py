"""How intake's table values are stored: `Seen` as JSON (via pydantic).

The router's state (people, notifications) and its serialisation live in `broker.casebook`.
"""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from broker.intake import Seen

__all__ = ["dump", "load_seen"]

_SEEN = TypeAdapter(Seen)


def dump(value: Seen) -> Any:
    """An intake record as JSON-ready data."""
    return _SEEN.dump_python(value, mode="json")


def load_seen(data: Any) -> Seen:
    """An intake record from its stored JSON."""
    return _SEEN.validate_python(data)
