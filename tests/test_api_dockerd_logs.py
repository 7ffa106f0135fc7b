"""Log streams side by side with the reference dockerd: a frame per log entry, and a cancelled
follow ends on the daemon when the client goes."""

from __future__ import annotations

import os
import threading
import time

import docker
import pytest

import refdocker

pytestmark = pytest.mark.skipif(not refdocker.available(),
                                reason="the reference dockerd is not installed (apt-get install docker.io)")

SCRIPT = "echo hello; echo world; printf 'a\\nb'; echo"


def _clients(d, ref) -> dict[str, docker.DockerClient]:
    return {name: docker.DockerClient(base_url=engine.host, version="1.41", timeout=60)
            for name, engine in (("dockyard", d), ("dockerd", ref))}


def test_run_stream_yields_a_frame_per_line(d, ref):
    got = {}
    for name, client in _clients(d, ref).items():
        container_name = f"logs-run-{name}"
        try:
            out = client.containers.run("busybox", ["sh", "-c", SCRIPT], stream=True, name=container_name)
            got[name] = list(out)
        finally:
            client.containers.get(container_name).remove(force=True)
    assert got["dockyard"] == got["dockerd"] == [b"hello\n", b"world\n", b"a\n", b"b\n"]


@pytest.mark.parametrize("kwargs", [{}, {"follow": True}, {"timestamps": True}, {"tail": 2}],
                         ids=["stream", "follow", "timestamps", "tail"])
def test_logs_stream_frames(d, ref, kwargs):
    got = {}
    for name, client in _clients(d, ref).items():
        c = client.containers.run("busybox", ["sh", "-c", SCRIPT], detach=True)
        try:
            c.wait()
            items = list(c.logs(stream=True, stderr=False, **kwargs))
            # a timestamp differs between engines: compare what follows it
            got[name] = [i.split(b" ", 1)[1] for i in items] if kwargs.get("timestamps") else items
        finally:
            c.remove(force=True)
    assert got["dockyard"] == got["dockerd"]
    assert len(got["dockyard"]) == kwargs.get("tail", 4)


def test_stderr_and_stdout_entries_framed_apart(d):
    api = docker.APIClient(base_url=d.host, version="1.41", timeout=60)
    c = api.create_container("busybox", ["sh", "-c", "echo o1; echo e1 >&2; echo o2; echo e2 >&2"])["Id"]
    try:
        api.start(c)
        api.wait(c)
        data = api._get(api._url("/containers/{0}/logs", c), params={"stdout": 1, "stderr": 1}).content
    finally:
        api.remove_container(c, force=True)
    frames = []
    while data:
        size = int.from_bytes(data[4:8], "big")
        frames.append((data[0], data[8:8 + size]))
        data = data[8 + size:]
    assert [f for f in frames if f[0] == 1] == [(1, b"o1\n"), (1, b"o2\n")]
    assert [f for f in frames if f[0] == 2] == [(2, b"e1\n"), (2, b"e2\n")]


def _log_fds(pid: int, container_id: str) -> int:
    """How many files of the container's log directory the process holds open."""
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        count += container_id in target and target.endswith(".log")
    return count


def test_cancelled_follow_ends_on_the_daemon(d, ref):
    """docker-py's test_logs_streaming_and_follow_and_cancel, then the daemon let go of the log."""
    got = {}
    for name, client in _clients(d, ref).items():
        api = client.api
        c = api.create_container("busybox", 'sh -c "echo \\"Flowering Nights\\" && sleep 60"')["Id"]
        try:
            api.start(c)
            generator = api.logs(c, stream=True, follow=True)
            closer = threading.Timer(0.5, generator.close)
            closer.start()
            got[name] = b"".join(generator)
            closer.join()
            if name == "dockyard":
                # the container still runs: only the client's going can have ended the follow
                deadline = time.monotonic() + 10
                while _log_fds(d.proc.pid, c) and time.monotonic() < deadline:
                    time.sleep(0.05)
                assert _log_fds(d.proc.pid, c) == 0
                assert api.inspect_container(c)["State"]["Running"]
        finally:
            api.remove_container(c, force=True)
    assert got["dockyard"] == got["dockerd"] == b"Flowering Nights\n"
