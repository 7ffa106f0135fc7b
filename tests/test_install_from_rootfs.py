"""`dockyard image from-rootfs`: a first image on a daemon that has none and no registry to pull from."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import Daemon

DOCKYARD = str(Path(sys.executable).parent / "dockyard")


def dockyard(d: Daemon, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([DOCKYARD, *args], env=d.env(), capture_output=True, text=True, timeout=120)


def test_busybox_from_the_host_runs_echo(daemon: Daemon):
    assert daemon.cli("images", "-q").stdout_text == ""  # nothing loaded, nothing to pull
    res = dockyard(daemon, "image", "from-rootfs", "--busybox", "firstbox:latest")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().startswith("sha256:")
    assert daemon.cli("run", "--rm", "firstbox", "echo", "hello").stdout_text == "hello\n"
    # CMD sh, as Docker Hub's busybox; applets are links to /bin/busybox, users known
    out = daemon.cli("run", "--rm", "-i", "firstbox", input="readlink /bin/ls; id -un; ls -d /tmp\n").stdout_text
    assert out.split() == ["/bin/busybox", "root", "/tmp"]
    assert daemon.cli("run", "--rm", "--user", "nobody", "firstbox", "id", "-u").stdout_text == "65534\n"


def test_from_a_directory(daemon: Daemon, tmp_path: Path):
    root = tmp_path / "rootfs"
    (root / "bin").mkdir(parents=True)
    shutil.copy("/bin/busybox", root / "bin" / "busybox")
    os.symlink("busybox", root / "bin" / "sh")
    (root / "greeting").write_text("hello from a directory\n")
    os.symlink("/etc/shadow", root / "hostlink")  # taken as a link, not as the host's file
    res = dockyard(daemon, "image", "from-rootfs", "-c", 'CMD ["/bin/sh"]', str(root), "mydir:v1")
    assert res.returncode == 0, res.stderr
    assert daemon.cli("run", "--rm", "mydir:v1", "/bin/busybox", "cat", "/greeting").stdout_text == \
        "hello from a directory\n"
    assert daemon.cli("run", "--rm", "mydir:v1", "/bin/busybox", "readlink", "/hostlink").stdout_text == \
        "/etc/shadow\n"
    assert daemon.cli("image", "inspect", "-f", "{{json .Config.Cmd}}", "mydir:v1").stdout_text.strip() == \
        '["/bin/sh"]'


def test_bad_invocations(daemon: Daemon, tmp_path: Path):
    both = dockyard(daemon, "image", "from-rootfs", "--busybox", str(tmp_path), "x:1")
    assert both.returncode != 0 and "takes DIR NAME[:TAG], or --busybox NAME[:TAG]" in both.stderr
    missing = dockyard(daemon, "image", "from-rootfs", str(tmp_path / "nope"), "x:1")
    assert missing.returncode != 0 and "not a directory" in missing.stderr
    bad = dockyard(daemon, "image", "from-rootfs", "--busybox", "Bad..Name")
    assert bad.returncode != 0 and bad.stderr.strip()
    notstatic = tmp_path / "fake-busybox"
    notstatic.write_bytes(b"#!/bin/sh\n")
    from dockyard.cli import fromrootfs
    assert not fromrootfs.is_static_elf(str(notstatic))
    assert fromrootfs.is_static_elf("/bin/busybox")
    assert not fromrootfs.is_static_elf(os.path.realpath(sys.executable))  # linked against libc
