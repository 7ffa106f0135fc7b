"""Exec without runc: the daemon forks, joins the container's namespaces and cgroups, and execs.

``runc exec`` starts two Go programs (runc, then ``runc init``, cloned into a
memfd first) and costs 30-80 ms here, more than a whole ``docker exec`` may.
This is what runc's setns path does, in the same order: join the namespaces
runc recorded in its state (the init process's, checked by start time), fork
into the pid namespace, join every cgroup, set rlimits and oom_score_adj,
load the container's seccomp filter (compiled with libseccomp from the same
OCI profile, before dropping capabilities unless no_new_privs is set), drop
the bounding set, switch user keeping only the spec's capabilities, chdir and
exec. Failures are reported in runc's words, as JSON log lines.

Anything this does not do (a TTY, user namespaces, AppArmor or SELinux
labels, seccomp flags or notify sockets) is left to runc: ``prepare`` says None.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import json
import os
import resource
import signal
import stat
import threading
from dataclasses import dataclass
from typing import Any

from ..runtime import spec as specmod

_libc = ctypes.CDLL(None, use_errno=True)
_setns = _libc.setns
_prctl = _libc.prctl
_prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
_capset = _libc.capset

PR_SET_KEEPCAPS, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, PR_CAP_AMBIENT = 8, 24, 38, 22, 47
PR_CAP_AMBIENT_RAISE, SECCOMP_MODE_FILTER = 2, 2
CAP_V3 = 0x20080522

# runc's state names the namespaces by clone flag
NS_ORDER = ["NEWIPC", "NEWUTS", "NEWNET", "NEWPID", "NEWCGROUP", "NEWNS"]
RLIMITS = {f"RLIMIT_{n}": getattr(resource, f"RLIMIT_{n}") for n in (
    "AS", "CORE", "CPU", "DATA", "FSIZE", "LOCKS", "MEMLOCK", "MSGQUEUE", "NICE", "NOFILE", "NPROC", "RSS",
    "RTPRIO", "RTTIME", "SIGPENDING", "STACK") if hasattr(resource, f"RLIMIT_{n}")}

SCMP_ACTIONS = {"SCMP_ACT_KILL": 0x00000000, "SCMP_ACT_KILL_THREAD": 0x00000000,
                "SCMP_ACT_KILL_PROCESS": 0x80000000, "SCMP_ACT_TRAP": 0x00030000, "SCMP_ACT_ALLOW": 0x7FFF0000,
                "SCMP_ACT_LOG": 0x7FFC0000}
SCMP_ERRNO, SCMP_TRACE = 0x00050000, 0x7FF00000
SCMP_OPS = {"SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4, "SCMP_CMP_GE": 5,
            "SCMP_CMP_GT": 6, "SCMP_CMP_MASKED_EQ": 7}
SCMP_FLTATR_CTL_NNP = 3


class _ArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int), ("datum_a", ctypes.c_uint64),
                ("datum_b", ctypes.c_uint64)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def _libseccomp() -> Any:
    name = ctypes.util.find_library("seccomp")
    if not name:
        return None
    lib = ctypes.CDLL(name, use_errno=True)
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    lib.seccomp_arch_resolve_name.restype = ctypes.c_uint32
    lib.seccomp_arch_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_arch_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint,
                                           ctypes.POINTER(_ArgCmp)]
    lib.seccomp_attr_set.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32]
    lib.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
    return lib


_seccomp_lib: Any = None
_seccomp_lock = threading.Lock()


class Unsupported(Exception):
    """Something only runc does: the exec goes to runc."""


def _action(name: str, errno_ret: int | None) -> int:
    if name == "SCMP_ACT_ERRNO":
        return SCMP_ERRNO | ((errno.EPERM if errno_ret is None else errno_ret) & 0xFFFF)
    if name == "SCMP_ACT_TRACE":
        return SCMP_TRACE | ((errno.EPERM if errno_ret is None else errno_ret) & 0xFFFF)
    if name not in SCMP_ACTIONS:
        raise Unsupported(f"seccomp action {name}")
    return SCMP_ACTIONS[name]


def compile_seccomp(profile: dict[str, Any]) -> bytes:
    """The BPF program runc would load for this OCI profile (rules as runc adds them)."""
    global _seccomp_lib
    if profile.get("flags") or profile.get("listenerPath"):
        raise Unsupported("seccomp flags or notify listener")
    with _seccomp_lock:
        if _seccomp_lib is None:
            _seccomp_lib = _libseccomp() or False
    lib = _seccomp_lib
    if not lib:
        raise Unsupported("no libseccomp")
    default = _action(profile["defaultAction"], profile.get("defaultErrnoRet"))
    ctx = lib.seccomp_init(default)
    if not ctx:
        raise Unsupported("seccomp_init failed")
    try:
        if lib.seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0) != 0:
            raise Unsupported("seccomp attribute")
        for arch in profile.get("architectures") or []:
            token = lib.seccomp_arch_resolve_name(arch.removeprefix("SCMP_ARCH_").lower().encode())
            if not token:
                raise Unsupported(f"seccomp arch {arch}")
            rc = lib.seccomp_arch_add(ctx, token)
            if rc not in (0, -errno.EEXIST):
                raise Unsupported(f"seccomp arch {arch}: {rc}")
        for rule in profile.get("syscalls") or []:
            action = _action(rule["action"], rule.get("errnoRet"))
            if action == default:
                continue  # as runc: a rule that does what the default does is skipped
            args = rule.get("args") or []
            conds = [_ArgCmp(a["index"], SCMP_OPS[a["op"]], a.get("value", 0), a.get("valueTwo", 0)) for a in args]
            indexes = [a["index"] for a in args]
            # as runc: conditions on one argument index are alternatives, each a rule of its own
            groups = [[c] for c in conds] if len(set(indexes)) != len(indexes) else [conds]
            for name in rule.get("names") or []:
                nr = lib.seccomp_syscall_resolve_name(name.encode())
                if nr < 0:
                    continue  # unknown to this libseccomp: runc skips it too
                for group in groups:
                    arr = (_ArgCmp * len(group))(*group) if group else None
                    rc = lib.seccomp_rule_add_array(ctx, action, nr, len(group), arr)
                    if rc != 0:
                        raise Unsupported(f"seccomp rule for {name}: {rc}")
        fd = os.memfd_create("seccomp-bpf", os.MFD_CLOEXEC)
        try:
            if lib.seccomp_export_bpf(ctx, fd) != 0:
                raise Unsupported("seccomp export")
            os.lseek(fd, 0, os.SEEK_SET)
            chunks = []
            while data := os.read(fd, 65536):
                chunks.append(data)
            return b"".join(chunks)
        finally:
            os.close(fd)
    finally:
        lib.seccomp_release(ctx)


@dataclass
class Target:
    """What a container's execs share, read once from runc's state."""

    init_pid: int
    init_start: str
    namespaces: list[str]  # /proc/<init>/ns/* paths, in joining order
    cgroup_procs: list[str]
    bpf: bytes | None


def _start_time(pid: int) -> str:
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        return f.read().rsplit(")", 1)[1].split()[19]


def load_target(state_path: str) -> Target:
    with open(state_path, encoding="utf-8") as f:
        state = json.load(f)
    config = state.get("config") or {}
    if config.get("uid_mappings") or config.get("apparmor_profile") or config.get("process_label") or \
            state.get("rootless"):
        raise Unsupported("user namespace or LSM label")
    wanted = {ns.get("type") for ns in config.get("namespaces") or []}
    if "NEWUSER" in wanted:
        raise Unsupported("user namespace")
    paths = state.get("namespace_paths") or {}
    namespaces = [paths[t] for t in NS_ORDER if t in wanted and t in paths]
    cgroups = sorted({os.path.join(p, "cgroup.procs") for p in (state.get("cgroup_paths") or {}).values()})
    return Target(int(state["init_process_pid"]), str(state["init_process_start"]), namespaces, cgroups, None)


@dataclass
class Prepared:
    target: Target
    process: dict[str, Any]
    bpf: bytes | None
    drop_bounding: list[int]
    caps: tuple[int, int, int]  # effective, permitted, inheritable
    ambient: list[int]


def _mask(names: list[str] | None) -> int:
    out = 0
    for n in names or []:
        out |= 1 << specmod.ALL_CAPS.index(n)
    return out


def prepare(target: Target, process: dict[str, Any], seccomp: dict[str, Any] | None) -> Prepared:
    if process.get("terminal") or process.get("apparmorProfile") or process.get("selinuxLabel"):
        raise Unsupported("terminal or LSM label")
    try:
        if _start_time(target.init_pid) != target.init_start:
            raise Unsupported("init process gone")
    except OSError:
        raise Unsupported("init process gone") from None
    if seccomp is not None and target.bpf is None:
        target.bpf = compile_seccomp(seccomp)
    caps = process.get("capabilities") or {}
    with open("/proc/sys/kernel/cap_last_cap", encoding="ascii") as f:
        last = int(f.read())
    bounding = _mask(caps.get("bounding"))
    return Prepared(target, process, target.bpf if seccomp is not None else None,
                    [c for c in range(last + 1) if not bounding >> c & 1],
                    (_mask(caps.get("effective")), _mask(caps.get("permitted")), _mask(caps.get("inheritable"))),
                    [specmod.ALL_CAPS.index(n) for n in caps.get("ambient") or []])


class Process:
    """The forked runner (it waits for the exec'd process and exits with its status), Popen-like."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._lock = threading.Lock()

    def _reap(self, flags: int) -> int | None:
        with self._lock:
            if self.returncode is not None:
                return self.returncode
            try:
                pid, status = os.waitpid(self.pid, flags)
            except ChildProcessError:
                self.returncode = 255
                return self.returncode
            if pid == 0:
                return None
            self.returncode = os.waitstatus_to_exitcode(status)
            return self.returncode

    def wait(self) -> int:
        code = self._reap(0)
        assert code is not None
        return code

    def poll(self) -> int | None:
        return self._reap(os.WNOHANG)


def spawn(p: Prepared, stdin: int, stdout: int, stderr: int, log_path: str) -> tuple[Process, int]:
    """Fork the runner; returns it and the exec'd process's host pid (0 if it never started)."""
    ns_fds = [os.open(path, os.O_RDONLY | os.O_CLOEXEC) for path in p.target.namespaces]
    cg_fds = [os.open(path, os.O_WRONLY | os.O_CLOEXEC) for path in p.target.cgroup_procs]
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    pid_r, pid_w = os.pipe2(os.O_CLOEXEC)
    fprog = None
    if p.bpf:
        buf = ctypes.create_string_buffer(p.bpf, len(p.bpf))
        fprog = (_SockFprog(len(p.bpf) // 8, ctypes.cast(buf, ctypes.c_void_p)), buf)
    try:
        runner = os.fork()
        if runner == 0:
            _runner(p, stdin, stdout, stderr, ns_fds, cg_fds, log_fd, pid_w, fprog)  # never returns
        os.close(pid_w)
        pid_w = -1
        data = b""
        while chunk := os.read(pid_r, 32):
            data += chunk
        return Process(runner), int(data or 0)
    finally:
        for fd in [*ns_fds, *cg_fds, log_fd, pid_r] + ([pid_w] if pid_w >= 0 else []):
            os.close(fd)


def _log(fd: int, msg: str) -> None:
    os.write(fd, (json.dumps({"level": "error", "msg": msg}, separators=(",", ":")) + "\n").encode())


def _runner(p: Prepared, stdin: int, stdout: int, stderr: int, ns_fds: list[int], cg_fds: list[int], log_fd: int,
            pid_w: int, fprog: Any) -> None:
    """In the forked child: join, fork the process, put it in the cgroups, wait for it."""
    code = 1
    try:
        _reset_signals()
        os.setsid()
        for target, fd in ((0, stdin), (1, stdout), (2, stderr)):
            os.dup2(fd, target)
        # the daemon's sockets must not live on in this copy of it (clients would never see them close)
        _close_except({0, 1, 2, log_fd, pid_w, *ns_fds, *cg_fds})
        for fd in ns_fds:
            if _setns(fd, 0) != 0:
                raise OSError(ctypes.get_errno(), f"setns: {os.strerror(ctypes.get_errno())}")
            os.close(fd)
        sync_r, sync_w = os.pipe()
        child = os.fork()
        if child == 0:
            os.close(sync_w)
            _child(p, sync_r, log_fd, fprog)
        os.close(sync_r)
        for fd in cg_fds:
            os.write(fd, str(child).encode())
            os.close(fd)
        os.write(pid_w, str(child).encode())
        os.close(pid_w)
        os.close(sync_w)  # the process may go on
        for fd in (0, 1, 2):
            os.close(fd)  # the process's stdio: the daemon sees their end when the process closes them
        _, status = os.waitpid(child, 0)
        code = os.waitstatus_to_exitcode(status)
        code = 128 - code if code < 0 else code  # killed by a signal: runc says 128+signal too
    except BaseException as e:  # noqa: BLE001 - nothing may escape a forked child
        try:
            _log(log_fd, f"runc exec failed: {e}")
        except OSError:
            pass
    finally:
        os._exit(code)


def _child(p: Prepared, sync_r: int, log_fd: int, fprog: Any) -> None:
    """In the container's pid namespace: wait to be in the cgroups, confine, exec."""
    proc = p.process
    stage = "unable to start container process"
    try:
        if os.read(sync_r, 1) != b"":
            raise OSError("runner failed")
        os.close(sync_r)
        _close_except({0, 1, 2, log_fd})
        for rl in proc.get("rlimits") or []:
            resource.setrlimit(RLIMITS[rl["type"]], (rl["soft"], rl["hard"]))
        if proc.get("oomScoreAdj") is not None:
            with open("/proc/self/oom_score_adj", "w", encoding="ascii") as f:
                f.write(str(proc["oomScoreAdj"]))
        nnp = bool(proc.get("noNewPrivileges"))
        if fprog is not None and not nnp:
            _load_seccomp(fprog)  # without no_new_privs this needs CAP_SYS_ADMIN: before the drop
        for cap in p.drop_bounding:
            if _prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
                raise OSError(ctypes.get_errno(), "drop bounding capability")
        user = proc.get("user") or {}
        _prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0)
        os.setgroups([int(g) for g in user.get("additionalGids") or []])
        os.setgid(int(user.get("gid", 0)))
        os.setuid(int(user.get("uid", 0)))
        _prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0)
        eff, perm, inh = p.caps
        data = (_CapData * 2)(_CapData(eff & 0xFFFFFFFF, perm & 0xFFFFFFFF, inh & 0xFFFFFFFF),
                              _CapData(eff >> 32, perm >> 32, inh >> 32))
        if _capset(ctypes.byref(_CapHeader(CAP_V3, 0)), data) != 0:
            raise OSError(ctypes.get_errno(), "capset")
        for cap in p.ambient:
            _prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0)
        if nnp:
            if _prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
                raise OSError(ctypes.get_errno(), "no_new_privs")
            if fprog is not None:
                _load_seccomp(fprog)
        cwd = proc.get("cwd") or "/"
        try:
            os.chdir(cwd)
        except OSError as e:
            raise RuntimeError(f'chdir to cwd ("{cwd}") set in config.json failed: {e.strerror.lower()}') from None
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in proc.get("env") or [])
        if not env.get("HOME"):
            env["HOME"] = _home(int(user.get("uid", 0)))  # as runc: from the container's /etc/passwd
        args = proc["args"]
        path = _look_path(args[0], env.get("PATH", ""))
        try:
            os.execve(path, args, env)
        except OSError as e:
            raise RuntimeError(f"exec {path}: {e.strerror.lower()}") from None
    except BaseException as e:  # noqa: BLE001 - nothing may escape a forked child
        try:
            _log(log_fd, f"exec failed: {stage}: {e}")
        except OSError:
            pass
        os._exit(255)


