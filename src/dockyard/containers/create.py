"""Create: a container's record from the request and its image, its snapshot, mounts and network files."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
from typing import Any, Callable

from .. import errors
from ..model import container as model
from ..runtime import spec as specmod
from ..util import resolvconf, timefmt
from ..util.atomic import write_atomic
from ..util.host import read_text
from . import defaults as defaultsmod
from . import health as healthmod
from . import joins
from . import jsonlog
from . import links as linksmod
from . import mounts as mountsmod
from .ops import ContainerOps
from .record import Container
from .stop import parse_signal


RESTART_POLICIES = ("", "no", "always", "unless-stopped", "on-failure")
HOSTS = ("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\n"
         "ff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n")
# what dockerd stores merged with the image's config: what inspect shows
MERGED_KEYS = ("Env", "Cmd", "Entrypoint", "WorkingDir", "User", "Labels", "ExposedPorts", "Volumes",
               "StopSignal", "Healthcheck", "OnBuild", "Shell")


def create(svc: ContainerOps, name: str | None, body: dict[str, Any], *, snapshot: str | None = None,
           shareable_ipc: bool = False, namespaces: dict[str, str] | None = None,
           log_mirror: str = "") -> Container:
    """``shareable_ipc``: the default IPC mode of clients older than API 1.40; ``snapshot``: a prepared
    snapshot to take over (its key becomes the ID); ``namespaces``: pinned namespaces to join
    (``Container.namespaces``), in place of the ones the body's modes would make; ``log_mirror``: where
    the log is also written in the CRI's format (``Container.log_mirror``; needs the json-file driver)."""
    namespaces = joins.check_pinned(namespaces or {}, body.get("HostConfig") or {})
    config = {k: v for k, v in body.items() if k not in ("HostConfig", "NetworkingConfig")}
    host_config = dict(body.get("HostConfig") or {})
    image_ref = config.get("Image") or ""
    if not image_ref:
        raise errors.legacy(errors.InvalidParameter("config cannot be empty in order to create a container"),
                            "Config cannot be empty in order to create a container")
    image = svc.images.resolve(image_ref)
    image_config = (image.config.get("config") or {})
    specmod.validate_host_config(host_config)
    defaultsmod.apply(host_config, shareable_ipc)
    validate_restart_policy(host_config)
    if config.get("StopSignal"):
        parse_signal(config["StopSignal"])  # a 400 now rather than at stop time, as dockerd
    host_config["LogConfig"] = merge_log_config(host_config.get("LogConfig") or {}, svc.config.log_driver,
                                                svc.config.log_opts)
    log_policy = jsonlog.validate(host_config["LogConfig"])
    if log_mirror and (log_policy is None or not os.path.isabs(log_mirror)):
        raise errors.InvalidParameter(f"a log mirror needs the json-file driver and an absolute path: {log_mirror!r}")
    if host_config.get("AutoRemove") and (host_config.get("RestartPolicy") or {}).get("Name") not in (None, "", "no"):
        raise errors.InvalidParameter("can't create 'AutoRemove' container with restart policy")
    network_mode = host_config.get("NetworkMode") or "default"
    if network_mode not in ("default", "bridge", "none", "host") and not network_mode.startswith("container:"):
        network_mode = svc.networks.get(network_mode).name  # 404 "network X not found"
    network_mode = _network_container_by_id(network_mode, svc.get)
    joins.check_targets(host_config, svc.get)
    runtime_name = host_config.get("Runtime") or svc.config.default_runtime
    svc.runtime(runtime_name)
    args = specmod.command(config, image_config)
    mount_plan = mountsmod.plan(host_config, config, image_config, svc.get, svc.volumes.validate_create)
    _merge_image_config(config, image_config)
    container_id = snapshot or secrets.token_hex(32)
    config.setdefault("Hostname", "")
    if not config["Hostname"]:  # as dockerd's newContainer: a host-network container is named as the host
        config["Hostname"] = socket.gethostname() if network_mode == "host" else container_id[:12]
    config["Image"] = image_ref
    if network_mode.startswith("container:"):
        host_config["NetworkMode"] = network_mode
    host_config.setdefault("NetworkMode", "bridge" if network_mode == "default" else network_mode)
    host_config.setdefault("RestartPolicy", model.to_json(model.RestartPolicy()))
    host_config["Runtime"] = runtime_name
    full = svc.table.reserve_name(name, container_id)  # held while the rest is prepared
    directory = svc.directory(container_id)
    try:
        host_config["Links"] = linksmod.normalize(host_config.get("Links"), full, svc.get, network_mode)
        os.makedirs(os.path.join(directory, "rootfs"), mode=0o710)
        if snapshot is None:
            svc.snapshotter.prepare(container_id, image.top_layer)
        c = Container(id=container_id, name=full, created=timefmt.now_fixed(), image_id=image.id, image_name=image_ref,
                      config=config, host_config=host_config, path=args[0], args=args[1:],
                      runtime=runtime_name, namespaces=namespaces, log_mirror=log_mirror)
        c.mounts = mountsmod.materialize(mount_plan, svc.volumes)
        write_network_files(svc, c)
        svc.networks.register(c.id, c.name, host_config, body.get("NetworkingConfig"), config)
        if log_policy is not None:
            c.log_path = os.path.join(directory, f"{container_id}-json.log")
        svc.save(c)
    except BaseException:
        svc.table.release_name(full, container_id)
        try:
            svc.snapshotter.remove(container_id)
        except Exception:
            pass
        shutil.rmtree(directory, ignore_errors=True)
        svc.networks.unregister(container_id)
        mountsmod.discard(mount_plan, svc.volumes)
        raise
    svc.table.add(c)
    svc.event(c, "create")
    return c


