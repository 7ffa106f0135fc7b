"""In-process contracts of the front-end-neutral pieces: the stdio streams (conmon's attach socket
protocol, detach keys, half-close), the shared label/until selection, the container model's
defaults and the image index's lock-free reads. No daemon."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import socket
import threading
from dataclasses import dataclass, field
from typing import Any

import pytest

from dockyard import errors
from dockyard.images.content import ContentStore
from dockyard.util.reference import parse as parse_ref
from dockyard.images.store import ImageStore
from dockyard.model.container import HostConfig, host_config_json, to_json
from dockyard.runtime.shim import STDERR as SHIM_STDERR
from dockyard.runtime.shim import STDOUT as SHIM_STDOUT
from dockyard.streams import attach
from dockyard.streams import exec as execstream
from dockyard.streams.detach import Scanner, parse_keys
from dockyard.streams.duplex import encoder, frame
from dockyard.util.filters import LabelSelector


class FakeClient:
    """A Duplex fed from a list of inputs (b"" closes its side), recording what it is sent."""

    def __init__(self, inputs: list[bytes]) -> None:
        self.inputs: asyncio.Queue[bytes] = asyncio.Queue()
        for item in inputs:
            self.inputs.put_nowait(item)
        self.sent: list[bytes] = []
        self.closed = False

    async def read(self) -> bytes:
        return await self.inputs.get()

    async def write(self, data: bytes) -> None:
        self.sent.append(data)

    def close(self) -> None:
        self.closed = True


def _stdio(tty: bool = False, open_stdin: bool = True, stdin_once: bool = False) -> attach.ContainerStdio:
    return attach.ContainerStdio("c1", tty, open_stdin, stdin_once, logged=False)


def _recv_all(sock: socket.socket) -> list[bytes]:
    packets = []
    while packet := sock.recv(1 << 16):
        packets.append(packet)
    return packets


# -- detach keys ---------------------------------------------------------------------------------
def test_detach_keys_parse_as_moby_and_name_their_kind() -> None:
    assert parse_keys("ctrl-p,ctrl-q") == b"\x10\x11"
    assert parse_keys("ctrl-@,a,ctrl-_") == b"\x00a\x1f"
    assert parse_keys("") == b""
    with pytest.raises(errors.InvalidParameter, match=r"Invalid escape keys \(ctrl-1\) provided"):
        parse_keys("ctrl-1", "escape")


def test_scanner_holds_back_a_split_sequence_and_releases_a_false_start() -> None:
    s = Scanner(b"\x10\x11")
    assert s.feed(b"ab\x10") == (b"ab", False)  # the ctrl-p may start the sequence: held
    assert s.feed(b"x") == (b"\x10x", False)  # it did not
    assert s.feed(b"\x10\x10") == (b"\x10", False)  # a second ctrl-p restarts the match
    assert s.feed(b"\x11tail") == (b"", True)
    assert Scanner(b"").feed(b"\x10\x11") == (b"\x10\x11", False)


# -- conmon's attach socket ----------------------------------------------------------------------
def test_attach_frames_the_chosen_streams_and_packets_stdin() -> None:
    async def run() -> tuple[FakeClient, list[bytes]]:
        shim, ours = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        shim.sendall(bytes([SHIM_STDOUT]) + b"out")
        shim.sendall(bytes([SHIM_STDERR]) + b"err")
        big = b"x" * (attach.STDIN_PACKET + 10)
        client = FakeClient([big, b""])
        opts = attach.AttachOptions(_stdio(stdin_once=True), stdin=True, stdout=True, stderr=False,
                                    detach_keys=b"\x10\x11")
        task = asyncio.create_task(attach.pump(ours, client, opts, encoder(True)))
        # stdin_once: the client's EOF is the process's, as a shutdown of the write side
        received = await asyncio.to_thread(_recv_all, shim)
        shim.close()  # the shim ends the output
        await asyncio.wait_for(task, 10)
        return client, received

    client, received = asyncio.run(run())
    assert client.sent == [frame(1, b"out")]  # stderr was not asked for
    assert [len(p) for p in received] == [attach.STDIN_PACKET, 10]
    assert client.closed


def test_attach_with_a_tty_ends_at_the_detach_keys() -> None:
    async def run() -> tuple[FakeClient, list[bytes]]:
        shim, ours = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        client = FakeClient([b"ls\x10", b"\x11more"])
        opts = attach.AttachOptions(_stdio(tty=True), stdin=True, stdout=True, stderr=True,
                                    detach_keys=b"\x10\x11")
        await asyncio.wait_for(attach.pump(ours, client, opts, encoder(False)), 10)
        typed = await asyncio.to_thread(_recv_all, shim)  # ends: the attach let go of the socket
        shim.close()
        return client, typed

    client, typed = asyncio.run(run())
    assert typed == [b"ls"]  # the keys and what followed them never reach the process
    assert client.closed


# -- exec pipes --------------------------------------------------------------------------------------
@dataclass
class FakeExec:
    tty: bool = False
    attach_stdout: bool = True
    attach_stderr: bool = True
    detach_keys: str = ""
    error: str = ""
    done: concurrent.futures.Future[Any] = field(default_factory=concurrent.futures.Future)


@dataclass
class FakeSession:
    exec: FakeExec
    stdin: int | None
    stdout: int | None
    stderr: int | None


def test_exec_pipes_carry_input_to_its_eof_and_frame_the_output() -> None:
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    process = FakeExec()
    session = FakeSession(process, in_w, out_r, None)
    client = FakeClient([b"hello", b""])

    def the_process() -> None:
        with os.fdopen(in_r, "rb") as stdin:
            typed = stdin.read()  # to EOF: the client's half-close reached the process
        os.write(out_w, typed.upper())
        os.close(out_w)
        process.done.set_result(0)

    async def run() -> execstream.Ending:
        worker = asyncio.create_task(asyncio.to_thread(the_process))
        ending = await asyncio.wait_for(execstream.pump(session, client, encoder(True), lambda: None), 10)
        await worker
        return ending

    assert asyncio.run(run()) is execstream.Ending.EXITED
    assert session.stdin is None  # closed by the pump, so the caller does not close it again
    assert b"".join(client.sent) == frame(1, b"HELLO")
    os.close(out_r)


def test_exec_with_a_tty_detaches_on_its_own_keys() -> None:
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    process = FakeExec(tty=True, detach_keys="ctrl-x")
    session = FakeSession(process, in_w, out_r, None)
    client = FakeClient([b"ab\x18cd"])

    async def run() -> execstream.Ending:
        return await asyncio.wait_for(execstream.pump(session, client, encoder(False), lambda: None), 10)

    assert asyncio.run(run()) is execstream.Ending.DETACHED
    assert os.read(in_r, 100) == b"ab"
    assert not process.done.done() and session.stdin == in_w  # the process runs on, its stdin open
    for fd in (in_r, in_w, out_r, out_w):
        os.close(fd)


# -- label / until ---------------------------------------------------------------------------------
def test_label_selector_is_dockerds_prune_filter() -> None:
    sel = LabelSelector.of({"label": ["a"], "label!": ["b=1", "c"]})
    assert sel.selects({"a": "x"})
    assert not sel.selects({"b": "1"})  # no label a
    assert sel.selects({"a": "", "b": "1"})  # spared only when every label! holds
    assert not sel.selects({"a": "", "b": "1", "c": "2"})
    assert LabelSelector.of({"label!": ["b"]}).selects({})  # no labels: never spared by label!
    until = LabelSelector(until_ns=2_000)
    assert until.selects({}, 1_999) and not until.selects({}, 2_000)
    assert until.selects({}, None)  # nothing to compare: not filtered


# -- the model -------------------------------------------------------------------------------------
def test_host_config_defaults_in_dockerds_order_under_what_was_stored() -> None:
    shown = host_config_json({"Memory": 1 << 20, "LogConfig": {"Type": "json-file"}}, "crun")
    keys = list(shown)
    assert keys[:3] == ["Binds", "ContainerIDFile", "NetworkMode"] and keys[-1] == "LogConfig"
    assert shown["Memory"] == 1 << 20 and shown["Runtime"] == "crun"
    assert shown["RestartPolicy"] == {"Name": "no", "MaximumRetryCount": 0}
    assert shown["ShmSize"] == 64 * 1024 * 1024 and shown["ConsoleSize"] == [0, 0]
    a, b = to_json(HostConfig()), to_json(HostConfig())
    a["Dns"].append("1.1.1.1")
    assert b["Dns"] == []  # no default shared between instances
    assert len(b) == 48


# -- the image index -------------------------------------------------------------------------------
def test_image_reads_do_not_wait_for_a_writer_holding_the_lock(tmp_path) -> None:
    store = ImageStore(str(tmp_path), ContentStore(str(tmp_path)))
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}})
    image, _ = store.add(config.encode())
    store.tag(parse_ref("busybox:latest"), image.id)

    held, release = threading.Event(), threading.Event()

    def writer() -> None:
        with store.lock:  # as a tag does across its fsyncs
            held.set()
            release.wait(30)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert held.wait(10)
        read: list[str] = []
        reader = threading.Thread(target=lambda: read.append(store.resolve("busybox").id))
        reader.start()
        reader.join(10)
        assert read == [image.id]
        assert [i.repo_tags for i in store.images.values()] == [["busybox:latest"]]
    finally:
        release.set()
        thread.join()
    store.untag(parse_ref("busybox:latest"))
    with pytest.raises(errors.NotFound):
        store.resolve("busybox")
    assert store.images[image.id].repo_tags == []
