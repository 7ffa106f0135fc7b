"""Attach waits only for the shim's attach socket, never for the lifecycle lock (containers/attachgate.py)."""

from __future__ import annotations

import concurrent.futures
import socket
import threading

import pytest

from dockyard import errors
from dockyard.containers.attachgate import AttachGate
from inprocess_engine import engine_with_busybox, sleeper


def test_the_gate_connects_waits_and_fails() -> None:
    gate = AttachGate()
    ends = []

    def connect() -> socket.socket:
        a, b = socket.socketpair()
        ends.append(b)
        return a

    early = gate.request("c1")
    assert not early.done()
    gate.open("c1", connect)
    assert isinstance(early.result(0), socket.socket)
    assert isinstance(gate.request("c1").result(0), socket.socket)  # connected at once while the shim is up
    gate.close("c1")
    later = gate.request("c1")
    assert not later.done()  # waits for the next start
    gate.fail("c1", errors.Conflict("container c1 was removed"))
    with pytest.raises(errors.Conflict, match="was removed"):
        later.result(0)
    assert gate.tracked() == 0
    for s in ends:
        s.close()


def test_a_refused_connect_is_the_callers_error() -> None:
    gate = AttachGate()

    def refuse() -> socket.socket:
        raise errors.Conflict("cannot attach to container c1: No such file or directory")

    gate.open("c1", refuse)
    with pytest.raises(errors.Conflict):
        gate.request("c1")


@pytest.fixture
def engine(tmp_path, busybox_tar):
    yield from engine_with_busybox(tmp_path, busybox_tar.path)


def test_attach_does_not_wait_for_the_lifecycle_lock(engine) -> None:
    cid = sleeper(engine)
    held, release = threading.Event(), threading.Event()

    def hold() -> None:  # as a start or an exit's teardown does, for as long as runc and the mounts take
        with engine.containers.table.op_lock(cid):
            held.set()
            release.wait(60)

    holder = threading.Thread(target=hold)
    holder.start()
    pool = concurrent.futures.ThreadPoolExecutor(1)
    try:
        assert held.wait(10)
        sock = pool.submit(lambda: engine.containers.attach_socket(cid).result(10)).result(10)
        sock.close()
    finally:
        release.set()  # first: an attach stuck behind the lock must not outlive the test
        holder.join()
        pool.shutdown()
