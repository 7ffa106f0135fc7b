"""One contract, run in-process against every snapshotter (storage/overlay.py and storage/vfs.py).

Layers are built as the layer store builds them (``new_layer`` on the parent when the snapshotter
needs its files, the tar extracted with the snapshotter's whiteout mode, ``commit_layer``), then
snapshots are prepared, mounted, changed, diffed and removed. What the two implement differently
(overlay stores only a layer's changes and mounts with lower dirs, vfs copies the parent and bind
mounts) is checked through what both promise: the same mounted view and the same diff.
No daemon; needs root for the mounts, as the daemon does.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard import errors
from dockyard.util.archive import extract
from dockyard.storage.overlay import OverlaySnapshotter, overlay_supported
from dockyard.storage.snapshotter import Snapshotter, is_mountpoint
from dockyard.storage.vfs import VfsSnapshotter

KINDS = {"overlay": OverlaySnapshotter, "vfs": VfsSnapshotter}


@pytest.fixture(params=sorted(KINDS))
def snap(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Snapshotter]:
    root = str(tmp_path / request.param)
    if request.param == "overlay" and not overlay_supported(root):
        pytest.skip(f"overlay cannot mount on {tmp_path}")
    yield KINDS[request.param](root)
    # a failed test must not leave a mount behind
    for line in reversed(Path("/proc/self/mountinfo").read_text().splitlines()):
        target = line.split()[4]
        if target.startswith(str(tmp_path) + "/"):
            subprocess.run(["umount", "-l", target], check=False)


def tar_of(files: dict[str, str | None]) -> bytes:
    """A layer tar: a path to text is a file, to None a directory (``.wh.`` names are whiteouts)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tf:
        for name, text in files.items():
            ti = tarfile.TarInfo(name)
            if text is None:
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                tf.addfile(ti)
            else:
                data = text.encode()
                ti.size, ti.mode = len(data), 0o644
                tf.addfile(ti, io.BytesIO(data))
    return out.getvalue()


def add_layer(snap: Snapshotter, parent: str | None, files: dict[str, str | None]) -> str:
    data = tar_of(files)
    chain = "sha256:" + hashlib.sha256((parent or "").encode() + data).hexdigest()
    build = snap.new_layer(None if snap.independent_layers else parent)
    extract(io.BytesIO(data), os.path.join(build, "diff"), whiteouts=snap.whiteouts)
    snap.commit_layer(build, chain, {"chain_id": chain, "parent": parent, "size": len(data)})
    return chain


def two_layers(snap: Snapshotter) -> tuple[str, str]:
    """A base, and a layer on it that deletes ``gone.txt`` and empties ``opaque/`` (whiteouts)."""
    base = add_layer(snap, None, {"keep.txt": "kept", "gone.txt": "deleted above", "change.txt": "old",
                                  "opaque": None, "opaque/hidden.txt": "under the opaque dir"})
    top = add_layer(snap, base, {".wh.gone.txt": "", "opaque": None, "opaque/.wh..wh..opq": "",
                                 "opaque/new.txt": "above the opaque dir", "top.txt": "top"})
    return base, top


def tree(path: str) -> dict[str, str | None]:
    """Every path below ``path``: a file's text, None for a directory."""
    out: dict[str, str | None] = {}
    for dirpath, dirnames, filenames in os.walk(path):
        rel = os.path.relpath(dirpath, path)
        for d in dirnames:
            out[os.path.normpath(os.path.join(rel, d))] = None
        for f in filenames:
            out[os.path.normpath(os.path.join(rel, f))] = Path(dirpath, f).read_text()
    return out


@contextlib.contextmanager
def mounted(snap: Snapshotter, key: str, target: Path) -> Iterator[str]:
    target.mkdir(exist_ok=True)
    snap.mount(key, str(target))
    try:
        yield str(target)
    finally:
        snap.unmount(str(target))


def tar_names(chunks: Iterator[bytes]) -> set[str]:
    with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tf:
        return {m.name.removeprefix("./").rstrip("/") for m in tf.getmembers()}


EXPECTED_VIEW = {"keep.txt": "kept", "change.txt": "old", "opaque": None, "opaque/new.txt": "above the opaque dir",
                 "top.txt": "top"}


def test_layers_are_committed_listed_and_chained(snap):
    base, top = two_layers(snap)
    assert sorted(snap.layers()) == sorted([base, top])
    assert snap.layer_exists(base) and snap.layer_exists(top)
    assert snap.layer_meta(top)["parent"] == base
    assert snap.lower_chain(top) == [snap.layer_path(top), snap.layer_path(base)]
    assert snap.lower_chain(base) == [snap.layer_path(base)]
    assert os.path.dirname(snap.tar_split_path(top)) == os.path.dirname(snap.layer_path(top))
    assert os.listdir(snap.tmp_dir) == []  # the build dirs were renamed into place


