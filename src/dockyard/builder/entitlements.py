"""The build entitlements the daemon grants, read from daemon.json as dockerd reads them::

    {"builder": {"entitlements": {"security-insecure": true}}}

Only ``security-insecure`` (``RUN --security=insecure``: the step runs privileged,
as ``docker run --privileged``) is read; it is off unless set to ``true``, as in
BuildKit. ``network-host`` is not: the classic builder has always let
``--network host`` through, and ``RUN --network=host`` is the same network.
"""

from __future__ import annotations

from typing import Any


def security_insecure(config: Any) -> bool:
    builder = getattr(config, "builder", None) or {}
    if not isinstance(builder, dict):
        return False
    granted = {str(k).lower(): v for k, v in builder.items()}.get("entitlements") or {}
    if not isinstance(granted, dict):
        return False
    return {str(k).lower(): v for k, v in granted.items()}.get("security-insecure") is True
