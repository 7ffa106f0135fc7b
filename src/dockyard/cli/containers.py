"""Container commands: run, create, start, stop, kill, restart, pause, unpause, rm, rename, wait, ps,
container inspect, logs, attach, top, port, container prune.

Output, errors and exit statuses follow the docker CLI (``cli/command/container``): several-container
commands print each name that worked and the daemon's error for each that did not (exit 1); ``run``
and ``start -a`` exit with the container's status; ``run`` uses 125 for its own and the daemon's
errors, 126 when the command cannot be invoked and 127 when it is not found.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import struct
import sys
from typing import TYPE_CHECKING, Any, Iterator

import docker

from . import attach as attachmod
from . import config
from .command import PROG, Arity, CliError, CommandTree, add_bool, add_filter_flag, add_format_flag, \
    confirm, filters_from
from .connection import api_message, raw_get, raw_post
from .images import print_inspect
from .output import Context, Format, ellipsis, go_time_string, human_duration, human_size, parse_iso, tabwrite, \
    truncate_id, write_formatted
from .runflags import add_container_flags, create_body

if TYPE_CHECKING:
    from .main import Cli


# ---------------------------------------------------------------- ps

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
            return _familiar(name) if "@" in image else image
        return image

    def Command(self) -> str:
        command = self.c.get("Command") or ""
        return _go_quote(ellipsis(command, 20) if self.trunc else command)

    def CreatedAt(self) -> str:
        return go_time_string(self.c.get("Created", 0))

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


def _familiar(name: str) -> str:
    for prefix in ("docker.io/library/", "docker.io/"):
        if name.startswith(prefix):
            return name[len(prefix):]
    return name


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


# ---------------------------------------------------------------- create / run / start / attach

def _create(cli: Cli, ns: argparse.Namespace, image: str, command: list[str]) -> str:
    """Create the container, pulling the image first when it is missing (``--pull missing``)."""
    body = create_body(ns, image, command)
    params: dict[str, str] = {}
    if ns.name:
        params["name"] = ns.name
    if ns.platform:
        params["platform"] = ns.platform
    if ns.pull not in ("always", "missing", "never"):
        raise CliError(f'invalid pull option: \'{ns.pull}\': must be one of "always", "missing" or "never"', 125)
    if ns.cidfile and os.path.exists(ns.cidfile):
        raise CliError(f"container ID file found, make sure the other container isn't running or delete "
                       f"{ns.cidfile}", 125)
    if ns.pull == "always":
        _pull(cli, image, ns.platform, ns.quiet)
    try:
        res = raw_post(cli.client, "/containers/create", params=params, data=_json(body),
                       headers={"Content-Type": "application/json"})
    except docker.errors.NotFound as e:
        if ns.pull != "missing" or "No such image" not in api_message(e):
            raise
        from .images import parse_reference
        ref = parse_reference(image)
        cli.err.write(f"Unable to find image '{_familiar(ref.name)}:{ref.tag or 'latest'}' locally\n"
                      if not ref.digest else f"Unable to find image '{image}' locally\n")
        cli.err.flush()
        _pull(cli, image, ns.platform, ns.quiet)
        res = raw_post(cli.client, "/containers/create", params=params, data=_json(body),
                       headers={"Content-Type": "application/json"})
    info = res.json()
    for warning in info.get("Warnings") or []:
        cli.err.write(f"WARNING: {warning}\n")
    if ns.cidfile:
        with open(ns.cidfile, "w", encoding="utf-8") as f:
            f.write(info["Id"])
    return info["Id"]


def _json(body: Any) -> bytes:
    return json.dumps(body).encode()


def _pull(cli: Cli, image: str, platform: str, quiet: bool) -> None:
    from .registry import pull_image
    pull_image(cli, image, platform=platform, all_tags=False, quiet=quiet, out=cli.err, print_name=False)


def cmd_create(cli: Cli, ns: argparse.Namespace) -> int:
    try:
        cid = _create(cli, ns, ns.args[0], ns.args[1:])
    except docker.errors.APIError as e:
        return _run_failure(cli, ns, f"Error response from daemon: {api_message(e)}", 125)
    cli.out.write(cid + "\n")
    return 0


def _run_failure(cli: Cli, ns: argparse.Namespace, message: str, status: int) -> int:
    cli.err.write(f"{PROG}: {message}\n\nRun '{ns.command_parser.command_path} --help' for more information\n")
    return status


def _start_status(message: str) -> int:
    """docker run's exit status for a start that failed: 127 not found, 126 not runnable, else 125."""
    if "executable file not found" in message or "no such file or directory" in message:
        return 127
    if "permission denied" in message:
        return 126
    return 125


