"""System routes: ping, version, info, events, disk usage."""

from __future__ import annotations

import asyncio
import json
import os
import platform
import time
from typing import Any, AsyncIterator

from .. import __version__
from ..engine.events import Event
from ..httpd.server import Request, Response, StreamResponse, json_response
from ..util import filters as flt
from ..util import host as hostinfo
from ..util import timefmt
from .backend import SystemBackend
from .router import API_VERSION, MIN_API_VERSION, Route, get, head

GO_VERSION = f"python{platform.python_version()}"
EVENT_FILTERS = frozenset({"config", "container", "daemon", "event", "image", "label", "network", "node",
                           "plugin", "scope", "secret", "service", "type", "volume"})


def standard_headers() -> list[tuple[str, str]]:
    """Headers dockerd puts on every response; clients negotiate from them."""
    return [
        ("Api-Version", API_VERSION),
        ("Docker-Experimental", "false"),
        ("Ostype", "linux"),
        ("Server", f"Docker/{__version__} (linux)"),
    ]


def routes(engine: SystemBackend) -> list[Route]:
    async def ping(request: Request) -> Response:
        return Response(200, b"" if request.method == "HEAD" else b"OK", "text/plain; charset=utf-8", [
            ("Builder-Version", "1"),
            ("Cache-Control", "no-cache, no-store, must-revalidate"),
            ("Pragma", "no-cache"),
            ("Swarm", "inactive"),
        ])

    async def version(request: Request) -> Response:
        runtimes = await asyncio.to_thread(engine.runtime_versions)
        details = {
            "ApiVersion": API_VERSION,
            "Arch": hostinfo.architecture(),
            "BuildTime": _iso(engine.started_at),
            "Experimental": "false",
            "GitCommit": "",
            "GoVersion": GO_VERSION,
            "KernelVersion": hostinfo.kernel_version(),
            "MinAPIVersion": MIN_API_VERSION,
            "Os": "linux",
        }
        components: list[dict[str, Any]] = [{"Name": "Engine", "Version": __version__, "Details": details}]
        default = engine.config.default_runtime
        rv, commit = runtimes.get(default, ("", ""))
        if rv:
            components.append({"Name": default, "Version": rv, "Details": {"GitCommit": commit}})
        return json_response({
            "Platform": {"Name": "dockyard"},
            "Components": components,
            "Version": __version__,
            "ApiVersion": API_VERSION,
            "MinAPIVersion": MIN_API_VERSION,
            "GitCommit": "",
            "GoVersion": GO_VERSION,
            "Os": "linux",
            "Arch": hostinfo.architecture(),
            "KernelVersion": hostinfo.kernel_version(),
            "BuildTime": details["BuildTime"],
        })

    async def info(request: Request) -> Response:
        return json_response(await asyncio.to_thread(system_info, engine))

    async def events(request: Request) -> StreamResponse:
        wanted = flt.parse(request.q("filters"), EVENT_FILTERS)
        since = request.q("since")
        until = request.q("until")
        since_ns = flt.parse_timestamp(since, "since") if since else None
        until_ns = flt.parse_timestamp(until, "until") if until else None
        return StreamResponse(_event_stream(engine, wanted, since_ns, until_ns))

    async def disk_usage(request: Request) -> Response:
        types = set(request.qlist("type"))
        usage = await asyncio.to_thread(engine.disk_usage)
        # the same rows as `GET /containers/json?all=1&size=1`
        usage["containers"] = await asyncio.to_thread(engine.list_containers, True, -1, {}, True) \
            if not types or "container" in types else []
        out: dict[str, Any] = {"LayersSize": usage["layers_size"]}
        for key, field in (("image", "Images"), ("container", "Containers"), ("volume", "Volumes"),
                           ("build-cache", "BuildCache")):
            if not types or key in types:
                out[field] = usage[{"image": "images", "container": "containers", "volume": "volumes",
                                    "build-cache": "build_cache"}[key]]
        return json_response(out)

    return [
        get("/_ping", ping),
        head("/_ping", ping),
        get("/version", version),
        get("/info", info),
        get("/events", events),
        get("/system/df", disk_usage),
    ]


def _iso(ts: float) -> str:
    return timefmt.rfc3339_nano(round(ts * 1e6) * 1000)


