"""`GET /containers/json` and `POST /containers/prune`: the rows and the filters, as dockerd 20.10's
daemon/list.go and prune.go choose containers."""

from __future__ import annotations

import logging
import re
import time
from typing import Any, Callable

from .. import errors
from ..containers import health, links, mounts
from ..containers.record import PAUSED, RUNNING, Container, parse_iso
from ..engine.engine import Engine
from ..util.units import human_duration
from . import filters as flt

LIST_FILTERS = frozenset({"ancestor", "before", "expose", "exited", "health", "id", "isolation", "is-task",
                          "label", "name", "network", "publish", "since", "status", "volume"})
PRUNE_FILTERS = frozenset({"until", "label", "label!"})
STATUSES = ("created", "restarting", "running", "removing", "paused", "exited", "dead")
PORT_MAX = 65535
log = logging.getLogger("dockyard.api")


def _command(c: Container) -> str:
    # dockerd's list quotes the arguments (not the path) that hold a space
    return " ".join([c.path, *(f"'{a}'" if " " in a else a for a in c.args)])


def status_text(c: Container) -> str:
    st = c.state
    now = time.time()
    if st.status in (RUNNING, PAUSED):
        text = f"Up {human_duration(now - parse_iso(st.started_at))}"
        return text + " (Paused)" if st.status == PAUSED else text
    if st.status == "restarting":
        return f"Restarting ({st.exit_code}) {human_duration(now - parse_iso(st.finished_at))} ago"
    if st.status == "removing":
        return "Removal In Progress"
    if st.status == "dead":
        return "Dead"
    if parse_iso(st.finished_at) == 0:
        return "Created"
    return f"Exited ({st.exit_code}) {human_duration(now - parse_iso(st.finished_at))} ago"


def _summary(engine: Engine, c: Container, size: bool, networks: dict[str, Any],
             ports: list[dict[str, Any]], link_names: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "Id": c.id,
        "Names": sorted([c.name, *link_names]),  # a linked child is also known by its links' names
        "Image": c.image_name,
        "ImageID": c.image_id,
        "Command": _command(c),
        "Created": int(parse_iso(c.created)),
        "Ports": ports,
        "Labels": c.config.get("Labels") or {},
        "State": c.state.status,
        "Status": status_text(c) + (engine.health.status_suffix(c.id) if c.state.status == RUNNING else ""),
        "HostConfig": {"NetworkMode": c.host_config.get("NetworkMode") or "bridge"},
        "NetworkSettings": {"Networks": networks},
        "Mounts": mounts.inspect(c.mounts),
    }
    if size:
        out["SizeRw"], out["SizeRootFs"] = engine.containers.sizes(c)
    return out


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


def _ancestors(engine: Engine, refs: list[str]) -> set[str]:
    """The images named and every image built on them (dockerd's populateImageFilterByParents)."""
    found: set[str] = set()
    pending = []
    for ref in refs:
        try:
            pending.append(engine.images.resolve(ref).id)
        except errors.DockyardError:
            log.warning("ancestor filter: no image %s", ref)
    while pending:
        image_id = pending.pop()
        if image_id in found:
            continue
        found.add(image_id)
        pending.extend(child.id for child in engine.images.store.children(image_id))
    return found


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


def list_containers(engine: Engine, all_: bool, limit: int, wanted: dict[str, list[str]],
                    size: bool) -> list[dict[str, Any]]:
    svc = engine.containers
    containers = sorted(svc.all(), key=lambda c: c.created, reverse=True)
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
    before = svc.get(wanted["before"][-1]).created if wanted.get("before") else None
    since = svc.get(wanted["since"][-1]).created if wanted.get("since") else None
    ancestors = _ancestors(engine, wanted.get("ancestor", []))
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
        if exited and (c.state.running or parse_iso(c.state.started_at) == 0 or c.state.exit_code not in exited):
            continue
        if wanted.get("ancestor") and c.image_id not in ancestors:
            continue
        if before is not None and c.created >= before:
            continue
        if since is not None and c.created <= since:
            continue
        if wanted.get("volume") and not any(mounts.matches(c.mounts, v) for v in wanted["volume"]):
            continue
        if wanted.get("health") and engine.health.status(c.id) not in wanted["health"]:
            continue
        try:
            settings = engine.networks.container_settings(c)
            if wanted.get("network") and not _in_networks(settings["Networks"], wanted["network"]):
                continue
            # as dockerd, the ports of a container that runs with a port-mapping network only
            ports = engine.networks.port_summary(c) if settings["Ports"] else []
            if publish and not any(f"{p.get('PublicPort')}/{p['Type']}" in publish for p in ports):
                continue
            if expose and not any(f"{p['PrivatePort']}/{p['Type']}" in expose for p in ports):
                continue
            out.append(_summary(engine, c, size, settings["Networks"], ports, link_names.get(c.id, [])))
        except Exception:  # one bad record must not take the list from every client
            log.exception("skipping container %s in the list", c.id)
            continue
        if limit > 0 and len(out) >= limit:
            break
    return out


def prune_keep(wanted: dict[str, list[str]]) -> Callable[[Container], bool]:
    """Which stopped containers `container prune` leaves (dockerd's prune filters)."""
    until_ns = flt.parse_timestamp(wanted["until"][-1], "until") if wanted.get("until") else None

    def keep(c: Container) -> bool:
        if until_ns is not None and parse_iso(c.created) * 1e9 >= until_ns:
            return True
        labels = c.config.get("Labels") or {}
        if wanted.get("label") and not flt.match_labels(labels, wanted["label"]):
            return True
        # label! spares a container only when every label! filter holds for it (dockerd's MatchKVList)
        return bool(wanted.get("label!")) and bool(labels) and flt.match_labels(labels, wanted["label!"])

    return keep
