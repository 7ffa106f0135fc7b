"""Network commands: network create, ls, inspect, rm, prune, connect, disconnect (docker's ``cli/command/network``)."""

from __future__ import annotations

import argparse
import ipaddress
import json
import re
from typing import Any

import docker

from ..util import timefmt
from . import config
from .command import Arity, Cli, CliError, CommandTree, add_bool, add_format_flag, confirm, filters_from
from .common import natural_key, print_inspect
from .connection import api_message, raw_get, raw_post
from .output import Context, Format, truncate_id, write_formatted


def go_time_nanos(iso: str) -> str:
    """Go's ``time.Time.String()`` of an RFC 3339 timestamp: ``2026-11-23 10:57:50.123456789 +0000 UTC``."""
    if not iso:
        return "0001-01-01 00:00:00 +0000 UTC"
    m = re.search(r"\.(\d+)", iso)
    frac = ("." + m.group(1)[:9]).rstrip("0").rstrip(".") if m else ""
    # whole seconds exactly, not through a float
    t = timefmt.local_time(int(timefmt.parse_seconds(re.sub(r"\.\d+", "", iso))))
    return t.strftime("%Y-%m-%d %H:%M:%S") + frac + t.strftime(" %z ") + (t.tzname() or "")


class NetworkContext(Context):
    """One row of ``docker network ls`` (docker's ``networkContext``)."""

    HEADERS = {"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE", "IPv4": "IPV4",
               "IPv6": "IPV6", "Internal": "INTERNAL", "Labels": "LABELS", "CreatedAt": "CREATED AT"}
    METHODS = {"Label": 1}
    type_name = "*network.networkContext"

    def __init__(self, n: dict[str, Any] | None = None, trunc: bool = True) -> None:
        self.n = n or {}
        self.trunc = trunc

    def ID(self) -> str:
        nid = self.n.get("Id", "")
        return truncate_id(nid) if self.trunc else nid

    def Name(self) -> str:
        return self.n.get("Name", "")

    def Driver(self) -> str:
        return self.n.get("Driver", "")

    def Scope(self) -> str:
        return self.n.get("Scope", "")

    def IPv4(self) -> str:
        return "true" if self.n.get("EnableIPv4") else "false"

    def IPv6(self) -> str:
        return "true" if self.n.get("EnableIPv6") else "false"

    def Internal(self) -> str:
        return "true" if self.n.get("Internal") else "false"

    def Labels(self) -> str:
        # docker walks a Go map (random order); sorted is one of its orders and a stable one
        return ",".join(f"{k}={v}" for k, v in sorted((self.n.get("Labels") or {}).items()))

    def Label(self, name: str) -> str:
        return (self.n.get("Labels") or {}).get(name, "")

    def CreatedAt(self) -> str:
        return go_time_nanos(self.n.get("Created", ""))


NETWORK_TABLE = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}"
NETWORK_RAW = "network_id: {{.ID}}\\nname: {{.Name}}\\ndriver: {{.Driver}}\\nscope: {{.Scope}}\\n"


def network_format(source: str, quiet: bool) -> Format:
    if source == "table":
        return Format("{{.ID}}" if quiet else NETWORK_TABLE)
    if source == "raw":
        return Format("network_id: {{.ID}}" if quiet else NETWORK_RAW)
    return Format(source)


def cmd_network_ls(cli: Cli, ns: argparse.Namespace) -> None:
    filters = filters_from(ns.filter, ns.command_parser)
    source = ns.format or ("" if ns.quiet else config.default_format("networksFormat")) or "table"
    params = {"filters": docker.utils.convert_filters(filters)} if filters else None
    networks = raw_get(cli.client, "/networks", params=params).json() or []
    networks.sort(key=lambda n: natural_key(n.get("Name", "")))
    rows = (NetworkContext(n, trunc=not ns.no_trunc) for n in networks)
    write_formatted(cli.out, network_format(source, ns.quiet), rows, NetworkContext())


# ---------------------------------------------------------------- create

def _csv(values: list[str]) -> list[str]:
    """pflag's slice flags: each use may hold several comma-separated values."""
    return [part.strip() for v in values for part in v.split(",") if part.strip()]


