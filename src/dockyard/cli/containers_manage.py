"""Commands on existing containers: stop, restart, kill, pause, unpause, rm, rename, wait,
container inspect, container prune, logs, top, port.

As the docker CLI does, several-container commands print each name that worked and the daemon's
error for each that did not (exit 1).
"""

from __future__ import annotations

import argparse
import datetime
import re
import struct
import sys
from typing import Any, Iterator

import docker

from ..util import timefmt
from .command import Arity, Cli, CliError, CommandTree, add_bool, confirm, filters_from
from .common import duration_ns, print_inspect
from .connection import api_message, raw_get, raw_post
from .output import human_size, tabwrite


def _each(cli: Cli, names: list[str], action: Any, echo: bool = True) -> int:
    problems = []
    for name in names:
        try:
            result = action(name)
        except docker.errors.APIError as e:
            problems.append(f"Error response from daemon: {api_message(e)}")
            continue
        if echo:
            cli.out.write(f"{name if result is None else result}\n")
            cli.out.flush()
    if problems:
        cli.err.write("\n".join(problems) + "\n")
        return 1
    return 0


def _timeout(ns: argparse.Namespace) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if ns.timeout is not None:
        params["t"] = ns.timeout
    if ns.signal:
        params["signal"] = ns.signal
    return params


def cmd_stop(cli: Cli, ns: argparse.Namespace) -> int:
    params = _timeout(ns)
    return _each(cli, ns.args, lambda n: _post_empty(cli, f"/containers/{n}/stop", params))


def cmd_restart(cli: Cli, ns: argparse.Namespace) -> int:
    params = _timeout(ns)
    return _each(cli, ns.args, lambda n: _post_empty(cli, f"/containers/{n}/restart", params))


def _post_empty(cli: Cli, path: str, params: dict[str, Any]) -> None:
    raw_post(cli.client, path, params=params)


def cmd_kill(cli: Cli, ns: argparse.Namespace) -> int:
    params = {"signal": ns.signal} if ns.signal else {}
    return _each(cli, ns.args, lambda n: _post_empty(cli, f"/containers/{n}/kill", params))


def cmd_pause(cli: Cli, ns: argparse.Namespace) -> int:
    return _each(cli, ns.args, cli.client.api.pause)


def cmd_unpause(cli: Cli, ns: argparse.Namespace) -> int:
    return _each(cli, ns.args, cli.client.api.unpause)


def cmd_rm(cli: Cli, ns: argparse.Namespace) -> int:
    def remove(name: str) -> None:
        if not name.strip("/"):
            raise docker.errors.APIError("Container name cannot be empty",
                                         explanation="Container name cannot be empty")
        cli.client.api.remove_container(name, v=ns.volumes, link=ns.link, force=ns.force)
    return _each(cli, ns.args, remove)


def cmd_rename(cli: Cli, ns: argparse.Namespace) -> int:
    old, new = ns.args
    new = new.strip()
    if not old.strip() or not new:
        raise CliError("Error: Neither old nor new names may be empty")
    try:
        cli.client.api.rename(old, new)
    except docker.errors.APIError as e:
        raise CliError(f"Error response from daemon: {api_message(e)}\n"
                       f"Error: failed to rename container named {old}") from None
    return 0


def cmd_wait(cli: Cli, ns: argparse.Namespace) -> int:
    def wait(name: str) -> int:
        return int(cli.client.api.wait(name)["StatusCode"])
    return _each(cli, ns.args, wait)


def cmd_container_inspect(cli: Cli, ns: argparse.Namespace) -> int:
    found: list[Any] = []
    problems: list[str] = []
    for name in ns.args:
        try:
            params = {"size": 1} if ns.size else None
            found.append(raw_get(cli.client, f"/containers/{name}/json", params=params).json())
        except docker.errors.NotFound as e:
            problems.append(f"Error response from daemon: {api_message(e)}")
    print_inspect(cli, found, ns.format)
    for p in problems:
        cli.err.write(p + "\n")
    return 1 if problems else 0


PRUNE_WARNING = "WARNING! This will remove all stopped containers.\nAre you sure you want to continue?"


