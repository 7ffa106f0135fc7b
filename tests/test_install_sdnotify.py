"""sd_notify: what a Type=notify unit's systemd hears from dockyardd, heard here on a socket of the test's own."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest

from conftest import Daemon, make_daemon


def receive(sock: socket.socket, want: str, timeout: float = 20) -> list[str]:
    """Every message until one holding the line ``want``."""
    got: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            msg = sock.recv(4096).decode()
        except TimeoutError:
            break
        got.append(msg)
        if want in msg.splitlines():
            return got
    raise AssertionError(f"no {want} within {timeout} s; got {got}")


@pytest.fixture
def dd(tmp_path: Path):
    d = make_daemon(tmp_path)
    yield d
    d.teardown()


def listen(address: str | bytes) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(address)
    return s


def test_ready_after_start_stopping_on_sigterm(dd: Daemon, monkeypatch, busybox_tar):
    path = str(dd.base / "notify.sock")
    with listen(path) as sock:
        monkeypatch.setenv("NOTIFY_SOCKET", path)  # the daemon inherits the test's environment
        dd.start()
        ready = receive(sock, "READY=1")
        assert f"MAINPID={dd.proc.pid}" in ready[-1].splitlines()
        # the daemon's notification socket is its own: runc does not set up a notify proxy for containers
        dd.cli("load", "-i", busybox_tar.path)
        mounts = dd.cli("run", "--rm", "busybox", "cat", "/proc/mounts").stdout_text
        assert "notify" not in mounts
        env = dd.cli("run", "--rm", "busybox", "env").stdout_text
        assert "NOTIFY_SOCKET" not in env
        assert dd.stop() == 0
        assert "STOPPING=1" in receive(sock, "STOPPING=1")[-1].splitlines()


def test_abstract_socket_and_watchdog(dd: Daemon, monkeypatch):
    name = f"dockyard-test-{os.getpid()}-{dd.base.name}"
    with listen(b"\0" + name.encode()) as sock:
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        monkeypatch.setenv("WATCHDOG_USEC", "400000")
        dd.start()
        receive(sock, "READY=1")
        pings = [receive(sock, "WATCHDOG=1") for _ in range(3)]
        assert all(p[-1] == "WATCHDOG=1" for p in pings)
        dd.stop()


def test_watchdog_for_another_pid_is_not_pinged(dd: Daemon, monkeypatch):
    path = str(dd.base / "notify.sock")
    with listen(path) as sock:
        monkeypatch.setenv("NOTIFY_SOCKET", path)
        monkeypatch.setenv("WATCHDOG_USEC", "200000")
        monkeypatch.setenv("WATCHDOG_PID", "1")
        dd.start()
        receive(sock, "READY=1")
        sock.settimeout(1.0)
        with pytest.raises(TimeoutError):
            sock.recv(4096)
        dd.stop()


def test_unreachable_notify_socket_does_not_stop_the_daemon(dd: Daemon, monkeypatch):
    monkeypatch.setenv("NOTIFY_SOCKET", str(dd.base / "nobody-listens.sock"))
    dd.start()
    assert dd.cli("version", "--format", "{{.Server.Version}}").stdout_text.strip()
    assert "sd_notify READY=1" in dd.log()