class _Waiter:
    """``POST /containers/{id}/wait`` sent before start, so even a quick exit is seen."""

    def __init__(self, cli: Cli, cid: str, condition: str) -> None:
        self.res = raw_post(cli.client, f"/containers/{cid}/wait", params={"condition": condition}, stream=True)

    def status(self) -> int:
        try:
            result = json.loads(self.res.content or b"{}")
        except ValueError:
            return 125
        err = (result.get("Error") or {}).get("Message")
        if err:
            sys.stderr.write(f"{PROG}: Error response from daemon: {err}\n")
        return int(result.get("StatusCode", 125))


def cmd_run(cli: Cli, ns: argparse.Namespace) -> int:
    keys = attachmod.detach_sequence(ns.detach_keys or attachmod.DEFAULT_DETACH_KEYS)
    if ns.tty and ns.interactive and not os.isatty(sys.stdin.fileno()):
        return _run_failure(cli, ns, "the input device is not a TTY", 1)
    try:
        cid = _create(cli, ns, ns.args[0], ns.args[1:])
    except docker.errors.APIError as e:
        return _run_failure(cli, ns, f"Error response from daemon: {api_message(e)}", 125)
    api = cli.client.api
    if ns.detach:
        try:
            api.start(cid)
        except docker.errors.APIError as e:
            message = api_message(e)
            return _run_failure(cli, ns, f"Error response from daemon: {message}", _start_status(message))
        cli.out.write(cid + "\n")
        return 0
    attach = [a.lower() for a in ns.attach] or (["stdout", "stderr"] + (["stdin"] if ns.interactive else []))
    params = {"stream": 1, "stdin": int("stdin" in attach), "stdout": int("stdout" in attach),
              "stderr": int("stderr" in attach)}
    if ns.detach_keys:
        params["detachKeys"] = ns.detach_keys
    try:
        conn = attachmod.hijack(cli, f"/containers/{cid}/attach", params)
        waiter = _Waiter(cli, cid, "removed" if ns.rm else "next-exit")
    except docker.errors.APIError as e:
        return _run_failure(cli, ns, f"Error response from daemon: {api_message(e)}", 125)
    return _start_and_stream(cli, ns, cid, conn, waiter, ns.tty, "stdin" in attach, keys, run=True)


def _start_and_stream(cli: Cli, ns: argparse.Namespace, cid: str, conn: attachmod.Hijacked, waiter: _Waiter,
                      tty_mode: bool, stdin: bool, keys: bytes, run: bool) -> int:
    api = cli.client.api
    with attachmod.session_terminal(tty_mode and stdin, lambda h, w: api.resize(cid, h, w)):
        try:
            api.start(cid)
        except docker.errors.APIError as e:
            conn.close()
            message = api_message(e)
            if run:
                return _run_failure(cli, ns, f"Error response from daemon: {message}", _start_status(message))
            raise
        # the size sent on entering the session met a container not yet started; send it again now
        term = next((fd for fd in (sys.stdout.fileno(), sys.stdin.fileno()) if os.isatty(fd)), None)
        if tty_mode and term is not None:
            _quiet_resize(lambda: api.resize(cid, *attachmod.terminal_size(term)))
        with attachmod.proxy_signals(lambda s: api.kill(cid, s), ns.sig_proxy and not tty_mode):
            detached = attachmod.stream(conn, tty_mode=tty_mode, stdin=stdin, detach_keys=keys)
    if detached:
        waiter.res.close()
        return 0
    return waiter.status()


def _quiet_resize(fn: Any) -> None:
    try:
        fn()
    except Exception:
        pass


