"""Volume copy-up: an image's content copied into a fresh volume never brings anything of the host.

The image's VOLUME directory holds symlinks to ``/`` and to a host-only directory (and, in a second
image, the VOLUME path itself is such a link): the volume gets the links as links and nothing else.
And a link planted in the volume while it is filled is replaced, never written through.
"""

from __future__ import annotations

import os
import shutil
import stat
import time
import uuid

import pytest


@pytest.fixture
def host_dir():
    tag = uuid.uuid4().hex[:12]
    path = f"/tmp/dy-copyup-{tag}"
    os.mkdir(path)
    secret = f"host-secret-{uuid.uuid4().hex}".encode()
    with open(f"{path}/secret", "wb") as f:
        f.write(secret)
    yield path, tag, secret
    shutil.rmtree(path)


def _volume_files(d, volume: str) -> dict[str, os.stat_result]:
    mountpoint = d.client().volumes.get(volume).attrs["Mountpoint"]
    out = {}
    for dirpath, dirnames, filenames in os.walk(mountpoint):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            out[os.path.relpath(path, mountpoint)] = os.lstat(path)
    return out


def _contents(d, volume: str) -> bytes:
    mountpoint = d.client().volumes.get(volume).attrs["Mountpoint"]
    data = b""
    for dirpath, _, filenames in os.walk(mountpoint):
        for name in filenames:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                with open(path, "rb") as f:
                    data += f.read()
    return data


def test_copy_up_keeps_links_as_links(d, tmp_path, host_dir) -> None:
    path, tag, secret = host_dir
    context = tmp_path / "ctx"
    (context / "data").mkdir(parents=True)
    os.symlink("/", context / "data" / "root")
    os.symlink(path, context / "data" / "host")
    os.symlink("../../../..", context / "data" / "up")
    (context / "data" / "f").write_text("from the image\n")
    (context / "Dockerfile").write_text("FROM busybox\nCOPY data /data\nVOLUME /data\n")
    image, volume = f"dycopyup-{tag}", f"dycopyup-{tag}"
    d.cli("build", "-q", "-t", image, str(context))
    try:
        d.cli("run", "--rm", "--network", "none", "-v", f"{volume}:/data", image, "true")
        files = _volume_files(d, volume)
        assert set(files) == {"root", "host", "up", "f"}, files
        assert all(stat.S_ISLNK(files[n].st_mode) for n in ("root", "host", "up"))
        assert secret not in _contents(d, volume)
    finally:
        d.cli("volume", "rm", "-f", volume, check=False)
        d.cli("rmi", "-f", image, check=False)


def test_copy_up_of_a_volume_path_that_is_a_link(d, tmp_path, host_dir) -> None:
    path, tag, secret = host_dir
    context = tmp_path / "ctx"
    (context / "top").mkdir(parents=True)
    os.symlink(path, context / "top" / "data")
    (context / "Dockerfile").write_text("FROM busybox\nCOPY top/ /\nVOLUME /data\n")
    image, volume = f"dycopyup-link-{tag}", f"dycopyup-link-{tag}"
    d.cli("build", "-q", "-t", image, str(context))
    try:
        d.cli("run", "--rm", "--network", "none", "-v", f"{volume}:/data", image, "true", check=False)
        assert "secret" not in _volume_files(d, volume)
        assert secret not in _contents(d, volume)
    finally:
        d.cli("volume", "rm", "-f", volume, check=False)
        d.cli("rmi", "-f", image, check=False)


def test_copy_up_never_writes_through_links_planted_in_the_volume(d, tmp_path, host_dir) -> None:
    """A container writing into the volume while it is filled plants ``f -> <host file>`` in a loop.

    (Here it reaches the fresh volumes through a bind of the daemon's volume directory, which stands
    for a container that shares each volume.) Bounded; stops at the first overwrite.
    """
    path, tag, _ = host_dir
    target = f"{path}/target"
    with open(target, "w") as f:
        f.write("host original\n")
    context = tmp_path / "ctx"
    (context / "data").mkdir(parents=True)
    (context / "data" / "f").write_text("from the image\n")
    (context / "Dockerfile").write_text("FROM busybox\nCOPY data /data\nVOLUME /data\n")
    image = f"dycopyup-race-{tag}"
    d.cli("build", "-q", "-t", image, str(context))
    planter = f"dyplant-{tag}"
    script = f"while :; do for v in /vols/dyrace-{tag}-*/_data; do ln -s {target} $v/f; rm -f $v/f; done; done"
    d.cli("run", "-d", "--network", "none", "--name", planter, "-v", f"{d.data_root}/volumes:/vols", "busybox",
          "sh", "-c", script)
    tries = 0
    end = time.monotonic() + 15
    try:
        while time.monotonic() < end and open(target).read() == "host original\n":
            volume = f"dyrace-{tag}-{tries}"
            d.cli("volume", "create", volume)
            d.cli("run", "--rm", "--network", "none", "-v", f"{volume}:/data", image, "true", check=False)
            d.cli("volume", "rm", "-f", volume, check=False)
            tries += 1
        assert open(target).read() == "host original\n", f"copy-up wrote a host file after {tries} volumes"
        assert tries > 5, "too few tries to say anything"
    finally:
        d.cli("rm", "-f", planter, check=False)
        d.cli("rmi", "-f", image, check=False)