def test_a_snapshot_shows_its_chain_with_whiteouts_applied(snap, tmp_path):
    _, top = two_layers(snap)
    snap.prepare("c1", top)
    with mounted(snap, "c1", tmp_path / "mnt") as view:
        assert tree(view) == EXPECTED_VIEW
    assert not is_mountpoint(str(tmp_path / "mnt"))


def test_a_snapshot_without_parent_starts_empty(snap, tmp_path):
    s = snap.prepare("empty", None)
    assert s.parent is None and os.listdir(s.upperdir) == []
    with mounted(snap, "empty", tmp_path / "mnt") as view:
        Path(view, "f").write_text("x")
    assert tree(s.upperdir) == {"f": "x"}


def test_mounts_describe_the_same_view_as_mount(snap, tmp_path):
    _, top = two_layers(snap)
    s = snap.prepare("c1", top)
    m = snap.mounts("c1")
    assert m.upperdir == s.upperdir
    target = tmp_path / "by-mounts"
    target.mkdir()
    if m.type == "bind":
        argv = ["mount", "--bind", m.upperdir, str(target)]
    else:
        assert m.type == "overlay" and m.workdir == s.workdir
        argv = ["mount", "-t", "overlay", "overlay", "-o",
                f"lowerdir={':'.join(m.lowerdirs)},upperdir={m.upperdir},workdir={m.workdir}", str(target)]
    subprocess.run(argv, check=True, capture_output=True)
    try:
        assert tree(str(target)) == EXPECTED_VIEW
    finally:
        snap.unmount(str(target))


def test_diff_holds_the_snapshot_changes_only(snap, tmp_path):
    _, top = two_layers(snap)
    snap.prepare("c1", top)
    with mounted(snap, "c1", tmp_path / "mnt") as view:
        Path(view, "added.txt").write_text("new")
        Path(view, "change.txt").write_text("changed, longer")
        os.unlink(os.path.join(view, "keep.txt"))
    names = tar_names(snap.diff("c1"))
    assert {"added.txt", "change.txt", ".wh.keep.txt"} <= names
    assert not names & {"top.txt", "keep.txt", "opaque/new.txt", "gone.txt"}


def test_snapshots_are_found_listed_and_removed(snap):
    _, top = two_layers(snap)
    s = snap.prepare("c1", top)
    assert (s.key, s.parent) == ("c1", top)
    assert os.path.isdir(s.upperdir) and os.path.isdir(s.workdir)
    assert snap.snapshot("c1") == s
    assert [x.key for x in snap.snapshots()] == ["c1"]
    snap.remove("c1")
    assert snap.snapshots() == []
    with pytest.raises(errors.NotFound):
        snap.snapshot("c1")


def test_errors_for_missing_taken_and_bad_keys(snap):
    _, top = two_layers(snap)
    snap.prepare("c1", top)
    with pytest.raises(errors.Conflict):
        snap.prepare("c1", top)
    with pytest.raises(errors.NotFound):
        snap.prepare("c2", "sha256:" + "0" * 64)
    with pytest.raises(errors.NotFound):
        snap.snapshot("nope")
    with pytest.raises(errors.NotFound):
        snap.mounts("nope")
    with pytest.raises(errors.NotFound):
        snap.remove("nope")  # a snapshot's removal says so when there was none: the caller decides
    for bad in ("", "..", "a/b", "tmp"):
        with pytest.raises(errors.InvalidParameter):
            snap.prepare(bad, None)


def test_layer_removal_is_idempotent(snap):
    base, top = two_layers(snap)
    snap.remove_layer(top)
    snap.remove_layer(top)
    assert snap.layers() == [base] and not snap.layer_exists(top)


def test_removing_everything_leaves_only_empty_bookkeeping(snap, tmp_path):
    base, top = two_layers(snap)
    snap.prepare("c1", top)
    with mounted(snap, "c1", tmp_path / "mnt") as view:
        Path(view, "added.txt").write_text("new")
    snap.discard(snap.new_layer(None))
    snap.remove("c1")
    snap.remove_layer(top)
    snap.remove_layer(base)
    left = {name: os.listdir(os.path.join(snap.root, name)) for name in os.listdir(snap.root)}
    assert all(os.path.isdir(os.path.join(snap.root, name)) and not entries for name, entries in left.items()), left


def test_reopening_keeps_layers_and_snapshots_and_drops_half_built_layers(snap, tmp_path):
    _, top = two_layers(snap)
    snap.prepare("c1", top)
    snap.new_layer(None)  # a build the daemon did not finish
    again = type(snap)(snap.root)
    assert sorted(again.layers()) == sorted(snap.layers())
    assert [s.key for s in again.snapshots()] == ["c1"]
    assert os.listdir(again.tmp_dir) == []
    with mounted(again, "c1", tmp_path / "mnt") as view:
        assert tree(view) == EXPECTED_VIEW


def test_status_names_the_backing_filesystem(snap):
    assert [row[0] for row in snap.status()] == ["Backing Filesystem"]
