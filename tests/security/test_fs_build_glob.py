"""Build: COPY globs are matched inside the context, never through a symlink that leads to the host.

The context holds ``evil -> /``; a glob through it must neither copy host files into the image nor
make the daemon list a host directory (seen with inotify on a directory only the host has). The
answer is dockerd's classic builder's (checked against Debian's dockerd 20.10): globs never enter a
symlink, so every pattern here matches nothing.
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
import uuid

import pytest

IN_ACCESS, IN_OPEN = 0x1, 0x20


class Watch:
    """inotify on one directory: was it opened or read (listed) since the watch began?"""

    def __init__(self, path: str) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        self.fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        assert self.fd >= 0, os.strerror(ctypes.get_errno())
        assert libc.inotify_add_watch(self.fd, os.fsencode(path), IN_ACCESS | IN_OPEN) >= 0

    def touched(self) -> bool:
        try:
            return bool(os.read(self.fd, 4096))
        except OSError as e:
            assert e.errno == errno.EAGAIN
            return False

    def close(self) -> None:
        os.close(self.fd)


@pytest.fixture
def host_dir():
    """A host-only directory with a secret in it; the test's context reaches it only through ``evil -> /``."""
    tag = uuid.uuid4().hex[:12]
    path = f"/tmp/dy-glob-{tag}"
    os.mkdir(path)
    secret = f"host-secret-{uuid.uuid4().hex}".encode()
    with open(f"{path}/passwd-{tag}", "wb") as f:
        f.write(secret)
    yield path, tag, secret
    shutil.rmtree(path)


@pytest.mark.parametrize("pattern", ["evil{dir}/pass*", "evil{dir}/*", "evil/tmp/dy-glob-*/pass*", "evil/*"])
def test_copy_glob_stays_in_context(d, tmp_path, host_dir, pattern) -> None:
    path, tag, secret = host_dir
    context = tmp_path / "ctx"
    context.mkdir()
    os.symlink("/", context / "evil")
    (context / "Dockerfile").write_text(f"FROM busybox\nCOPY {pattern.format(dir=path)} /x/\n")
    image = f"dyglob-{tag}"
    watch = Watch(path)
    try:
        res = d.cli("build", "-q", "-t", image, str(context), check=False)
        assert not watch.touched(), "the build listed or opened a host directory"
        if res.returncode == 0:
            assert secret not in d.cli("save", image).stdout, "a host file was copied into the image"
        # dockerd's classic builder (20.10) never enters a symlink when it matches a glob
        assert res.returncode != 0 and "COPY failed: no source files were specified" in res.stderr_text, \
            res.stderr_text
    finally:
        watch.close()
        d.cli("rmi", "-f", image, check=False)
