"""A record read from disk has the field types its dataclass declares, or is refused.

Dataclasses do not check types, so ``Volume(**json.load(f))`` accepts ``{"name": 5}``
and the record then breaks every list that shows it; loaders call ``check`` and skip
(and log) a record that fails, instead of serving it.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from functools import cache
from typing import Any


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _accepts(kind: Any, value: Any) -> bool:
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        return any(_accepts(k, value) for k in typing.get_args(kind))
    if kind is type(None):
        return value is None
    if kind is Any:
        return True
    if origin is list:
        (item,) = typing.get_args(kind) or (Any,)
        return isinstance(value, list) and all(_accepts(item, v) for v in value)
    if origin is dict:
        key, val = typing.get_args(kind) or (Any, Any)
        return isinstance(value, dict) and all(_accepts(key, k) and _accepts(val, v) for k, v in value.items())
    if dataclasses.is_dataclass(kind):
        return isinstance(value, kind)
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def check(record: Any) -> None:
    """Raise TypeError naming the first field (nested dataclasses too) whose value has the wrong type."""
    hints = _hints(type(record))
    for f in dataclasses.fields(record):
        value = getattr(record, f.name)
        if not _accepts(hints[f.name], value):
            raise TypeError(f"{type(record).__name__}.{f.name}: {type(value).__name__} is not {hints[f.name]}")
        if dataclasses.is_dataclass(value):
            check(value)
        elif isinstance(value, dict):
            for v in value.values():
                if dataclasses.is_dataclass(v):
                    check(v)