def cmd_start(cli: Cli, ns: argparse.Namespace) -> int:
    api = cli.client.api
    if ns.attach or ns.interactive:
        if len(ns.args) > 1:
            raise CliError("you cannot start and attach multiple containers at once")
        name = ns.args[0]
        info = api.inspect_container(name)
        tty_mode = bool(info["Config"].get("Tty"))
        stdin = ns.interactive and bool(info["Config"].get("OpenStdin"))
        if stdin and tty_mode and not os.isatty(sys.stdin.fileno()):
            raise CliError("the input device is not a TTY")
        keys = attachmod.detach_sequence(ns.detach_keys or attachmod.DEFAULT_DETACH_KEYS)
        params = {"stream": 1, "stdin": int(stdin), "stdout": 1, "stderr": 1}
        if ns.detach_keys:
            params["detachKeys"] = ns.detach_keys
        conn = attachmod.hijack(cli, f"/containers/{info['Id']}/attach", params)
        waiter = _Waiter(cli, info["Id"], "next-exit")
        ns.sig_proxy = True
        return _start_and_stream(cli, ns, info["Id"], conn, waiter, tty_mode, stdin, keys, run=False)
    failed: list[str] = []
    for name in ns.args:
        try:
            api.start(name)
            cli.out.write(name + "\n")
        except docker.errors.APIError as e:
            cli.err.write(f"Error response from daemon: {api_message(e)}\n")
            failed.append(name)
    if failed:
        cli.err.write(f"Error: failed to start containers: {', '.join(failed)}\n")
        return 1
    return 0


def cmd_attach(cli: Cli, ns: argparse.Namespace) -> int:
    api = cli.client.api
    info = api.inspect_container(ns.args[0])
    state = info.get("State") or {}
    if not state.get("Running"):
        raise CliError("You cannot attach to a stopped container, start it first")
    if state.get("Paused"):
        raise CliError("You cannot attach to a paused container, unpause it first")
    if state.get("Restarting"):
        raise CliError("You cannot attach to a restarting container, wait until it is running")
    tty_mode = bool(info["Config"].get("Tty"))
    stdin = not ns.no_stdin and bool(info["Config"].get("OpenStdin"))
    if stdin and tty_mode and not os.isatty(sys.stdin.fileno()):
        raise CliError("the input device is not a TTY")
    keys = attachmod.detach_sequence(ns.detach_keys or attachmod.DEFAULT_DETACH_KEYS)
    params = {"stream": 1, "stdin": int(stdin), "stdout": 1, "stderr": 1}
    if ns.detach_keys:
        params["detachKeys"] = ns.detach_keys
    cid = info["Id"]
    waiter = _Waiter(cli, cid, "not-running")
    conn = attachmod.hijack(cli, f"/containers/{cid}/attach", params)
    with attachmod.session_terminal(tty_mode and stdin, lambda h, w: api.resize(cid, h, w)):
        with attachmod.proxy_signals(lambda s: api.kill(cid, s), ns.sig_proxy and not tty_mode):
            detached = attachmod.stream(conn, tty_mode=tty_mode, stdin=stdin, detach_keys=keys)
    if detached:
        waiter.res.close()
        return 0
    return waiter.status()


def cmd_exec(cli: Cli, ns: argparse.Namespace) -> int:
    """docker exec: create the exec, then start it detached or on a hijacked stream; exit with its code."""
    api = cli.client.api
    name, *command = ns.args
    env = [e for e in (item if "=" in item else (f"{item}={os.environ[item]}" if item in os.environ else None)
                       for item in ns.env) if e is not None]
    for path in ns.env_file:
        with open(path, encoding="utf-8") as f:
            env.extend(ln.strip() for ln in f if ln.strip() and not ln.lstrip().startswith("#"))
    if ns.tty and ns.interactive and not os.isatty(sys.stdin.fileno()):
        raise CliError("the input device is not a TTY")
    body: dict[str, Any] = {"User": ns.user, "Privileged": ns.privileged, "Tty": ns.tty,
                            "AttachStdin": ns.interactive and not ns.detach, "AttachStdout": not ns.detach,
                            "AttachStderr": not ns.detach, "Detach": ns.detach, "DetachKeys": ns.detach_keys,
                            "Env": env, "WorkingDir": ns.workdir, "Cmd": command}
    api.inspect_container(name)  # docker looks the container up first: "No such container" before any exec
    exec_id = raw_post(cli.client, f"/containers/{name}/exec", data=_json(body),
                       headers={"Content-Type": "application/json"}).json()["Id"]
    if ns.detach:
        raw_post(cli.client, f"/exec/{exec_id}/start", data=_json({"Detach": True, "Tty": ns.tty}),
                 headers={"Content-Type": "application/json"})
        return 0
    keys = attachmod.detach_sequence(ns.detach_keys or attachmod.DEFAULT_DETACH_KEYS)
    conn = attachmod.hijack(cli, f"/exec/{exec_id}/start", body={"Detach": False, "Tty": ns.tty})
    with attachmod.session_terminal(ns.tty and ns.interactive, lambda h, w: api.exec_resize(exec_id, h, w)):
        detached = attachmod.stream(conn, tty_mode=ns.tty, stdin=ns.interactive, detach_keys=keys)
    if detached:
        return 0
    return int(api.exec_inspect(exec_id).get("ExitCode") or 0)


