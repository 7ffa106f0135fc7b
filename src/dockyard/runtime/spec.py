"""The OCI runtime spec (``config.json``) for a container, built as dockerd builds it.

Inputs are the image config and the create request's ``Config`` and
``HostConfig`` exactly as the Engine API carries them. Validation of the
request (``validate_host_config``) is separate, so that ``create`` can refuse
bad input before anything is written, with the field named.
"""

from __future__ import annotations

import os
import resource
import socket
import stat
from dataclasses import dataclass, field
from typing import Any

from .. import errors
from ..model import container as model
from ..storage import rootfd
from . import cgroupdriver, devices, lsm, mountspec, seccomp, seccomp_default, secopts

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CGROUP_PARENT = "/dockyard"

DEFAULT_CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
                "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
                "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"]
ALL_CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
            "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
            "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
            "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
            "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
            "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
            "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
            "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE"]

# moby's defaultLinuxMaskedPaths (each possible CPU's thermal_throttle is added by masked_paths())
MASKED_PATHS = ["/proc/acpi", "/proc/asound", "/proc/interrupts", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/sched_debug", "/proc/scsi", "/proc/timer_list", "/proc/timer_stats",
                "/sys/devices/virtual/powercap", "/sys/firmware"]
READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]

RLIMITS = {
    "as": "RLIMIT_AS", "core": "RLIMIT_CORE", "cpu": "RLIMIT_CPU", "data": "RLIMIT_DATA",
    "fsize": "RLIMIT_FSIZE", "locks": "RLIMIT_LOCKS", "memlock": "RLIMIT_MEMLOCK", "msgqueue": "RLIMIT_MSGQUEUE",
    "nice": "RLIMIT_NICE", "nofile": "RLIMIT_NOFILE", "nproc": "RLIMIT_NPROC", "rss": "RLIMIT_RSS",
    "rtprio": "RLIMIT_RTPRIO", "rttime": "RLIMIT_RTTIME", "sigpending": "RLIMIT_SIGPENDING",
    "stack": "RLIMIT_STACK",
}

MIN_MEMORY = 6 * 1024 * 1024
CPU_PERIOD = 100_000


@dataclass
class Files:
    """Host-side files bind-mounted into the container."""

    hosts: str = ""
    hostname: str = ""
    resolv_conf: str = ""


@dataclass
class User:
    uid: int
    gid: int
    additional_gids: list[int] = field(default_factory=list)
    home: str = "/"


def cgroup_version() -> str:
    return "2" if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else "1"


def cgroups_path(container_id: str, parent: str = "") -> str:
    if cgroupdriver.current() == cgroupdriver.SYSTEMD:
        return cgroupdriver.systemd_cgroups_path(container_id, parent)
    return f"{parent or CGROUP_PARENT}/{container_id}"


def normalize_cap(name: str) -> str:
    upper = name.strip().upper()
    if upper == "ALL":
        return "ALL"
    cap = upper if upper.startswith("CAP_") else "CAP_" + upper
    if cap not in ALL_CAPS:
        raise errors.InvalidParameter(f"unknown capability: \"{name}\"")
    return cap


def available_caps() -> list[str]:
    """ALL_CAPS (in kernel number order) less those outside the daemon's bounding set, as dockerd's
    GetAllCapabilities: asking runc for a capability the daemon lacks fails the start."""
    try:
        with open("/proc/self/status") as f:
            bounding = int(next(line.split()[1] for line in f if line.startswith("CapBnd:")), 16)
    except (OSError, StopIteration, ValueError):
        return list(ALL_CAPS)
    return [cap for number, cap in enumerate(ALL_CAPS) if bounding >> number & 1]


def capabilities(host_config: dict[str, Any]) -> list[str]:
    """dockerd's TweakCapabilities: defaults, then adds, then drops (ALL allowed in both)."""
    if host_config.get("Privileged"):
        return available_caps()
    adds = [normalize_cap(c) for c in host_config.get("CapAdd") or []]
    drops = [normalize_cap(c) for c in host_config.get("CapDrop") or []]
    caps = list(DEFAULT_CAPS)
    if "ALL" in adds:
        caps = available_caps()
    else:
        caps += [c for c in adds if c not in caps]
    if "ALL" in drops:
        caps = [c for c in adds if c != "ALL"] if "ALL" not in adds else []
    else:
        caps = [c for c in caps if c not in drops]
    return caps


