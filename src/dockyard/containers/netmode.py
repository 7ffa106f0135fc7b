"""What a network (or UTS) mode rules out at create, in dockerd's words and order (its runconfig
validateNetMode): a container in another's network namespace has that container's hostname, DNS
servers, hosts file, MAC address and ports, so asking for its own is a conflict."""

from __future__ import annotations

from typing import Any

from .. import errors

_CONTAINER = "container:"


def validate(config: dict[str, Any], host_config: dict[str, Any]) -> None:
    """``config`` is the request's (before the image's is merged: an image's EXPOSE is no conflict)."""
    mode = host_config.get("NetworkMode") or ""
    joins = mode.startswith(_CONTAINER)
    if joins and not mode[len(_CONTAINER):]:
        raise errors.InvalidParameter("Invalid network mode: invalid container format container:<name|id>")
    if joins:
        for present, what in (
                (config.get("Hostname"), "hostname and the network mode"),
                (host_config.get("Links"), "container type network can't be used with links. "
                                           "This would result in undefined behavior"),
                (host_config.get("Dns"), "dns and the network mode"),
                (host_config.get("ExtraHosts"), "custom host-to-IP mapping and the network mode")):
            if present:
                raise errors.InvalidParameter(f"conflicting options: {what}")
    if (joins or mode == "host") and config.get("MacAddress"):
        raise errors.InvalidParameter("conflicting options: mac-address and the network mode")
    if joins and (host_config.get("PortBindings") or host_config.get("PublishAllPorts")):
        raise errors.InvalidParameter("conflicting options: port publishing and the container type network mode")
    if joins and config.get("ExposedPorts"):
        raise errors.InvalidParameter("conflicting options: port exposing and the container type network mode")
    if host_config.get("UTSMode") == "host" and config.get("Hostname"):
        raise errors.InvalidParameter("conflicting options: hostname and the UTS mode")
    if mode == "host" and host_config.get("Links"):
        raise errors.InvalidParameter("conflicting options: host type networking can't be used with links. "
                                      "This would result in undefined behavior")
