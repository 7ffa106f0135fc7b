"""Layer store and snapshotters: crash safety, restart, vfs fallback, deep overlay stacks, diff round trip."""

from __future__ import annotations

import hashlib
import io
import os
import signal
import subprocess
import tarfile
import time

import pytest

from fixtures.busybox import rootfs_layer, write_docker_save
from dockyard.images.layers import LayerStore
from dockyard.images.service import ImageService
from dockyard.storage.overlay import OverlaySnapshotter


def _layer(files: dict[str, bytes], whiteouts: list[str] = ()) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size, ti.mtime, ti.mode = len(data), 1_700_000_000, 0o644
            tar.addfile(ti, io.BytesIO(data))
        for name in whiteouts:
            ti = tarfile.TarInfo(name)
            ti.mtime = 1_700_000_000
            tar.addfile(ti)
    return buf.getvalue()


def _sha(b: bytes) -> str:
    return "sha256:" + hashlib.sha256(b).hexdigest()


def _layer_dirs(root: str) -> set[str]:
    return {n for n in os.listdir(root) if len(n) == 64}


def test_restart_keeps_images(fresh_daemon, busybox_tar):
    d = fresh_daemon
    d.start()
    d.cli("load", "-i", busybox_tar.path)
    d.cli("tag", "busybox", "kept:1")
    d.restart()
    out = d.cli("images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}").stdout_text
    assert "busybox:latest" in out and "kept:1" in out
    assert d.client().images.get("kept:1").id == busybox_tar.image_id


