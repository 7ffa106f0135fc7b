"""Hostile tars against the safe extractor: nothing may land outside the target."""

from __future__ import annotations

import io
import os
import stat
import tarfile

import pytest

from dockyard.util.archive import UnsafeArchive, extract


def _tar(entries: list[tuple[str, bytes, str, bytes | None]], pax: dict | None = None) -> io.BytesIO:
    """entries: (name, type, linkname, data)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, link, data in entries:
            ti = tarfile.TarInfo(name)
            ti.type = kind
            ti.linkname = link
            ti.mode = 0o644 if kind == tarfile.REGTYPE else 0o755
            if pax and name in pax:
                ti.pax_headers = pax[name]
            if data is not None:
                ti.size = len(data)
                tar.addfile(ti, io.BytesIO(data))
            else:
                tar.addfile(ti)
    buf.seek(0)
    return buf


@pytest.fixture
def box(tmp_path):
    """A target dir inside a sandbox; anything outside the target but inside the sandbox is an escape."""
    target = tmp_path / "target"
    target.mkdir()
    (tmp_path / "outside").mkdir()
    return tmp_path, target


def _outside_files(sandbox) -> list[str]:
    found = []
    for dirpath, dirnames, filenames in os.walk(sandbox):
        if os.path.abspath(dirpath).startswith(str(sandbox / "target")):
            continue
        found += [os.path.join(dirpath, f) for f in filenames]
    return found


def test_dotdot_refused(box):
    sandbox, target = box
    with pytest.raises(UnsafeArchive):
        extract(_tar([("../outside/evil", tarfile.REGTYPE, "", b"x")]), str(target))
    with pytest.raises(UnsafeArchive):
        extract(_tar([("a/../../outside/evil", tarfile.REGTYPE, "", b"x")]), str(target))
    assert _outside_files(sandbox) == []


def test_absolute_path_is_rooted(box):
    sandbox, target = box
    extract(_tar([(f"{sandbox}/outside/evil", tarfile.REGTYPE, "", b"x")]), str(target))
    assert _outside_files(sandbox) == []
    assert (target / str(sandbox).lstrip("/") / "outside" / "evil").read_bytes() == b"x"


def test_symlink_in_same_tar_is_contained(box):
    sandbox, target = box
    extract(_tar([("link", tarfile.SYMTYPE, str(sandbox / "outside"), None),
                  ("link/evil", tarfile.REGTYPE, "", b"x"),
                  ("rel", tarfile.SYMTYPE, "../../outside", None),
                  ("rel/evil2", tarfile.REGTYPE, "", b"y")]), str(target))
    assert _outside_files(sandbox) == []
    # the symlinks stay as written; what went through them landed inside the target
    assert os.readlink(target / "link") == str(sandbox / "outside")
    assert (target / str(sandbox).lstrip("/") / "outside" / "evil").read_bytes() == b"x"
    assert (target / "outside" / "evil2").read_bytes() == b"y"


def test_existing_symlink_in_target_is_contained(box):
    sandbox, target = box
    os.symlink(str(sandbox / "outside"), target / "pre")
    extract(_tar([("pre/evil", tarfile.REGTYPE, "", b"x")]), str(target))
    assert _outside_files(sandbox) == []


def test_file_over_symlink_replaces_the_link(box):
    sandbox, target = box
    (sandbox / "outside" / "victim").write_bytes(b"keep")
    extract(_tar([("l", tarfile.SYMTYPE, str(sandbox / "outside" / "victim"), None),
                  ("l", tarfile.REGTYPE, "", b"overwritten")]), str(target))
    assert (sandbox / "outside" / "victim").read_bytes() == b"keep"
    assert (target / "l").read_bytes() == b"overwritten" and not (target / "l").is_symlink()


def test_hardlink_outside_refused_or_contained(box):
    sandbox, target = box
    (sandbox / "outside" / "secret").write_bytes(b"secret")
    with pytest.raises(UnsafeArchive):
        extract(_tar([("h", tarfile.LNKTYPE, "../outside/secret", None)]), str(target))
    # absolute link names are rooted: they do not reach the host file
    with pytest.raises(UnsafeArchive):
        extract(_tar([("h2", tarfile.LNKTYPE, str(sandbox / "outside" / "secret"), None)]), str(target))
    # through a symlink: resolved inside the target, so the host file is not linked
    with pytest.raises(UnsafeArchive):
        extract(_tar([("s", tarfile.SYMTYPE, str(sandbox / "outside"), None),
                      ("h3", tarfile.LNKTYPE, "s/secret", None)]), str(target))
    for p in target.rglob("*"):
        if p.is_file() and not p.is_symlink():
            assert os.stat(p).st_ino != os.stat(sandbox / "outside" / "secret").st_ino


def test_devices_only_when_allowed(box):
    sandbox, target = box
    with pytest.raises(UnsafeArchive):
        extract(_tar([("null", tarfile.CHRTYPE, "", None)]), str(target), devices=False)
    extract(_tar([("dev0", tarfile.CHRTYPE, "", None)]), str(target), devices=True)
    assert stat.S_ISCHR(os.lstat(target / "dev0").st_mode)


def test_metadata_preserved(box):
    sandbox, target = box
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        d = tarfile.TarInfo("d")
        d.type, d.mode, d.mtime = tarfile.DIRTYPE, 0o750, 1_600_000_000
        tar.addfile(d)
        f = tarfile.TarInfo("d/f")
        f.mode, f.uid, f.gid, f.mtime, f.size = 0o4755, 1234, 5678, 1_500_000_000, 3
        f.pax_headers = {"SCHILY.xattr.user.test": "hello"}
        tar.addfile(f, io.BytesIO(b"abc"))
        s = tarfile.TarInfo("d/s")
        s.type, s.linkname = tarfile.SYMTYPE, "/nonexistent/target"
        tar.addfile(s)
    buf.seek(0)
    extract(buf, str(target))
    st = os.lstat(target / "d" / "f")
    assert (st.st_uid, st.st_gid) == (1234, 5678)
    assert stat.S_IMODE(st.st_mode) == 0o4755
    assert int(st.st_mtime) == 1_500_000_000
    assert int(os.lstat(target / "d").st_mtime) == 1_600_000_000
    assert stat.S_IMODE(os.lstat(target / "d").st_mode) == 0o750
    assert os.readlink(target / "d" / "s") == "/nonexistent/target"
    try:
        assert os.getxattr(target / "d" / "f", "user.test") == b"hello"
    except OSError:
        pytest.skip("no user xattrs on this filesystem")


def test_whiteouts_overlay_and_apply(box):
    sandbox, target = box
    layer = _tar([("dir/", tarfile.DIRTYPE, "", None), ("dir/.wh..wh..opq", tarfile.REGTYPE, "", b""),
                  ("gone/.wh.file", tarfile.REGTYPE, "", b""), ("keep", tarfile.REGTYPE, "", b"k")])
    extract(layer, str(target), whiteouts="overlay")
    st = os.lstat(target / "gone" / "file")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert os.getxattr(target / "dir", "trusted.overlay.opaque") == b"y"
    assert not (target / "dir" / ".wh..wh..opq").exists()
    full = sandbox / "full"
    (full / "gone").mkdir(parents=True)
    (full / "gone" / "file").write_bytes(b"old")
    (full / "dir").mkdir()
    (full / "dir" / "old").write_bytes(b"old")
    layer.seek(0)
    extract(layer, str(full), whiteouts="apply")
    assert not (full / "gone" / "file").exists()
    assert os.listdir(full / "dir") == []
    with pytest.raises(UnsafeArchive):
        extract(_tar([("a/.wh...", tarfile.REGTYPE, "", b"")]), str(target), whiteouts="apply")
