"""The container's Config and HostConfig as one typed model with dockerd's defaults.

What a client leaves out of ``POST /containers/create`` reads back from inspect as dockerd's zero
value for the field (docker-py's docker/types/containers.py models the same objects). Each field
names its Engine API key; ``to_json`` gives the API object in dockerd's key order, so inspect's
output does not depend on the order a client sent. A leaf: it imports nothing of dockyard, so the
daemon's create, its inspect and the CLI can all share it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

DEFAULT_SHM_SIZE = 64 * 1024 * 1024  # dockerd's default /dev/shm: 64 MiB
DEFAULT_IPC_MODE = "private"
LEGACY_IPC_MODE = "shareable"  # the default before API 1.40


def _key(name: str, default: Any = None, factory: Any = None) -> Any:
    """A field called ``name`` in the API; ``factory`` for a mutable default."""
    if factory is not None:
        return field(default_factory=factory, metadata={"api": name})
    return field(default=default, metadata={"api": name})


def to_json(model: Any) -> dict[str, Any]:
    """The API object of a model (nested models included), keys in field order."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(model):
        value = getattr(model, f.name)
        out[f.metadata["api"]] = to_json(value) if dataclasses.is_dataclass(value) else value
    return out


@dataclass
class RestartPolicy:
    name: str = _key("Name", "no")
    maximum_retry_count: int = _key("MaximumRetryCount", 0)


@dataclass
class HostConfig:
    """The fields inspect always shows, at the values dockerd stores when the client set none."""

    binds: list[str] | None = _key("Binds")
    container_id_file: str = _key("ContainerIDFile", "")
    network_mode: str = _key("NetworkMode", "bridge")
    port_bindings: dict[str, Any] = _key("PortBindings", factory=dict)
    restart_policy: RestartPolicy = _key("RestartPolicy", factory=RestartPolicy)
    auto_remove: bool = _key("AutoRemove", False)
    volume_driver: str = _key("VolumeDriver", "")
    volumes_from: list[str] | None = _key("VolumesFrom")
    cap_add: list[str] | None = _key("CapAdd")
    cap_drop: list[str] | None = _key("CapDrop")
    dns: list[str] = _key("Dns", factory=list)
    dns_options: list[str] = _key("DnsOptions", factory=list)
    dns_search: list[str] = _key("DnsSearch", factory=list)
    extra_hosts: list[str] | None = _key("ExtraHosts")
    group_add: list[str] | None = _key("GroupAdd")
    ipc_mode: str = _key("IpcMode", DEFAULT_IPC_MODE)
    cgroup: str = _key("Cgroup", "")
    links: list[str] | None = _key("Links")
    oom_score_adj: int = _key("OomScoreAdj", 0)
    pid_mode: str = _key("PidMode", "")
    privileged: bool = _key("Privileged", False)
    publish_all_ports: bool = _key("PublishAllPorts", False)
    readonly_rootfs: bool = _key("ReadonlyRootfs", False)
    security_opt: list[str] | None = _key("SecurityOpt")
    uts_mode: str = _key("UTSMode", "")
    userns_mode: str = _key("UsernsMode", "")
    shm_size: int = _key("ShmSize", DEFAULT_SHM_SIZE)
    runtime: str = _key("Runtime", "runc")
    isolation: str = _key("Isolation", "")
    cpu_shares: int = _key("CpuShares", 0)
    memory: int = _key("Memory", 0)
    nano_cpus: int = _key("NanoCpus", 0)
    cgroup_parent: str = _key("CgroupParent", "")
    blkio_weight: int = _key("BlkioWeight", 0)
    cpu_period: int = _key("CpuPeriod", 0)
    cpu_quota: int = _key("CpuQuota", 0)
    cpuset_cpus: str = _key("CpusetCpus", "")
    cpuset_mems: str = _key("CpusetMems", "")
    memory_reservation: int = _key("MemoryReservation", 0)
    memory_swap: int = _key("MemorySwap", 0)
    memory_swappiness: int | None = _key("MemorySwappiness")
    oom_kill_disable: bool | None = _key("OomKillDisable")
    pids_limit: int | None = _key("PidsLimit")
    ulimits: list[dict[str, Any]] | None = _key("Ulimits")
    init: bool | None = _key("Init")
    console_size: list[int] = _key("ConsoleSize", factory=lambda: [0, 0])
    masked_paths: list[str] | None = _key("MaskedPaths")
    readonly_paths: list[str] | None = _key("ReadonlyPaths")


@dataclass
class Config:
    """The container Config fields inspect always shows (``Image`` is the name the client gave)."""

    hostname: str = _key("Hostname", "")
    domainname: str = _key("Domainname", "")
    user: str = _key("User", "")
    attach_stdin: bool = _key("AttachStdin", False)
    attach_stdout: bool = _key("AttachStdout", False)
    attach_stderr: bool = _key("AttachStderr", False)
    tty: bool = _key("Tty", False)
    open_stdin: bool = _key("OpenStdin", False)
    stdin_once: bool = _key("StdinOnce", False)
    env: list[str] | None = _key("Env")
    cmd: list[str] | None = _key("Cmd")
    image: str = _key("Image", "")
    volumes: dict[str, Any] | None = _key("Volumes")
    working_dir: str = _key("WorkingDir", "")
    entrypoint: list[str] | None = _key("Entrypoint")
    on_build: list[str] | None = _key("OnBuild")
    labels: dict[str, str] = _key("Labels", factory=dict)


def host_config_json(stored: dict[str, Any], runtime: str) -> dict[str, Any]:
    """A container's HostConfig as inspect shows it: the defaults under what was stored at create."""
    return {**to_json(HostConfig(runtime=runtime)), **stored}


def config_json(stored: dict[str, Any], image: str) -> dict[str, Any]:
    """A container's Config as inspect shows it."""
    return {**to_json(Config(image=image)), **stored}