def test_kill9_mid_load_leaves_consistent_state(fresh_daemon, tmp_path, busybox_tar):
    d = fresh_daemon
    d.start()
    d.cli("load", "-i", busybox_tar.path)
    big = [rootfs_layer()] + [_layer({f"f{i}": os.urandom(4 << 20)}) for i in range(12)]
    img = write_docker_save(str(tmp_path / "big.tar"), big, ["big:1"])
    proc = subprocess.Popen(["docker", "load", "-i", img.path], env=d.env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    root = os.path.join(d.data_root, "overlay2")
    deadline = time.monotonic() + 20
    # wait until layers are being written, then kill -9 the daemon
    while time.monotonic() < deadline and not os.listdir(os.path.join(root, "tmp")):
        time.sleep(0.005)
    d.stop(signal.SIGKILL)
    proc.wait(30)
    d.start()
    ids = d.cli("images", "-a", "-q", "--no-trunc").stdout_text.split()
    assert busybox_tar.image_id in ids
    assert img.image_id not in ids or len(ids) == 2
    # no orphan layer dirs: every layer dir belongs to a listed image's chain
    from dockyard.images.layers import chain_ids
    wanted = set()
    for image_id in ids:
        wanted |= {c[7:] for c in chain_ids(d.client().images.get(image_id).attrs["RootFS"]["Layers"])}
    assert _layer_dirs(root) == wanted
    assert os.listdir(os.path.join(root, "tmp")) == []
    # and the load works after the crash
    d.cli("load", "-i", img.path)
    assert img.image_id in d.cli("images", "-q", "--no-trunc").stdout_text.split()


def test_vfs_driver_load_save_rmi(fresh_daemon, tmp_path):
    d = fresh_daemon
    d.config = {"storage-driver": "vfs"}
    d.start()
    base = rootfs_layer()
    top = _layer({"etc/motd": b"vfs\n"}, whiteouts=["etc/.wh.shadow"])
    img = write_docker_save(str(tmp_path / "v.tar"), [base, top], ["vfs:1"])
    d.cli("load", "-i", img.path)
    info = d.client().images.get("vfs:1").attrs
    assert info["GraphDriver"]["Name"] == "vfs"
    top_dir = info["GraphDriver"]["Data"]["Dir"]
    assert os.path.exists(os.path.join(top_dir, "bin", "busybox"))  # full copy
    assert not os.path.exists(os.path.join(top_dir, "etc", "shadow"))  # whiteout applied
    out = tmp_path / "saved.tar"
    d.cli("save", "-o", str(out), "vfs:1")
    d.cli("rmi", "vfs:1")
    assert _layer_dirs(os.path.join(d.data_root, "vfs")) == set()
    d.cli("load", "-i", str(out))
    assert d.client().images.get("vfs:1").id == img.image_id


@pytest.fixture
def overlay_service(tmp_path):
    events = []
    svc = ImageService(str(tmp_path / "data"), OverlaySnapshotter(str(tmp_path / "data" / "overlay2")),
                       lambda *a: events.append(a))
    return svc


def _mounted(path: str) -> bool:
    return subprocess.run(["mountpoint", "-q", path]).returncode == 0


def test_overlay_many_layers_mount_and_diff(overlay_service, tmp_path):
    svc = overlay_service
    layers = [_layer({f"layer{i:02d}/file": f"{i}".encode(), "shared": f"{i}".encode()}) for i in range(45)]
    layers[44] = _layer({"layer44/file": b"44"}, whiteouts=["layer00/.wh.file"])
    img = write_docker_save(str(tmp_path / "deep.tar"), layers, ["deep:1"])
    with open(img.path, "rb") as f:
        svc.load(f)
    image = svc.resolve("deep:1")
    snap = svc.layers.snap
    snap.prepare("ctr1", image.top_layer)
    target = tmp_path / "merged"
    target.mkdir()
    snap.mount("ctr1", str(target))
    try:
        assert (target / "layer43" / "file").read_text() == "43"
        assert (target / "shared").read_text() == "43"
        assert not (target / "layer00" / "file").exists()
        (target / "new.txt").write_text("new")
        os.unlink(target / "layer01" / "file")
    finally:
        snap.unmount(str(target))
    assert not _mounted(str(target))
    m = snap.mounts("ctr1")
    assert len(m.lowerdirs) == 45 and m.lowerdirs[0] == svc.layers.path(image.top_layer)
    diff = b"".join(snap.diff("ctr1"))
    with tarfile.open(fileobj=io.BytesIO(diff)) as tar:
        names = tar.getnames()
    assert "new.txt" in names and "layer01/.wh.file" in names
    # the diff becomes a new image on top (what commit will do)
    child = svc.create_image_from_layer(image.id, io.BytesIO(diff), ["CMD [\"x\"]"], created_by="commit")
    assert len(child.chain_ids) == 46 and child.parent == image.id
    assert child.config["config"]["Cmd"] == ["x"]
    # the parent cannot go while a child needs it; the snapshot keeps its layers alive
    with pytest.raises(Exception, match="dependent child"):
        svc.delete(image.id, force=True)
    svc.delete(child.id)
    snap.remove("ctr1")


def test_layer_tar_rebuilt_exactly(tmp_path):
    store = LayerStore(OverlaySnapshotter(str(tmp_path / "o")))
    raw = rootfs_layer({"etc/x": b"y" * 7000})
    pending = store.unpack(io.BytesIO(__import__("gzip").compress(raw)))
    assert pending.diff_id == _sha(raw)
    cid = store.commit(pending, None)
    assert b"".join(store.tar_stream(cid)) == raw


def test_usage_check_conflicts(overlay_service, tmp_path, busybox_tar):
    svc = overlay_service
    with open(busybox_tar.path, "rb") as f:
        svc.load(f)
    image = svc.resolve("busybox")
    users = {"running": False}
    svc.set_usage_check(lambda image_id: ["c" * 64] if image_id == image.id else [],
                        lambda cid: users["running"])
    with pytest.raises(Exception, match='unable to remove repository reference "busybox"'):
        svc.delete("busybox")
    svc.tag("busybox", "other", None)
    svc.delete("other")
    with pytest.raises(Exception, match=r"\(must be forced\) - image is being used by stopped container cccccccccccc"):
        svc.delete(image.id)
    users["running"] = True
    with pytest.raises(Exception, match=r"\(cannot be forced\) - image is being used by running container"):
        svc.delete(image.id, force=True)
    assert svc.prune(dangling_only=False)[0] == []