def daemon_rlimit(name: str) -> tuple[int, int]:
    return resource.getrlimit(getattr(resource, RLIMITS[name]))


def ulimits(host_config: dict[str, Any]) -> list[dict[str, Any]]:
    """Only what the user asked for; the rest is inherited from the daemon, as with dockerd."""
    out = []
    for u in host_config.get("Ulimits") or []:
        name = str(u.get("Name", ""))
        if name not in RLIMITS:
            raise errors.InvalidParameter(f"invalid ulimit type: {name}")
        soft, hard = int(u.get("Soft", 0)), int(u.get("Hard", 0))
        if soft > hard:
            raise errors.InvalidParameter(
                f"invalid ulimit {name}: soft limit {soft} is greater than hard limit {hard}")
        _, daemon_hard = daemon_rlimit(name)
        if daemon_hard != resource.RLIM_INFINITY and hard > daemon_hard:
            raise errors.InvalidParameter(
                f"invalid ulimit {name}={soft}:{hard}: the hard limit exceeds the daemon's own hard limit "
                f"({daemon_hard}); raise the daemon's limit or ask for at most {daemon_hard}")
        out.append({"type": RLIMITS[name], "soft": soft, "hard": hard})
    return out


# dockerd's isCpusetListAvailable: 8192 is Linux's usual CPU maximum, more only if the host has more
CPUSET_MAXIMUM = 8192


def parse_uint_list(value: str, maximum: int = 0) -> int:
    """moby's parsers.ParseUintList as a bit mask (bit N set: N listed): `7`, `1-6`, `0,3-4,7`.

    Every number is checked against ``maximum`` (when non-zero) before anything is set, and a
    range costs one shift however wide, so no input makes it allocate more than maximum bits.
    """
    if not value:
        return 0
    mask = 0
    for part in value.split(","):
        lo_text, sep, hi_text = part.partition("-")
        lo, hi = _atoi(lo_text, value), _atoi(hi_text if sep else lo_text, value)
        if hi < lo:
            raise ValueError(f"invalid format: {value}")
        if maximum and hi > maximum:
            raise ValueError(f"value of out range, maximum is {maximum}")
        mask |= ((1 << (hi - lo + 1)) - 1) << lo
    return mask


def _atoi(text: str, value: str) -> int:
    """Go's strconv.Atoi on a list item: `+` allowed, then at most 19 decimal digits (a `-` split the item)."""
    digits = text[1:] if text[:1] in "+-" else text
    if not digits.isascii() or not digits.isdigit() or len(digits) > 19:
        raise ValueError(f"invalid format: {value}")
    return int(text)


def _check_cpuset(value: str, available_text: str, key: str) -> None:
    """dockerd's verifyPlatformContainerResources for CpusetCpus / CpusetMems (400 with its wording)."""
    what, noun = ("cpus", "CPUs") if key == "CpusetCpus" else ("mems", "memory nodes")
    try:
        available = parse_uint_list(available_text)
    except ValueError:
        available = 0
    maximum = max(CPUSET_MAXIMUM, available.bit_length() - 1)
    try:
        wanted = parse_uint_list(value, maximum)
    except ValueError as e:
        raise errors.InvalidParameter(f"Invalid value {value} for cpuset {what}: {e}") from None
    if wanted & ~available:
        raise errors.InvalidParameter(
            f"Requested {noun} are not available - requested {value}, available: {available_text}")


def masked_paths() -> list[str]:
    """MASKED_PATHS and, as moby (GHSA-6fw5-f8r9-fgfm), every possible CPU's thermal_throttle that exists."""
    try:
        possible = parse_uint_list(_online("/sys/devices/system/cpu/possible"), CPUSET_MAXIMUM)
    except ValueError:
        possible = 0
    throttles = [f"/sys/devices/system/cpu/cpu{n}/thermal_throttle" for n in range(possible.bit_length())
                 if possible >> n & 1]
    return MASKED_PATHS + [p for p in throttles if os.path.exists(p)]


