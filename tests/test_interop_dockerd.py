"""An image saved by dockyardd loads into the reference dockerd (Debian's docker.io) and the
reverse, with the same image ID, tags, layers and config.

dockerd recomputes every layer's diff ID on load and refuses a tarball whose layer bytes
differ from the config's diff_ids, so a load that succeeds with equal RootFS.Layers means
dockyard gave back the exact layer tars (whiteouts included), not merely equivalent ones.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

import refdocker
from fixtures.busybox import BuiltImage, image_config, rootfs_layer, write_docker_save

pytestmark = pytest.mark.skipif(not refdocker.available(),
                                reason="the reference dockerd is not installed (apt-get install docker.io)")

EPOCH = 1_700_000_000


@pytest.fixture(scope="module")
def ref(tmp_path_factory: pytest.TempPathFactory):
    d = refdocker.make_refdocker(tmp_path_factory.mktemp("refdocker"))
    d.start()
    yield d
    d.stop()


def _layer(entries: list[tuple[str, bytes | None]]) -> bytes:
    """A layer tar from (name, content) pairs; content None makes a directory."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in entries:
            ti = tarfile.TarInfo(name)
            ti.mtime = EPOCH
            if data is None:
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(ti)
            else:
                ti.mode, ti.size = 0o644, len(data)
                tar.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def whiteout_layers() -> list[bytes]:
    """busybox, then a layer of files, then one deleting some (whiteouts) and hiding a dir (opaque)."""
    files = _layer([("opt/", None), ("opt/app/", None), ("opt/app/keep", b"keep\n"), ("opt/app/old", b"old\n"),
                    ("opt/cache/", None), ("opt/cache/a", b"a\n"), ("opt/cache/b", b"b\n")])
    deletes = _layer([("etc/", None), ("etc/.wh.shadow", b""), ("opt/", None), ("opt/app/", None),
                      ("opt/app/.wh.old", b""), ("opt/app/new", b"new\n"), ("opt/cache/", None),
                      ("opt/cache/.wh..wh..opq", b""), ("opt/cache/c", b"c\n")])
    return [rootfs_layer(), files, deletes]


@pytest.fixture(scope="module")
def layered_tar(tmp_path_factory: pytest.TempPathFactory) -> BuiltImage:
    layers = whiteout_layers()
    diff_ids = [_diff_id(layer) for layer in layers]
    config = image_config(diff_ids, cmd=["cat", "/opt/app/keep"],
                          extra={"Labels": {"org.example.interop": "whiteouts"}, "WorkingDir": "/opt",
                                 "Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "MODE=interop"]})
    path = tmp_path_factory.mktemp("images") / "layered.tar"
    return write_docker_save(str(path), layers, ["interop/layered:v1"], config=config)


def _diff_id(layer: bytes) -> str:
    return "sha256:" + hashlib.sha256(layer).hexdigest()


def _forget(engine, ref_: str) -> None:
    """Remove ``ref_`` (and what only it held) so a test starts from an engine without it."""
    engine.cli("rmi", "-f", ref_, check=False)


def _inspect(engine, ref_: str) -> dict:
    return json.loads(engine.cli("image", "inspect", ref_).stdout_text)[0]


def _non_empty(config: dict | None) -> dict:
    # API 1.50 trims ImageConfig to the fields an image can set; 1.41 (dockerd 20.10)
    # also prints the container-only ones, empty. What an image sets must be equal.
    return {k: v for k, v in (config or {}).items() if v not in (None, "", False, [], {})}


def _history(engine, ref_: str) -> list[str]:
    return engine.cli("history", "--no-trunc", "--format", "{{.CreatedBy}}", ref_).stdout_text.splitlines()


def assert_same_image(a, b, ref_: str, image: BuiltImage) -> None:
    ia, ib = _inspect(a, ref_), _inspect(b, ref_)
    assert ia["Id"] == ib["Id"] == image.image_id
    assert ia["RepoTags"] == ib["RepoTags"] == [ref_]
    assert ia["RootFS"]["Layers"] == ib["RootFS"]["Layers"] == image.diff_ids
    assert _non_empty(ia["Config"]) == _non_empty(ib["Config"])
    assert (ia["Os"], ia["Architecture"], ia["Created"]) == (ib["Os"], ib["Architecture"], ib["Created"])
    assert ia["Size"] == ib["Size"]
    assert _history(a, ref_) == _history(b, ref_)


def _move(src, dst, image: BuiltImage, tar_in: str, tmp_path: Path) -> None:
    """Load ``tar_in`` into ``src``, `docker save` it there, load that into ``dst``."""
    ref_ = image.repo_tags[0]
    _forget(src, ref_)
    _forget(dst, ref_)
    src.cli("load", "-i", tar_in)
    saved = tmp_path / "saved.tar"
    src.cli("save", "-o", str(saved), ref_)
    out = dst.cli("load", "-i", str(saved)).stdout_text
    assert f"Loaded image: {ref_}" in out
    assert_same_image(src, dst, ref_, image)


@pytest.mark.parametrize("which", ["busybox", "layered"])
def test_dockyard_save_loads_into_dockerd(daemon, ref, busybox_tar, layered_tar, which, tmp_path):
    image = busybox_tar if which == "busybox" else layered_tar
    _move(daemon, ref, image, image.path, tmp_path)


@pytest.mark.parametrize("which", ["busybox", "layered"])
def test_dockerd_save_loads_into_dockyard(daemon, ref, busybox_tar, layered_tar, which, tmp_path):
    image = busybox_tar if which == "busybox" else layered_tar
    _move(ref, daemon, image, image.path, tmp_path)


def test_multi_image_save_from_dockyard_loads_into_dockerd(daemon, ref, busybox_tar, layered_tar, tmp_path):
    refs = [busybox_tar.repo_tags[0], layered_tar.repo_tags[0]]
    for r in refs:
        _forget(daemon, r)
        _forget(ref, r)
    daemon.cli("load", "-i", busybox_tar.path)
    daemon.cli("load", "-i", layered_tar.path)
    saved = tmp_path / "two.tar"
    daemon.cli("save", "-o", str(saved), *refs)
    out = ref.cli("load", "-i", str(saved)).stdout_text
    for r, image in zip(refs, (busybox_tar, layered_tar)):
        assert f"Loaded image: {r}" in out
        assert_same_image(daemon, ref, r, image)


def test_saved_layers_keep_whiteouts(daemon, ref, layered_tar, tmp_path):
    """The layer dockerd saves back, after a round trip through dockyard, still deletes and hides."""
    ref_ = layered_tar.repo_tags[0]
    _forget(daemon, ref_)
    _forget(ref, ref_)
    daemon.cli("load", "-i", layered_tar.path)
    daemon.cli("save", "-o", str(tmp_path / "a.tar"), ref_)
    ref.cli("load", "-i", str(tmp_path / "a.tar"))
    ref.cli("save", "-o", str(tmp_path / "b.tar"), ref_)
    with tarfile.open(tmp_path / "b.tar") as outer:
        manifest = json.load(outer.extractfile("manifest.json"))  # type: ignore[arg-type]
        top = outer.extractfile(manifest[0]["Layers"][-1])
        with tarfile.open(fileobj=io.BytesIO(top.read())) as layer:  # type: ignore[union-attr]
            names = set(layer.getnames())
    assert {"etc/.wh.shadow", "opt/app/.wh.old", "opt/cache/.wh..wh..opq", "opt/cache/c"} <= names