def cmd_container_prune(cli: Cli, ns: argparse.Namespace) -> int:
    filters = filters_from(ns.filter, ns.command_parser, "--filter")
    if not ns.force and not confirm(cli.out, PRUNE_WARNING):
        return 0
    report = cli.client.api.prune_containers(filters=filters or None)
    deleted = report.get("ContainersDeleted") or []
    if deleted:
        cli.out.write("Deleted Containers:\n" + "".join(f"{c}\n" for c in deleted) + "\n")
    cli.out.write(f"Total reclaimed space: {human_size(report.get('SpaceReclaimed') or 0)}\n")
    return 0


# ---------------------------------------------------------------- logs, top, port

def timestamp_param(value: str, now: float | None = None) -> str:
    """docker's GetTimestamp: a Go duration counts back from now; RFC 3339 dates and Unix times as given."""
    if not value:
        return value
    current = datetime.datetime.now(datetime.timezone.utc).timestamp() if now is None else now
    try:
        ns = duration_ns(value)
        t = current - ns / 1e9
        return f"{int(t)}.{int((t - int(t)) * 1e9):09d}"
    except ValueError:
        pass
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return value
    text = value
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        text += "T00:00:00"
    try:
        if re.search(r"(Z|[+-]\d{2}:\d{2})$", text):
            t = timefmt.parse_seconds(text)
        else:
            t = datetime.datetime.fromisoformat(text).astimezone().timestamp()
    except ValueError:
        raise CliError(f'failed to parse value as time or duration: "{value}"') from None
    return f"{int(t)}.{int(round((t - int(t)) * 1e9)):09d}"


def cmd_logs(cli: Cli, ns: argparse.Namespace) -> int:
    api = cli.client.api
    info = api.inspect_container(ns.args[0])
    params: dict[str, Any] = {"stdout": 1, "stderr": 1, "follow": int(ns.follow), "timestamps": int(ns.timestamps),
                              "details": int(ns.details), "tail": ns.tail}
    if ns.since:
        params["since"] = timestamp_param(ns.since)
    if ns.until:
        params["until"] = timestamp_param(ns.until)
    res = raw_get(cli.client, f"/containers/{info['Id']}/logs", params=params, stream=True)
    out, err = sys.stdout.buffer, sys.stderr.buffer
    if info["Config"].get("Tty"):
        for chunk in res.iter_content(chunk_size=None):
            out.write(chunk)
            out.flush()
        return 0
    for kind, payload in _demux(res.iter_content(chunk_size=None)):
        target = err if kind == 2 else out
        target.write(payload)
        target.flush()
    return 0


def _demux(chunks: Iterator[bytes]) -> Iterator[tuple[int, bytes]]:
    buf = b""
    for chunk in chunks:
        buf += chunk
        while len(buf) >= 8:
            length = struct.unpack(">I", buf[4:8])[0]
            if len(buf) < 8 + length:
                break
            yield buf[0], buf[8:8 + length]
            buf = buf[8 + length:]


def cmd_top(cli: Cli, ns: argparse.Namespace) -> None:
    name, *ps_args = ns.args
    result = cli.client.api.top(name, ps_args=" ".join(ps_args) if ps_args else None)
    lines = ["\t".join(result.get("Titles") or [])]
    lines.extend("\t".join(proc) for proc in result.get("Processes") or [])
    cli.out.write(tabwrite("\n".join(lines) + "\n", minwidth=20, padding=3))


def cmd_port(cli: Cli, ns: argparse.Namespace) -> int:
    info = cli.client.api.inspect_container(ns.args[0])
    ports = (info.get("NetworkSettings") or {}).get("Ports") or {}
    if len(ns.args) > 1:
        want = ns.args[1]
        port, _, proto = want.partition("/")
        key = f"{port}/{proto or 'tcp'}"
        bindings = ports.get(key)
        if bindings:
            for b in bindings:
                cli.out.write(_host_port(b) + "\n")
            return 0
        raise CliError(f"Error: No public port '{want}' published for {ns.args[0]}")
    lines = []
    for key, bindings in ports.items():
        for b in bindings or []:
            lines.append((_port_sort_key(key), f"{key} -> {_host_port(b)}"))
    for _, line in sorted(lines):
        cli.out.write(line + "\n")
    return 0


def _host_port(binding: dict[str, str]) -> str:
    ip = binding.get("HostIp") or "0.0.0.0"
    return f"[{ip}]:{binding.get('HostPort')}" if ":" in ip else f"{ip}:{binding.get('HostPort')}"


