"""Container routes: create, start, stop, kill, wait, logs, attach, inspect, list, remove, ..."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from typing import Any, AsyncIterator

from .. import errors
from ..containers import links
from ..containers import logs as logmod
from ..containers import mounts
from ..containers.record import PAUSED, Container
from ..containers.service import ContainerService, parse_signal
from ..engine.engine import Engine
from ..runtime.shim import STDERR as SHIM_STDERR
from . import create_checks
from . import filters as flt
from .container_list import LIST_FILTERS, PRUNE_FILTERS, list_containers, prune_keep
from .http import (HijackFailure, HijackResponse, RawStream, Request, Response, StreamResponse, empty_response,
                   json_response)
from .networks import endpoint_input
from .router import Route, delete, error_message, error_status, get, post, version_at_least, version_tuple

DETACH_KEYS = b"\x10\x11"  # ctrl-p ctrl-q
STDIN_PACKET = 8192
MUX = "application/vnd.docker.multiplexed-stream"
_COMPACT = json.JSONEncoder(separators=(",", ":"))
RAW = "application/vnd.docker.raw-stream"
log = logging.getLogger("dockyard.api")


def routes(engine: Engine) -> list[Route]:
    svc = engine.containers

    async def create(request: Request) -> Response:
        body = await request.json(default={})
        if not isinstance(body, dict):
            raise errors.InvalidParameter("invalid JSON: expected an object")
        create_checks.check(body, version_tuple(request.api_version), svc.get)
        endpoints = (body.get("NetworkingConfig") or {}).get("EndpointsConfig")
        if isinstance(endpoints, dict):
            body["NetworkingConfig"]["EndpointsConfig"] = {
                k: endpoint_input(v, request.api_version) for k, v in endpoints.items()}
        c = await asyncio.to_thread(svc.create, request.q("name"), body,
                                    shareable_ipc=not version_at_least(request, "1.40"))
        return json_response({"Id": c.id, "Warnings": []}, 201)

    async def start(request: Request) -> Response:
        await asyncio.to_thread(svc.start, request.params["name"])
        return empty_response(204)

    async def stop(request: Request) -> Response:
        await asyncio.to_thread(svc.stop, request.params["name"], request.qint("t"), request.q("signal"))
        return empty_response(204)

    async def restart(request: Request) -> Response:
        await asyncio.to_thread(svc.restart, request.params["name"], request.qint("t"), request.q("signal"))
        return empty_response(204)

    async def kill(request: Request) -> Response:
        sig = parse_signal(request.q("signal"))
        name = request.params["name"]
        try:
            await asyncio.to_thread(svc.kill, name, sig)
        except errors.DockyardError as e:
            raise errors.wrap(e, f"Cannot kill container: {name}") from None  # dockerd's router says so
        return empty_response(204)

    async def pause(request: Request) -> Response:
        await asyncio.to_thread(svc.pause, request.params["name"])
        return empty_response(204)

    async def unpause(request: Request) -> Response:
        await asyncio.to_thread(svc.unpause, request.params["name"])
        return empty_response(204)

    async def wait(request: Request) -> StreamResponse:
        fut = svc.wait(request.params["name"], request.q("condition") or "not-running")

        async def body() -> AsyncIterator[bytes]:
            yield b""  # headers now, as dockerd: the client knows the wait is in place
            result = await asyncio.wrap_future(fut)
            yield (json.dumps(result) + "\n").encode()

        return StreamResponse(body())

    async def remove(request: Request) -> Response:
        if request.qbool("link"):  # the name is a legacy link's, "/parent/alias": only the link goes
            await asyncio.to_thread(links.unlink, svc, request.params["name"])
            return empty_response(204)
        await asyncio.to_thread(svc.remove, request.params["name"], request.qbool("force"), request.qbool("v"))
        return empty_response(204)

    async def rename(request: Request) -> Response:
        new = request.q("name") or ""
        try:
            await asyncio.to_thread(svc.rename, request.params["name"], new)
        except errors.Conflict as e:
            if not str(e).startswith("Conflict. The container name"):
                raise
            raise errors.wrap(e, "Error when allocating new name") from None
        return empty_response(204)

    async def resize(request: Request) -> Response:
        h, w = request.qint("h", 0), request.qint("w", 0)
        await asyncio.to_thread(svc.resize, request.params["name"], h or 0, w or 0)
        return empty_response(200)

    async def inspect(request: Request) -> Response:
        c = svc.get(request.params["name"])
        info = inspect_container(engine, c, request.qbool("size"))
        if version_tuple(request.api_version) < (1, 45):
            _short_id_aliases(info)
        return json_response(info)

    async def list_(request: Request) -> Response:
        wanted = flt.parse(request.q("filters"), LIST_FILTERS)
        args = (engine, request.qbool("all"), request.qint("limit", -1) or -1, wanted, request.qbool("size"))
        if request.qbool("size"):
            rows = await asyncio.to_thread(list_containers, *args)
        else:
            # records, states and network memberships are in memory: a thread hop would cost more than the list
            rows = list_containers(*args)
        # compact, as dockerd encodes it: a tenth fewer bytes for the client to read with hundreds of rows
        return Response(200, (_COMPACT.encode(rows) + "\n").encode(), "application/json")

    async def top(request: Request) -> Response:
        return json_response(await asyncio.to_thread(top_processes, engine, request.params["name"],
                                                     request.q("ps_args") or "-ef"))

    async def prune(request: Request) -> Response:
        keep = prune_keep(flt.parse(request.q("filters"), PRUNE_FILTERS))
        deleted, space = await asyncio.to_thread(svc.prune, keep)
        return json_response({"ContainersDeleted": deleted or None, "SpaceReclaimed": space})

    async def logs(request: Request) -> StreamResponse:
        c = svc.get(request.params["name"])
        opts = logmod.Options(stdout=request.qbool("stdout"), stderr=request.qbool("stderr"),
                              timestamps=request.qbool("timestamps"))
        if not (opts.stdout or opts.stderr):
            raise errors.InvalidParameter("Bad parameters: you must choose at least one stream")
        if request.q("since"):
            opts.since_ns = flt.parse_timestamp(request.q("since") or "", "since")
        if request.q("until"):
            opts.until_ns = flt.parse_timestamp(request.q("until") or "", "until")
        tail = request.q("tail") or "all"
        if tail != "all":
            try:
                opts.tail = int(tail)
            except ValueError:
                opts.tail = -1
        reader = await asyncio.to_thread(svc.log_reader, c.id, opts)
        tty = bool(c.config.get("Tty"))
        return StreamResponse(_log_stream(svc, c, reader, request.qbool("follow")),
                              content_type=RAW if tty else MUX)

    async def attach(request: Request) -> HijackResponse | HijackFailure:
        # dockerd takes the connection over before it looks the container up: a failure is told on it
        try:
            return await attach_streams(request)
        except errors.DockyardError as e:
            return HijackFailure(error_status(e), error_message(e, request))

    async def attach_streams(request: Request) -> HijackResponse:
        c = svc.get(request.params["name"])
        want_stdin = request.qbool("stdin")
        streams = {1: request.qbool("stdout"), 2: request.qbool("stderr")}
        keys = request.q("detachKeys")
        detach = _detach_keys(keys) if keys is not None else DETACH_KEYS
        tty = bool(c.config.get("Tty"))
        fut = svc.attach_socket(c.id) if request.qbool("stream") else None
        replay = request.qbool("logs")

        async def handler(stream: RawStream) -> None:
            if replay and c.log_path:
                reader = await asyncio.to_thread(
                    svc.log_reader, c.id, logmod.Options(stdout=streams[1], stderr=streams[2]))
                try:
                    chunks = reader.backlog()  # by block: a log of gigabytes is never held whole
                    while (chunk := await asyncio.to_thread(next, chunks, None)) is not None:
                        await stream.write(chunk)
                finally:
                    reader.close()
            if fut is None:
                return
            try:
                sock = await asyncio.wrap_future(fut)
            except errors.DockyardError:
                return
            await _pump(c, sock, stream, want_stdin and bool(c.config.get("OpenStdin")), streams, tty, detach)

        # API 1.42 named the multiplexed stream's media type; older clients were told raw for both
        return HijackResponse(handler, MUX if not tty and version_at_least(request, "1.42") else RAW)

    return [
        post("/containers/create", create),
        get("/containers/json", list_),
        post("/containers/prune", prune, "1.25"),
        get("/containers/{name:.*}/json", inspect),
        get("/containers/{name:.*}/logs", logs),
        get("/containers/{name:.*}/top", top),
        post("/containers/{name:.*}/start", start),
        post("/containers/{name:.*}/stop", stop),
        post("/containers/{name:.*}/restart", restart),
        post("/containers/{name:.*}/kill", kill),
        post("/containers/{name:.*}/pause", pause),
        post("/containers/{name:.*}/unpause", unpause),
        post("/containers/{name:.*}/wait", wait),
        post("/containers/{name:.*}/rename", rename),
        post("/containers/{name:.*}/resize", resize),
        post("/containers/{name:.*}/attach", attach),
        delete("/containers/{name:.*}", remove),
    ]


_CTRL_SPECIAL = {"@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31}


def _detach_keys(spec: str) -> bytes:
    """``ctrl-p,ctrl-q`` → b"\\x10\\x11"; an empty string turns detaching off."""
    out = bytearray()
    for key in filter(None, spec.split(",")):
        key = key.strip().lower()
        # as moby's term.ToBytes: one ASCII key, or ctrl- with a letter or one of @[\\]^_ (else refused)
        ch = key[5:] if key.startswith("ctrl-") else ""
        if len(ch) == 1 and ("a" <= ch <= "z" or ch in _CTRL_SPECIAL):
            out.append(_CTRL_SPECIAL.get(ch, ord(ch) - ord("a") + 1))
        elif len(key) == 1 and key.isascii():
            out.append(ord(key))
        else:
            raise errors.InvalidParameter(f"Invalid detach keys ({spec}) provided")
    return bytes(out)


async def _pump(c: Container, sock: socket.socket, client: RawStream, stdin: bool, streams: dict[int, bool],
                tty: bool, detach: bytes, mux: bool | None = None) -> None:
    """Copy the shim's output to the client and the client's input to the shim, until either ends.

    The output is multiplexed without a TTY unless ``mux`` says otherwise (a WebSocket never is)."""
    mux = not tty if mux is None else mux
    loop = asyncio.get_running_loop()
    sock.setblocking(False)
    detached = asyncio.Event()

    async def input_pump() -> None:
        matched = 0  # how much of the detach sequence the last bytes were; held back until it is decided
        while True:
            data = await client.read()
            if not data:
                if tty:
                    detached.set()  # as dockerd: with a TTY, the client's EOF ends the attach, not stdin
                elif c.config.get("StdinOnce") or not c.config.get("OpenStdin"):
                    sock.shutdown(socket.SHUT_WR)  # stdin EOF reaches the process
                return
            if tty and detach:
                out = bytearray()
                for byte in data:
                    if byte == detach[matched]:
                        matched += 1
                        if matched == len(detach):
                            for i in range(0, len(out), STDIN_PACKET):
                                await loop.sock_sendall(sock, bytes(out[i:i + STDIN_PACKET]))
                            detached.set()
                            return
                        continue
                    out += detach[:matched]
                    matched = 0
                    if byte == detach[0]:
                        matched = 1
                    else:
                        out.append(byte)
                data = bytes(out)
            # one packet per read on the shim's side: conmon truncates packets larger than its buffer
            for i in range(0, len(data), STDIN_PACKET):
                await loop.sock_sendall(sock, data[i:i + STDIN_PACKET])

    async def output_pump() -> None:
        while True:
            packet = await loop.sock_recv(sock, 65536)
            if not packet:
                return
            kind = 2 if packet[0] == SHIM_STDERR else 1
            if not streams.get(kind):
                continue
            payload = packet[1:]
            await client.write(logmod.frame(kind, payload) if mux else payload)

    out_task = asyncio.create_task(output_pump())
    in_task = asyncio.create_task(input_pump()) if stdin else None
    detach_task = asyncio.create_task(detached.wait())
    try:
        await asyncio.wait({out_task, detach_task}, return_when=asyncio.FIRST_COMPLETED)
    except (ConnectionError, OSError):
        pass
    finally:
        detach_task.cancel()
        if in_task is not None:
            in_task.cancel()
        stdin_open_once = bool(c.config.get("OpenStdin") and c.config.get("StdinOnce")) and not tty
        if not out_task.done() and stdin_open_once:
            # closing would close the container's stdin; let the output drain until the shim ends it
            out_task.cancel()
            asyncio.get_running_loop().create_task(_drain(sock))
        else:
            out_task.cancel()
            sock.close()
        client.close()


async def _drain(sock: socket.socket) -> None:
    loop = asyncio.get_running_loop()
    try:
        while await loop.sock_recv(sock, 65536):
            pass
    finally:
        sock.close()


async def _log_stream(svc: ContainerService, c: Container, reader: logmod.LogReader, follow: bool) -> AsyncIterator[bytes]:
    yield b""  # headers now: `docker logs -f` of a quiet container shows nothing, but is connected
    try:
        chunks = reader.backlog()
        while (chunk := await asyncio.to_thread(next, chunks, None)) is not None:
            yield chunk
        while follow and not reader.finished:
            running = c.state.running
            await asyncio.to_thread(svc.sync_log, c)
            for chunk in await asyncio.to_thread(lambda: list(reader.more())):
                yield chunk
            if not running or (reader.opts.until_ns and time.time_ns() > reader.opts.until_ns):
                return
            await asyncio.sleep(0.05)
    finally:
        reader.close()


# -- shaping --------------------------------------------------------------------------
def _short_id_aliases(info: dict[str, Any]) -> None:
    """API < 1.45 lists the short container ID among a user network endpoint's aliases (CHANGELOG v1.45)."""
    short = info["Id"][:12]
    for name, ep in (info["NetworkSettings"].get("Networks") or {}).items():
        if name not in ("bridge", "host", "none", "default") and not name.startswith("container:"):
            if short not in (ep.get("Aliases") or []):
                ep["Aliases"] = [*(ep.get("Aliases") or []), short]


