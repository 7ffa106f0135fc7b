"""Issue 12 item 16: dockyard's default seccomp profile, masked and read-only paths and capabilities, entry by entry
against moby's (profiles/seccomp/default.json of github.com/moby/profiles, daemon/pkg/oci/defaults.go and
caps/defaults.go), with the differences dockyard accepts listed and explained; and a real AF_ALG check.
"""

from __future__ import annotations

import glob
import os
import subprocess
import tempfile

import pytest

from dockyard.runtime import seccomp_default, spec

# moby's unconditional allow list (the first rule of default.json)
MOBY_ALLOWED = set("""
    _llseek _newselect accept accept4 access adjtimex alarm bind brk cachestat capget capset chdir chmod chown
    chown32 clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 clock_gettime clock_gettime64
    clock_nanosleep clock_nanosleep_time64 close close_range connect copy_file_range creat dup dup2 dup3
    epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2 epoll_wait epoll_wait_old
    eventfd eventfd2 execve execveat exit exit_group faccessat faccessat2 fadvise64 fadvise64_64 fallocate
    fanotify_mark fchdir fchmod fchmodat fchmodat2 fchown fchown32 fchownat fcntl fcntl64 fdatasync fgetxattr
    flistxattr flock fork fremovexattr fsetxattr fstat fstat64 fstatat64 fstatfs fstatfs64 fsync ftruncate
    ftruncate64 futex futex_requeue futex_time64 futex_wait futex_waitv futex_wake futimesat get_robust_list
    get_thread_area getcpu getcwd getdents getdents64 getegid getegid32 geteuid geteuid32 getgid getgid32
    getgroups getgroups32 getitimer getpeername getpgid getpgrp getpid getppid getpriority getrandom getresgid
    getresgid32 getresuid getresuid32 getrlimit getrusage getsid getsockname getsockopt gettid gettimeofday
    getuid getuid32 getxattr getxattrat inotify_add_watch inotify_init inotify_init1 inotify_rm_watch
    io_cancel io_destroy io_getevents io_pgetevents io_pgetevents_time64 io_setup io_submit ioctl ioprio_get
    ioprio_set ipc kill landlock_add_rule landlock_create_ruleset landlock_restrict_self lchown lchown32
    lgetxattr link linkat listen listmount listxattr listxattrat llistxattr lremovexattr lseek lsetxattr lstat
    lstat64 madvise map_shadow_stack membarrier memfd_create memfd_secret mincore mkdir mkdirat mknod mknodat
    mlock mlock2 mlockall mmap mmap2 mprotect mq_getsetattr mq_notify mq_open mq_timedreceive
    mq_timedreceive_time64 mq_timedsend mq_timedsend_time64 mq_unlink mremap mseal msgctl msgget msgrcv msgsnd
    msync munlock munlockall munmap name_to_handle_at nanosleep newfstatat open openat openat2 pause
    pidfd_open pidfd_send_signal pipe pipe2 pkey_alloc pkey_free pkey_mprotect poll ppoll ppoll_time64 prctl
    pread64 preadv preadv2 prlimit64 process_mrelease pselect6 pselect6_time64 pwrite64 pwritev pwritev2 read
    readahead readlink readlinkat readv recv recvfrom recvmmsg recvmmsg_time64 recvmsg remap_file_pages
    removexattr removexattrat rename renameat renameat2 restart_syscall riscv_hwprobe rmdir rseq rt_sigaction
    rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend rt_sigtimedwait
    rt_sigtimedwait_time64 rt_tgsigqueueinfo sched_get_priority_max sched_get_priority_min sched_getaffinity
    sched_getattr sched_getparam sched_getscheduler sched_rr_get_interval sched_rr_get_interval_time64
    sched_setaffinity sched_setattr sched_setparam sched_setscheduler sched_yield seccomp select semctl semget
    semop semtimedop semtimedop_time64 send sendfile sendfile64 sendmmsg sendmsg sendto set_robust_list
    set_thread_area set_tid_address setfsgid setfsgid32 setfsuid setfsuid32 setgid setgid32 setgroups
    setgroups32 setitimer setpgid setpriority setregid setregid32 setresgid setresgid32 setresuid setresuid32
    setreuid setreuid32 setrlimit setsid setsockopt setuid setuid32 setxattr setxattrat shmat shmctl shmdt
    shmget shutdown sigaltstack signalfd signalfd4 sigprocmask sigreturn socketcall socketpair splice stat
    stat64 statfs statfs64 statmount statx symlink symlinkat sync sync_file_range syncfs sysinfo tee tgkill
    time timer_create timer_delete timer_getoverrun timer_gettime timer_gettime64 timer_settime
    timer_settime64 timerfd_create timerfd_gettime timerfd_gettime64 timerfd_settime timerfd_settime64 times
    tkill truncate truncate64 ugetrlimit umask uname unlink unlinkat uretprobe utime utimensat
    utimensat_time64 utimes vfork vmsplice wait4 waitid waitpid write writev
""".split())
# what moby adds for a default container on amd64 (no extra caps, kernel >= 4.8)
MOBY_AMD64_EXTRA = {"arch_prctl", "modify_ldt", "process_vm_readv", "process_vm_writev", "ptrace", "chroot"}
# socket: every family but AF_ALG (38, CVE-2026-31431) and AF_VSOCK (40), as three rules
MOBY_SOCKET_RULES = [("SCMP_CMP_LT", 38), ("SCMP_CMP_EQ", 39), ("SCMP_CMP_GT", 40)]
MOBY_PERSONALITY = {0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF}
MOBY_CLONE_MASK = 2114060288
MOBY_MASKED = ["/proc/acpi", "/proc/asound", "/proc/interrupts", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
               "/proc/sched_debug", "/proc/scsi", "/proc/timer_list", "/proc/timer_stats",
               "/sys/devices/virtual/powercap", "/sys/firmware"]