def _subnet_matches(subnet: str, data: str) -> bool:
    """docker's subnetMatches: does ``subnet`` hold the address (or a network's base address) ``data``."""
    try:
        if "/" not in subnet:  # Go's ParseCIDR wants the prefix length; Python would take a bare address
            raise ValueError(subnet)
        net = ipaddress.ip_network(subnet, strict=False)
    except ValueError:
        raise CliError(f"invalid subnet: invalid CIDR address: {subnet}") from None
    try:
        ip = ipaddress.ip_interface(data).ip if "/" in data else ipaddress.ip_address(data)
    except ValueError:
        if "/" in data:
            raise CliError(f"invalid CIDR address: {data}") from None
        return False  # Go's ParseIP gives nil, which no subnet contains
    return ip.version == net.version and ip in net


def ipam_config(subnets: list[str], ranges: list[str], gateways: list[str], aux: dict[str, str]) -> list[dict[str, Any]]:
    """docker's createIPAMConfig: subnets with the ranges, gateways and aux addresses each one holds."""
    if len(subnets) < len(ranges) or len(subnets) < len(gateways):
        raise CliError("every ip-range or gateway must have a corresponding subnet")
    data: dict[str, dict[str, Any]] = {}
    for s in subnets:
        for k in data:
            if _subnet_matches(s, k) or _subnet_matches(k, s):
                raise CliError("multiple overlapping subnet configuration is not supported")
        data[s] = {"Subnet": s, "AuxiliaryAddresses": {}}
    for kind, values, key in (("range", ranges, "IPRange"), ("gateway", gateways, "Gateway")):
        for r in values:
            if kind == "range":
                try:
                    ipaddress.ip_network(r, strict=False)
                except ValueError:
                    raise CliError(f"invalid CIDR address: {r}") from None
            match = False
            for s in subnets:
                if not _subnet_matches(s, r):
                    continue
                if data[s].get(key):
                    what = "ranges" if kind == "range" else "gateways"
                    where = "on the same subnet" if kind == "range" else "for the same subnet"
                    raise CliError(f"cannot configure multiple {what} ({r}, {data[s][key]}) {where} ({s})")
                data[s][key] = r
                match = True
            if not match:
                raise CliError(f"no matching subnet for {kind} {r}")
    for name, addr in aux.items():
        match = False
        for s in subnets:
            if _subnet_matches(s, addr):
                data[s]["AuxiliaryAddresses"][name] = addr
                match = True
        if not match:
            raise CliError(f"no matching subnet for aux-address {addr}")
    return [{k: v for k, v in d.items() if v or k == "Subnet"} for d in data.values()]


def _map(items: list[str]) -> dict[str, str]:
    """opts.MapOpts / ConvertKVStringsToMap: ``k=v``, a bare ``k`` maps to ``""``."""
    out: dict[str, str] = {}
    for item in items:
        key, _, value = item.partition("=")
        out[key] = value
    return out


def cmd_network_create(cli: Cli, ns: argparse.Namespace) -> None:
    config_list = ipam_config(_csv(ns.subnet), _csv(ns.ip_range), _csv(ns.gateway), _map(ns.aux_address))
    ipam = {"Driver": ns.ipam_driver, "Config": config_list, "Options": _map(ns.ipam_opt)}
    body: dict[str, Any] = {"Name": ns.args[0], "Driver": ns.driver, "Scope": ns.scope, "IPAM": ipam,
                            "Internal": ns.internal, "Attachable": ns.attachable, "Ingress": ns.ingress,
                            "ConfigOnly": ns.config_only, "Options": _map(ns.opt), "Labels": _map(ns.label)}
    if ns.config_from:
        body["ConfigFrom"] = {"Network": ns.config_from}
    # only a flag given on the command line is sent, so that the daemon's default applies otherwise
    if ns.ipv4 is not None:
        body["EnableIPv4"] = ns.ipv4
    if ns.ipv6 is not None:
        body["EnableIPv6"] = ns.ipv6
    res = raw_post(cli.client, "/networks/create", data=json.dumps(body).encode(),
                   headers={"Content-Type": "application/json"}).json()
    cli.out.write(res["Id"] + "\n")


# ---------------------------------------------------------------- inspect, rm, prune

def cmd_network_inspect(cli: Cli, ns: argparse.Namespace) -> int:
    found: list[Any] = []
    problems: list[str] = []
    params = {"verbose": "true"} if ns.verbose else None
    for name in ns.args:
        try:
            found.append(raw_get(cli.client, f"/networks/{name}", params=params).json())
        except docker.errors.APIError as e:
            problems.append(f"Error response from daemon: {api_message(e)}")
    print_inspect(cli, found, ns.format)
    for p in problems:
        cli.err.write(p + "\n")
    return 1 if problems else 0


