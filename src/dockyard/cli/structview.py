"""Daemon JSON seen through Go field names, for templates over docker's typed structs."""

from __future__ import annotations

from typing import Any, Mapping


class StructView:
    """A JSON object whose template fields are Go's names (``.APIVersion`` for ``ApiVersion``).

    Unknown fields are errors as on a Go struct; nested objects named in
    ``nested`` are wrapped in their own view.
    """

    def __init__(self, data: Mapping[str, Any], type_name: str, aliases: Mapping[str, str] | None = None,
                 nested: Mapping[str, "tuple[str, Mapping[str, str]]"] | None = None) -> None:
        self.data = data
        self.type_name = type_name
        self.aliases = aliases or {}
        self.nested = nested or {}

    def field(self, name: str) -> Any:
        key = self.aliases.get(name, name)
        if key not in self.data:
            if name in self.aliases:
                return None
            raise KeyError(name)
        value = self.data[key]
        if name in self.nested and isinstance(value, Mapping):
            type_name, aliases = self.nested[name]
            return StructView(value, type_name, aliases)
        return value

    def to_json(self) -> Any:
        return self.data
