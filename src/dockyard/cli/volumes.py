"""Volume commands: volume create, ls, inspect, rm, prune (docker's ``cli/command/volume``)."""

from __future__ import annotations

import argparse
import json
from typing import Any

import docker

from . import config
from .command import Arity, Cli, CliError, CommandTree, add_bool, add_format_flag, confirm, filters_from
from .common import natural_key, print_inspect
from .connection import api_message, raw_get, raw_post
from .output import Context, Format, human_size, write_formatted


class VolumeContext(Context):
    """One row of ``docker volume ls`` (docker's ``formatter.volumeContext``)."""

    HEADERS = {"Name": "VOLUME NAME", "Driver": "DRIVER", "Scope": "SCOPE", "Mountpoint": "MOUNTPOINT",
               "Labels": "LABELS", "Links": "LINKS", "Size": "SIZE", "Group": "GROUP",
               "Availability": "AVAILABILITY", "Status": "STATUS"}
    METHODS = {"Label": 1}
    type_name = "*formatter.volumeContext"

    def __init__(self, v: dict[str, Any] | None = None) -> None:
        self.v = v or {}

    def Name(self) -> str:
        return self.v.get("Name", "")

    def Driver(self) -> str:
        return self.v.get("Driver", "")

    def Scope(self) -> str:
        return self.v.get("Scope", "")

    def Mountpoint(self) -> str:
        return self.v.get("Mountpoint", "")

    def Labels(self) -> str:
        return ",".join(f"{k}={v}" for k, v in (self.v.get("Labels") or {}).items())

    def Label(self, name: str) -> str:
        return (self.v.get("Labels") or {}).get(name, "")

    def Links(self) -> str:
        usage = self.v.get("UsageData")
        return "N/A" if usage is None else str(usage.get("RefCount", -1))

    def Size(self) -> str:
        usage = self.v.get("UsageData")
        return "N/A" if usage is None else human_size(usage.get("Size", -1))

    def Group(self) -> str:
        cluster = self.v.get("ClusterVolume")
        return "N/A" if cluster is None else (cluster.get("Spec") or {}).get("Group", "")

    def Availability(self) -> str:
        cluster = self.v.get("ClusterVolume")
        return "N/A" if cluster is None else (cluster.get("Spec") or {}).get("Availability", "")

    def Status(self) -> str:
        cluster = self.v.get("ClusterVolume")
        if cluster is None:
            return "N/A"
        if not (cluster.get("Info") or {}).get("VolumeID"):
            return "pending creation"
        nodes = len(cluster.get("PublishStatus") or [])
        return "created" if nodes == 0 else "in use (1 node)" if nodes == 1 else f"in use ({nodes} nodes)"


VOLUME_TABLE = "table {{.Driver}}\t{{.Name}}"


def cmd_volume_ls(cli: Cli, ns: argparse.Namespace) -> None:
    filters = filters_from(ns.filter, ns.command_parser)
    source = ns.format or ("" if ns.quiet else config.default_format("volumesFormat")) or "table"
    fmt = Format("{{.Name}}" if ns.quiet and source in ("table", "") else VOLUME_TABLE if source == "table"
                 else source)
    params = {"filters": docker.utils.convert_filters(filters)} if filters else None
    volumes = raw_get(cli.client, "/volumes", params=params).json().get("Volumes") or []
    volumes.sort(key=lambda v: natural_key(v.get("Name", "")))
    write_formatted(cli.out, fmt, (VolumeContext(v) for v in volumes), VolumeContext())


