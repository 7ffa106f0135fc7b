"""A CRI ContainerConfig as the Docker API's create body: what cri-dockerd sends dockerd.

Everything here is said in the Docker body's words (HostConfig.Binds with propagation, Devices,
CapAdd/CapDrop, SecurityOpt, MaskedPaths, the cgroup resources); the engine validates the body as for
any Docker client, so a bad value is INVALID_ARGUMENT with the engine's words.
"""

from __future__ import annotations

from typing import Any

from .. import errors

# CRI MountPropagation → the Binds option
PROPAGATION = {0: "rprivate", 1: "rslave", 2: "rshared"}
RUNTIME_DEFAULT, UNCONFINED, LOCALHOST = 0, 1, 2
# NamespaceMode
POD, NODE = 0, 2


def clamp_oom_score_adj(value: int) -> int:
    """containerd's ``restrict_oom_score_adj``: no lower than the daemon's own score, which a process
    without CAP_SYS_RESOURCE cannot go below (the kubelet asks -998 of pause, -997 of guaranteed pods)."""
    try:
        with open("/proc/self/oom_score_adj", encoding="ascii") as f:
            own = int(f.read().strip() or 0)
    except (OSError, ValueError):
        return value
    return max(value, own)


def seccomp_opts(profile: Any, legacy_path: str, where: str, given: bool) -> list[str]:
    """SecurityOpt for a SecurityProfile (or the deprecated ``seccomp_profile_path``); ``given``: the
    field is set. None at all is Unconfined, as the CRI defines it (the kubelet sends RuntimeDefault
    when a pod asks for it)."""
    kind, ref = profile.profile_type, profile.localhost_ref
    if not given:
        if not legacy_path:
            return ["seccomp=unconfined"]
        if legacy_path in ("runtime/default", "docker/default"):
            return []
        if legacy_path == "unconfined":
            return ["seccomp=unconfined"]
        if not legacy_path.startswith("localhost/"):
            raise errors.InvalidParameter(f"{where}.seccomp_profile_path: unknown profile {legacy_path!r}")
        kind, ref = LOCALHOST, legacy_path[len("localhost/"):]
    if kind == RUNTIME_DEFAULT:
        return []
    if kind == UNCONFINED:
        return ["seccomp=unconfined"]
    if not ref:
        raise errors.InvalidParameter(f"{where}.seccomp.localhost_ref is required for a Localhost profile")
    try:
        with open(ref, encoding="utf-8") as f:
            return ["seccomp=" + f.read()]  # the profile's text, as the docker CLI sends a file's
    except OSError as e:
        raise errors.InvalidParameter(f"{where}.seccomp.localhost_ref: cannot read {ref}: {e.strerror}") from None


# LinuxContainerResources field -> HostConfig field
_CGROUP_FIELDS = (("cpu_period", "CpuPeriod"), ("cpu_quota", "CpuQuota"), ("cpu_shares", "CpuShares"),
                  ("memory_limit_in_bytes", "Memory"), ("memory_swap_limit_in_bytes", "MemorySwap"),
                  ("cpuset_cpus", "CpusetCpus"), ("cpuset_mems", "CpusetMems"))


def cgroup_resources(r: Any) -> dict[str, Any]:
    """LinuxContainerResources as HostConfig fields (zero: unset, as the kubelet sends them)."""
    return {key: getattr(r, name) for name, key in _CGROUP_FIELDS if getattr(r, name)}