def netns_sysctls() -> dict[str, str]:
    """What dockerd 20.10 sets in a container's own network namespace (withCommonOptions): binding
    ports below 1024 and ICMP echo sockets without a capability, where the kernel has the knob."""
    out: dict[str, str] = {}
    if os.path.exists("/proc/sys/net/ipv4/ping_group_range"):
        out["net.ipv4.ping_group_range"] = "0 2147483647"
    if os.path.exists("/proc/sys/net/ipv4/ip_unprivileged_port_start"):
        out["net.ipv4.ip_unprivileged_port_start"] = "0"
    return out


def _online(path: str) -> str:
    try:
        with open(path, encoding="ascii") as f:
            return f.read().strip()
    except OSError:
        return ""


def validate_host_config(host_config: dict[str, Any]) -> None:
    """Refuse what dockerd refuses, naming the field (400)."""
    hc = host_config
    for key in ("Memory", "MemorySwap", "MemoryReservation", "NanoCpus", "CpuShares", "CpuQuota", "CpuPeriod",
                "ShmSize", "KernelMemory"):
        value = hc.get(key)
        if value is not None and not isinstance(value, int):
            raise errors.InvalidParameter(f"invalid {key}: expected an integer")
    memory = hc.get("Memory") or 0
    if memory < 0:
        raise errors.InvalidParameter(f"invalid Memory: {memory}: must be a positive value")
    if 0 < memory < MIN_MEMORY:
        raise errors.InvalidParameter("Minimum memory limit allowed is 6MB")
    swap = hc.get("MemorySwap") or 0
    if swap < -1:
        raise errors.InvalidParameter(f"invalid MemorySwap: {swap}")
    if swap > 0 and memory == 0:
        raise errors.InvalidParameter(
            "You should always set the Memory limit when using Memoryswap limit, see usage")
    if swap > 0 and swap < memory:
        raise errors.InvalidParameter("Minimum memoryswap limit should be larger than memory limit, see usage")
    if (hc.get("ShmSize") or 0) < 0:
        raise errors.InvalidParameter("SHM size can not be less than 0")
    ncpu = os.cpu_count() or 1
    nano = hc.get("NanoCpus") or 0
    if nano and (hc.get("CpuQuota") or hc.get("CpuPeriod")):
        raise errors.InvalidParameter(
            "Conflicting options: Nano CPUs and CPU Period cannot both be set")
    if nano < 0 or nano > ncpu * 1_000_000_000:
        raise errors.InvalidParameter(
            f"Range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available")
    if (hc.get("CpuShares") or 0) < 0:
        raise errors.InvalidParameter("invalid CpuShares: must be a positive value")
    if (hc.get("CpuQuota") or 0) < 0 and hc.get("CpuQuota") != -1:
        raise errors.InvalidParameter("CPU cfs quota can not be less than 1ms (i.e. 1000)")
    for key, online_file in (("CpusetCpus", "/sys/devices/system/cpu/online"),
                             ("CpusetMems", "/sys/devices/system/node/online")):
        value = hc.get(key)
        if not value:
            continue
        if not isinstance(value, str):
            raise errors.InvalidParameter(f"invalid {key}: expected a string")
        _check_cpuset(value, _online(online_file) or ("0" if key == "CpusetMems" else f"0-{ncpu - 1}"), key)
    if hc.get("UTSMode") not in (None, "", "host"):
        raise errors.InvalidParameter(f"invalid UTS mode: {hc['UTSMode']}")
    pids = hc.get("PidsLimit")
    if pids is not None and not isinstance(pids, int):
        raise errors.InvalidParameter("invalid PidsLimit: expected an integer")
    capabilities(hc)
    ulimits(hc)
    oom = hc.get("OomScoreAdj") or 0
    if not -1000 <= oom <= 1000:
        raise errors.InvalidParameter(f"Invalid value {oom}, range for oom score adj is [-1000, 1000]")
    secopts.parse(hc)
    devices.validate(hc)
    for key in ("MaskedPaths", "ReadonlyPaths"):
        paths = hc.get(key)
        if paths is not None and (not isinstance(paths, list) or
                                  not all(isinstance(p, str) and p.startswith("/") for p in paths)):
            raise errors.InvalidParameter(f"invalid {key}: expected a list of absolute paths")


