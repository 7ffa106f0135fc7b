"""Issue 12 item 2: a volume-subpath that another container swaps for a symlink to `/` must never mount the host.

Container A shares the volume and exchanges `sub` (a directory) with `lnk` (a symlink to `/`) in a loop;
container B is started again and again with `volume-subpath=sub`. Whatever B's start answers, B must
never see the host's root at its target, and nothing B writes there may land on the host.
"""

from __future__ import annotations

import os
import secrets
import time

from swap import swapper_binary

RACE_SECONDS = 15


def test_subpath_swapped_for_symlink_never_mounts_host_root(d) -> None:
    marker = f"dy-subpath-marker-{secrets.token_hex(8)}"
    host_marker = os.path.join("/tmp", marker)
    wrote = f"dy-subpath-wrote-{secrets.token_hex(8)}"
    with open(host_marker, "w") as f:
        f.write("HOST-SECRET\n")
    vol = f"race{secrets.token_hex(4)}"
    swapper = swapper_binary()
    try:
        d.cli("run", "--rm", "-v", f"{vol}:/v", "busybox", "sh", "-c", "mkdir /v/sub && ln -s / /v/lnk")
        d.cli("run", "-d", "--name", f"{vol}-a", "-v", f"{vol}:/v", "-v", f"{swapper}:/swap:ro", "busybox",
              "/swap", "/v/sub", "/v/lnk", str(RACE_SECONDS + 10))
        started = refused = 0
        deadline = time.monotonic() + RACE_SECONDS
        while time.monotonic() < deadline:
            res = d.cli("run", "--rm", "--mount", f"type=volume,src={vol},dst=/x,volume-subpath=sub", "busybox",
                        "sh", "-c", f"ls /x; cat /x/tmp/{marker} 2>/dev/null; touch /x/{wrote}", check=False,
                        timeout=60)
            out = res.stdout_text
            assert "HOST-SECRET" not in out and "proc" not in out.split(), f"host root mounted in B:\n{out}"
            assert not os.path.exists(os.path.join("/", wrote)), "B wrote into the host's root"
            if res.returncode == 0:
                started += 1
            else:
                refused += 1
                # refused with the reason, never a 500 or a hang
                assert "cannot access path" in res.stderr_text or "escapes" in res.stderr_text, res.stderr_text
        assert started and refused, (started, refused)  # the race was really run both ways
    finally:
        d.cli("rm", "-f", f"{vol}-a", check=False)
        d.cli("volume", "rm", "-f", vol, check=False)
        os.unlink(host_marker)
        if os.path.exists(os.path.join("/", wrote)):
            os.unlink(os.path.join("/", wrote))


def test_subpath_pins_leave_no_mount_behind(d) -> None:
    """The fd-pinned staging mount exists only while the container runs; `rm -f` leaves nothing."""
    vol = f"pin{secrets.token_hex(4)}"
    d.cli("run", "--rm", "-v", f"{vol}:/v", "busybox", "mkdir", "/v/sub")
    before = _mountinfo()
    cid = d.cli("run", "-d", "--mount", f"type=volume,src={vol},dst=/x,volume-subpath=sub", "busybox",
                "sleep", "60").stdout_text.strip()
    try:
        during = _mountinfo()
        assert any(vol in line for line in during - before)  # the staging mount of the pinned subpath
    finally:
        d.cli("rm", "-f", cid)
        d.cli("volume", "rm", vol)
    leaked = [line for line in _mountinfo() - before if vol in line or cid in line or "subpath" in line]
    assert not leaked, leaked


def _mountinfo() -> set[str]:
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        return {" ".join(line.split()[3:5]) for line in f}
