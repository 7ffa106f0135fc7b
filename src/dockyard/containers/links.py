"""Legacy links on the default bridge (``--link name:alias``), as dockerd keeps and applies them.

A link is stored in the parent's ``HostConfig.Links`` as ``/child:/parent/alias``, and the child is
also known by the link's name ``/parent/alias`` (inspect, ``ps`` names, ``rm --link``). At each start
of the parent the child must run: its address, exposed ports and environment become the parent's
``ALIAS_*`` variables, and a hosts entry ``<ip> alias hostname name`` goes before the parent's own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable

from .. import errors
from ..util import boundfile

DEFAULT_HOSTS_END = "ff02::2\tip6-allrouters\n"  # the last of the lines every hosts file starts with


@dataclass
class Linked:
    child: Any  # the running child container
    name: str  # "/parent/alias"
    alias: str
    ip: str


def parse(link: str) -> tuple[str, str]:
    """(child, alias) of ``name:alias``, ``name`` or the stored ``/child:/parent/alias``."""
    child, _, alias = link.partition(":")
    return child, (alias or child).rstrip("/").rsplit("/", 1)[-1]


def normalize(links: list[str] | None, parent: str, lookup: Any, network_mode: str = "") -> list[str] | None:
    """The links as dockerd stores them at create: each child by its name, under the parent's."""
    if links and (network_mode == "host" or network_mode.startswith("container:")):
        kind = "host type networking" if network_mode == "host" else "container type network"
        raise errors.InvalidParameter(f"conflicting options: {kind} can't be used with links. "
                                      f"This would result in undefined behavior")
    out = []
    for link in links or []:
        child, alias = parse(link)
        out.append(f"{lookup(child.lstrip('/')).name}:{parent}/{alias}")
    return out or None


def renamed(links: list[str] | None, old: str, new: str) -> list[str] | None:
    """``links`` with the container once named ``old`` (a child, or the parent) named ``new``."""
    if not links:
        return links
    out = []
    for link in links:
        child, _, name = link.partition(":")
        parent, _, alias = name.rpartition("/")
        out.append(f"{new if child == old else child}:{new if parent == old else parent}/{alias}")
    return out


def child_by_link_name(containers: Iterable[Any], ref: str, lookup: Any) -> Any | None:
    """The child that the link name ``/parent/alias`` (or ``parent/alias``) stands for, or None."""
    parent_ref, _, alias = ref.strip("/").rpartition("/")
    if not parent_ref:
        return None
    try:
        parent = lookup(parent_ref)
    except errors.NotFound:
        return None
    for link in parent.host_config.get("Links") or []:
        child, link_alias = parse(link)
        if link_alias == alias:
            return next((c for c in containers if c.name == child), None)
    return None


def names_by_child(containers: Iterable[Any]) -> dict[str, list[str]]:
    """The link names each child is also known by (``ps`` lists them with its own)."""
    containers = list(containers)
    by_name = {c.name: c.id for c in containers}
    out: dict[str, list[str]] = {}
    for c in containers:
        for link in c.host_config.get("Links") or []:
            child, alias = parse(link)
            if child in by_name:
                out.setdefault(by_name[child], []).append(f"{c.name}/{alias}")
    return out


def resolve(svc: Any, parent: Any) -> list[Linked]:
    """The parent's links with their children, each of which must run (dockerd refuses the start).
    On a user-defined network links are the network's aliases, not these."""
    if (parent.host_config.get("NetworkMode") or "bridge") not in ("bridge", "default"):
        return []
    out = []
    for link in parent.host_config.get("Links") or []:
        child_name, alias = parse(link)
        name = f"{parent.name}/{alias}"
        try:
            child = svc.get(child_name.lstrip("/"))
        except errors.NotFound:
            raise errors.InvalidParameter(f"Could not get container for {child_name.lstrip('/')}") from None
        if not child.state.running:
            raise errors.Conflict(f"Cannot link to a non running container: {child.name} AS {name}")
        bridge = svc.networks.container_settings(child)["Networks"].get("bridge") or {}
        out.append(Linked(child, name, alias, bridge.get("IPAddress") or ""))
    return out


