"""What dockerd refuses in a container create before it makes anything, in its words.

The schema (``validation``) has already checked every field's type; these are dockerd's
checks of values: the network mode's conflicts (first, as dockerd decodes them), environment
entries, healthcheck durations and legacy links.
"""

from __future__ import annotations

from typing import Any, Callable

from .. import errors
from ..containers import netmode

MINIMUM_DURATION = 1_000_000  # ns: dockerd's containertypes.MinimumDuration (1ms)
_DURATIONS = ("Interval", "Timeout", "StartPeriod")


def check(body: dict[str, Any], api_version: tuple[int, ...], lookup: Callable[[str], Any]) -> None:
    """Raise dockerd's error for the first of these problems ``body`` has; ``lookup`` finds a container
    by name or ID (raising NotFound)."""
    netmode.validate(body, body.get("HostConfig") or {})
    for entry in body.get("Env") or []:
        # dockerd's opts.ValidateEnv: a name is needed ("=x" and "" are refused, "NAME" alone is not)
        if not entry.split("=", 1)[0]:
            raise errors.InvalidParameter(f"invalid environment variable: {entry}")
    _healthcheck(body.get("Healthcheck") or {}, api_version)
    host_config = body.get("HostConfig") or {}
    mode = host_config.get("NetworkMode") or ""
    if mode == "host" or mode.startswith("container:"):
        return  # links are refused with these before any is looked up (containers/links.py)
    for link in host_config.get("Links") or []:
        _link(link, lookup)


def _healthcheck(hc: dict[str, Any], api_version: tuple[int, ...]) -> None:
    # StartInterval came with API 1.44; older daemons never read it
    for key in _DURATIONS + (("StartInterval",) if api_version >= (1, 44) else ()):
        value = hc.get(key) or 0
        if value and value < MINIMUM_DURATION:
            raise errors.InvalidParameter(f"{key} in Healthcheck cannot be less than 1ms")
    if (hc.get("Retries") or 0) < 0:
        raise errors.InvalidParameter("Retries in Healthcheck cannot be negative")


def _link(link: str, lookup: Callable[[str], Any]) -> None:
    parts = link.split(":")
    if len(parts) > 2 or not parts[0]:
        raise errors.InvalidParameter(f"bad format for links: {link}")
    name = parts[0]
    try:
        lookup(name.lstrip("/"))
    except errors.NotFound:
        raise errors.InvalidParameter(f"could not get container for {name}: No such container: {name}") from None
