"""``GET /containers/{id}/attach/ws`` side by side with the reference dockerd, through a WebSocket
client (wsproto's, over the unix socket): log replay, live streams, stdin, frame types."""

from __future__ import annotations

import socket
import time

import docker
import pytest
from wsproto import ConnectionType, WSConnection
from wsproto.events import (AcceptConnection, BytesMessage, CloseConnection, Message, RejectConnection,
                            RejectData, Request)

import refdocker

pytestmark = pytest.mark.skipif(not refdocker.available(),
                                reason="the reference dockerd is not installed (apt-get install docker.io)")


def _session(engine, target: str, send: list[bytes] = (), quiet: float = 1.0) -> list:
    """What a WebSocket client sees (handshake answer, messages, close), sending ``send`` once the
    first answers are in; it hangs up after ``quiet`` seconds without anything from the daemon."""
    sock = socket.socket(socket.AF_UNIX)
    sock.connect(engine.socket)
    sock.settimeout(quiet)
    ws = WSConnection(ConnectionType.CLIENT)
    sock.sendall(ws.send(Request(host="docker", target=target)))
    seen: list = []
    pending = list(send)
    try:
        while True:
            try:
                data = sock.recv(65536)
            except socket.timeout:
                if not pending:
                    break
                for message in pending:
                    sock.sendall(ws.send(BytesMessage(data=message)))
                pending = []
                continue
            ws.receive_data(data or None)
            for event in ws.events():
                if isinstance(event, Message):
                    seen.append((type(event).__name__, bytes(event.data) if isinstance(event.data, bytearray)
                                 else event.data))
                elif isinstance(event, CloseConnection):
                    seen.append(("close", int(event.code)))
                elif isinstance(event, RejectConnection):
                    seen.append(("reject", event.status_code))
                elif isinstance(event, RejectData):
                    seen.append(("reject-data", bytes(event.data).replace(b'": "', b'":"')))
                elif isinstance(event, AcceptConnection):
                    seen.append(("accept",))
            if not data:
                break
    finally:
        sock.close()
    return seen


def _merged(seen: list) -> list:
    """``seen`` with adjacent messages of one type joined."""
    out: list = []
    for event in seen:
        if out and event[0].endswith("Message") and out[-1][0] == event[0]:
            out[-1] = (event[0], out[-1][1] + event[1])
        else:
            out.append(event)
    return out


@pytest.fixture
def cats(d, ref):
    """A `cat` that wrote a line to each stream, on each engine."""
    out = {}
    for name, engine in (("dockyard", d), ("dockerd", ref)):
        api = docker.APIClient(base_url=engine.host, version="1.41", timeout=60)
        cid = api.create_container("busybox", ["sh", "-c", "echo out1; sleep 0.2; echo err1 >&2; exec cat"],
                                   stdin_open=True)["Id"]
        api.start(cid)
        deadline = time.monotonic() + 10
        while len(api.logs(cid)) < 10 and time.monotonic() < deadline:
            time.sleep(0.05)
        out[name] = (engine, cid)
    yield out
    for engine, cid in out.values():
        docker.APIClient(base_url=engine.host, version="1.41").remove_container(cid, force=True)


@pytest.mark.parametrize("query,send,version", [
    ("logs=1&stdout=1&stderr=1", [], "1.41"),
    ("logs=1&stdout=1", [], "1.41"),
    ("logs=1&stream=1&stdin=1&stdout=1&stderr=1", [b"hello\n"], "1.41"),
    ("stream=1&stdin=1&stdout=1", [b"one\n", b"two\n"], "1.41"),
    ("logs=1&stderr=1", [], "1.27"),
    ("logs=1&stdout=1", [], "1.42"),
    ("logs=1&stream=1&stdin=1&stderr=1", [b"three\n"], "1.42"),
], ids=["logs", "logs-stdout", "logs-stream-stdin", "stream-stdin", "text-frames-1.27", "stdout-1.42",
        "stderr-1.42"])
def test_attach_ws_as_dockerd(cats, query, send, version):
    """Before API 1.42 every stream is attached, whatever the query (and dockerd 20.10 is the reference);
    from 1.42 the query is honoured, which only dockyard is checked for."""
    engines = cats if version < "1.42" else {"dockyard": cats["dockyard"]}
    got = {name: _session(engine, f"/v{version}/containers/{cid}/attach/ws?{query}", send)
           for name, (engine, cid) in engines.items()}
    if version < "1.42":
        # how cat's reads (so its echoes) fall into messages depends on timing, on dockerd too
        assert _merged(got["dockyard"]) == _merged(got["dockerd"])
    seen = got["dockyard"]
    assert seen[0] == ("accept",)
    out, err = ("BytesMessage", b"out1\n"), ("BytesMessage", b"err1\n")
    if version >= "1.42":
        assert (out in seen) == ("stdout=1" in query) and (err in seen) == ("stderr=1" in query)
    if send:  # cat echoes the input on stdout (in as many messages as it read)
        echoed = b"".join(m[1] for m in seen if m[0] == "BytesMessage")
        assert (b"".join(send) in echoed) == ("stdout=1" in query or version < "1.42")


def test_attach_ws_missing_container(d, ref):
    got = [_session(engine, "/v1.41/containers/nosuch/attach/ws?stream=1&stdout=1") for engine in (d, ref)]
    assert got[0] == got[1]
    assert got[0][0] == ("reject", 404)
