"""Filters as dockerd reads them: the `filters` query parameter (JSON in either of the two forms clients
send), label matching, since/until timestamps, and the label/label!/until selection that every prune
(and the lists that take those keys) shares."""

from __future__ import annotations

import datetime
import json
import time
from dataclasses import dataclass
from typing import Any

from .. import errors
from .timefmt import go_duration_ns


def parse(raw: str | None, allowed: set[str] | frozenset[str]) -> dict[str, list[str]]:
    """Parse ``{"key": ["v"]}`` or the older ``{"key": {"v": true}}`` form.

    Unknown keys are refused as dockerd does, since a silently ignored filter
    would return everything.
    """
    if not raw:
        return {}
    try:
        data: Any = json.loads(raw)
    except ValueError as e:
        raise errors.InvalidParameter(f"invalid filter: {e}") from None
    if not isinstance(data, dict):
        raise errors.InvalidParameter("invalid filter: expected a JSON object")
    out: dict[str, list[str]] = {}
    for key, value in data.items():
        if key not in allowed:
            raise errors.InvalidParameter(f"invalid filter '{key}'")
        if isinstance(value, dict):
            out[key] = [k for k, v in value.items() if v]
        elif isinstance(value, list):
            out[key] = [str(v) for v in value]
        elif isinstance(value, str):
            out[key] = [value]
        else:
            raise errors.InvalidParameter(f"invalid filter '{key}'")
    return out


def bool_value(values: list[str], key: str) -> bool | None:
    if not values:
        return None
    v = values[-1].lower()
    if v in ("1", "true"):
        return True
    if v in ("0", "false"):
        return False
    raise errors.InvalidParameter(f"Invalid filter '{key}={values[-1]}'")


def match_labels(labels: dict[str, str] | None, wanted: list[str] | tuple[str, ...]) -> bool:
    """`label=key` or `label=key=value`: every one must hold (dockerd's MatchKVList)."""
    labels = labels or {}
    for item in wanted:
        key, sep, value = item.partition("=")
        if key not in labels or (sep and labels[key] != value):
            return False
    return True


def parse_timestamp(value: str, name: str) -> int:
    """A `since`/`until` value as nanoseconds: unix seconds (with fraction) or RFC 3339."""
    value = value.strip()
    try:
        secs, _, frac = value.partition(".")
        nanos = int(secs) * 1_000_000_000
        if frac:
            nanos += int(frac.ljust(9, "0")[:9]) * (1 if not secs.startswith("-") else -1)
        return nanos
    except ValueError:
        pass
    ago = go_duration_ns(value)
    if ago is not None:  # as dockerd's GetTimestamp: a duration counts back from now
        return time.time_ns() - ago
    try:
        dt = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise errors.InvalidParameter(f'failed to parse value as time or duration: "{value}"') from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=datetime.timezone.utc)
    return int(dt.timestamp() * 1_000_000_000)


@dataclass(frozen=True)
class LabelSelector:
    """The ``label``, ``label!`` and ``until`` filters of a prune (dockerd's daemon/prune.go): an object
    is chosen when it was created before ``until``, carries every ``label`` and not every ``label!``."""

    labels: tuple[str, ...] = ()
    not_labels: tuple[str, ...] = ()
    until_ns: int | None = None

    @classmethod
    def of(cls, wanted: dict[str, list[str]]) -> LabelSelector:
        until = wanted.get("until")
        return cls(tuple(wanted.get("label", ())), tuple(wanted.get("label!", ())),
                   parse_timestamp(until[-1], "until") if until else None)

    def selects(self, labels: dict[str, str] | None, created_ns: float | None = None) -> bool:
        """``created_ns`` None: the object has no creation time to compare (volumes)."""
        if self.until_ns is not None and created_ns is not None and created_ns >= self.until_ns:
            return False
        if self.labels and not match_labels(labels, self.labels):
            return False
        # an object without labels is never spared by label! (MatchKVList is false on an empty map)
        return not (self.not_labels and labels and match_labels(labels, self.not_labels))