def command(config: dict[str, Any], image_config: dict[str, Any]) -> list[str]:
    """dockerd's merge of Entrypoint and Cmd with the image's."""
    entrypoint = config.get("Entrypoint")
    cmd = config.get("Cmd")
    if isinstance(entrypoint, str):
        entrypoint = [entrypoint]
    if isinstance(cmd, str):
        cmd = [cmd]
    if not entrypoint:
        if not cmd:
            cmd = image_config.get("Cmd")
        if entrypoint is None:
            entrypoint = image_config.get("Entrypoint")
    # `--entrypoint ""` arrives as [""]: no entrypoint, and the image's Cmd is not used
    entrypoint = [a for a in entrypoint or [] if a != ""] if entrypoint == [""] else list(entrypoint or [])
    args = entrypoint + list(cmd or [])
    if not args:
        raise errors.InvalidParameter("No command specified")
    return args


def merged_env(config: dict[str, Any], image_config: dict[str, Any], hostname: str, tty: bool) -> list[str]:
    env: dict[str, str] = {}
    order: list[str] = []

    def put(item: str) -> None:
        key, _, _ = item.partition("=")
        if key not in env:
            order.append(key)
        env[key] = item

    put(f"PATH={DEFAULT_PATH}")
    put(f"HOSTNAME={hostname}")
    if tty:
        put("TERM=xterm")
    for item in image_config.get("Env") or []:
        put(item)
    for item in config.get("Env") or []:
        if "=" in item:
            put(item)
        elif item in env:  # `-e NAME` without a value and none in the environment: unset
            order.remove(item)
            del env[item]
    return [env[k] for k in order]


def _read_db(rootfs: str, name: str) -> list[list[str]]:
    # opened in the root with openat2 (storage.rootfd): a running container (exec -u, cp -a) may swap
    # /etc for a link to the host's at any moment, and the image's own links resolve as in a chroot
    # (opened O_PATH and checked first: a device node there is never opened by the daemon)
    try:
        root = rootfd.open_root(rootfs)
        try:
            node = rootfd.open_in(root, f"etc/{name}")
        finally:
            os.close(root)
        try:
            if not stat.S_ISREG(os.fstat(node).st_mode):
                return []
            fd = rootfd.reopen(node, os.O_RDONLY)
        finally:
            os.close(node)
    except OSError:
        return []
    with open(fd, encoding="utf-8", errors="replace") as f:
        return [line.rstrip("\n").split(":") for line in f if line.strip() and not line.startswith("#")]


def resolve_user(rootfs: str, spec: str, group_add: list[str] | None = None) -> User:
    """``uid[:gid]`` or ``name[:group]`` looked up in the container's /etc/passwd and /etc/group."""
    user_part, _, group_part = (spec or "").partition(":")
    passwd = _read_db(rootfs, "passwd")
    groups = _read_db(rootfs, "group")
    uid, gid, home, name = 0, 0, "/", "root"
    entry = None
    if user_part:
        for row in passwd:
            if len(row) >= 6 and (row[0] == user_part or (user_part.isdigit() and row[2] == user_part)):
                entry = row
                break
        if entry is not None:
            name, uid, gid, home = entry[0], int(entry[2]), int(entry[3]), entry[5] or "/"
        elif user_part.isdigit():
            uid, gid, name = int(user_part), 0, ""  # unknown numeric uid: group root, as dockerd
        else:
            raise errors.InvalidParameter(
                f"unable to find user {user_part}: no matching entries in passwd file")
    else:
        for row in passwd:
            if len(row) >= 6 and row[2] == "0":
                home = row[5] or "/"
                break
    if group_part:
        if group_part.isdigit():
            gid = int(group_part)
        else:
            for row in groups:
                if len(row) >= 3 and row[0] == group_part:
                    gid = int(row[2])
                    break
            else:
                raise errors.InvalidParameter(
                    f"unable to find group {group_part}: no matching entries in group file")
    extra: list[int] = []
    if name:
        for row in groups:
            if len(row) >= 4 and name in row[3].split(",") and int(row[2]) != gid:
                extra.append(int(row[2]))
    for g in group_add or []:
        if g.isdigit():
            extra.append(int(g))
            continue
        for row in groups:
            if len(row) >= 3 and row[0] == g:
                extra.append(int(row[2]))
                break
        else:
            raise errors.InvalidParameter(f"Unable to find group {g}: no matching entries in group file")
    return User(uid, gid, sorted(set(extra)), home)