MOBY_READONLY = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
MOBY_CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
             "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL",
             "CAP_AUDIT_WRITE"]
# moby's rules that need a capability (CAP_SYS_ADMIN also unlocks clone/clone3 without their filters)
MOBY_BY_CAP = {
    "CAP_DAC_READ_SEARCH": {"open_by_handle_at"},
    "CAP_SYS_ADMIN": {"bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick",
                      "lookup_dcookie", "lsm_get_self_attr", "lsm_list_modules", "lsm_set_self_attr", "mount",
                      "mount_setattr", "move_mount", "open_tree", "perf_event_open", "quotactl", "quotactl_fd",
                      "setdomainname", "sethostname", "setns", "syslog", "umount", "umount2", "unshare"},
    "CAP_SYS_BOOT": {"reboot"},
    "CAP_SYS_MODULE": {"delete_module", "init_module", "finit_module"},
    "CAP_SYS_PACCT": {"acct"},
    "CAP_SYS_PTRACE": {"kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev", "ptrace"},
    "CAP_SYS_RAWIO": {"iopl", "ioperm"},
    "CAP_SYS_TIME": {"settimeofday", "stime", "clock_settime", "clock_settime64"},
    "CAP_SYS_TTY_CONFIG": {"vhangup"},
    "CAP_SYS_NICE": {"get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"},
    "CAP_SYSLOG": {"syslog"},
    "CAP_BPF": {"bpf"},
    "CAP_PERFMON": {"perf_event_open"},
}

# Differences dockyard accepts, each with its reason. Empty: none today.
ACCEPTED_EXTRA_ALLOWED: set[str] = set()
ACCEPTED_MISSING_ALLOWED: set[str] = set()


def _plain_allowed(profile: dict) -> set[str]:
    return {n for r in profile["syscalls"] if r["action"] == "SCMP_ACT_ALLOW" and not r.get("args")
            for n in r["names"]}


