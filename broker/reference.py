"""Reference data: schools (synthetic URNs and names; real local authority codes).

The schools file is a JSON list of objects:
    {"urn": "900001", "name": "...", "authority": "E06000051", "phase": "primary",
     "start_time": "08:50", "open": true}
`start_time` is the local (Europe/London) time the school day starts, "HH:MM" or "HH:MM:SS".
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import time
from pathlib import Path
from typing import Any

from broker.authority import is_ons_code
from broker.errors import ConfigurationError
from schemas.codes import is_urn

__all__ = ["DEFAULT_SCHOOLS", "School", "load_schools"]

#: The synthetic schools directory shipped inside the package (broker/data/reference/, package data).
DEFAULT_SCHOOLS = Path(__file__).resolve().parent / "data" / "reference" / "schools.json"


@dataclass(frozen=True)
class School:
    """An education setting that can receive Encompass notices."""

    urn: str
    name: str
    authority: str
    phase: str
    start_time: time
    open: bool


def _field(item: dict[str, Any], name: str, kind: type, where: str) -> Any:
    value = item.get(name)
    if not isinstance(value, kind):
        raise ConfigurationError(f"{where}.{name}: must be a {kind.__name__}")
    return value


def _school(item: Any, where: str) -> School:
    if not isinstance(item, dict):
        raise ConfigurationError(f"{where}: must be an object")
    urn = _field(item, "urn", str, where)
    if not is_urn(urn):
        raise ConfigurationError(f"{where}.urn: must be 6 or 7 digits")
    authority = _field(item, "authority", str, where)
    if not is_ons_code(authority):
        raise ConfigurationError(f"{where}.authority: must be an ONS code (E or W followed by 8 digits)")
    raw_start = _field(item, "start_time", str, where)
    try:
        start_time = time.fromisoformat(raw_start)
    except ValueError:
        raise ConfigurationError(f"{where}.start_time: must be a local time HH:MM") from None
    if start_time.tzinfo is not None:
        raise ConfigurationError(f"{where}.start_time: must be a local time without offset")
    return School(
        urn=urn,
        name=_field(item, "name", str, where),
        authority=authority,
        phase=_field(item, "phase", str, where),
        start_time=start_time,
        open=_field(item, "open", bool, where),
    )


def load_schools(path: Path | str = DEFAULT_SCHOOLS) -> dict[str, School]:
    """Schools by URN from a JSON list file; ConfigurationError (naming index and field) if malformed."""
    source = Path(path)
    try:
        raw = json.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigurationError(f"schools file not found: {source}") from None
    except json.JSONDecodeError as exc:
        raise ConfigurationError(f"schools file {source}: not valid JSON ({exc.msg})") from None
    if not isinstance(raw, list):
        raise ConfigurationError(f"schools file {source}: must be a JSON list")
    schools: dict[str, School] = {}
    for index, item in enumerate(raw):
        school = _school(item, f"schools[{index}]")
        if school.urn in schools:
            raise ConfigurationError(f"schools[{index}].urn: duplicate URN")
        schools[school.urn] = school
    return schools
