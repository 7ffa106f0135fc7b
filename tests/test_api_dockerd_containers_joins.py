"""PidMode and IpcMode "container:<name>", side by side with the reference dockerd: the joiner shares
the target's PID namespace (sees its processes) or its IPC namespace and /dev/shm (a shareable
target's daemon-side tmpfs), and a missing, stopped or non-shareable target is refused in dockerd's
words; the shareable /dev/shm is unmounted when its container goes."""

from __future__ import annotations

import pytest

from dockerd_side import api_of, cleanup, needs_dockerd, outcome

pytestmark = needs_dockerd


@pytest.fixture
def engines(d, ref):
    return {"dockerd": ref, "dockyard": d}


def _run(e, *args: str) -> str:
    return e.cli("run", "--rm", *args).stdout_text


def test_ipc_container_shares_namespace_and_shm(engines) -> None:
    seen = {}
    for which, e in engines.items():
        try:
            e.cli("run", "-d", "--name", "donor", "--ipc", "shareable", "busybox", "sh", "-c",
                  "echo from-donor > /dev/shm/f; sleep 1000")
            e.cli("exec", "donor", "sh", "-c", "while [ ! -f /dev/shm/f ]; do sleep 0.05; done")
            donor_ns = e.cli("exec", "donor", "readlink", "/proc/self/ns/ipc").stdout_text
            out = _run(e, "--ipc", "container:donor", "busybox", "sh", "-c",
                       "cat /dev/shm/f; readlink /proc/self/ns/ipc; echo back > /dev/shm/g")
            back = e.cli("exec", "donor", "cat", "/dev/shm/g").stdout_text
            own = _run(e, "busybox", "readlink", "/proc/self/ns/ipc")
            seen[which] = (out == f"from-donor\n{donor_ns}", back, own != donor_ns)
        finally:
            cleanup(e, "donor")
    assert seen["dockyard"] == seen["dockerd"] == (True, "back\n", True)


def test_pid_container_sees_the_targets_processes(engines) -> None:
    seen = {}
    for which, e in engines.items():
        try:
            e.cli("run", "-d", "--name", "pidhost", "busybox", "sleep", "1000")
            joined = _run(e, "--pid", "container:pidhost", "busybox", "sh", "-c", "cat /proc/1/cmdline; echo")
            own = _run(e, "busybox", "sh", "-c", "cat /proc/1/cmdline; echo")
            seen[which] = (joined.replace("\0", " ").strip(), own.replace("\0", " ").strip())
        finally:
            cleanup(e, "pidhost")
    assert seen["dockyard"] == seen["dockerd"] == ("sleep 1000", "sh -c cat /proc/1/cmdline; echo")


def _start_joiner(e, mode: str, target: str) -> tuple[int, str]:
    api = api_of(e)
    hc = api.create_host_config(**{mode: f"container:{target}"})
    created = outcome(lambda: api.create_container("busybox", ["true"], name="joiner", host_config=hc))
    if created[0] != 200:
        return created
    return outcome(lambda: api.start("joiner"))


@pytest.mark.parametrize("mode", ["pid_mode", "ipc_mode"])
def test_missing_and_stopped_targets_are_refused(engines, mode) -> None:
    seen = {}
    for which, e in engines.items():
        try:
            missing = _start_joiner(e, mode, "nosuch")
            cleanup(e, "joiner")
            cid = e.cli("create", "--name", "stopped", "--ipc", "shareable", "busybox", "true").stdout_text.strip()
            stopped = _start_joiner(e, mode, "stopped")
            seen[which] = (missing, (stopped[0], stopped[1].replace(cid, "<id>")))
        finally:
            cleanup(e, "joiner", "stopped")
    assert seen["dockyard"] == seen["dockerd"]
    assert seen["dockyard"][0] == (400, "No such container: nosuch") and seen["dockyard"][1][0] == 500


def test_a_private_ipc_target_cannot_be_joined(engines) -> None:
    seen = {}
    for which, e in engines.items():
        try:
            cid = e.cli("run", "-d", "--name", "private", "--ipc", "private", "busybox", "sleep", "1000"
                        ).stdout_text.strip()
            status, message = _start_joiner(e, "ipc_mode", "private")
            seen[which] = (status, message.replace(cid, "<id>"))
        finally:
            cleanup(e, "joiner", "private")
    assert seen["dockyard"] == seen["dockerd"]
    assert "non-shareable IPC" in seen["dockyard"][1]


def _shm_mounts(data_root: str) -> list[str]:
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        return [line.split()[4] for line in f if str(data_root) in line and line.split()[4].endswith("/mounts/shm")]


def test_the_shareable_shm_is_unmounted_at_stop_and_remove(d) -> None:
    d.cli("run", "-d", "--name", "shm1", "--ipc", "shareable", "busybox", "sleep", "1000")
    assert len(_shm_mounts(d.data_root)) == 1
    d.cli("run", "-d", "--name", "shm2", "--ipc", "container:shm1", "busybox", "sleep", "1000")
    d.cli("stop", "-t", "0", "shm1")
    assert _shm_mounts(d.data_root) == []
    d.cli("start", "shm1")
    assert len(_shm_mounts(d.data_root)) == 1
    d.cli("rm", "-f", "shm2", "shm1")
    assert _shm_mounts(d.data_root) == []