def _swap_accounting() -> bool:
    if cgroup_version() == "2":
        return True
    return os.path.exists("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes")


def resources(host_config: dict[str, Any]) -> dict[str, Any]:
    hc = host_config
    res: dict[str, Any] = {}
    memory: dict[str, Any] = {}
    if hc.get("Memory"):
        memory["limit"] = hc["Memory"]
        swap = hc.get("MemorySwap") or 0
        if _swap_accounting():
            if swap == 0:
                memory["swap"] = hc["Memory"] * 2  # dockerd's default: as much swap as memory
            elif swap > 0 or swap == -1:
                memory["swap"] = swap
    if hc.get("MemoryReservation"):
        memory["reservation"] = hc["MemoryReservation"]
    if hc.get("MemorySwappiness") is not None and hc["MemorySwappiness"] >= 0 and cgroup_version() == "1":
        memory["swappiness"] = hc["MemorySwappiness"]
    if hc.get("OomKillDisable"):
        memory["disableOOMKiller"] = True
    if memory:
        res["memory"] = memory
    cpu: dict[str, Any] = {}
    if hc.get("CpuShares"):
        cpu["shares"] = hc["CpuShares"]
    if hc.get("NanoCpus"):
        cpu["period"] = CPU_PERIOD
        cpu["quota"] = hc["NanoCpus"] * CPU_PERIOD // 1_000_000_000
    if hc.get("CpuQuota"):
        cpu["quota"] = hc["CpuQuota"]
    if hc.get("CpuPeriod"):
        cpu["period"] = hc["CpuPeriod"]
    if hc.get("CpusetCpus"):
        cpu["cpus"] = hc["CpusetCpus"]
    if hc.get("CpusetMems"):
        cpu["mems"] = hc["CpusetMems"]
    if cpu:
        res["cpu"] = cpu
    pids = hc.get("PidsLimit")
    if pids and pids > 0:
        res["pids"] = {"limit": pids}
    if hc.get("Privileged"):
        res["devices"] = [{"allow": True, "access": "rwm"}]
    else:
        res["devices"] = list(devices.DEFAULT_DEVICE_RULES)
    return res