def _merge_image_config(config: dict[str, Any], image_config: dict[str, Any]) -> None:
    for key in MERGED_KEYS:
        if key == "Env":
            config["Env"] = merge_env(image_config.get("Env") or [], config.get("Env") or [])
        elif key == "Labels":
            config["Labels"] = {**(image_config.get("Labels") or {}), **(config.get("Labels") or {})}
        elif key == "Cmd":
            if not config.get("Cmd") and not config.get("Entrypoint"):
                config["Cmd"] = image_config.get("Cmd")
        elif key == "Entrypoint":
            if config.get("Entrypoint") is None:
                config["Entrypoint"] = image_config.get("Entrypoint")
            elif config["Entrypoint"] == [""]:
                config["Entrypoint"] = None
        elif key == "Healthcheck" and (config.get(key) or image_config.get(key)):
            config[key] = healthmod.merge_config(config.get(key), image_config.get(key))
        elif not config.get(key) and image_config.get(key):
            config[key] = image_config[key]


def adopt_exited(svc: ContainerOps, container_id: str, body: dict[str, Any], exit_code: int, started_at: str,
                 finished_at: str, journal: str | None = None) -> Container:
    """Record a process that ran outside the service on the prepared snapshot ``container_id``
    (a classic build's RUN step, which dockerd keeps as an exited container when it fails or
    with ``--rm=false``), so that ps, inspect, diff, cp, commit, start and rm work on it.
    ``journal``, the process's output in the shim's journal format, becomes its log."""
    c = create(svc, None, body, snapshot=container_id)
    if journal is not None and c.log_path:
        os.replace(journal, os.path.join(svc.directory(c.id), jsonlog.JOURNAL))
    with svc.table.op_lock(c.id):
        c.state.set_ran_outside(exit_code, started_at, finished_at)
        svc.save(c)
    return c


def write_network_files(svc: ContainerOps, c: Container) -> None:
    """The hostname, hosts and resolv.conf ``c`` mounts, in its own directory. A container in another's
    network namespace gets none: at start it takes that container's (start.py ``share_network``)."""
    if (c.host_config.get("NetworkMode") or "").startswith("container:"):
        return
    directory = svc.directory(c.id)
    hc = c.host_config
    host_net = hc.get("NetworkMode") == "host"
    c.hostname_path = os.path.join(directory, "hostname")
    c.hosts_path = os.path.join(directory, "hosts")
    c.resolv_conf_path = os.path.join(directory, "resolv.conf")
    hostname = c.config.get("Hostname") or socket.gethostname()
    write_atomic(c.hostname_path, hostname + "\n", durable=False)
    # rewritten at each start with the container's addresses (network/service.py); none has them
    hosts = (read_text("/etc/hosts") or HOSTS) if host_net else HOSTS
    write_atomic(c.hosts_path, hosts + svc.networks.extra_hosts(hc), durable=False)
    write_atomic(c.resolv_conf_path, resolvconf.for_container(
        hc.get("Dns") or [], hc.get("DnsSearch") or [], hc.get("DnsOptions") or [], host_net), durable=False)


def _network_container_by_id(mode: str, get: Callable[[str], Container]) -> str:
    """``container:<ref>`` naming the target by its full ID, as dockerd stores it when the target exists
    (one that does not is refused at start, in dockerd's words)."""
    if not mode.startswith("container:"):
        return mode
    try:
        return f"container:{get(mode.split(':', 1)[1]).id}"
    except errors.NotFound:
        return mode


def validate_restart_policy(host_config: dict[str, Any]) -> None:
    """dockerd's checks, in its words (and dockerd 20.10's for older API versions)."""
    policy = host_config.get("RestartPolicy") or {}
    name = policy.get("Name") or ""
    count = policy.get("MaximumRetryCount") or 0
    if not name:
        return  # dockerd keeps an empty name with any count, as older versions created it
    if name not in RESTART_POLICIES:
        raise errors.legacy(errors.InvalidParameter(
            f"invalid restart policy: unknown policy '{name}'; use one of 'no', 'always', 'on-failure', or "
            f"'unless-stopped'"), f"invalid restart policy '{name}'")
    if name != "on-failure" and count:
        text = "invalid restart policy: maximum retry count can only be used with 'on-failure'"
        raise errors.legacy(errors.InvalidParameter(text + (" and cannot be negative" if count < 0 else "")),
                            f"maximum retry count cannot be used with restart policy '{name}'")
    if count < 0:
        raise errors.legacy(errors.InvalidParameter("invalid restart policy: maximum retry count cannot be negative"),
                            "maximum retry count cannot be negative")


def merge_log_config(log_config: dict[str, Any], driver: str, opts_default: dict[str, str]) -> dict[str, Any]:
    """As dockerd: the daemon's driver when none is named, its options under the container's own."""
    kind = log_config.get("Type") or driver
    opts = dict(log_config.get("Config") or {})
    if kind == driver:
        for key, value in opts_default.items():
            opts.setdefault(key, value)
    return {"Type": kind, "Config": opts}


def merge_env(image_env: list[str], env: list[str]) -> list[str]:
    """As dockerd's merge: the container's own variables first, then the image's it did not set."""
    own = {item.partition("=")[0] for item in env}
    return list(env) + [item for item in image_env if item.partition("=")[0] not in own]