def container_body(config: Any, pause: str, ns: Any, hostname: str, labels: dict[str, str],
                   image: str, cgroup_parent: str, dns: dict[str, list[str]]) -> dict[str, Any]:
    """The create body of an app container of a pod; ``ns``: the pod's modes, ``pause``: the pod's PID 1
    when it shares its PID namespace. The pod's own network, IPC and UTS namespaces are not the body's
    (they are joined by path: the engine create's ``namespaces``), nor are its sysctls, written in
    them when they were made. The pod's DNSConfig is the engine's ``Dns*`` (its resolv.conf then is
    dockerd's for those settings: what is not given comes from the host's)."""
    linux = config.linux
    sec = linux.security_context
    host_net = ns.network == NODE
    host_config: dict[str, Any] = {
        "NetworkMode": "host" if host_net else "none",
        "IpcMode": "host" if ns.ipc == NODE else "",
        "PidMode": "host" if ns.pid == NODE else f"container:{pause}" if ns.pid == POD else "",
        "UTSMode": "host" if host_net else "",
        "CgroupParent": cgroup_parent,
        "Dns": dns.get("servers") or [],
        "DnsSearch": dns.get("searches") or [],
        "DnsOptions": dns.get("options") or [],
        "Binds": [bind(m, i) for i, m in enumerate(config.mounts)],
        "Devices": [{"PathOnHost": d.host_path, "PathInContainer": d.container_path,
                     "CgroupPermissions": d.permissions or "rwm"} for d in config.devices],
        "Privileged": sec.privileged,
        "ReadonlyRootfs": sec.readonly_rootfs,
        "CapAdd": list(sec.capabilities.add_capabilities),
        "CapDrop": list(sec.capabilities.drop_capabilities),
        "GroupAdd": [str(g) for g in sec.supplemental_groups],
        "SecurityOpt": seccomp_opts(sec.seccomp, sec.seccomp_profile_path, "linux.security_context",
                                    sec.HasField("seccomp"))
        + (["no-new-privileges"] if sec.no_new_privs else []),
        "LogConfig": {"Type": "json-file", "Config": {}},
        **cgroup_resources(linux.resources),
    }
    if linux.resources.oom_score_adj:
        host_config["OomScoreAdj"] = clamp_oom_score_adj(linux.resources.oom_score_adj)
    # the kubelet sends the default lists itself; an empty list from it means "none" (unmasked)
    if not sec.privileged and (sec.masked_paths or sec.readonly_paths):
        host_config["MaskedPaths"] = list(sec.masked_paths)
        host_config["ReadonlyPaths"] = list(sec.readonly_paths)
    body: dict[str, Any] = {
        "Image": image,
        "Env": [f"{kv.key}={kv.value}" for kv in config.envs],
        "WorkingDir": config.working_dir,
        "Tty": config.tty,
        "OpenStdin": config.stdin,
        "StdinOnce": config.stdin_once,
        "AttachStdin": config.stdin,
        "Labels": labels,
        "Hostname": "" if host_net else hostname,
        "User": user(sec),
        "HostConfig": host_config,
    }
    if config.command:
        body["Entrypoint"] = list(config.command)
        body["Cmd"] = list(config.args)
    elif config.args:
        body["Cmd"] = list(config.args)
    return body


def user(sec: Any) -> str:
    if sec.HasField("run_as_user"):
        name = str(sec.run_as_user.value)
    else:
        name = sec.run_as_username
    if sec.HasField("run_as_group"):
        if not name:
            raise errors.InvalidParameter("linux.security_context.run_as_group needs run_as_user or run_as_username")
        return f"{name}:{sec.run_as_group.value}"
    return name


def bind(m: Any, index: int) -> str:
    if not m.container_path.startswith("/"):
        raise errors.InvalidParameter(f"mounts[{index}].container_path must be absolute: {m.container_path!r}")
    if m.HasField("image") and m.image.image:
        # Kubernetes' image volumes (an image's tree mounted read-only) need the engine to mount an image
        raise errors.NotImplementedYet(f"mounts[{index}].image: image volumes are not supported")
    if not m.host_path:
        raise errors.InvalidParameter(f"mounts[{index}].host_path is required")
    opts = ["ro" if m.readonly else "rw", PROPAGATION.get(m.propagation, "rprivate")]
    return f"{m.host_path}:{m.container_path}:{','.join(opts)}"