def _key_values(items: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, _, value = item.partition("=")
        out[key] = value
    return out


def cmd_volume_create(cli: Cli, ns: argparse.Namespace) -> None:
    name = ns.args[0] if ns.args else ns.name
    if ns.args and ns.name and ns.name != ns.args[0]:
        raise CliError("conflicting options: cannot specify a volume-name through both --name and as a "
                       "positional arg", 1)
    body = {"Name": name, "Driver": ns.driver, "DriverOpts": _key_values(ns.opt),
            "Labels": _key_values(ns.label)}
    info = raw_post(cli.client, "/volumes/create", data=json.dumps(body).encode(),
                    headers={"Content-Type": "application/json"}).json()
    cli.out.write(info["Name"] + "\n")


def cmd_volume_inspect(cli: Cli, ns: argparse.Namespace) -> int:
    found: list[Any] = []
    problems: list[str] = []
    for name in ns.args:
        try:
            found.append(raw_get(cli.client, f"/volumes/{name}").json())
        except docker.errors.NotFound as e:
            problems.append(f"Error response from daemon: {api_message(e)}")
    print_inspect(cli, found, ns.format)
    for p in problems:
        cli.err.write(p + "\n")
    return 1 if problems else 0


def cmd_volume_rm(cli: Cli, ns: argparse.Namespace) -> int:
    problems = []
    for name in ns.args:
        try:
            cli.client.api.remove_volume(name, force=ns.force)
        except docker.errors.APIError as e:
            problems.append(f"Error response from daemon: {api_message(e)}")
            continue
        cli.out.write(name + "\n")
    if problems:
        cli.err.write("\n".join(problems) + "\n")
        return 1
    return 0


PRUNE_ANONYMOUS = "WARNING! This will remove anonymous local volumes not used by at least one container.\n" \
    "Are you sure you want to continue?"
PRUNE_ALL = "WARNING! This will remove all local volumes not used by at least one container.\n" \
    "Are you sure you want to continue?"


def cmd_volume_prune(cli: Cli, ns: argparse.Namespace) -> int:
    filters = filters_from(ns.filter, ns.command_parser, "--filter")
    if ns.all:
        if "all" in filters:
            raise CliError("conflicting options: cannot specify both --all and --filter all=1", 1)
        filters["all"] = ["true"]
    if not ns.force and not confirm(cli.out, PRUNE_ALL if ns.all else PRUNE_ANONYMOUS):
        return 0
    report = cli.client.api.prune_volumes(filters=filters or None)
    deleted = report.get("VolumesDeleted") or []
    if deleted:
        cli.out.write("Deleted Volumes:\n" + "".join(f"{v}\n" for v in deleted) + "\n")
    cli.out.write(f"Total reclaimed space: {human_size(report.get('SpaceReclaimed') or 0)}\n")
    return 0


# ---------------------------------------------------------------- registration

def _ls_flags(p: argparse.ArgumentParser) -> None:
    add_bool(p, "--cluster", help="Display only cluster volumes, and use cluster volume list formatting")
    p.add_argument("-f", "--filter", action="append", default=[], metavar="filter",
                   help="Provide filter values (e.g. \"dangling=true\")")
    add_format_flag(p)
    add_bool(p, "-q", "--quiet", help="Only display volume names")


def _create_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-d", "--driver", default="local", metavar="string", help="Specify volume driver name")
    p.add_argument("--label", action="append", default=[], metavar="list", help="Set metadata for a volume")
    p.add_argument("-o", "--opt", action="append", default=[], metavar="map", help="Set driver specific options")
    p.add_argument("--name", default="", help=argparse.SUPPRESS)


def _inspect_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--format", default="", metavar="string", help="Format output using a custom template")


def _rm_flags(p: argparse.ArgumentParser) -> None:
    add_bool(p, "-f", "--force", help="Force the removal of one or more volumes")


def _prune_flags(p: argparse.ArgumentParser) -> None:
    add_bool(p, "-a", "--all", help="Remove all unused volumes, not just anonymous ones")
    p.add_argument("--filter", action="append", default=[], metavar="filter",
                   help="Provide filter values (e.g. \"label=<label>\")")
    add_bool(p, "-f", "--force", help="Do not prompt for confirmation")


def register(tree: CommandTree) -> None:
    tree.group("volume", "Manage volumes")
    tree.add(["volume create"], "[OPTIONS] [VOLUME]", "Create a volume", cmd_volume_create, _create_flags,
             Arity(0, 1))
    tree.add(["volume ls", "volume list"], "[OPTIONS]", "List volumes", cmd_volume_ls, _ls_flags, Arity(0, 0))
    tree.add(["volume inspect"], "[OPTIONS] VOLUME [VOLUME...]", "Display detailed information on one or more volumes",
             cmd_volume_inspect, _inspect_flags, Arity(1))
    tree.add(["volume rm", "volume remove"], "[OPTIONS] VOLUME [VOLUME...]", "Remove one or more volumes",
             cmd_volume_rm, _rm_flags, Arity(1))
    tree.add(["volume prune"], "[OPTIONS]", "Remove unused local volumes", cmd_volume_prune, _prune_flags,
             Arity(0, 0))
