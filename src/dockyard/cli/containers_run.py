"""Commands that make containers run and stream them: create, run, start, attach, exec.

Exit statuses follow the docker CLI (``cli/command/container``): ``run`` and ``start -a`` exit with
the container's status; ``run`` uses 125 for its own and the daemon's errors, 126 when the command
cannot be invoked and 127 when it is not found.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import docker

from . import attach as attachmod
from .command import PROG, Arity, Cli, CliError, CommandTree, add_bool
from .common import familiar_name, parse_reference
from .connection import api_message, raw_post
from .registry import pull_image
from .runflags import add_container_flags, create_body


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
        ref = parse_reference(image)
        cli.err.write(f"Unable to find image '{familiar_name(ref.name)}:{ref.tag or 'latest'}' locally\n"
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


# ---------------------------------------------------------------- registration

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


def register(tree: CommandTree) -> None:
    tree.group("container", "Manage containers")
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