def _reset_signals() -> None:
    """The daemon's handlers and ignored signals are not the process's (Python ignores SIGPIPE)."""
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    try:
        signal.set_wakeup_fd(-1)
    except ValueError:
        pass
    for sig in signal.valid_signals():
        if sig not in (signal.SIGKILL, signal.SIGSTOP):
            try:
                signal.signal(sig, signal.SIG_DFL)
            except (OSError, ValueError):
                pass


def _close_except(keep: set[int]) -> None:
    low = 0
    for fd in sorted(keep):
        if fd > low:
            os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, 1 << 20)


def _home(uid: int) -> str:
    try:
        with open("/etc/passwd", encoding="utf-8", errors="replace") as f:
            for line in f:
                fields = line.rstrip("\n").split(":")
                if len(fields) >= 6 and fields[2] == str(uid):
                    return fields[5] or "/"
    except OSError:
        pass
    return "/"


def _load_seccomp(fprog: Any) -> None:
    if _prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(fprog[0]), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "loading seccomp filter")


def _look_path(name: str, path_env: str) -> str:
    """Go's exec.LookPath, which runc uses: the error texts are its."""
    if "/" in name:
        try:
            st = os.stat(name)
        except OSError as e:
            raise RuntimeError(f'exec: "{name}": stat {name}: {e.strerror.lower()}') from None
        if stat.S_ISDIR(st.st_mode) or not st.st_mode & 0o111:
            raise RuntimeError(f'exec: "{name}": permission denied')
        return name
    for d in path_env.split(":"):
        cand = os.path.join(d or ".", name)
        try:
            st = os.stat(cand)
        except OSError:
            continue
        if not stat.S_ISDIR(st.st_mode) and st.st_mode & 0o111:
            return cand
    raise RuntimeError(f'exec: "{name}": executable file not found in $PATH')
