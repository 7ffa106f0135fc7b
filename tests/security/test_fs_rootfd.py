"""The contract of storage/rootfd.py, the primitive every path below a container root goes through."""

from __future__ import annotations

import errno
import os

import pytest

from dockyard.storage import rootfd


@pytest.fixture
def root(tmp_path):
    (tmp_path / "r" / "dir").mkdir(parents=True)
    (tmp_path / "r" / "dir" / "f").write_text("inside")
    (tmp_path / "outside").write_text("host")
    os.symlink("/", tmp_path / "r" / "abs")
    os.symlink("../../../../..", tmp_path / "r" / "dir" / "up")
    os.symlink(str(tmp_path / "outside"), tmp_path / "r" / "hostpath")
    fd = rootfd.open_root(str(tmp_path / "r"))
    yield fd, tmp_path
    os.close(fd)


def _real(fd: int) -> str:
    return os.readlink(f"/proc/self/fd/{fd}")


@pytest.mark.parametrize("path", ["abs", "abs/abs", "dir/up", "../..", "dir/up/abs/.."])
def test_links_and_dotdot_stay_at_the_root(root, path) -> None:
    fd, tmp = root
    got = rootfd.open_in(fd, path)
    try:
        assert _real(got) == str(tmp / "r")
    finally:
        os.close(got)


def test_a_host_path_target_is_looked_up_in_the_root(root) -> None:
    fd, _ = root
    with pytest.raises(FileNotFoundError):
        rootfd.open_in(fd, "hostpath")
    link = rootfd.open_in(fd, "hostpath", follow_last=False)
    os.close(link)


def test_magic_links_are_refused() -> None:
    # a container's /proc holds magic links (/proc/1/root, /proc/self/fd/N) that jump anywhere
    fd = rootfd.open_root("/proc/self")
    try:
        with pytest.raises(OSError) as e:
            rootfd.open_in(fd, "root/etc")
        assert e.value.errno == errno.ELOOP
    finally:
        os.close(fd)


def test_open_parent_and_walk(root) -> None:
    fd, tmp = root
    parent, name = rootfd.open_parent(fd, "abs/dir/f")
    try:
        assert (name, _real(parent)) == ("f", str(tmp / "r" / "dir"))
    finally:
        os.close(parent)
    top = rootfd.reopen(fd, rootfd.DIR_FLAGS)
    try:
        names = [rel for rel, _, _ in rootfd.walk(top)]
    finally:
        os.close(top)
    assert names == ["abs", "dir", "dir/f", "dir/up", "hostpath"]
