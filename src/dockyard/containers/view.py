"""What dockerd shows of containers: inspect (daemon/inspect.go), the list rows and their filters
(daemon/list.go), the prune selection (daemon/prune.go) and top.

The views read the container records and ask the services that own the rest (the snapshotter for
the writable layer's directories, the networks, health and execs) through small protocols, so this
module imports none of them. Anything here may touch the disk: callers run it in a thread."""

from __future__ import annotations

import base64
import logging
import re
import subprocess
import time
from typing import Any, Callable, Iterable, Protocol

from .. import errors
from ..model.container import config_json, host_config_json
from ..streams.detach import parse_keys
from ..util import filters as flt
from ..util.timefmt import parse_seconds
from ..util.units import human_duration
from . import health, links, mounts
from .record import Container
from .state import PAUSED, RUNNING

LIST_FILTERS = frozenset({"ancestor", "before", "expose", "exited", "health", "id", "isolation", "is-task",
                          "label", "name", "network", "publish", "since", "status", "volume"})
PRUNE_FILTERS = frozenset({"until", "label", "label!"})
STATUSES = ("created", "restarting", "running", "removing", "paused", "exited", "dead")
PORT_MAX = 65535
log = logging.getLogger("dockyard.containers")


class Records(Protocol):
    def get(self, ref: str) -> Container: ...
    def all(self) -> list[Container]: ...
    def rootfs(self, container_id: str) -> str: ...
    def sizes(self, c: Container) -> tuple[int, int]: ...
    def top(self, ref: str) -> list[int]: ...


class WritableLayer(Protocol):
    """The snapshotter's part: a container's snapshot directories (``upperdir``, ``workdir``)."""

    name: str

    def snapshot(self, key: str) -> Any: ...


class Networks(Protocol):
    def container_settings(self, container: Any) -> dict[str, Any]: ...
    def port_summary(self, container: Any) -> list[dict[str, Any]]: ...


class Health(Protocol):
    def get(self, container_id: str) -> Any: ...
    def status(self, container_id: str) -> str: ...
    def status_suffix(self, container_id: str) -> str: ...


