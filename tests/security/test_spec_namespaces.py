"""Issue 12 item 4: `--network host` shares the network namespace only; the UTS one only with `--uts=host`."""

from __future__ import annotations

import os
import socket


def _host_hostname() -> str:
    with open("/proc/sys/kernel/hostname", encoding="ascii") as f:
        return f.read().strip()


def test_network_host_cannot_rename_the_host(d) -> None:
    before = _host_hostname()
    try:
        d.cli("run", "--rm", "--network", "host", "--cap-add", "SYS_ADMIN", "busybox", "hostname", "dy-evil",
              check=False)
        assert _host_hostname() == before
    finally:
        if _host_hostname() != before:
            with open("/proc/sys/kernel/hostname", "w", encoding="ascii") as f:
                f.write(before)


def test_network_host_has_a_private_uts_namespace_named_as_the_host(d) -> None:
    out = d.cli("run", "--rm", "--network", "host", "busybox", "sh", "-c",
                "readlink /proc/self/ns/uts; readlink /proc/self/ns/net; hostname").stdout_text.split()
    assert out[0] != os.readlink("/proc/self/ns/uts")
    assert out[1] == os.readlink("/proc/self/ns/net")
    assert out[2] == socket.gethostname()  # dockerd's default name for a host-network container


def test_uts_host_shares_it(d) -> None:
    out = d.cli("run", "--rm", "--uts", "host", "busybox", "sh", "-c",
                "readlink /proc/self/ns/uts; hostname").stdout_text.split()
    assert out == [os.readlink("/proc/self/ns/uts"), _host_hostname()]


def test_uts_mode_refused_when_unknown(d) -> None:
    res = d.api()
    body = {"Image": "busybox", "HostConfig": {"UTSMode": "container:x"}}
    r = res.post(res._url("/containers/create"), json=body)
    assert r.status_code == 400 and "invalid UTS mode: container:x" in r.json()["message"]
