"""The task interface (runtime/task.py) against real conmon and runc on a busybox bundle: no daemon."""

from __future__ import annotations

import io
import os
import select
import signal
import tarfile
import uuid
from pathlib import Path

import pytest

from dockyard import errors
from dockyard.runtime import spec as specmod
from dockyard.runtime.runc import Runc
from dockyard.runtime.shim import STDERR, ShimManager
from dockyard.runtime.task import ExecFiles, ShimTask, Stdio3, StepTask, Task
from fixtures.busybox import rootfs_layer

IMAGE = {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": ["sh"]}


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("task")
    with tarfile.open(fileobj=io.BytesIO(rootfs_layer())) as tar:
        tar.extractall(base / "rootfs")
    return base


@pytest.fixture
def task(base: Path):
    shims = ShimManager(str(base / "exec"))
    t = ShimTask(shims, Runc("runc", str(base / "exec" / "runc")), uuid.uuid4().hex + uuid.uuid4().hex)
    yield t
    t.delete()


def spec_for(base: Path, cid: str, cmd: list[str], **host_config: object) -> dict:
    return specmod.build(container_id=cid, rootfs=str(base / "rootfs"), image_config=IMAGE, config={"Cmd": cmd},
                         host_config=dict(host_config))


def exit_of(t: ShimTask, timeout: float = 30) -> int:
    fd = t.exit_fd()
    if fd is not None:
        try:
            assert select.select([fd], [], [], timeout)[0], "the task did not exit"
        finally:
            os.close(fd)
    return t.exit_status().code


def cgroup_file(pid: int, controller: str, name: str) -> Path:
    """``name`` in the process's cgroup of ``controller`` (cgroup v1), or its unified cgroup (v2)."""
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            return Path("/sys/fs/cgroup", controller, path.lstrip("/"), name)
    path = next(line.split(":", 2)[2] for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines()
                if line.startswith("0::"))
    return Path("/sys/fs/cgroup", path.lstrip("/"), name)


def test_create_start_exec_pause_update_kill_delete(base: Path, task: ShimTask) -> None:
    t: Task = task  # the interface is what the engine programs against
    pid = t.create(spec_for(base, t.id, ["sleep", "1000"]), tty=False, stdin=False, log_path=None)
    assert pid > 0 and t.state()["status"] == "created"
    assert t.bundle.spec()["process"]["args"] == ["sleep", "1000"]
    t.start()
    assert t.state()["status"] == "running" and pid in t.pids()

    process = t.bundle.process()
    process["args"] = ["sh", "-c", "echo in-$HOSTNAME-ns; exit 3"]
    files = ExecFiles.under(str(base), uuid.uuid4().hex)
    out_r, out_w = os.pipe()
    proc = t.exec(process, files, Stdio3(stdout=out_w))
    os.close(out_w)
    with os.fdopen(out_r, "rb") as out:
        assert out.read().startswith(b"in-")
    assert proc.wait(30) == 3 and files.read_pid() > 0 and files.failure() == ""
    files.remove()
    assert not os.path.exists(files.pid)

    t.pause()
    assert t.state()["status"] == "paused"
    t.resume()
    assert t.state()["status"] == "running"
    t.update({"pids": {"limit": 77}})
    assert cgroup_file(pid, "pids", "pids.max").read_text().strip() == "77"

    t.kill(signal.SIGKILL)
    assert exit_of(task) == 137
    assert t.leftover()
    t.delete()
    assert t.state() is None and not t.leftover() and not t.bundle.exists()


def test_exec_the_runtime_refuses_says_why(base: Path, task: ShimTask) -> None:
    task.create(spec_for(base, task.id, ["sleep", "1000"]), tty=False, stdin=False, log_path=None)
    task.start()
    process = task.bundle.process()
    process["args"] = ["/no/such/binary"]
    files = ExecFiles.under(str(base), uuid.uuid4().hex)
    assert task.exec(process, files, Stdio3()).wait(30) != 0
    assert "no such file or directory" in files.failure()
    files.remove()


def test_attach_and_resize_a_tty_task(base: Path, task: ShimTask) -> None:
    spec = specmod.build(container_id=task.id, rootfs=str(base / "rootfs"), image_config=IMAGE,
                         config={"Cmd": ["sh", "-c", "read line; stty size; echo got-$line"], "Tty": True,
                                 "OpenStdin": True}, host_config={})
    task.create(spec, tty=True, stdin=True, log_path=None)
    assert os.path.exists(task.attach_path())
    sock = task.attach()
    task.start()
    task.resize(33, 101)
    sock.sendall(b"hello\n")
    data = b""
    sock.settimeout(30)
    while b"got-hello" not in data:
        packet = sock.recv(65536)
        assert packet, data
        assert packet[0] != STDERR
        data += packet[1:]
    sock.close()
    assert b"33 101" in data
    assert exit_of(task) == 0


def test_start_of_a_missing_executable_is_the_runtimes_error(base: Path, task: ShimTask) -> None:
    with pytest.raises(errors.DockyardError, match="executable file not found"):
        task.create(spec_for(base, task.id, ["no-such-command"]), tty=False, stdin=False, log_path=None)


def test_step_task_runs_in_the_foreground(base: Path, tmp_path: Path) -> None:
    cid = uuid.uuid4().hex + uuid.uuid4().hex
    step = StepTask(Runc("runc", str(base / "exec" / "runc")), cid, str(tmp_path))
    proc = step.run(spec_for(base, cid, ["sh", "-c", "echo out; echo err >&2; exit 4"]), str(tmp_path / "log"))
    output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 4 and sorted(output.split()) == [b"err", b"out"]
    assert step.bundle.spec()["process"]["args"][-1].endswith("exit 4")
    step.delete()
    assert step.state() is None
