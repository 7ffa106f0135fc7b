"""dockerd's default seccomp profile, as data, and its rendering for a container.

Equivalent in effect to moby's profiles/seccomp/default.json: everything not
listed fails with EPERM; syscalls that need a capability are allowed only when
the container holds it (so --cap-add SYS_ADMIN also opens mount/unshare, as
with dockerd); clone may not create namespaces without CAP_SYS_ADMIN and
clone3 answers ENOSYS so that libc falls back to clone. Syscall names unknown
to the host's libseccomp are skipped by runc.
"""

from __future__ import annotations

import platform
from typing import Any

# Allowed for every container.
ALLOWED = """
    _llseek _newselect accept accept4 access adjtimex alarm bind brk cachestat capget capset chdir chmod
    chown chown32 clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 clock_gettime
    clock_gettime64 clock_nanosleep clock_nanosleep_time64 close close_range connect copy_file_range creat
    dup dup2 dup3 epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2 epoll_wait
    epoll_wait_old eventfd eventfd2 execve execveat exit exit_group faccessat faccessat2 fadvise64
    fadvise64_64 fallocate fanotify_mark fchdir fchmod fchmodat fchmodat2 fchown fchown32 fchownat fcntl
    fcntl64 fdatasync fgetxattr flistxattr flock fork fremovexattr fsetxattr fstat fstat64 fstatat64 fstatfs
    fstatfs64 fsync ftruncate ftruncate64 futex futex_requeue futex_time64 futex_wait futex_waitv futex_wake
    futimesat get_robust_list get_thread_area getcpu getcwd getdents getdents64 getegid getegid32 geteuid
    geteuid32 getgid getgid32 getgroups getgroups32 getitimer getpeername getpgid getpgrp getpid getppid
    getpriority getrandom getresgid getresgid32 getresuid getresuid32 getrlimit getrusage getsid getsockname
    getsockopt gettid gettimeofday getuid getuid32 getxattr inotify_add_watch inotify_init inotify_init1
    inotify_rm_watch io_cancel io_destroy io_getevents io_setup io_submit ioctl ioprio_get ioprio_set ipc
    kill landlock_add_rule landlock_create_ruleset landlock_restrict_self lchown lchown32 lgetxattr link
    linkat listen listxattr llistxattr lremovexattr lseek lsetxattr lstat lstat64 madvise map_shadow_stack
    membarrier memfd_create memfd_secret mincore mkdir mkdirat mknod mknodat mlock mlock2 mlockall mmap
    mmap2 mprotect mq_getsetattr mq_notify mq_open mq_timedreceive mq_timedreceive_time64 mq_timedsend
    mq_timedsend_time64 mq_unlink mremap mseal msgctl msgget msgrcv msgsnd msync munlock munlockall munmap
    nanosleep newfstatat open openat openat2 pause pidfd_open pidfd_send_signal pipe pipe2 pkey_alloc
    pkey_free pkey_mprotect poll ppoll ppoll_time64 prctl pread64 preadv preadv2 prlimit64 process_mrelease
    process_vm_readv process_vm_writev pselect6 pselect6_time64 ptrace pwrite64 pwritev pwritev2 read
    readahead readdir readlink readlinkat readv recv recvfrom recvmmsg recvmmsg_time64 recvmsg
    remap_file_pages removexattr rename renameat renameat2 restart_syscall rmdir rseq rt_sigaction
    rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend rt_sigtimedwait
    rt_sigtimedwait_time64 rt_tgsigqueueinfo sched_get_priority_max sched_get_priority_min sched_getaffinity
    sched_getattr sched_getparam sched_getscheduler sched_rr_get_interval sched_rr_get_interval_time64
    sched_setaffinity sched_setattr sched_setparam sched_setscheduler sched_yield seccomp select semctl
    semget semop semtimedop semtimedop_time64 send sendfile sendfile64 sendmmsg sendmsg sendto
    set_robust_list set_thread_area set_tid_address setfsgid setfsgid32 setfsuid setfsuid32 setgid setgid32
    setgroups setgroups32 setitimer setpgid setpriority setregid setregid32 setresgid setresgid32 setresuid
    setresuid32 setreuid setreuid32 setrlimit setsid setsockopt setuid setuid32 setxattr shmat shmctl shmdt
    shmget shutdown sigaction sigaltstack signal signalfd signalfd4 sigpending sigprocmask sigreturn
    sigsuspend socketcall socketpair splice stat stat64 statfs statfs64 statx symlink symlinkat sync
    sync_file_range syncfs syscall sysinfo tee tgkill time timer_create timer_delete timer_getoverrun
    timer_gettime timer_gettime64 timer_settime timer_settime64 timerfd timerfd_create timerfd_gettime
    timerfd_gettime64 timerfd_settime timerfd_settime64 times tkill truncate truncate64 ugetrlimit umask
    uname unlink unlinkat utime utimensat utimensat_time64 utimes vfork wait4 waitid waitpid write writev
""".split()