def build(*, container_id: str, rootfs: str, image_config: dict[str, Any], config: dict[str, Any],
          host_config: dict[str, Any], files: Files | None = None, netns_path: str | None = None,
          pid_ns_path: str | None = None, ipc_ns_path: str | None = None, shm_source: str | None = None,
          uts_ns_path: str | None = None, pod_netns: bool = False, extra_mounts: list[dict[str, Any]] | None = None, arch: str | None = None) -> dict[str, Any]:
    """The whole config.json for ``runc create``.

    ``netns_path`` joins an existing network namespace (another container's,
    or one the network layer prepared); otherwise the network mode decides. ``pid_ns_path`` and
    ``ipc_ns_path`` join another container's (PidMode/IpcMode "container:"); ``shm_source`` is a host
    directory bound at /dev/shm (a shareable IPC container's, or the one it shares) in place of a tmpfs.
    ``uts_ns_path`` joins a pinned UTS namespace (a pod's); the hostname is set in it all the same.
    ``pod_netns``: ``netns_path`` is a pod's, whose sysctls were set when it was made, not per container.
    """
    validate_host_config(host_config)
    hc = host_config
    files = files or Files()
    tty = bool(config.get("Tty"))
    network_mode = hc.get("NetworkMode") or "default"
    host_net = network_mode == "host"
    host_uts = hc.get("UTSMode") == "host"
    # dockerd: a host-network container is named as the host, in a UTS namespace of its own all the same
    hostname = config.get("Hostname") or (socket.gethostname() if host_net or host_uts else container_id[:12])
    args = command(config, image_config)
    use_init = bool(hc.get("Init"))
    init = mountspec.init_binary() if use_init else None
    if use_init and not init:
        raise errors.SystemError_("docker-init (tini) is not installed on this host")
    if init:
        args = [mountspec.INIT_PATH_IN_CONTAINER, "--", *args]
    user = resolve_user(rootfs, config.get("User") or image_config.get("User") or "", hc.get("GroupAdd"))
    workdir = config.get("WorkingDir") or image_config.get("WorkingDir") or "/"
    if not workdir.startswith("/"):
        raise errors.InvalidParameter(f"the working directory '{workdir}' is invalid, it needs to be an absolute path")
    caps = capabilities(hc)
    opts = secopts.parse(hc)
    privileged = bool(hc.get("Privileged"))

    namespaces = [{"type": "pid", **({"path": pid_ns_path} if pid_ns_path else {})},
                  {"type": "ipc", **({"path": ipc_ns_path} if ipc_ns_path else {})}, {"type": "mount"}]
    if not host_uts:
        namespaces.append({"type": "uts", **({"path": uts_ns_path} if uts_ns_path else {})})
    if not host_net:
        namespaces.append({"type": "network", "path": netns_path} if netns_path else {"type": "network"})
    if cgroup_version() == "2" and (hc.get("CgroupnsMode") or "private") == "private":
        namespaces.append({"type": "cgroup"})
    if hc.get("PidMode") == "host":
        namespaces = [n for n in namespaces if n["type"] != "pid"]
    if hc.get("IpcMode") == "host":
        namespaces = [n for n in namespaces if n["type"] != "ipc"]

    process: dict[str, Any] = {
        "terminal": tty,
        "user": {"uid": user.uid, "gid": user.gid, **({"additionalGids": user.additional_gids}
                                                       if user.additional_gids else {})},
        "args": args,
        "env": merged_env(config, image_config, hostname, tty),
        "cwd": workdir,
        "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
        "noNewPrivileges": opts.no_new_privileges,
    }
    apparmor = lsm.apparmor_profile(opts.apparmor, privileged)
    if apparmor:
        process["apparmorProfile"] = apparmor
    rlimits = ulimits(hc)
    if rlimits:
        process["rlimits"] = rlimits
    if hc.get("OomScoreAdj"):
        process["oomScoreAdj"] = hc["OomScoreAdj"]
    if tty and hc.get("ConsoleSize") and all(hc["ConsoleSize"]):
        height, width = hc["ConsoleSize"]
        process["consoleSize"] = {"height": height, "width": width}

    linux: dict[str, Any] = {
        "namespaces": namespaces,
        "cgroupsPath": cgroups_path(container_id, hc.get("CgroupParent") or ""),
        "resources": resources(hc),
    }
    if privileged:
        linux["devices"] = devices.host_devices()
    else:
        # as dockerd: a privileged container has every host device already, so Devices apply to others only
        user_devs, user_rules = devices.user_devices(hc)
        linux["devices"] = [
            {"path": path, "type": kind, "major": major, "minor": minor, "fileMode": 0o666, "uid": 0, "gid": 0}
            for kind, major, minor, path in devices.DEFAULT_DEVICES] + user_devs
        linux["resources"]["devices"] += user_rules
        unconfined_paths = opts.unconfined_paths
        masked, readonly = hc.get("MaskedPaths"), hc.get("ReadonlyPaths")
        linux["maskedPaths"] = [] if unconfined_paths else masked_paths() if masked is None else list(masked)
        linux["readonlyPaths"] = [] if unconfined_paths else list(READONLY_PATHS if readonly is None else readonly)
        if opts.seccomp == "":
            linux["seccomp"] = seccomp_default.profile(set(caps), arch)
        elif opts.seccomp != "unconfined":
            custom = seccomp.render(seccomp.load(opts.seccomp), set(caps), arch)
            if custom is not None:
                linux["seccomp"] = custom
    own_netns = not host_net and not network_mode.startswith("container:") and not pod_netns
    sysctls = {**(netns_sysctls() if own_netns else {}), **(hc.get("Sysctls") or {})}
    if config.get("Domainname") and not host_uts:
        # as dockerd: the NIS domain name through its sysctl, which runc 1.1 applies (no spec field needed)
        sysctls.setdefault("kernel.domainname", config["Domainname"])
    if sysctls:
        linux["sysctl"] = sysctls

    return {
        "ociVersion": "1.0.2-dev",
        "process": process,
        "root": {"path": rootfs, "readonly": bool(hc.get("ReadonlyRootfs"))},
        **({} if host_uts else {"hostname": hostname}),
        "mounts": mountspec.oci_mounts(hc, hc.get("ShmSize") or model.DEFAULT_SHM_SIZE, files.resolv_conf, files.hostname,
                                        files.hosts, init, extra_mounts or [], shm_source),
        "linux": linux,
    }