def _port_key(port: str) -> tuple[int, int]:
    number, _, proto = port.partition("/")
    return int(number), 0 if (proto or "tcp") == "tcp" else 1  # tcp first for the same number


def environment(links: list[Linked]) -> list[str]:
    """dockerd's link variables: NAME, PORT (the lowest port), a block per port, ranges of consecutive
    ports, and the child's own variables as ALIAS_ENV_* (but HOME and PATH)."""
    env: list[str] = []
    for link in links:
        alias = re.sub("-", "_", link.alias.upper())
        ports = sorted((p if "/" in p else p + "/tcp" for p in link.child.config.get("ExposedPorts") or {}),
                       key=_port_key)
        env.append(f"{alias}_NAME={link.name}")
        if ports:
            number, _, proto = ports[0].partition("/")
            env.append(f"{alias}_PORT={proto}://{link.ip}:{number}")
        for start, end in _ranges(ports):
            if start == end:
                continue
            number, _, proto = start.partition("/")
            prefix = f"{alias}_PORT_{number}_{proto.upper()}"
            last = end.partition("/")[0]
            env += [f"{prefix}_START={proto}://{link.ip}:{number}", f"{prefix}_ADDR={link.ip}",
                    f"{prefix}_PORT_START={number}", f"{prefix}_PROTO={proto}",
                    f"{prefix}_END={proto}://{link.ip}:{last}", f"{prefix}_PORT_END={last}"]
        for port in ports:
            number, _, proto = port.partition("/")
            prefix = f"{alias}_PORT_{number}_{proto.upper()}"
            env += [f"{prefix}={proto}://{link.ip}:{number}", f"{prefix}_ADDR={link.ip}",
                    f"{prefix}_PORT={number}", f"{prefix}_PROTO={proto}"]
        for item in link.child.config.get("Env") or []:
            key, sep, value = item.partition("=")
            if sep and key not in ("HOME", "PATH"):
                env.append(f"{alias}_ENV_{key}={value}")
    return env


def _ranges(ports: list[str]) -> list[tuple[str, str]]:
    """Runs of consecutive port numbers of one protocol, as (first, last)."""
    out: list[tuple[str, str]] = []
    for port in ports:
        number, proto = _port_key(port)
        if out:
            last_number, last_proto = _port_key(out[-1][1])
            if proto == last_proto and number == last_number + 1:
                out[-1] = (out[-1][0], port)
                continue
        out.append((port, port))
    return out


def write_hosts(hosts_path: str, links: list[Linked]) -> None:
    """The children's entries, after the lines every hosts file starts with and before the container's own."""
    if not links:
        return
    with open(hosts_path, encoding="utf-8") as f:
        content = f.read()
    lines = "".join(f"{link.ip}\t{_names(link)}\n" for link in links if link.ip)
    head, sep, rest = content.partition(DEFAULT_HOSTS_END)
    boundfile.rewrite(hosts_path, head + sep + lines + rest if sep else lines + content)


def _names(link: Linked) -> str:
    names = [link.alias, link.child.config.get("Hostname") or link.child.id[:12]]
    if link.alias != link.child.name.lstrip("/"):
        names.append(link.child.name.lstrip("/"))
    return " ".join(names)


def unlink(svc: Any, ref: str) -> None:
    """``DELETE /containers/{parent/alias}?link=true``: the parent forgets the link (the child stays)."""
    name = ref if ref.startswith("/") else "/" + ref
    parent_name, _, alias = name.rpartition("/")
    if not parent_name:
        raise errors.Conflict("Conflict, cannot remove the default link name of the container")
    if child_by_link_name(svc.all(), name, svc.get) is None:
        raise errors.NotFound(f"No such container: {name.lstrip('/')}")
    parent = svc.get(parent_name.lstrip("/"))
    kept = [link for link in parent.host_config.get("Links") or [] if parse(link)[1] != alias]
    svc.set_links(parent, kept or None)