class ContainerViews:
    """``image_id`` resolves an image reference (NotFound else); ``image_children`` lists the IDs of
    the images built on one (for the ancestor filter)."""

    def __init__(self, records: Records, layers: WritableLayer, networks: Networks, health_: Health,
                 exec_ids: Callable[[str], list[str]], image_id: Callable[[str], str],
                 image_children: Callable[[str], list[str]]) -> None:
        self.records = records
        self.layers = layers
        self.networks = networks
        self.health = health_
        self.exec_ids = exec_ids
        self.image_id = image_id
        self.image_children = image_children

    # -- inspect ------------------------------------------------------------------------
    def inspect(self, ref: str, size: bool = False) -> dict[str, Any]:
        c = self.records.get(ref)
        st = c.state
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
            "Driver": self.layers.name,
            "Platform": "linux",
            "MountLabel": "",
            "ProcessLabel": "",
            "AppArmorProfile": "",
            "ExecIDs": self.exec_ids(c.id) or None,
            "HostConfig": host_config_json(c.host_config, c.runtime),
            "GraphDriver": self._graph_driver(c),
            "Mounts": mounts.inspect(c.mounts),
            "Config": config_json(c.config, c.image_name),
            "NetworkSettings": self.networks.container_settings(c),
        }
        health_state = self.health.get(c.id)
        if health_state is not None:
            data["State"]["Health"] = health_state.to_json()
        if size:
            data["SizeRw"], data["SizeRootFs"] = self.records.sizes(c)
        return data

    def _graph_driver(self, c: Container) -> dict[str, Any]:
        try:
            snap = self.layers.snapshot(c.id)
            upper, work = snap.upperdir, snap.workdir
        except errors.DockyardError:  # removed under us: dockerd shows the paths empty
            upper = work = ""
        return {"Name": self.layers.name,
                "Data": {"UpperDir": upper, "MergedDir": self.records.rootfs(c.id), "WorkDir": work}}

    # -- list -----------------------------------------------------------------------------
    def list(self, all_: bool, limit: int, wanted: dict[str, list[str]], size: bool) -> list[dict[str, Any]]:
        """`GET /containers/json`: newest first, as dockerd's filters choose them."""
        containers = sorted(self.records.all(), key=lambda c: c.created, reverse=True)
        for s in wanted.get("status", []):
            if s not in STATUSES:
                raise errors.InvalidParameter(f"Invalid filter 'status={s}'")
        exited: set[int] = set()
        for code in wanted.get("exited", []):
            try:
                exited.add(int(code))
            except ValueError:
                raise errors.InvalidParameter(f'strconv.Atoi: parsing "{code}": invalid syntax') from None
        for value in wanted.get("health", []):
            if value not in health.FILTER_VALUES:
                raise errors.InvalidParameter(f"Unrecognised filter value for health: {value}")
        is_task = _is_task(wanted.get("is-task", []))
        publish = _ports(wanted.get("publish", []), "publish")
        expose = _ports(wanted.get("expose", []), "expose")
        before = self.records.get(wanted["before"][-1]).created if wanted.get("before") else None
        since = self.records.get(wanted["since"][-1]).created if wanted.get("since") else None
        ancestors = self._ancestors(wanted.get("ancestor", []))
        link_names = links.names_by_child(containers)
        show_stopped = all_ or limit > 0 or bool(wanted.get("status") or wanted.get("exited"))
        out = []
        for c in containers:
            if is_task:  # no swarm tasks run here
                break
            if not show_stopped and not c.state.running:
                continue
            if wanted.get("status") and c.state.status not in wanted["status"]:
                continue
            if wanted.get("id") and not any(c.id.startswith(v) for v in wanted["id"]):
                continue
            if wanted.get("name") and not _name_matches(wanted["name"], c.name):
                continue
            if wanted.get("label") and not flt.match_labels(c.config.get("Labels"), wanted["label"]):
                continue
            if exited and (c.state.running or parse_seconds(c.state.started_at) == 0 or c.state.exit_code not in exited):
                continue
            if wanted.get("ancestor") and c.image_id not in ancestors:
                continue
            if before is not None and c.created >= before:
                continue
            if since is not None and c.created <= since:
                continue
            if wanted.get("volume") and not any(mounts.matches(c.mounts, v) for v in wanted["volume"]):
                continue
            if wanted.get("health") and self.health.status(c.id) not in wanted["health"]:
                continue
            try:
                settings = self.networks.container_settings(c)
                if wanted.get("network") and not _in_networks(settings["Networks"], wanted["network"]):
                    continue
                # as dockerd, the ports of a container that runs with a port-mapping network only
                ports = self.networks.port_summary(c) if settings["Ports"] else []
                if publish and not any(f"{p.get('PublicPort')}/{p['Type']}" in publish for p in ports):
                    continue
                if expose and not any(f"{p['PrivatePort']}/{p['Type']}" in expose for p in ports):
                    continue
                out.append(self._summary(c, size, settings["Networks"], ports, link_names.get(c.id, [])))
            except Exception:  # one bad record must not take the list from every client
                log.exception("skipping container %s in the list", c.id)
                continue
            if limit > 0 and len(out) >= limit:
                break
        return out

    def _summary(self, c: Container, size: bool, networks: dict[str, Any], ports: list[dict[str, Any]],
                 link_names: list[str]) -> dict[str, Any]:
        out: dict[str, Any] = {
            "Id": c.id,
            "Names": sorted([c.name, *link_names]),  # a linked child is also known by its links' names
            "Image": c.image_name,
            "ImageID": c.image_id,
            "Command": _command(c),
            "Created": int(parse_seconds(c.created)),
            "Ports": ports,
            "Labels": c.config.get("Labels") or {},
            "State": c.state.status,
            "Status": status_text(c) + (self.health.status_suffix(c.id) if c.state.status == RUNNING else ""),
            "HostConfig": {"NetworkMode": c.host_config.get("NetworkMode") or "bridge"},
            "NetworkSettings": {"Networks": networks},
            "Mounts": mounts.inspect(c.mounts),
        }
        if size:
            out["SizeRw"], out["SizeRootFs"] = self.records.sizes(c)
        return out

    def _ancestors(self, refs: Iterable[str]) -> set[str]:
        """The images named and every image built on them (dockerd's populateImageFilterByParents)."""
        found: set[str] = set()
        pending = []
        for ref in refs:
            try:
                pending.append(self.image_id(ref))
            except errors.DockyardError:
                log.warning("ancestor filter: no image %s", ref)
        while pending:
            image_id = pending.pop()
            if image_id in found:
                continue
            found.add(image_id)
            pending.extend(self.image_children(image_id))
        return found

    # -- top ------------------------------------------------------------------------------
    def top(self, ref: str, ps_args: str) -> dict[str, Any]:
        """`docker top`: the host's ps, limited to the container's processes."""
        pids = set(self.records.top(ref))
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