def _port_sort_key(key: str) -> tuple[int, str]:
    port, _, proto = key.partition("/")
    return (int(port) if port.isdigit() else 0, proto)


# ---------------------------------------------------------------- registration

def _stop_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-s", "--signal", default="", metavar="string", help="Signal to send to the container")
    p.add_argument("-t", "--timeout", "--time", type=int, default=None, metavar="int",
                   help="Seconds to wait before killing the container")


def _kill_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-s", "--signal", default="", metavar="string", help="Signal to send to the container")


def _rm_flags(p: argparse.ArgumentParser) -> None:
    add_bool(p, "-f", "--force", help="Force the removal of a running container (uses SIGKILL)")
    add_bool(p, "-l", "--link", help="Remove the specified link")
    add_bool(p, "-v", "--volumes", help="Remove anonymous volumes associated with the container")


def _inspect_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--format", default="", metavar="string", help="Format output using a custom template")
    add_bool(p, "-s", "--size", help="Display total file sizes")


def _prune_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--filter", action="append", default=[], metavar="filter",
                   help="Provide filter values (e.g. \"until=<timestamp>\")")
    add_bool(p, "-f", "--force", help="Do not prompt for confirmation")


def _logs_flags(p: argparse.ArgumentParser) -> None:
    add_bool(p, "--details", help="Show extra details provided to logs")
    add_bool(p, "-f", "--follow", help="Follow log output")
    p.add_argument("--since", default="", metavar="string",
                   help="Show logs since timestamp (e.g. \"2013-01-02T13:23:37Z\") or relative (e.g. \"42m\" for 42 minutes)")
    p.add_argument("-n", "--tail", default="all", metavar="string", help="Number of lines to show from the end of the logs")
    add_bool(p, "-t", "--timestamps", help="Show timestamps")
    p.add_argument("--until", default="", metavar="string",
                   help="Show logs before a timestamp (e.g. \"2013-01-02T13:23:37Z\") or relative (e.g. \"42m\" for 42 minutes)")


def register(tree: CommandTree) -> None:
    tree.group("container", "Manage containers")
    tree.add(["stop", "container stop"], "[OPTIONS] CONTAINER [CONTAINER...]", "Stop one or more running containers",
             cmd_stop, _stop_flags, Arity(1))
    tree.add(["restart", "container restart"], "[OPTIONS] CONTAINER [CONTAINER...]",
             "Restart one or more containers", cmd_restart, _stop_flags, Arity(1))
    tree.add(["kill", "container kill"], "[OPTIONS] CONTAINER [CONTAINER...]",
             "Kill one or more running containers", cmd_kill, _kill_flags, Arity(1))
    tree.add(["pause", "container pause"], "CONTAINER [CONTAINER...]",
             "Pause all processes within one or more containers", cmd_pause, None, Arity(1))
    tree.add(["unpause", "container unpause"], "CONTAINER [CONTAINER...]",
             "Unpause all processes within one or more containers", cmd_unpause, None, Arity(1))
    tree.add(["rm", "container rm", "container remove"], "[OPTIONS] CONTAINER [CONTAINER...]",
             "Remove one or more containers", cmd_rm, _rm_flags, Arity(1))
    tree.add(["rename", "container rename"], "CONTAINER NEW_NAME", "Rename a container", cmd_rename, None,
             Arity(2, 2))
    tree.add(["wait", "container wait"], "CONTAINER [CONTAINER...]",
             "Block until one or more containers stop, then print their exit codes", cmd_wait, None, Arity(1))
    tree.add(["container inspect"], "[OPTIONS] CONTAINER [CONTAINER...]",
             "Display detailed information on one or more containers", cmd_container_inspect, _inspect_flags,
             Arity(1))
    tree.add(["container prune"], "[OPTIONS]", "Remove all stopped containers", cmd_container_prune,
             _prune_flags, Arity(0, 0))
    tree.add(["logs", "container logs"], "[OPTIONS] CONTAINER", "Fetch the logs of a container", cmd_logs,
             _logs_flags, Arity(1, 1))
    tree.add(["top", "container top"], "CONTAINER [ps OPTIONS]", "Display the running processes of a container",
             cmd_top, None, Arity(1), interspersed=False)
    tree.add(["port", "container port"], "CONTAINER [PRIVATE_PORT[/PROTO]]",
             "List port mappings or a specific mapping for the container", cmd_port, None, Arity(1, 2))

