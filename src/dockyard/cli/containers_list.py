"""docker ps (``container ls``): the listing, its columns and their Go-template names.

Output follows the docker CLI's ``formatter.ContainerContext``: ports grouped into ranges, commands
quoted as Go quotes them, image references shown in their familiar form.
"""

from __future__ import annotations

import argparse
import datetime
import re
from typing import Any

import docker

from ..util import timefmt
from . import config
from .command import Arity, Cli, CommandTree, add_bool, add_filter_flag, add_format_flag, filters_from
from .common import familiar_name
from .connection import raw_get
from .output import Context, Format, ellipsis, human_duration, human_size, truncate_id, write_formatted


def _go_quote(text: str) -> str:
    """strconv.Quote for the printable text commands hold."""
    out = ['"']
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def displayable_ports(ports: list[dict[str, Any]]) -> str:
    """docker's DisplayablePorts: consecutive ports grouped into ranges, host mappings last."""
    ordered = sorted(ports, key=lambda p: (p.get("PrivatePort", 0), p.get("IP", ""), p.get("PublicPort", 0),
                                           p.get("Type", "")))
    groups: dict[str, list[int]] = {}
    keys: list[str] = []
    result: list[str] = []
    mappings: list[str] = []

    def form(key: str, first: int, last: int) -> str:
        ip, _, kind = key.rpartition("/")
        group = str(first) if first == last else f"{first}-{last}"
        if ip:
            group = f"{ip}:{group}->{group}"
        return f"{group}/{kind}"

    for p in ordered:
        current, key = p.get("PrivatePort", 0), p.get("Type", "tcp")
        ip = p.get("IP", "")
        if ip:
            public = p.get("PublicPort", 0)
            if public != current:
                host = f"[{ip}]" if ":" in ip else ip
                mappings.append(f"{host}:{public}->{current}/{p.get('Type', 'tcp')}")
                continue
            key = f"{ip}/{key}"
        group = groups.get(key)
        if group is None:
            groups[key] = [current, current]
            keys.append(key)
        elif current == group[1] + 1:
            group[1] = current
        else:
            result.append(form(key, group[0], group[1]))
            groups[key] = [current, current]
    result.extend(form(k, *groups[k]) for k in keys)
    return ", ".join(result + mappings)


class ContainerContext(Context):
    """One row of ``docker ps`` (docker's ``formatter.ContainerContext``)."""

    HEADERS = {
        "ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT",
        "RunningFor": "CREATED", "Ports": "PORTS", "State": "STATE", "Status": "STATUS", "Size": "SIZE",
        "Names": "NAMES", "Labels": "LABELS", "Mounts": "MOUNTS", "LocalVolumes": "LOCAL VOLUMES",
        "Networks": "NETWORKS", "Platform": "PLATFORM",
    }
    type_name = "*formatter.ContainerContext"

    def __init__(self, c: dict[str, Any] | None = None, trunc: bool = True) -> None:
        self.c = c or {}
        self.trunc = trunc

    def ID(self) -> str:
        return truncate_id(self.c["Id"]) if self.trunc else self.c["Id"]

    def Names(self) -> str:
        names = [n[1:] if n.startswith("/") else n for n in self.c.get("Names") or []]
        if self.trunc:
            for name in names:
                if "/" not in name:
                    names = [name]
                    break
        return ",".join(names)

    def Image(self) -> str:
        image = self.c.get("Image") or ""
        if not image:
            return "<no image>"
        if self.trunc:
            if truncate_id(self.c.get("ImageID") or "") == truncate_id(image):
                return truncate_id(image)
            name, _, _digest = image.partition("@")
            return familiar_name(name) if "@" in image else image
        return image

    def Command(self) -> str:
        command = self.c.get("Command") or ""
        return _go_quote(ellipsis(command, 20) if self.trunc else command)

    def CreatedAt(self) -> str:
        return timefmt.go_time_string(self.c.get("Created", 0))

    def RunningFor(self) -> str:
        now = datetime.datetime.now(datetime.timezone.utc).timestamp()
        return human_duration(now - self.c.get("Created", 0)) + " ago"

    def Ports(self) -> str:
        return displayable_ports(self.c.get("Ports") or [])

    def State(self) -> str:
        return self.c.get("State") or ""

    def Status(self) -> str:
        return self.c.get("Status") or ""

    def Size(self) -> str:
        rw = human_size(self.c.get("SizeRw") or 0, 3)
        root = self.c.get("SizeRootFs") or 0
        return f"{rw} (virtual {human_size(root, 3)})" if root > 0 else rw

    def Labels(self) -> str:
        labels = self.c.get("Labels") or {}
        return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))

    METHODS = {"Label": 1}

    def Label(self, name: str) -> str:
        return (self.c.get("Labels") or {}).get(name, "")

    def Mounts(self) -> str:
        names = []
        for m in self.c.get("Mounts") or []:
            name = m.get("Name") or m.get("Source") or ""
            if m.get("Name") and self.trunc:
                name = ellipsis(name, 15)
            names.append(name)
        return ",".join(names)

    def LocalVolumes(self) -> str:
        return str(sum(1 for m in self.c.get("Mounts") or [] if m.get("Driver") == "local"))

    def Platform(self) -> dict[str, Any] | None:
        return (self.c.get("ImageManifestDescriptor") or {}).get("platform")

    def Networks(self) -> str:
        nets = (self.c.get("NetworkSettings") or {}).get("Networks") or {}
        return ",".join(sorted(nets))


