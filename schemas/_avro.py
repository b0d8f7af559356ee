"""Generate Avro schemas from the pydantic models, and convert between models and Avro datums."""

from __future__ import annotations

import types
import typing
from datetime import date, datetime
from enum import Enum
from functools import cache
from typing import Any
from uuid import UUID

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

__all__ = ["avro_schema", "from_datum", "to_datum"]

NAMESPACE = "uk.gov.mash"
JSON = dict[str, Any]


def _is_optional(tp: Any) -> tuple[bool, Any]:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) != len(typing.get_args(tp)) and len(args) == 1:
            return True, args[0]
    return False, tp


def _type(tp: Any, seen: set[str]) -> Any:
    if typing.get_origin(tp) is typing.Annotated:
        return _type(typing.get_args(tp)[0], seen)
    optional, inner = _is_optional(tp)
    if optional:
        return ["null", _type(inner, seen)]
    if typing.get_origin(tp) is list:
        (item,) = typing.get_args(tp)
        return {"type": "array", "items": _type(item, seen)}
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return _record(tp, seen)
    if isinstance(tp, type) and issubclass(tp, Enum):
        name = f"{NAMESPACE}.{tp.__name__}"
        if name in seen:
            return name
        seen.add(name)
        symbols = [m.value for m in tp]
        return {
            "type": "enum",
            "name": tp.__name__,
            "namespace": NAMESPACE,
            "doc": (tp.__doc__ or tp.__name__).strip(),
            "symbols": symbols,
            "default": "UNKNOWN",
        }
    simple: dict[Any, Any] = {
        str: "string",
        bool: "boolean",
        int: "long",
        float: "double",
        bytes: "bytes",
        UUID: {"type": "string", "logicalType": "uuid"},
        datetime: {"type": "long", "logicalType": "timestamp-millis"},
        date: {"type": "int", "logicalType": "date"},
    }
    if tp in simple:
        return simple[tp]
    raise TypeError(f"no Avro mapping for {tp!r}")


def _default(field: Any) -> Any:
    if field.default_factory is not None:
        value = field.default_factory()
    elif field.default is PydanticUndefined:
        return PydanticUndefined
    else:
        value = field.default
    if isinstance(value, BaseModel):
        return _datum_json(value)
    if isinstance(value, Enum):
        return value.value
    return value


def _datum_json(model: BaseModel) -> Any:
    return model.model_dump(mode="json")


def _record(model: type[BaseModel], seen: set[str]) -> Any:
    name = f"{NAMESPACE}.{model.__name__}"
    if name in seen:
        return name
    seen.add(name)
    fields = []
    for fname, field in model.model_fields.items():
        entry: JSON = {"name": fname, "type": _type(field.annotation, seen)}
        if not field.description:
            raise TypeError(f"{model.__name__}.{fname} has no description (it becomes the Avro doc)")
        entry["doc"] = field.description
        default = _default(field)
        if default is not PydanticUndefined:
            entry["default"] = default
        fields.append(entry)
    return {
        "type": "record",
        "name": model.__name__,
        "namespace": NAMESPACE,
        "doc": (model.__doc__ or model.__name__).strip().splitlines()[0],
        "fields": fields,
    }


@cache
def avro_schema(model: type[BaseModel]) -> JSON:
    """The Avro schema (as JSON) of a top-level record model; every named type defined once."""
    result: JSON = _record(model, set())
    return result


def to_datum(model: BaseModel) -> JSON:
    """A model as an Avro datum for fastavro (enums as symbols, everything else native)."""
    return _plain(model.model_dump(mode="python"))  # type: ignore[no-any-return]


# Values that go to fastavro as they are (checked by exact type first: most of a record's values are these).
_LEAVES = frozenset({str, int, float, bool, type(None), bytes, UUID, datetime, date})


def _plain(value: Any) -> Any:
    kind = type(value)
    if kind in _LEAVES:
        return value
    if kind is dict:
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def from_datum(model: type[BaseModel], datum: JSON) -> BaseModel:
    """Validate an Avro datum into its model (runs every field rule)."""
    return model.model_validate(datum)