# (syscalls, capability that allows them)
BY_CAPABILITY: list[tuple[list[str], str]] = [
    (["open_by_handle_at"], "CAP_DAC_READ_SEARCH"),
    (["bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick", "lookup_dcookie",
      "mount", "mount_setattr", "move_mount", "name_to_handle_at", "open_tree", "perf_event_open", "quotactl",
      "quotactl_fd", "setdomainname", "sethostname", "setns", "syslog", "umount", "umount2", "unshare"],
     "CAP_SYS_ADMIN"),
    (["reboot"], "CAP_SYS_BOOT"),
    (["chroot"], "CAP_SYS_CHROOT"),
    (["delete_module", "finit_module", "init_module"], "CAP_SYS_MODULE"),
    (["acct"], "CAP_SYS_PACCT"),
    (["kcmp", "pidfd_getfd", "process_madvise"], "CAP_SYS_PTRACE"),
    (["ioperm", "iopl"], "CAP_SYS_RAWIO"),
    (["clock_settime", "clock_settime64", "settimeofday", "stime"], "CAP_SYS_TIME"),
    (["vhangup"], "CAP_SYS_TTY_CONFIG"),
    (["get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"], "CAP_SYS_NICE"),
    (["syslog"], "CAP_SYSLOG"),
    (["bpf"], "CAP_BPF"),
    (["perf_event_open"], "CAP_PERFMON"),
]

# Per architecture (Go names, as in image configs): extra syscalls and the seccomp arch list.
ARCH: dict[str, tuple[list[str], list[str]]] = {
    "amd64": (["arch_prctl", "modify_ldt"], ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]),
    "386": (["modify_ldt"], ["SCMP_ARCH_X86"]),
    "arm64": (["arm_fadvise64_64", "arm_sync_file_range", "breakpoint", "cacheflush", "set_tls",
               "sync_file_range2"], ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]),
    "arm": (["arm_fadvise64_64", "arm_sync_file_range", "breakpoint", "cacheflush", "set_tls",
             "sync_file_range2"], ["SCMP_ARCH_ARM"]),
    "ppc64le": (["sync_file_range2"], ["SCMP_ARCH_PPC64LE"]),
    "s390x": (["s390_pci_mmio_read", "s390_pci_mmio_write", "s390_runtime_instr"],
              ["SCMP_ARCH_S390X", "SCMP_ARCH_S390"]),
}

# personality(2) only with the domains programs legitimately ask for
PERSONALITY_VALUES = [0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF]
# clone flags that create namespaces: CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET
CLONE_NAMESPACE_FLAGS = 0x7E020000
AF_VSOCK = 40
ENOSYS = 38
EPERM = 1


def go_arch() -> str:
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64", "i686": "386", "armv7l": "arm"}.get(machine, machine)


def profile(capabilities: set[str], arch: str | None = None) -> dict[str, Any]:
    """The OCI ``linux.seccomp`` section for a container holding ``capabilities``."""
    arch = arch or go_arch()
    arch_calls, architectures = ARCH.get(arch, ([], []))
    allowed = set(ALLOWED) | set(arch_calls)
    for calls, cap in BY_CAPABILITY:
        if cap in capabilities:
            allowed.update(calls)
    syscalls: list[dict[str, Any]] = [{"names": sorted(allowed), "action": "SCMP_ACT_ALLOW"}]
    syscalls += [{"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                  "args": [{"index": 0, "value": v, "op": "SCMP_CMP_EQ"}]} for v in PERSONALITY_VALUES]
    syscalls.append({"names": ["socket"], "action": "SCMP_ACT_ALLOW",
                     "args": [{"index": 0, "value": AF_VSOCK, "op": "SCMP_CMP_NE"}]})
    if "CAP_SYS_ADMIN" not in capabilities:
        flags_arg = 1 if arch == "s390x" else 0  # s390 swaps clone's first two arguments
        syscalls.append({"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                         "args": [{"index": flags_arg, "value": CLONE_NAMESPACE_FLAGS, "valueTwo": 0,
                                   "op": "SCMP_CMP_MASKED_EQ"}]})
        syscalls.append({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": ENOSYS})
    return {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": EPERM, "architectures": architectures,
            "syscalls": syscalls}
