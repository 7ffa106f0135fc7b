"""Exec streams side by side with the reference dockerd, through docker-py as its own tests call it.

The process gets a terminal when the exec was *created* with Tty; the stream is multiplexed
unless the *start* request asks for Tty (docker-py's ``exec_start`` without ``tty=True`` reads
frames). A TTY exec's input is scanned for the detach keys.
"""

from __future__ import annotations

import socket
import time

import docker
import pytest

import refdocker

pytestmark = pytest.mark.skipif(not refdocker.available(),
                                reason="the reference dockerd is not installed (apt-get install docker.io)")

# out, a pause (busybox's sleep takes whole seconds), err: two separate writes as docker-py's test has
SCRIPT = "echo hello out; for i in $(seq 1 20000); do echo $i>/dev/null; done; echo hello err >&2"


@pytest.fixture
def cats(d, ref):
    """A running `cat` with stdin open on each engine: {"dockyard": (api, id), "dockerd": ...}."""
    out = {}
    for name, engine in (("dockyard", d), ("dockerd", ref)):
        api = docker.APIClient(base_url=engine.host, version="1.41", timeout=60)
        cid = api.create_container("busybox", "cat", stdin_open=True)["Id"]
        api.start(cid)
        out[name] = (api, cid)
    yield out
    for api, cid in out.values():
        api.remove_container(cid, force=True)


def _each(cats, call):
    return {name: call(api, cid) for name, (api, cid) in cats.items()}


def _read_all(sock, timeout: float = 10.0) -> bytes:
    raw = sock._sock
    raw.settimeout(timeout)
    out = b""
    while chunk := raw.recv(4096):
        out += chunk
    return out


# (a raw stream of a process without a terminal mixes stdout and stderr in any order: not compared)
@pytest.mark.parametrize("tty,start_tty", [(False, False), (True, False), (True, True)],
                         ids=["no-tty", "tty-start-frames", "tty-start-tty"])
@pytest.mark.parametrize("demux", [False, True], ids=["plain", "demux"])
def test_exec_output_as_docker_py_reads_it(cats, tty, start_tty, demux):

    def run(api, cid):
        exec_id = api.exec_create(cid, ["sh", "-c", SCRIPT], tty=tty)
        whole = api.exec_start(exec_id, tty=start_tty, demux=demux)
        exec_id = api.exec_create(cid, ["sh", "-c", SCRIPT], tty=tty)
        streamed = list(api.exec_start(exec_id, tty=start_tty, demux=demux, stream=True))
        return whole, streamed

    got = _each(cats, run)
    assert got["dockyard"] == got["dockerd"]
    out = b"hello out\r\n" if tty else b"hello out\n"
    whole, streamed = got["dockyard"]
    assert out in (whole[0] if demux else whole)
    assert len(streamed) == 2  # one piece per write, as the process wrote them


def test_exec_start_socket_frames_and_exit_code(cats):
    def run(api, cid):
        exec_id = api.exec_create(cid, ["printf", "yay, interactive exec!"], tty=True)
        framed = _read_all(api.exec_start(exec_id, socket=True))
        exec_id = api.exec_create(cid, ["sh", "-c", "exit 1"], tty=True)
        empty = _read_all(api.exec_start(exec_id, socket=True))
        deadline = time.monotonic() + 10
        while api.exec_inspect(exec_id)["Running"] and time.monotonic() < deadline:
            time.sleep(0.05)
        return framed, empty, api.exec_inspect(exec_id)["ExitCode"]

    got = _each(cats, run)
    assert got["dockyard"] == got["dockerd"]
    assert got["dockyard"] == (b"\x01\x00\x00\x00\x00\x00\x00\x16yay, interactive exec!", b"", 1)


@pytest.mark.parametrize("keys,config_keys,typed", [(None, None, [b"\x10", b"\x11"]),
                                                    (None, "ctrl-p", [b"\x10"]),
                                                    ("ctrl-x", "ctrl-p", [b"x\x18"])],
                         ids=["default", "config-file", "argument"])
def test_exec_detach_keys(cats, keys, config_keys, typed):
    """docker-py's test_detach_with_*: the daemon ends the stream on the keys, with dockerd's words."""
    def run(api, cid):
        if config_keys:
            api._general_configs["detachKeys"] = config_keys
        exec_id = api.exec_create(cid, "cat", stdin=True, tty=True, stdout=True, detach_keys=keys)
        sock = api.exec_start(exec_id, tty=True, socket=True)
        for data in typed:
            sock._sock.sendall(data)
            time.sleep(0.3)
        received = _read_all(sock)
        sock.close()
        detach_keys = api.exec_inspect(exec_id)["DetachKeys"]
        return received, detach_keys

    got = _each(cats, run)
    assert got["dockyard"] == got["dockerd"]
    assert got["dockyard"][0].endswith(b"exec attach failed: error on attach stdin: read escape sequence\r\n")


@pytest.mark.parametrize("keys", ["ctrl-ctrl", "ctrl-1", "é", "ctrl-é"])  # the last three were a 500 (fuzz)
def test_exec_bad_detach_keys(cats, keys):
    def run(api, cid):
        with pytest.raises(docker.errors.APIError) as e:
            api.exec_create(cid, "cat", detach_keys=keys)
        return e.value.status_code, e.value.explanation

    got = _each(cats, run)
    # dockerd 20.10 answers 500 here: bad input is a 400 on dockyard, with the same words
    assert got["dockyard"] == (400, f"Invalid escape keys ({keys}) provided")
    assert got["dockerd"][1] == got["dockyard"][1]


def test_exec_start_detached(cats):
    def run(api, cid):
        exec_id = api.exec_create(cid, ["sh", "-c", "echo hi > /tmp/detached"])
        answer = api.exec_start(exec_id, detach=True)
        deadline = time.monotonic() + 10
        while api.exec_inspect(exec_id)["Running"] and time.monotonic() < deadline:
            time.sleep(0.05)
        out = api.exec_start(api.exec_create(cid, ["cat", "/tmp/detached"]))
        return answer, out

    got = _each(cats, run)
    assert got["dockyard"] == got["dockerd"] == ("", b"hi\n")


def test_cli_exec_tty_output(d, ref):
    outs = []
    for engine in (d, ref):
        name = f"exec-tty-{engine is d}"
        engine.cli("run", "-d", "--name", name, "busybox", "sleep", "60")
        try:
            res = engine.cli("exec", "-t", name, "sh", "-c", "echo hello out; echo hello err >&2")
            outs.append((res.stdout, res.stderr))
        finally:
            engine.cli("rm", "-f", name)
    assert outs[0] == outs[1] == (b"hello out\r\nhello err\r\n", b"")


def test_exec_socket_unix_closed_after_detach(cats):
    """The connection is closed after the keys: a send on it then fails (docker-py's check)."""
    api, cid = cats["dockyard"]
    exec_id = api.exec_create(cid, "cat", stdin=True, tty=True, stdout=True, detach_keys="ctrl-x")
    sock = api.exec_start(exec_id, tty=True, socket=True)
    sock._sock.sendall(b"\x18")
    _read_all(sock)
    with pytest.raises(socket.error):
        for _ in range(3):
            sock._sock.sendall(b"make sure the socket is closed\n")
            time.sleep(0.2)
    sock.close()
