"""Helpers several command modules share: flag values, image references, inspect output, name order.

A command module takes such a helper from here, never from another command module
(``volume ls`` and ``network ls`` order names alike; ``run`` and ``update`` read sizes alike,
``logs --since`` and ``run --health-interval`` durations).
"""

from __future__ import annotations

import argparse
import re
from typing import Any

from .. import errors as engine_errors
from ..util import reference
from .command import Cli, CliError, UsageError
from .output import compact_json, indented_json, render_template

_RAM = re.compile(r"(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?", re.ASCII)
_RAM_UNITS = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
_DURATION_NS = {"ns": 1, "us": 1000, "µs": 1000, "ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}


def invalid_flag(parser: argparse.ArgumentParser, value: str, flag: str, why: str) -> UsageError:
    return UsageError(f'invalid argument "{value}" for "{flag}" flag: {why}', parser)  # type: ignore[arg-type]


def ram_in_bytes(text: str) -> int:
    """go-units RAMInBytes: ``512m``, ``1g``, ``1024`` (binary multiples)."""
    m = _RAM.fullmatch(text)
    if not m:
        raise ValueError(f"invalid size: '{text}'")
    size = float(m.group(1))
    unit = (m.group(2) or "").lower()
    return int(size * _RAM_UNITS.get(unit, 1))


def duration_ns(text: str) -> int:
    """Go's time.ParseDuration for the single-unit values health flags take (``30s``, ``1m``, ``500ms``)."""
    total = 0
    rest = text
    if rest == "0":
        return 0
    while rest:
        m = re.match(r"(\d+(?:\.\d*)?)(ns|us|µs|ms|s|m|h)", rest)
        if not m:
            raise ValueError(f'time: invalid duration "{text}"')
        total += int(float(m.group(1)) * _DURATION_NS[m.group(2)])
        rest = rest[m.end():]
    return total


def int_flag(parser: argparse.ArgumentParser, value: str | None, flag: str) -> int | None:
    """A Go int flag's value; None when the flag was not given."""
    if value is None:
        return None
    try:
        return int(value, 10)
    except ValueError:
        raise invalid_flag(parser, value, flag, "strconv.ParseInt: parsing " + f'"{value}": invalid syntax') from None


def bytes_flag(parser: argparse.ArgumentParser, value: str | None, flag: str,
               allow_minus_one: bool = False) -> int | None:
    """A size flag (``-m 512m``) in bytes; None when the flag was not given."""
    if value is None:
        return None
    if allow_minus_one and value == "-1":
        return -1
    try:
        return ram_in_bytes(value)
    except ValueError as e:
        raise invalid_flag(parser, value, flag, str(e)) from None


def parse_reference(text: str) -> reference.Reference:
    try:
        return reference.parse(text, default_tag=False)
    except engine_errors.InvalidParameter as e:
        raise CliError(f'Error parsing reference: "{text}" is not a valid repository/tag: {e}') from None


def print_inspect(cli: Cli, values: list[Any], fmt: str) -> None:
    """docker's inspect output: an indented JSON array, one compact array for ``json``, or a template a value."""
    if fmt == "json":
        cli.out.write(compact_json(values) + "\n")
    elif fmt:
        cli.out.write(render_template(fmt, values))
    else:
        cli.out.write(indented_json(values) + "\n")


def natural_key(text: str) -> list[Any]:
    """sortorder.NaturalLess: runs of digits compare as numbers."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", text) if part]


def familiar_name(name: str) -> str:
    """An image name as docker shows it: ``docker.io/library/busybox`` is ``busybox``."""
    for prefix in ("docker.io/library/", "docker.io/"):
        if name.startswith(prefix):
            return name[len(prefix):]
    return name