def cmd_network_rm(cli: Cli, ns: argparse.Namespace) -> int:
    status = 0
    for name in ns.args:
        try:
            cli.client.api.remove_network(name)
        except docker.errors.APIError as e:
            if ns.force and isinstance(e, docker.errors.NotFound):
                continue
            cli.err.write(f"Error response from daemon: {api_message(e)}\n")
            status = 1
            continue
        cli.out.write(name + "\n")
    if status:
        # docker's StatusError, whose text is the status itself
        cli.err.write(f"exit status {status}\n")
    return status


PRUNE_WARNING = "WARNING! This will remove all custom networks not used by at least one container.\n" \
    "Are you sure you want to continue?"


def prune_networks(cli: Cli, filters: dict[str, list[str]]) -> str:
    """The prune report as docker prints it (``Deleted Networks:`` and the IDs), or nothing."""
    report = cli.client.api.prune_networks(filters=filters or None)
    deleted = report.get("NetworksDeleted") or []
    return "Deleted Networks:\n" + "".join(f"{n}\n" for n in deleted) if deleted else ""


def cmd_network_prune(cli: Cli, ns: argparse.Namespace) -> int:
    filters = filters_from(ns.filter, ns.command_parser, "--filter")
    if not ns.force and not confirm(cli.out, PRUNE_WARNING):
        return 0
    output = prune_networks(cli, filters)
    if output:
        cli.out.write(output + "\n")
    return 0


# ---------------------------------------------------------------- connect, disconnect

def cmd_network_connect(cli: Cli, ns: argparse.Namespace) -> None:
    network, container = ns.args
    ipam: dict[str, Any] = {}
    if ns.ip:
        ipam["IPv4Address"] = ns.ip
    if ns.ip6:
        ipam["IPv6Address"] = ns.ip6
    if ns.link_local_ip:
        ipam["LinkLocalIPs"] = _csv(ns.link_local_ip)
    driver_opts: dict[str, str] = {}
    for opt in _csv(ns.driver_opt):
        key, sep, value = opt.partition("=")
        if not sep or not key.strip():
            raise CliError("invalid key/value pair format in driver options")
        driver_opts[key.strip()] = value.strip()
    endpoint: dict[str, Any] = {"IPAMConfig": ipam, "Links": ns.link or None, "Aliases": _csv(ns.alias),
                                "DriverOpts": driver_opts}
    if ns.gw_priority:
        endpoint["GwPriority"] = ns.gw_priority
    if ns.mac_address:
        endpoint["MacAddress"] = ns.mac_address
    body = {"Container": container, "EndpointConfig": endpoint}
    raw_post(cli.client, f"/networks/{network}/connect", data=json.dumps(body).encode(),
             headers={"Content-Type": "application/json"})


def cmd_network_disconnect(cli: Cli, ns: argparse.Namespace) -> None:
    network, container = ns.args
    body = {"Container": container, "Force": ns.force}
    raw_post(cli.client, f"/networks/{network}/disconnect", data=json.dumps(body).encode(),
             headers={"Content-Type": "application/json"})


# ---------------------------------------------------------------- registration

def _optional_bool(p: argparse.ArgumentParser, flag: str, help: str) -> None:
    """A boolean whose absence is told apart from ``=false`` (docker sends EnableIPv4/6 only when given)."""
    dest = flag.lstrip("-")
    p.add_argument(flag, dest=dest, action="store_const", const=True, default=None, help=help)
    for v in ("true", "1", "t", "T", "TRUE", "True"):
        p.add_argument(f"{flag}={v}", dest=dest, action="store_const", const=True, help=argparse.SUPPRESS)
    for v in ("false", "0", "f", "F", "FALSE", "False"):
        p.add_argument(f"{flag}={v}", dest=dest, action="store_const", const=False, help=argparse.SUPPRESS)