PS_TABLE = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"


def cmd_ps(cli: Cli, ns: argparse.Namespace) -> None:
    filters = filters_from(ns.filter, ns.command_parser)
    source = ns.format or ("" if ns.quiet else config.default_format("psFormat")) or "table"
    size = ns.size
    if ns.format and not ns.quiet and not ns.size_set and re.search(r"\.Size\b", ns.format):
        size = True  # docker asks for sizes when the template shows them
    if source == "table":
        fmt = Format("{{.ID}}" if ns.quiet else PS_TABLE + ("\t{{.Size}}" if size else ""))
    else:
        fmt = Format(source)
    limit = ns.last if ns.last != -1 else (1 if ns.latest else -1)
    params: dict[str, Any] = {"all": 1 if ns.all else 0, "size": 1 if size else 0}
    if limit > 0:
        params["limit"] = limit
    if filters:
        params["filters"] = docker.utils.convert_filters(filters)
    containers = raw_get(cli.client, "/containers/json", params=params).json()
    write_formatted(cli.out, fmt, (ContainerContext(c, not ns.no_trunc) for c in containers), ContainerContext())


def _ps(cli: Cli, ns: argparse.Namespace) -> None:
    ns.size_set = ns.size or getattr(ns, "size_off", False)
    cmd_ps(cli, ns)


# ---------------------------------------------------------------- registration

def _ps_flags(p: argparse.ArgumentParser) -> None:
    add_bool(p, "-a", "--all", help="Show all containers (default shows just running)")
    add_filter_flag(p)
    add_format_flag(p, "Format output using a custom template")
    p.add_argument("-n", "--last", type=int, default=-1, metavar="int",
                   help="Show n last created containers (includes all states)")
    add_bool(p, "-l", "--latest", help="Show the latest created container (includes all states)")
    add_bool(p, "--no-trunc", help="Don't truncate output")
    add_bool(p, "-q", "--quiet", help="Only display container IDs")
    p.add_argument("-s", "--size", dest="size", action="store_const", const=True, default=False,
                   help="Display total file sizes")
    p.add_argument("--size=true", "-s=true", dest="size", action="store_const", const=True, help=argparse.SUPPRESS)
    p.add_argument("--size=false", "-s=false", dest="size_off", action="store_true", help=argparse.SUPPRESS)


def register(tree: CommandTree) -> None:
    tree.group("container", "Manage containers")
    tree.add(["ps", "container ls", "container list", "container ps"], "[OPTIONS]", "List containers",
             _ps, _ps_flags, Arity(0, 0))