def exec_inspect(e: Any, pid: int) -> dict[str, Any]:
    """An exec instance (``containers.exec.Exec``) as dockerd's ExecInspect."""
    return {
        "CanRemove": False,
        "ContainerID": e.container_id,
        # the parsed key bytes, which Go's JSON writes as base64 ("" when the default applies)
        "DetachKeys": base64.b64encode(parse_keys(e.detach_keys)).decode() if e.detach_keys else "",
        "ExitCode": e.exit_code,
        "ID": e.id,
        "OpenStderr": e.attach_stderr,
        "OpenStdin": e.attach_stdin,
        "OpenStdout": e.attach_stdout,
        "ProcessConfig": {"arguments": e.cmd[1:], "entrypoint": e.cmd[0], "privileged": e.privileged,
                          "tty": e.tty, **({"user": e.user} if e.user else {})},
        "Running": e.running,
        "Pid": pid,
    }


def prune_keep(wanted: dict[str, list[str]]) -> Callable[[Container], bool]:
    """Which stopped containers `container prune` leaves (dockerd's prune filters)."""
    selector = flt.LabelSelector.of(wanted)
    return lambda c: not selector.selects(c.config.get("Labels") or {}, parse_seconds(c.created) * 1e9)


def _command(c: Container) -> str:
    # dockerd's list quotes the arguments (not the path) that hold a space
    return " ".join([c.path, *(f"'{a}'" if " " in a else a for a in c.args)])


def status_text(c: Container) -> str:
    st = c.state
    now = time.time()
    if st.status in (RUNNING, PAUSED):
        text = f"Up {human_duration(now - parse_seconds(st.started_at))}"
        return text + " (Paused)" if st.status == PAUSED else text
    if st.status == "restarting":
        return f"Restarting ({st.exit_code}) {human_duration(now - parse_seconds(st.finished_at))} ago"
    if st.status == "removing":
        return "Removal In Progress"
    if st.status == "dead":
        return "Dead"
    if parse_seconds(st.finished_at) == 0:
        return "Created"
    return f"Exited ({st.exit_code}) {human_duration(now - parse_seconds(st.finished_at))} ago"


def _ports(wanted: list[str], key: str) -> set[str]:
    """dockerd's portOp: ``80``, ``80/udp`` or a range ``8000-8010``, each port as ``N/proto``."""
    out: set[str] = set()
    for value in wanted:
        if ":" in value:
            raise errors.InvalidParameter(f"filter for '{key}' should not contain ':': {value}")
        port, _, proto = value.partition("/")
        try:
            first, last = _port_range(port)
        except ValueError as e:
            raise errors.InvalidParameter(f"error while looking up for {key} {value}: {e}") from None
        out.update(f"{n}/{proto or 'tcp'}" for n in range(first, last + 1))
    return out


def _port_range(text: str) -> tuple[int, int]:
    if not text:
        raise ValueError("Empty string specified for ports.")
    first, sep, last = text.partition("-")
    numbers = []
    for part in (first, last) if sep else (first,):
        if not part.isdigit() or int(part) > PORT_MAX:
            raise ValueError(f'strconv.ParseUint: parsing "{part}": '
                             f'{"value out of range" if part.isdigit() else "invalid syntax"}')
        numbers.append(int(part))
    if len(numbers) == 2 and numbers[1] < numbers[0]:
        raise ValueError(f"Invalid range specified for the Port: {text}")
    return numbers[0], numbers[-1]


def _name_matches(patterns: list[str], name: str) -> bool:
    """As dockerd's filters.Match: each value a regular expression; one that does not compile matches nothing."""
    for pattern in patterns:
        try:
            if re.search(pattern, name):
                return True
        except re.error:
            continue
    return False


def _in_networks(settings: dict[str, Any], wanted: list[str]) -> bool:
    return any(value in settings or any((s.get("NetworkID") or "").startswith(value) for s in settings.values())
               for value in wanted)


def _is_task(wanted: list[str]) -> bool | None:
    if not wanted:
        return None
    if "true" in wanted:
        return True
    if "false" in wanted:
        return False
    raise errors.InvalidParameter(f"Invalid filter 'is-task=[{' '.join(wanted)}]'")