def _network_settings(engine: Engine, c: Container) -> dict[str, Any]:
    return engine.networks.container_settings(c)


def inspect_container(engine: Engine, c: Container, size: bool = False) -> dict[str, Any]:
    st = c.state
    snap_dir = ""
    try:
        snap = engine.snapshotter.snapshot(c.id)
        snap_dir = snap.upperdir
    except errors.DockyardError:
        pass
    host_config = {"Binds": None, "ContainerIDFile": "", "NetworkMode": "bridge", "PortBindings": {},
                   "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0}, "AutoRemove": False,
                   "VolumeDriver": "", "VolumesFrom": None, "CapAdd": None, "CapDrop": None, "Dns": [],
                   "DnsOptions": [], "DnsSearch": [], "ExtraHosts": None, "GroupAdd": None, "IpcMode": "private",
                   "Cgroup": "", "Links": None, "OomScoreAdj": 0, "PidMode": "", "Privileged": False,
                   "PublishAllPorts": False, "ReadonlyRootfs": False, "SecurityOpt": None, "UTSMode": "",
                   "UsernsMode": "", "ShmSize": 67108864, "Runtime": c.runtime, "Isolation": "",
                   "CpuShares": 0, "Memory": 0, "NanoCpus": 0, "CgroupParent": "", "BlkioWeight": 0,
                   "CpuPeriod": 0, "CpuQuota": 0, "CpusetCpus": "", "CpusetMems": "", "MemoryReservation": 0,
                   "MemorySwap": 0, "MemorySwappiness": None, "OomKillDisable": None, "PidsLimit": None,
                   "Ulimits": None, "Init": None, "ConsoleSize": [0, 0], "MaskedPaths": None,
                   "ReadonlyPaths": None, **c.host_config}
    data: dict[str, Any] = {
        "Id": c.id,
        "Created": c.created,
        "Path": c.path,
        "Args": c.args,
        "State": {"Status": st.status, "Running": st.running,
                  "Paused": st.status == PAUSED, "Restarting": st.status == "restarting",
                  "OOMKilled": st.oom_killed, "Dead": st.status == "dead", "Pid": st.pid,
                  "ExitCode": st.exit_code, "Error": st.error, "StartedAt": st.started_at,
                  "FinishedAt": st.finished_at},
        "Image": c.image_id,
        "ResolvConfPath": c.resolv_conf_path,
        "HostnamePath": c.hostname_path,
        "HostsPath": c.hosts_path,
        "LogPath": c.log_path,
        "Name": c.name,
        "RestartCount": st.restart_count,
        "Driver": engine.storage_driver_name(),
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": engine.execs.of_container(c.id) or None,
        "HostConfig": host_config,
        "GraphDriver": {"Name": engine.storage_driver_name(),
                        "Data": {"UpperDir": snap_dir, "MergedDir": engine.containers.rootfs(c.id),
                                 "WorkDir": snap_dir[:-4] + "work" if snap_dir else ""}},
        "Mounts": mounts.inspect(c.mounts),
        "Config": {"Hostname": "", "Domainname": "", "User": "", "AttachStdin": False, "AttachStdout": False,
                   "AttachStderr": False, "Tty": False, "OpenStdin": False, "StdinOnce": False, "Env": None,
                   "Cmd": None, "Image": c.image_name, "Volumes": None, "WorkingDir": "", "Entrypoint": None,
                   "OnBuild": None, "Labels": {}, **c.config},
        "NetworkSettings": _network_settings(engine, c),
    }
    health_state = engine.health.get(c.id)
    if health_state is not None:
        data["State"]["Health"] = health_state.to_json()
    if size:
        data["SizeRw"], data["SizeRootFs"] = engine.containers.sizes(c)
    return data


def top_processes(engine: Engine, ref: str, ps_args: str) -> dict[str, Any]:
    import subprocess

    pids = set(engine.containers.top(ref))
    res = subprocess.run(["ps", *ps_args.split()], capture_output=True, text=True)
    if res.returncode != 0:  # ps_args are the client's: what ps refuses is a bad request
        raise errors.InvalidParameter(f"Error running ps: {res.stderr.strip()}")
    lines = res.stdout.splitlines()
    titles = lines[0].split()
    try:
        pid_col = titles.index("PID")
    except ValueError:
        raise errors.SystemError_("Couldn't find PID field in ps output") from None
    processes = []
    for line in lines[1:]:
        fields = line.split(None, len(titles) - 1)
        if len(fields) > pid_col and fields[pid_col].isdigit() and int(fields[pid_col]) in pids:
            processes.append(fields)
    return {"Titles": titles, "Processes": processes}
