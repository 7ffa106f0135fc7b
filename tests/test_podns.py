"""runtime/podns.py without a daemon: namespaces held by bind mounts, the pod's hostname and sysctls set
inside them, nothing left after a release or a failure, and the daemon's thread back where it was."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from dockyard import errors
from dockyard.runtime import podns

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

KINDS = ("net", "ipc", "uts")


def own(kind: str) -> str:
    return os.readlink(f"/proc/thread-self/ns/{kind}")


def test_hold_pins_new_namespaces_with_hostname_and_sysctls(tmp_path: Path) -> None:
    paths = {kind: str(tmp_path / kind) for kind in KINDS}
    before = {kind: own(kind) for kind in KINDS}
    podns.hold(paths, hostname="pod-a", sysctls={"kernel.shm_rmid_forced": "1",
                                                 "net.ipv4.ip_unprivileged_port_start": "80"})
    try:
        assert {kind: own(kind) for kind in KINDS} == before  # the thread came back
        assert all(podns.held(p) for p in paths.values())
        for kind, path in paths.items():
            assert os.stat(path).st_ino != os.stat(f"/proc/self/ns/{kind}").st_ino
        with podns.entered(paths["uts"], "uts"):
            assert socket.gethostname() == "pod-a"
        with podns.entered(paths["ipc"], "ipc"):
            assert Path("/proc/sys/kernel/shm_rmid_forced").read_text().strip() == "1"
        with podns.entered(paths["net"], "net"):
            assert Path("/proc/sys/net/ipv4/ip_unprivileged_port_start").read_text().strip() == "80"
        assert socket.gethostname() != "pod-a"
    finally:
        for path in paths.values():
            podns.release(path)
    assert not any(os.path.exists(p) for p in paths.values())
    assert str(tmp_path) not in Path("/proc/self/mountinfo").read_text()


def test_a_failed_hold_leaves_nothing(tmp_path: Path) -> None:
    paths = {kind: str(tmp_path / kind) for kind in KINDS}
    before = {kind: own(kind) for kind in KINDS}
    with pytest.raises(errors.SystemError_):
        podns.hold(paths, sysctls={"kernel.shm_rmid_forced": "not a number"})
    assert {kind: own(kind) for kind in KINDS} == before
    assert not any(os.path.exists(p) for p in paths.values())
    assert str(tmp_path) not in Path("/proc/self/mountinfo").read_text()


@pytest.mark.parametrize(("sysctls", "kinds", "words"), [
    ({"kernel.panic": "1"}, {"ipc"}, "not namespaced"),
    ({"net/ipv4/../../x": "1"}, {"net"}, "invalid sysctl name"),
    ({"net.ipv4.ip_forward": "1"}, {"ipc"}, "network namespace"),
    ({"kernel.msgmax": "1\n2"}, {"ipc"}, "invalid value"),
    ({f"net.ipv4.x{i}": "1" for i in range(podns.MAX_SYSCTLS + 1)}, {"net"}, "too many"),
])
def test_sysctls_are_checked(sysctls: dict[str, str], kinds: set[str], words: str) -> None:
    with pytest.raises(errors.InvalidParameter, match=words):
        podns.check_sysctls(sysctls, kinds)


def test_sysctl_kinds() -> None:
    assert podns.sysctl_kind("net.core.somaxconn") == "net"
    assert podns.sysctl_kind("kernel/sem") == "ipc"
    assert podns.sysctl_kind("fs.mqueue.msg_max") == "ipc"
    assert podns.sysctl_kind("kernel.domainname") == "uts"


def test_shm_is_a_bounded_tmpfs(tmp_path: Path) -> None:
    shm = tmp_path / "shm"
    podns.mount_shm(str(shm), 1 << 20)
    try:
        assert podns.held(str(shm))
        st = os.statvfs(shm)
        assert st.f_blocks * st.f_frsize == 1 << 20
        podns.mount_shm(str(shm), 1 << 20)  # again: the one mount stays
        assert Path("/proc/self/mountinfo").read_text().count(str(shm)) == 1
    finally:
        podns.release(str(shm))
    assert not shm.exists()
