"""Image endpoints driven by the real docker CLI and docker-py: load, list, inspect, tag, rmi, save."""

from __future__ import annotations

import json
import os

from fixtures.busybox import rootfs_layer, write_docker_save


def _ids(daemon) -> set[str]:
    return set(daemon.cli("images", "-q", "--no-trunc").stdout_text.split())


def test_load_list_inspect(daemon, busybox_tar):
    out = daemon.cli("load", "-i", busybox_tar.path).stdout_text
    assert "Loaded image: busybox:latest" in out
    assert busybox_tar.image_id in _ids(daemon)
    table = daemon.cli("images").stdout_text
    assert "busybox" in table and "latest" in table and busybox_tar.image_id[7:19] in table
    info = json.loads(daemon.cli("image", "inspect", "busybox").stdout_text)[0]
    assert info["Id"] == busybox_tar.image_id
    assert info["RepoTags"] == ["busybox:latest"]
    assert info["RootFS"]["Layers"] == busybox_tar.diff_ids
    assert info["Config"]["Cmd"] == ["sh"]
    assert info["GraphDriver"]["Name"] in ("overlay2", "vfs")
    assert info["Size"] > 500_000
    upper = info["GraphDriver"]["Data"].get("UpperDir") or info["GraphDriver"]["Data"]["Dir"]
    assert os.path.isfile(os.path.join(upper, "bin", "busybox"))
    # prefixes and the sha256: form resolve too
    for name in (busybox_tar.image_id, busybox_tar.image_id[7:19], busybox_tar.image_id[:15], "busybox:latest",
                 "docker.io/library/busybox"):
        assert daemon.client().images.get(name).id == busybox_tar.image_id


def test_inspect_missing_and_bad_names(daemon):
    res = daemon.cli("image", "inspect", "nosuch", check=False)
    assert res.returncode != 0 and "No such image: nosuch" in res.stderr_text
    res = daemon.cli("tag", "busybox", "Upper/Case", check=False)
    assert res.returncode != 0 and "must be lowercase" in res.stderr_text


def test_tag_and_rmi_untag_then_delete(daemon, busybox_tar):
    daemon.cli("load", "-i", busybox_tar.path)
    daemon.cli("tag", "busybox", "localhost:5000/mine:v1")
    daemon.cli("tag", "busybox", "other")
    info = json.loads(daemon.cli("image", "inspect", "other").stdout_text)[0]
    assert sorted(info["RepoTags"]) == ["busybox:latest", "localhost:5000/mine:v1", "other:latest"]
    assert info["Metadata"]["LastTagTime"] != "0001-01-01T00:00:00Z"
    out = daemon.cli("rmi", "other").stdout_text
    assert out.strip() == "Untagged: other:latest"
    # by ID with several tags: refused unless forced
    res = daemon.cli("rmi", busybox_tar.image_id[7:19], check=False)
    assert res.returncode != 0
    assert f"conflict: unable to delete {busybox_tar.image_id[7:19]} (must be forced)" in res.stderr_text
    out = daemon.cli("rmi", "-f", busybox_tar.image_id[7:19]).stdout_text
    assert "Untagged: busybox:latest" in out and "Untagged: localhost:5000/mine:v1" in out
    assert f"Deleted: {busybox_tar.image_id}" in out
    assert busybox_tar.image_id not in _ids(daemon)


def test_shared_layers_survive_rmi(daemon, busybox_tar, tmp_path):
    base = rootfs_layer()
    top = rootfs_layer({"etc/motd": b"second image\n"})
    a = write_docker_save(str(tmp_path / "a.tar"), [base], ["shared-a:1"])
    b = write_docker_save(str(tmp_path / "b.tar"), [base, top], ["shared-b:1"])
    daemon.cli("load", "-i", a.path)
    daemon.cli("load", "-i", b.path)
    layer_root = os.path.join(daemon.data_root, "overlay2")
    before = {n for n in os.listdir(layer_root) if len(n) == 64}
    out = daemon.cli("rmi", "shared-b:1").stdout_text
    assert f"Deleted: {b.image_id}" in out
    after = {n for n in os.listdir(layer_root) if len(n) == 64}
    assert len(before - after) == 1  # only b's top layer went
    assert a.image_id in _ids(daemon)
    daemon.cli("rmi", "shared-a:1")
    assert {n for n in os.listdir(layer_root) if len(n) == 64} == after - {a.diff_ids[0][7:]}


def test_save_and_load_back_same_id(daemon, busybox_tar, tmp_path):
    daemon.cli("load", "-i", busybox_tar.path)
    daemon.cli("tag", "busybox", "busybox:two")
    out = tmp_path / "saved.tar"
    daemon.cli("save", "-o", str(out), "busybox:latest", "busybox:two")
    daemon.cli("rmi", "busybox:latest", "busybox:two")
    assert busybox_tar.image_id not in _ids(daemon)
    text = daemon.cli("load", "-i", str(out)).stdout_text
    assert "Loaded image: busybox:latest" in text and "Loaded image: busybox:two" in text
    assert busybox_tar.image_id in _ids(daemon)
    # the layer tar inside is byte-identical: its digest is the diff ID
    import tarfile
    with tarfile.open(out) as tar:
        names = tar.getnames()
        assert "manifest.json" in names and "index.json" in names and "oci-layout" in names
        manifest = json.load(tar.extractfile("manifest.json"))
        assert manifest[0]["Layers"] == [f"blobs/sha256/{d[7:]}" for d in busybox_tar.diff_ids]
        assert sorted(manifest[0]["RepoTags"]) == ["busybox:latest", "busybox:two"]