def test_default_allow_list_equals_mobys() -> None:
    profile = seccomp_default.profile(set(spec.DEFAULT_CAPS), "amd64")
    plain = _plain_allowed(profile)
    expected = MOBY_ALLOWED | MOBY_AMD64_EXTRA
    assert plain - expected == ACCEPTED_EXTRA_ALLOWED
    assert expected - plain == ACCEPTED_MISSING_ALLOWED
    assert profile["defaultAction"] == "SCMP_ACT_ERRNO" and profile["defaultErrnoRet"] == 1
    assert profile["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]


def test_default_argument_rules_equal_mobys() -> None:
    profile = seccomp_default.profile(set(spec.DEFAULT_CAPS), "amd64")
    by_name: dict[str, list[dict]] = {}
    for r in profile["syscalls"]:
        if r.get("args") or r["action"] != "SCMP_ACT_ALLOW":
            for n in r["names"]:
                by_name.setdefault(n, []).append(r)
    assert sorted((r["args"][0]["op"], r["args"][0]["value"]) for r in by_name.pop("socket")) == \
        sorted(MOBY_SOCKET_RULES)
    assert {r["args"][0]["value"] for r in by_name.pop("personality")} == MOBY_PERSONALITY
    (clone,) = by_name.pop("clone")
    assert clone["args"] == [{"index": 0, "value": MOBY_CLONE_MASK, "op": "SCMP_CMP_MASKED_EQ"}]
    (clone3,) = by_name.pop("clone3")
    assert clone3["action"] == "SCMP_ACT_ERRNO" and clone3["errnoRet"] == 38
    assert not by_name, by_name


@pytest.mark.parametrize("cap", sorted(MOBY_BY_CAP))
def test_capability_rules_equal_mobys(cap: str) -> None:
    base = _plain_allowed(seccomp_default.profile(set(spec.DEFAULT_CAPS), "amd64"))
    more = _plain_allowed(seccomp_default.profile(set(spec.DEFAULT_CAPS) | {cap}, "amd64"))
    assert more - base == MOBY_BY_CAP[cap] - base


def test_masked_readonly_paths_and_caps_equal_mobys() -> None:
    throttles = [p for p in spec.masked_paths() if p.endswith("/thermal_throttle")]
    assert spec.masked_paths() == MOBY_MASKED + throttles
    # moby masks each possible CPU's thermal_throttle directory that exists (GHSA-6fw5-f8r9-fgfm)
    found = glob.glob("/sys/devices/system/cpu/cpu[0-9]*/thermal_throttle")
    assert throttles == sorted(found, key=lambda p: int(p.split("/")[5][3:]))
    assert spec.READONLY_PATHS == MOBY_READONLY
    assert spec.DEFAULT_CAPS == MOBY_CAPS


_AF_ALG = r"""
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
int main(void) {
    int fd = socket(38 /* AF_ALG */, SOCK_SEQPACKET, 0);
    if (fd < 0) { printf("%s\n", errno == EPERM ? "EPERM" : strerror(errno)); return 1; }
    printf("OPEN\n");
    return 0;
}
"""


@pytest.fixture(scope="module")
def af_alg_binary() -> str:
    d = tempfile.mkdtemp(prefix="dyafalg")
    with open(os.path.join(d, "afalg.c"), "w") as f:
        f.write(_AF_ALG)
    subprocess.run(["gcc", "-O2", "-static", "-o", os.path.join(d, "afalg"), os.path.join(d, "afalg.c")],
                   check=True, capture_output=True)
    return os.path.join(d, "afalg")


def test_af_alg_socket_refused_in_a_default_container(d, af_alg_binary) -> None:
    res = d.cli("run", "--rm", "-v", f"{af_alg_binary}:/afalg:ro", "busybox", "/afalg", check=False)
    assert res.stdout_text.strip() == "EPERM"
    # without the profile the kernel answers for itself (open, or EAFNOSUPPORT without the module): never EPERM
    res = d.cli("run", "--rm", "--security-opt", "seccomp=unconfined", "-v", f"{af_alg_binary}:/afalg:ro", "busybox",
                "/afalg", check=False)
    assert res.stdout_text.strip() != "EPERM"