def system_info(engine: SystemBackend) -> dict[str, Any]:
    c = engine.config
    counts = engine.counts()
    runtimes = {name: {"path": c.runtime_path(name)} for name in {"runc", *c.runtimes}}
    return {
        "ID": engine.id,
        "Containers": counts["containers"],
        "ContainersRunning": counts["running"],
        "ContainersPaused": counts["paused"],
        "ContainersStopped": counts["stopped"],
        "Images": counts["images"],
        "Driver": engine.storage_driver_name(),
        "DriverStatus": engine.storage_driver_status(),
        "Plugins": {"Volume": ["local"], "Network": ["bridge", "host", "null"],
                    "Authorization": None, "Log": ["json-file", "local", "none"]},
        "MemoryLimit": True,
        "SwapLimit": hostinfo.cgroup_version() == "2",
        "KernelMemoryTCP": False,
        "CpuCfsPeriod": True,
        "CpuCfsQuota": True,
        "CPUShares": True,
        "CPUSet": True,
        "PidsLimit": True,
        "IPv4Forwarding": True,
        "Debug": c.debug,
        "NFd": _count_fds(),
        "OomKillDisable": hostinfo.cgroup_version() == "1",
        "NGoroutines": 0,
        "SystemTime": timefmt.rfc3339_nano(time.time_ns()),
        "LoggingDriver": c.log_driver,
        "CgroupDriver": c.cgroup_driver,
        "CgroupVersion": hostinfo.cgroup_version(),
        "NEventsListener": 0,
        "KernelVersion": hostinfo.kernel_version(),
        "OperatingSystem": hostinfo.operating_system(),
        "OSVersion": hostinfo.os_version(),
        "OSType": "linux",
        "Architecture": platform.machine(),
        "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": {
            "IndexConfigs": {"docker.io": {"Name": "docker.io", "Mirrors": list(c.registry_mirrors),
                                           "Secure": True, "Official": True}},
            "InsecureRegistryCIDRs": ["127.0.0.0/8", "::1/128"],
            "Mirrors": list(c.registry_mirrors),
        },
        "NCPU": os.cpu_count() or 1,
        "MemTotal": hostinfo.mem_total(),
        "GenericResources": None,
        "DockerRootDir": c.data_root,
        "HttpProxy": "",
        "HttpsProxy": "",
        "NoProxy": "",
        "Name": hostinfo.hostname(),
        "Labels": [],
        "ExperimentalBuild": False,
        "ServerVersion": __version__,
        "Runtimes": runtimes,
        "DefaultRuntime": c.default_runtime,
        "Swarm": {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive", "ControlAvailable": False,
                  "Error": "", "RemoteManagers": None},
        "LiveRestoreEnabled": c.live_restore,
        "Isolation": "",
        "InitBinary": "docker-init",
        "ContainerdCommit": {"ID": ""},
        "RuncCommit": {"ID": hostinfo.runtime_version(c.runtime_path("runc"))[1]},
        "InitCommit": {"ID": ""},
        "SecurityOptions": ["name=seccomp,profile=builtin", "name=cgroupns"] if hostinfo.cgroup_version() == "2"
        else ["name=seccomp,profile=builtin"],
        "CDISpecDirs": [],
        "Warnings": [],
    }


def _count_fds() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return 0


def event_matches(event: Event, wanted: dict[str, list[str]]) -> bool:
    """dockerd's events filter: each given key must match, values of a key are OR'ed."""
    attrs = event.attributes

    def any_of(key: str, *candidates: str | None) -> bool:
        values = wanted.get(key)
        if not values:
            return True
        return any(c is not None and c in values for c in candidates)

    if "event" in wanted:
        action = event.action
        if not any(action == v or action.split(":", 1)[0] == v for v in wanted["event"]):
            return False
    if not any_of("type", event.type):
        return False
    if not any_of("scope", event.scope):
        return False
    if "label" in wanted and not flt.match_labels(attrs, wanted["label"]):
        return False
    if "container" in wanted:
        if event.type != "container" or not _id_or_name(event, wanted["container"]):
            return False
    if "image" in wanted:
        if event.type == "image":
            if not _id_or_name(event, wanted["image"]):
                return False
        elif event.type == "container":
            image = attrs.get("image", "")
            if not any(v == image or image.startswith(v + ":") or (v + ":latest") == image for v in wanted["image"]):
                return False
        else:
            return False
    for key in ("network", "volume", "daemon"):
        if key in wanted:
            if event.type != key or not _id_or_name(event, wanted[key]):
                return False
    return True


def _id_or_name(event: Event, values: list[str]) -> bool:
    name = event.attributes.get("name", "")
    for v in values:
        if event.actor_id == v or (len(v) >= 1 and event.actor_id.startswith(v)) or name == v:
            return True
        if name and (name == v + ":latest"):
            return True
    return False


# Events waiting for a follower that reads slowly or not at all: past this the new ones
# are dropped for it (dockerd's publisher drops likewise once a subscriber's 1024 are full).
EVENTS_PENDING = 1024


async def _event_stream(engine: SystemBackend, wanted: dict[str, list[str]], since_ns: int | None,
                        until_ns: int | None) -> AsyncIterator[bytes]:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Event] = asyncio.Queue(EVENTS_PENDING)

    def put(event: Event) -> None:
        if not queue.full():
            queue.put_nowait(event)

    def deliver(event: Event) -> None:
        try:
            loop.call_soon_threadsafe(put, event)
        except RuntimeError:  # loop already closed at shutdown
            pass

    live = until_ns is None or until_ns > time.time_ns()
    if live:
        backlog = engine.events.subscribe(deliver, since_ns)
    else:
        backlog = engine.events.history(since_ns or 0)
    try:
        for event in backlog:
            if until_ns is not None and event.time_nano > until_ns:
                continue
            if event_matches(event, wanted):
                yield _line(event)
        if not live:
            return
        # dockerd flushes the headers at once, so the client knows the stream is open.
        yield b""
        while True:
            timeout = None if until_ns is None else max(0.0, (until_ns - time.time_ns()) / 1e9)
            try:
                event = await asyncio.wait_for(queue.get(), timeout)
            except asyncio.TimeoutError:
                return
            if until_ns is not None and event.time_nano > until_ns:
                return
            if event_matches(event, wanted):
                yield _line(event)
    finally:
        engine.events.unsubscribe(deliver)


def _line(event: Event) -> bytes:
    return (json.dumps(event.to_json()) + "\n").encode()