# ---------------------------------------------------------------- several-container commands

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
    from .runflags import duration_ns
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
            t = parse_iso(text)
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


def _run_flags(p: argparse.ArgumentParser) -> None:
    add_container_flags(p)
    add_bool(p, "-d", "--detach", help="Run container in background and print container ID")
    p.add_argument("--detach-keys", default="", metavar="string", help="Override the key sequence for detaching a container")
    add_bool(p, "--sig-proxy", default=True, help="Proxy received signals to the process")


def _start_flags(p: argparse.ArgumentParser) -> None:
    add_bool(p, "-a", "--attach", help="Attach STDOUT/STDERR and forward signals")
    p.add_argument("--detach-keys", default="", metavar="string", help="Override the key sequence for detaching a container")
    add_bool(p, "-i", "--interactive", help="Attach container's STDIN")


def _attach_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--detach-keys", default="", metavar="string", help="Override the key sequence for detaching a container")
    add_bool(p, "--no-stdin", help="Do not attach STDIN")
    add_bool(p, "--sig-proxy", default=True, help="Proxy all received signals to the process")


def _exec_flags(p: argparse.ArgumentParser) -> None:
    add_bool(p, "-d", "--detach", help="Detached mode: run command in the background")
    p.add_argument("--detach-keys", default="", metavar="string", help="Override the key sequence for detaching a container")
    p.add_argument("-e", "--env", action="append", default=[], metavar="list", help="Set environment variables")
    p.add_argument("--env-file", action="append", default=[], metavar="list", help="Read in a file of environment variables")
    add_bool(p, "-i", "--interactive", help="Keep STDIN open even if not attached")
    add_bool(p, "--privileged", help="Give extended privileges to the command")
    add_bool(p, "-t", "--tty", help="Allocate a pseudo-TTY")
    p.add_argument("-u", "--user", default="", metavar="string", help="Username or UID (format: \"<name|uid>[:<group|gid>]\")")
    p.add_argument("-w", "--workdir", default="", metavar="string", help="Working directory inside the container")


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
    tree.add(["ps", "container ls", "container list", "container ps"], "[OPTIONS]", "List containers",
             _ps, _ps_flags, Arity(0, 0))
    tree.add(["run", "container run"], "[OPTIONS] IMAGE [COMMAND] [ARG...]",
             "Create and run a new container from an image", cmd_run, _run_flags, Arity(1), interspersed=False)
    tree.add(["create", "container create"], "[OPTIONS] IMAGE [COMMAND] [ARG...]", "Create a new container",
             cmd_create, add_container_flags, Arity(1), interspersed=False)
    tree.add(["start", "container start"], "[OPTIONS] CONTAINER [CONTAINER...]",
             "Start one or more stopped containers", cmd_start, _start_flags, Arity(1))
    tree.add(["attach", "container attach"], "[OPTIONS] CONTAINER",
             "Attach local standard input, output, and error streams to a running container",
             cmd_attach, _attach_flags, Arity(1, 1))
    tree.add(["exec", "container exec"], "[OPTIONS] CONTAINER COMMAND [ARG...]",
             "Execute a command in a running container", cmd_exec, _exec_flags, Arity(2), interspersed=False)
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


def _ps(cli: Cli, ns: argparse.Namespace) -> None:
    ns.size_set = ns.size or getattr(ns, "size_off", False)
    cmd_ps(cli, ns)
