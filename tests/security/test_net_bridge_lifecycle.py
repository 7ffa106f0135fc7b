"""Finding 19 (network half): the default bridge is made again when it vanished, and kept across stops.

A default bridge deleted under the daemon made every later start fail (``bridge ... is missing``) until
the daemon restarted; and a daemon that stopped deleted its default bridge, taking it from under any
other daemon configured with the same bridge name. dockerd keeps docker0 across restarts.
"""

from __future__ import annotations

import subprocess


def _exists(name: str) -> bool:
    return subprocess.run(["ip", "link", "show", name], capture_output=True).returncode == 0


def test_deleted_default_bridge_is_made_again(fresh_daemon, busybox_tar) -> None:
    d = fresh_daemon
    d.start()
    d.cli("load", "-i", busybox_tar.path)
    bridge = d.bridge_args()[1]
    d.cli("run", "--rm", "busybox", "true")
    assert subprocess.run(["ip", "link", "del", bridge]).returncode == 0
    for _ in range(2):  # the first start makes it again, and the next finds it there
        out = d.cli("run", "--rm", "-p", "127.0.0.1::80", "busybox", "ip", "route", timeout=60).stdout_text
        assert "default via" in out, out
    assert _exists(bridge)


def test_default_bridge_kept_across_stop(fresh_daemon, busybox_tar) -> None:
    d = fresh_daemon
    d.start()
    d.cli("load", "-i", busybox_tar.path)
    bridge = d.bridge_args()[1]
    d.cli("run", "--rm", "busybox", "true")
    d.stop()
    assert _exists(bridge), "a stopped daemon deleted its default bridge"
    d.start()  # and the next start adopts it as it is
    d.cli("run", "--rm", "busybox", "true")
    # the fixture's teardown deletes the bridge and the rules naming it


def test_deleted_iptables_chains_are_made_again(fresh_daemon, busybox_tar, tmp_path, monkeypatch) -> None:
    """The daemon runs in a network namespace of its own, so flushing its iptables touches nobody else."""
    import conftest

    wrapper = tmp_path / "dockyardd-netns"
    wrapper.write_text(f"#!/bin/sh\nexec unshare --net -- sh -c 'ip link set lo up && exec \"$0\" \"$@\"' "
                       f"{conftest.DOCKYARDD} \"$@\"\n")
    wrapper.chmod(0o755)
    monkeypatch.setattr(conftest, "DOCKYARDD", str(wrapper))
    d = fresh_daemon
    d.start()
    d.cli("load", "-i", busybox_tar.path)
    d.cli("run", "--rm", "-p", "127.0.0.1::80", "busybox", "true")
    in_ns = ["nsenter", f"--net=/proc/{d.proc.pid}/ns/net", "--"]
    for table in ("nat", "filter", "raw"):
        for op in ("-F", "-X"):  # every rule, then every chain of the daemon's namespace
            subprocess.run([*in_ns, "iptables", "-w", "-t", table, op], check=True)
    for _ in range(2):
        d.cli("run", "--rm", "-p", "127.0.0.1::80", "busybox", "true", timeout=60)
    nat = subprocess.run([*in_ns, "iptables-save", "-t", "nat"], capture_output=True, text=True).stdout
    assert "-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKYARD" in nat, nat
    assert "MASQUERADE" in nat  # the network's own rules came back with the chains
