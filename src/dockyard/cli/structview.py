"""Daemon JSON seen through Go field names, for templates over docker's typed structs."""

from __future__ import annotations

from typing import Any, Mapping


class StructView:
    """A JSON object whose template fields are Go's names (``.APIVersion`` for ``ApiVersion``).

    Unknown fields are errors as on a Go struct. Nested objects are structs
    too (their JSON keeps the daemon's field order), except those named in
    ``maps``, which stay plain dicts and marshal sorted like Go maps;
    ``nested`` gives a nested struct its own type name and aliases.
    """

    def __init__(self, data: Mapping[str, Any], type_name: str, aliases: Mapping[str, str] | None = None,
                 nested: Mapping[str, "tuple[str, Mapping[str, str]]"] | None = None,
                 maps: frozenset[str] = frozenset()) -> None:
        self.data = data
        self.type_name = type_name
        self.aliases = aliases or {}
        self.nested = nested or {}
        self.maps = maps

    def field(self, name: str) -> Any:
        key = self.aliases.get(name, name)
        if key not in self.data:
            if name in self.aliases:
                return None
            raise KeyError(name)
        value = self.data[key]
        if isinstance(value, Mapping) and name not in self.maps:
            type_name, aliases = self.nested.get(name, (name, {}))
            return StructView(value, type_name, aliases, maps=self.maps)
        return value

    def to_json(self) -> Any:
        return self.data
