"""The CRI's streaming server against a real dockyardd: Exec, Attach and PortForward answer one-time URLs,
and the sessions behind them speak the kubelet's protocols over SPDY/3.1 (remotecommand v1-v4,
portforward.k8s.io) and over a WebSocket (channel.k8s.io, v4, v5 with its close signal, base64).

The exec and attach containers are plain busybox ones made through the Docker API (the CRI's containers
are the engine's); port-forward reaches a CRI pod whose network is only ``lo`` (a loopback conflist).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Iterator

import grpc
import pytest
from cri_api.v1 import api_pb2 as cri_pb

from conftest import DOCKYARDD, BuiltImage, Daemon, make_daemon
from dockyard import errors
from dockyard.config import ConfigError
from dockyard.cri.streaming.server import parse_idle_timeout
from dockyard.cri.streaming.tokens import RequestCache
from dockyard.daemon import config as daemon_config

from .conftest import Cri, connect, cri_socket
from .streamclient import SpdyClient, WsClient, WsTunnel, plain_get, resize_message

V4 = "v4.channel.k8s.io"
ECHO_PORT = 8080


@pytest.fixture(scope="module")
def sd(tmp_path_factory: pytest.TempPathFactory, busybox_tar: BuiltImage) -> Iterator[Daemon]:
    base = tmp_path_factory.mktemp("dockyardd-stream")
    (base / "net.d").mkdir()
    (base / "net.d" / "10-lo.conflist").write_text(json.dumps(
        {"cniVersion": "1.0.0", "name": "lo-only", "plugins": [{"type": "loopback"}]}))
    d = make_daemon(base, ["--cni-conf-dir", str(base / "net.d")])
    d.start()
    d.cli("load", "-i", busybox_tar.path)
    yield d
    d.teardown()


@pytest.fixture(scope="module")
def cri_daemon(sd: Daemon) -> Daemon:
    """This module's daemon is the one conftest's ``cri`` client connects to."""
    return sd


@pytest.fixture(scope="module")
def box(sd: Daemon) -> str:
    """A running container to exec in."""
    return sd.cli("run", "-d", "busybox", "sleep", "100000").stdout_text.strip()


@pytest.fixture(scope="module")
def echo_pod(cri: Cri) -> Iterator[str]:
    """A pod whose network namespace has an echo server on ECHO_PORT (each connection: cat)."""
    config = cri_pb.PodSandboxConfig(
        metadata=cri_pb.PodSandboxMetadata(name="echo", namespace="t", uid="echo"),
        linux=cri_pb.LinuxPodSandboxConfig(security_context=cri_pb.LinuxSandboxSecurityContext(
            namespace_options=cri_pb.NamespaceOption(pid=cri_pb.CONTAINER))))
    pod = cri.runtime.RunPodSandbox(cri_pb.RunPodSandboxRequest(config=config)).pod_sandbox_id
    cid = cri.runtime.CreateContainer(cri_pb.CreateContainerRequest(pod_sandbox_id=pod, sandbox_config=config,
                                                                    config=cri_pb.ContainerConfig(
        metadata=cri_pb.ContainerMetadata(name="echo"), image=cri_pb.ImageSpec(image="busybox"),
        command=["nc", "-ll", "-p", str(ECHO_PORT), "-e", "cat"]))).container_id
    cri.runtime.StartContainer(cri_pb.StartContainerRequest(container_id=cid))
    # the listener is up once a connection from inside the namespace succeeds
    cri.runtime.ExecSync(cri_pb.ExecSyncRequest(container_id=cid, timeout=30, cmd=[
        "sh", "-c", f"until echo | nc 127.0.0.1 {ECHO_PORT}; do sleep 0.05; done"]))
    yield pod
    cri.runtime.StopPodSandbox(cri_pb.StopPodSandboxRequest(pod_sandbox_id=pod))
    cri.runtime.RemovePodSandbox(cri_pb.RemovePodSandboxRequest(pod_sandbox_id=pod))


def exec_url(cri: Cri, cid: str, cmd: list[str], *, tty: bool = False, stdin: bool = False,
             stdout: bool = True, stderr: bool = True) -> str:
    req = cri_pb.ExecRequest(container_id=cid, cmd=cmd, tty=tty, stdin=stdin, stdout=stdout,
                             stderr=stderr and not tty)
    return cri.runtime.Exec(req).url


def spdy_session(url: str, kinds: list[str], protocol: str = V4) -> tuple[SpdyClient, dict[str, int]]:
    client = SpdyClient(url, [protocol])
    assert client.response.status == 101, client.response
    assert client.response.headers["x-stream-protocol-version"] == protocol
    return client, {kind: client.open({"streamType": kind}) for kind in kinds}


def status_of(raw: bytes) -> dict:
    return json.loads(raw)


def exit_code(status: dict) -> int:
    if status["status"] == "Success":
        return 0
    assert status["reason"] == "NonZeroExitCode", status
    return int(next(c["message"] for c in status["details"]["causes"] if c["reason"] == "ExitCode"))


# -- exec over SPDY ---------------------------------------------------------------------------------

def test_exec_spdy_output_and_exit_code(cri: Cri, box: str) -> None:
    url = exec_url(cri, box, ["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert url.startswith("http://127.0.0.1:") and "/exec/" in url
    client, s = spdy_session(url, ["error", "stdout", "stderr"])
    try:
        assert client.read_all(s["stdout"]) == b"out\n"
        assert client.read_all(s["stderr"]) == b"err\n"
        status = status_of(client.read_all(s["error"]))
        assert status["status"] == "Failure" and exit_code(status) == 3
        assert client.goaway.wait(30)
    finally:
        client.close()


def test_exec_spdy_stdin_until_eof(cri: Cri, box: str) -> None:
    client, s = spdy_session(exec_url(cri, box, ["tr", "a-z", "A-Z"], stdin=True),
                             ["error", "stdin", "stdout", "stderr"])
    try:
        payload = b"hello spdy\n" * 20000  # past the 64 KiB windows, both ways
        for i in range(0, len(payload), 32768):
            client.send(s["stdin"], payload[i:i + 32768])
        client.send(s["stdin"], b"", fin=True)
        assert client.read_all(s["stdout"]) == payload.upper()
        assert status_of(client.read_all(s["error"])) == {"metadata": {}, "status": "Success"}
        assert client.window_updates > 0  # the server gave back the window our stdin used
    finally:
        client.close()


def test_exec_spdy_tty_and_resize(cri: Cri, box: str) -> None:
    url = exec_url(cri, box, ["sh", "-c", "while read line; do stty size; done"], tty=True, stdin=True)
    client, s = spdy_session(url, ["error", "stdin", "stdout", "resize"])
    try:
        client.send(s["resize"], resize_message(123, 45))
        seen = b""
        # a resize and a line travel on different streams: ask again until the new size shows
        while b"45 123" not in seen:
            client.send(s["stdin"], b"\n")
            seen += client.read_some(s["stdout"])
        client.send(s["stdin"], b"exit\x04")
        client.send(s["stdin"], b"", fin=True)
    finally:
        client.close()


def test_exec_spdy_protocols_before_v4_report_as_text(cri: Cri, box: str) -> None:
    client, s = spdy_session(exec_url(cri, box, ["sh", "-c", "exit 7"]), ["error", "stdout", "stderr"],
                             protocol="v2.channel.k8s.io")
    try:
        client.read_all(s["stdout"])
        text = client.read_all(s["error"]).decode()
        assert "non-zero exit code" in text and "exited with 7" in text
    finally:
        client.close()
    # success says nothing on the error stream before v4
    client, s = spdy_session(exec_url(cri, box, ["true"]), ["error", "stdout", "stderr"],
                             protocol="v3.channel.k8s.io")
    try:
        assert client.read_all(s["error"]) == b""
    finally:
        client.close()


def test_exec_spdy_runtime_failure_is_an_internal_error(cri: Cri, box: str) -> None:
    client, s = spdy_session(exec_url(cri, box, ["/no/such/binary"]), ["error", "stdout", "stderr"])
    try:
        status = status_of(client.read_all(s["error"]))
        assert status["reason"] == "InternalError" and status["code"] == 500
        assert "error executing command in container" in status["message"]
        assert client.read_all(s["stderr"]) == b""  # runc's own message is the status, not the output
    finally:
        client.close()


def test_spdy_ping_is_answered(cri: Cri, box: str) -> None:
    client, s = spdy_session(exec_url(cri, box, ["cat"], stdin=True), ["error", "stdin", "stdout", "stderr"])
    try:
        client.ping(1)
        assert client.pings.get(timeout=30) == 1
        client.send(s["stdin"], b"", fin=True)
        assert client.read_all(s["error"])
    finally:
        client.close()


def test_spdy_garbage_ends_the_connection(cri: Cri, box: str) -> None:
    """A frame of another SPDY version is a protocol error: GOAWAY, and the connection is closed."""
    client, s = spdy_session(exec_url(cri, box, ["sleep", "1000"], stdin=True), ["error", "stdin", "stdout",
                                                                                  "stderr"])
    try:
        client._send(b"\x80\x02\x00\x06\x00\x00\x00\x04\x00\x00\x00\x01")  # a SPDY/2 PING
        assert client.goaway.wait(30)
        assert client.closed.wait(30)
    finally:
        client.close()


def test_spdy_negotiation_refusals(cri: Cri, box: str) -> None:
    client = SpdyClient(exec_url(cri, box, ["true"]), ["v9.channel.k8s.io"])
    assert client.response.status == 403
    assert "unable to negotiate protocol" in client.response.body.decode()
    client.close()
    client = SpdyClient(exec_url(cri, box, ["true"]), [V4], upgrade="h2c")
    assert client.response.status == 400
    client.close()


# -- exec over a WebSocket --------------------------------------------------------------------------

def test_exec_websocket_v5_closes_stdin(cri: Cri, box: str) -> None:
    ws = WsClient(exec_url(cri, box, ["cat"], stdin=True), ["v5.channel.k8s.io", V4])
    assert ws.protocol == "v5.channel.k8s.io"
    try:
        assert ws.next() == (1, b"")  # ready: an empty message on the first channel written
        ws.send(0, b"over the websocket\n")
        ws.send_raw(bytes([255, 0]))  # v5: stdin is closed, the connection is not
        got = ws.collect()
        assert got[1] == b"over the websocket\n"
        assert status_of(got[3]) == {"metadata": {}, "status": "Success"}
    finally:
        ws.close()


def test_exec_websocket_v4_exit_code_and_base64(cri: Cri, box: str) -> None:
    ws = WsClient(exec_url(cri, box, ["sh", "-c", "echo hi; echo oops >&2; exit 5"]), [V4])
    try:
        got = ws.collect()
        assert (got[1], got[2], exit_code(status_of(got[3]))) == (b"hi\n", b"oops\n", 5)
    finally:
        ws.close()
    ws = WsClient(exec_url(cri, box, ["echo", "encoded"]), ["v4.base64.channel.k8s.io"])
    try:
        assert not ws.binary
        got = ws.collect()
        assert got[1] == b"encoded\n" and exit_code(status_of(got[3])) == 0
    finally:
        ws.close()


def test_exec_websocket_tty_resize(cri: Cri, box: str) -> None:
    url = exec_url(cri, box, ["sh", "-c", "while read line; do stty size; done"], tty=True, stdin=True)
    ws = WsClient(url, [V4])
    try:
        ws.send(4, resize_message(99, 33))
        seen = b""
        while b"33 99" not in seen:
            ws.send(0, b"\n")
            channel, data = ws.next()
            seen += data if channel == 1 else b""
    finally:
        ws.close()


def test_websocket_unsupported_protocol(cri: Cri, box: str) -> None:
    ws = WsClient(exec_url(cri, box, ["true"]), ["v9.channel.k8s.io"])
    assert ws.rejected == 400
    ws.sock.close()


# -- attach -----------------------------------------------------------------------------------------

def test_attach_spdy_and_websocket(sd: Daemon, cri: Cri) -> None:
    cid = sd.cli("run", "-d", "-i", "busybox", "sh", "-c",
                 "while read line; do echo got:$line; echo err:$line >&2; done").stdout_text.strip()
    req = cri_pb.AttachRequest(container_id=cid, stdin=True, stdout=True, stderr=True)
    client, s = spdy_session(cri.runtime.Attach(req).url, ["error", "stdin", "stdout", "stderr"])
    try:
        client.send(s["stdin"], b"one\n")
        seen = b""
        while b"got:one\n" not in seen:
            seen += client.read_some(s["stdout"])
        assert client.read_some(s["stderr"]) == b"err:one\n"
    finally:
        client.close()
    ws = WsClient(cri.runtime.Attach(req).url, [V4])
    try:
        ws.send(0, b"two\n")
        ws.read_until(1, b"got:two\n")
    finally:
        ws.close()
    # the container ends: the attach reports success
    client, s = spdy_session(cri.runtime.Attach(req).url, ["error", "stdin", "stdout", "stderr"])
    try:
        sd.cli("kill", cid)
        assert status_of(client.read_all(s["error"])) == {"metadata": {}, "status": "Success"}
    finally:
        client.close()


# -- port forward -----------------------------------------------------------------------------------

@pytest.mark.parametrize("transport", ["spdy", "spdy-in-websocket"])
def test_port_forward_spdy(cri: Cri, echo_pod: str, transport: str) -> None:
    url = cri.runtime.PortForward(cri_pb.PortForwardRequest(pod_sandbox_id=echo_pod, port=[ECHO_PORT])).url
    assert "/portforward/" in url
    if transport == "spdy":
        client = SpdyClient(url, ["portforward.k8s.io"])
    else:  # client-go's port-forward over WebSockets: the SPDY connection in binary messages
        ws = WsClient(url, ["SPDY/3.1+portforward.k8s.io"])
        assert ws.protocol == "SPDY/3.1+portforward.k8s.io"
        client = SpdyClient(url, [], tunnel=WsTunnel(ws))
    assert client.response.status == 101
    try:
        for request_id in ("0", "1"):  # one connection, any number of forwarded connections
            headers = {"port": str(ECHO_PORT), "requestID": request_id}
            error = client.open({"streamType": "error", **headers})
            data = client.open({"streamType": "data", **headers})
            client.send(data, f"through the pod {request_id}\n".encode(), fin=True)
            assert client.read_all(data) == f"through the pod {request_id}\n".encode()
            assert client.read_all(error) == b""
        # nothing listens on port 9: the error stream says so
        headers = {"port": "9", "requestID": "2"}
        error = client.open({"streamType": "error", **headers})
        data = client.open({"streamType": "data", **headers})
        assert "failed to connect to localhost:9" in client.read_all(error).decode()
        # a stream without a port is refused
        bad = client.open({"streamType": "data", "requestID": "3"})
        assert client.streams[bad].reset
    finally:
        client.close()


def test_port_forward_websocket(cri: Cri, echo_pod: str) -> None:
    url = cri.runtime.PortForward(cri_pb.PortForwardRequest(pod_sandbox_id=echo_pod)).url
    ws = WsClient(f"{url}?port={ECHO_PORT}", [V4])
    try:
        port = ECHO_PORT.to_bytes(2, "little")
        assert sorted([ws.next(), ws.next()]) == [(0, port), (1, port)]
        ws.send(0, b"websocket forward\n")
        ws.read_until(0, b"websocket forward\n")
    finally:
        ws.close()


# -- URLs, tokens, bad input ------------------------------------------------------------------------

def test_token_is_single_use_and_bound_to_its_kind(cri: Cri, box: str) -> None:
    url = exec_url(cri, box, ["true"])
    client, s = spdy_session(url, ["error", "stdout", "stderr"])
    client.read_all(s["error"])
    client.close()
    assert plain_get(url).status == 404  # spent
    token = exec_url(cri, box, ["true"]).rsplit("/", 1)[1]
    base = url.split("/exec/")[0]
    assert plain_get(f"{base}/attach/{token}").status == 404  # an exec token is no attach token
    assert plain_get(f"{base}/exec/{token}").status == 404  # and the wrong use spent it
    assert plain_get(f"{base}/exec/not-a-token").status == 404
    assert plain_get(f"{base}/other/x").status == 404


def test_token_expires() -> None:
    now = [1000.0]
    cache: RequestCache[str] = RequestCache(ttl=60.0, limit=2, clock=lambda: now[0])
    kept, lapsed = cache.insert("kept"), cache.insert("lapsed")
    with pytest.raises(errors.Unavailable):
        cache.insert("third")  # too many in flight
    assert cache.consume(kept) == "kept"
    now[0] += 60.0
    assert cache.consume(lapsed) is None
    assert cache.consume(cache.insert("fresh")) == "fresh"


def test_rpc_errors(sd: Daemon, cri: Cri, box: str) -> None:
    cases = [
        (cri.runtime.Exec, cri_pb.ExecRequest(container_id=box, cmd=["true"]), grpc.StatusCode.INVALID_ARGUMENT),
        (cri.runtime.Exec, cri_pb.ExecRequest(container_id=box, cmd=["true"], tty=True, stdout=True, stderr=True),
         grpc.StatusCode.INVALID_ARGUMENT),
        (cri.runtime.Exec, cri_pb.ExecRequest(container_id=box, stdout=True), grpc.StatusCode.INVALID_ARGUMENT),
        (cri.runtime.Exec, cri_pb.ExecRequest(cmd=["true"], stdout=True), grpc.StatusCode.INVALID_ARGUMENT),
        (cri.runtime.Exec, cri_pb.ExecRequest(container_id="0" * 64, cmd=["true"], stdout=True),
         grpc.StatusCode.NOT_FOUND),
        (cri.runtime.Attach, cri_pb.AttachRequest(container_id="0" * 64, stdout=True), grpc.StatusCode.NOT_FOUND),
        (cri.runtime.PortForward, cri_pb.PortForwardRequest(), grpc.StatusCode.INVALID_ARGUMENT),
        (cri.runtime.PortForward, cri_pb.PortForwardRequest(pod_sandbox_id="0" * 64), grpc.StatusCode.NOT_FOUND),
    ]
    stopped = sd.cli("create", "busybox", "true").stdout_text.strip()
    cases.append((cri.runtime.Exec, cri_pb.ExecRequest(container_id=stopped, cmd=["true"], stdout=True),
                  grpc.StatusCode.FAILED_PRECONDITION))
    for call, req, code in cases:
        with pytest.raises(grpc.RpcError) as err:
            call(req)
        assert err.value.code() == code, (req, err.value.details())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_stream_address_flag(tmp_path: Path) -> None:
    port = _free_port()
    d = make_daemon(tmp_path, ["--cri-stream-address", f"127.0.0.1:{port}"])
    d.start()
    try:
        client = connect(cri_socket(d))
        with pytest.raises(grpc.RpcError) as err:
            client.runtime.PortForward(cri_pb.PortForwardRequest(pod_sandbox_id="nope"))
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
        client.channel.close()
        assert plain_get(f"http://127.0.0.1:{port}/exec/x").status == 404  # served where asked
    finally:
        d.teardown()
    bad = subprocess.run([DOCKYARDD, "--cri-stream-address", "localhost", "--data-root", str(tmp_path / "x")],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and "cri-stream-address" in bad.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        (tmp_path / "taken").mkdir()
        d = make_daemon(tmp_path / "taken", ["--cri-stream-address", f"127.0.0.1:{taken.getsockname()[1]}"])
        try:
            with pytest.raises(RuntimeError, match="failed to listen on 127.0.0.1:.* for streaming"):
                d.start()
        finally:
            d.stop()  # it exited before making anything but its socket's directory
            shutil.rmtree(os.path.dirname(d.socket), ignore_errors=True)



# -- the idle timeout -------------------------------------------------------------------------------

IDLE_TIMEOUT = 2  # seconds; the busy session below has traffic ten times as often


def test_idle_timeout_setting(tmp_path: Path) -> None:
    conf = tmp_path / "daemon.json"
    conf.write_text("{}")
    assert daemon_config.load(["--config-file", str(conf)]).cri_stream_idle_timeout == "4h0m0s"  # containerd's
    assert daemon_config.load(["--config-file", str(conf), "--cri-stream-idle-timeout", "0"]) \
        .cri_stream_idle_timeout == "0"
    conf.write_text(json.dumps({"cri-stream-idle-timeout": "1h30m"}))
    assert daemon_config.load(["--config-file", str(conf)]).cri_stream_idle_timeout == "1h30m"
    assert (parse_idle_timeout("1h30m"), parse_idle_timeout("0"), parse_idle_timeout("250ms")) == (5400, None, 0.25)
    for bad in ("5", "-1s", "4 hours", ""):
        with pytest.raises(errors.InvalidParameter):
            parse_idle_timeout(bad)
    for bad in ('{"cri-stream-idle-timeout": "forever"}', '{"cri-stream-idle-timeout": 30}'):
        conf.write_text(bad)
        with pytest.raises(ConfigError, match="cri-stream-idle-timeout"):
            daemon_config.load(["--config-file", str(conf)])
    res = subprocess.run([DOCKYARDD, "--cri-stream-idle-timeout", "10", "--data-root", str(tmp_path / "x")],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 1 and "cri-stream-idle-timeout: invalid stream idle timeout '10'" in res.stderr


@pytest.fixture
def idle_daemon(tmp_path: Path, busybox_tar: BuiltImage) -> Iterator[tuple[Daemon, Cri, str]]:
    d = make_daemon(tmp_path)
    d.config = {"cri-stream-idle-timeout": f"{IDLE_TIMEOUT}s"}
    d.start()
    try:
        d.cli("load", "-i", busybox_tar.path)
        cid = d.cli("run", "-d", "busybox", "sleep", "100000").stdout_text.strip()
        client = connect(cri_socket(d))
        yield d, client, cid
        client.channel.close()
    finally:
        d.teardown()


def test_idle_stream_is_closed(idle_daemon: tuple[Daemon, Cri, str]) -> None:
    d, cri, cid = idle_daemon
    # a command silent far longer than the timeout: the connection goes, well before the command ends
    client, s = spdy_session(exec_url(cri, cid, ["sleep", "100000"]), ["error", "stdout", "stderr"])
    try:
        assert client.closed.wait(30), "an idle SPDY stream was not closed"
    finally:
        client.close()
    ws = WsClient(exec_url(cri, cid, ["sleep", "100000"]), [V4])
    try:
        assert ws.next() == (1, b"")
        assert ws.messages.get(timeout=30) is None, "an idle WebSocket stream was not closed"
    finally:
        ws.close()
    assert f"closing a hijacked connection idle for {IDLE_TIMEOUT}s" in d.log() and "Traceback" not in d.log()


def test_busy_stream_is_not_closed(idle_daemon: tuple[Daemon, Cri, str]) -> None:
    _, cri, cid = idle_daemon
    lines = IDLE_TIMEOUT * 3 * 5  # three timeouts long, a line every fifth of a second
    script = f"for i in $(seq {lines}); do echo $i; sleep 0.2; done"
    client, s = spdy_session(exec_url(cri, cid, ["sh", "-c", script]), ["error", "stdout", "stderr"])
    try:
        assert client.read_all(s["stdout"]).split() == [str(i).encode() for i in range(1, lines + 1)]
        assert status_of(client.read_all(s["error"])) == {"metadata": {}, "status": "Success"}
    finally:
        client.close()