def _create_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-d", "--driver", default="bridge", metavar="string", help="Driver to manage the Network")
    p.add_argument("-o", "--opt", action="append", default=[], metavar="map", help="Set driver specific options")
    p.add_argument("--label", action="append", default=[], metavar="list", help="Set metadata on a network")
    add_bool(p, "--internal", help="Restrict external access to the network")
    _optional_bool(p, "--ipv4", "Enable or disable IPv4 address assignment")
    _optional_bool(p, "--ipv6", "Enable or disable IPv6 address assignment")
    add_bool(p, "--attachable", help="Enable manual container attachment")
    add_bool(p, "--ingress", help="Create swarm routing-mesh network")
    p.add_argument("--scope", default="", metavar="string", help="Control the network's scope")
    add_bool(p, "--config-only", help="Create a configuration only network")
    p.add_argument("--config-from", default="", metavar="string",
                   help="The network from which to copy the configuration")
    p.add_argument("--ipam-driver", default="default", metavar="string", help="IP Address Management Driver")
    p.add_argument("--subnet", action="append", default=[], metavar="strings",
                   help="Subnet in CIDR format that represents a network segment")
    p.add_argument("--ip-range", action="append", default=[], metavar="strings",
                   help="Allocate container ip from a sub-range")
    p.add_argument("--gateway", action="append", default=[], metavar="strings",
                   help="IPv4 or IPv6 Gateway for the master subnet")
    p.add_argument("--aux-address", action="append", default=[], metavar="map",
                   help="Auxiliary IPv4 or IPv6 addresses used by Network driver")
    p.add_argument("--ipam-opt", action="append", default=[], metavar="map", help="Set IPAM driver specific options")


def _ls_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--filter", action="append", default=[], metavar="filter",
                   help="Provide filter values (e.g. \"driver=bridge\")")
    add_format_flag(p)
    add_bool(p, "--no-trunc", help="Do not truncate the output")
    add_bool(p, "-q", "--quiet", help="Only display network IDs")


def _inspect_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--format", default="", metavar="string", help="Format output using a custom template")
    add_bool(p, "-v", "--verbose", help="Verbose output for diagnostics")


def _rm_flags(p: argparse.ArgumentParser) -> None:
    add_bool(p, "-f", "--force", help="Do not error if the network does not exist")


def _prune_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--filter", action="append", default=[], metavar="filter",
                   help="Provide filter values (e.g. \"until=<timestamp>\")")
    add_bool(p, "-f", "--force", help="Do not prompt for confirmation")


def _connect_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ip", default="", metavar="string", help="IPv4 address (e.g., \"172.30.100.104\")")
    p.add_argument("--ip6", default="", metavar="string", help="IPv6 address (e.g., \"2001:db8::33\")")
    p.add_argument("--link", action="append", default=[], metavar="list", help="Add link to another container")
    p.add_argument("--alias", action="append", default=[], metavar="strings",
                   help="Add network-scoped alias for the container")
    p.add_argument("--link-local-ip", action="append", default=[], metavar="strings",
                   help="Add a link-local address for the container")
    p.add_argument("--driver-opt", action="append", default=[], metavar="strings",
                   help="driver options for the network")
    p.add_argument("--gw-priority", type=int, default=0, metavar="int",
                   help="Highest gw-priority provides the default gateway. Accepts positive and negative values.")
    p.add_argument("--mac-address", default="", metavar="string",
                   help="MAC address for the container on this network")


def _disconnect_flags(p: argparse.ArgumentParser) -> None:
    add_bool(p, "-f", "--force", help="Force the container to disconnect from a network")


def register(tree: CommandTree) -> None:
    tree.group("network", "Manage networks")
    tree.add(["network create"], "[OPTIONS] NETWORK", "Create a network", cmd_network_create, _create_flags,
             Arity(1, 1))
    tree.add(["network ls", "network list"], "[OPTIONS]", "List networks", cmd_network_ls, _ls_flags, Arity(0, 0))
    tree.add(["network inspect"], "[OPTIONS] NETWORK [NETWORK...]",
             "Display detailed information on one or more networks", cmd_network_inspect, _inspect_flags, Arity(1))
    tree.add(["network rm", "network remove"], "NETWORK [NETWORK...]", "Remove one or more networks",
             cmd_network_rm, _rm_flags, Arity(1))
    tree.add(["network prune"], "[OPTIONS]", "Remove all unused networks", cmd_network_prune, _prune_flags,
             Arity(0, 0))
    tree.add(["network connect"], "[OPTIONS] NETWORK CONTAINER", "Connect a container to a network",
             cmd_network_connect, _connect_flags, Arity(2, 2))
    tree.add(["network disconnect"], "[OPTIONS] NETWORK CONTAINER", "Disconnect a container from a network",
             cmd_network_disconnect, _disconnect_flags, Arity(2, 2))
