"""More image behaviour through the CLI: filters, history, import, prune, df, events, bad archives, OCI."""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
import time

from fixtures.busybox import image_config, rootfs_layer, write_docker_save, write_oci_layout


def _ids(daemon, *args: str) -> list[str]:
    return daemon.cli("images", "-q", "--no-trunc", *args).stdout_text.split()


def _layer(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size, ti.mtime, ti.mode = len(data), 1_700_000_000, 0o644
            tar.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def _image(tmp_path, name: str, tags: list[str], created: str, labels: dict | None = None, compress=False):
    layers = [rootfs_layer(), _layer({f"{name}.txt": name.encode()})]
    diff_ids = ["sha256:" + __import__("hashlib").sha256(layer).hexdigest() for layer in layers]
    cfg = image_config(diff_ids, extra={"Labels": labels} if labels else None)
    cfg["created"] = created
    return write_docker_save(str(tmp_path / f"{name}.tar"), layers, tags, config=cfg, compress=compress)


def test_list_filters(daemon, tmp_path):
    old = _image(tmp_path, "old", ["flt/old:1"], "2020-01-01T00:00:00Z", {"tier": "a"})
    mid = _image(tmp_path, "mid", ["flt/mid:1"], "2021-01-01T00:00:00Z", {"tier": "b"}, compress=True)
    new = _image(tmp_path, "new", ["flt/new:2"], "2022-01-01T00:00:00Z")
    for img in (old, mid, new):
        daemon.cli("load", "-i", img.path)
    assert _ids(daemon, "--filter", "reference=flt/*") == [new.image_id, mid.image_id, old.image_id]
    assert _ids(daemon, "--filter", "reference=flt/*:1") == [mid.image_id, old.image_id]
    assert _ids(daemon, "flt/mid") == [mid.image_id]
    assert _ids(daemon, "--filter", "label=tier=b") == [mid.image_id]
    assert _ids(daemon, "--filter", "label=tier") == [mid.image_id, old.image_id]
    assert _ids(daemon, "--filter", "before=flt/mid:1", "--filter", "reference=flt/*") == [old.image_id]
    assert _ids(daemon, "--filter", "since=flt/mid:1", "--filter", "reference=flt/*") == [new.image_id]
    assert _ids(daemon, "--filter", "until=2021-06-01T00:00:00Z", "--filter", "reference=flt/*") == \
        [mid.image_id, old.image_id]
    daemon.cli("tag", "flt/old:1", "flt/old:keep")
    daemon.cli("load", "-i", _image(tmp_path, "old2", ["flt/old:1"], "2019-01-01T00:00:00Z").path)
    # flt/old:1 moved away; old keeps its other tag. A loaded image losing its only tag dangles.
    daemon.cli("load", "-i", _image(tmp_path, "old3", ["flt/mid:1"], "2019-06-01T00:00:00Z").path)
    assert _ids(daemon, "--filter", "dangling=true") == [mid.image_id]
    table = daemon.cli("images", "--digests", "--no-trunc").stdout_text
    assert "<none>" in table and "DIGEST" in table and mid.image_id in table
    res = daemon.cli("images", "--filter", "nosuch=1", check=False)
    assert res.returncode != 0 and "invalid filter" in res.stderr_text


def test_history(daemon, busybox_tar):
    daemon.cli("load", "-i", busybox_tar.path)
    rows = [json.loads(line) for line in
            daemon.cli("history", "--no-trunc", "--format", "{{json .}}", "busybox").stdout_text.splitlines()]
    assert rows[0]["ID"] == busybox_tar.image_id
    assert 'CMD ["sh"]' in rows[0]["CreatedBy"]
    assert rows[1]["ID"] == "<missing>" and "ADD busybox-static" in rows[1]["CreatedBy"]
    assert rows[0]["Size"] == "0B" and rows[1]["Size"] != "0B"


def test_import_file_and_stdin_with_changes(daemon, tmp_path):
    layer = _layer({"hello.txt": b"hi\n"})
    path = tmp_path / "rootfs.tar.gz"
    path.write_bytes(gzip.compress(layer))
    out = daemon.cli("import", "--change", "CMD [\"/bin/true\"]", "--change", "ENV A=b", "--change", "EXPOSE 80",
                     "--change", "LABEL x=y", "--change", "WORKDIR /w", "-m", "my msg", str(path),
                     "imported:file").stdout_text.strip()
    assert out.startswith("sha256:")
    info = json.loads(daemon.cli("image", "inspect", "imported:file").stdout_text)[0]
    assert info["Id"] == out
    assert info["Config"]["Cmd"] == ["/bin/true"]
    assert "A=b" in info["Config"]["Env"]
    assert info["Config"]["ExposedPorts"] == {"80/tcp": {}}
    assert info["Config"]["Labels"] == {"x": "y"}
    assert info["Config"]["WorkingDir"] == "/w"
    assert info["Comment"] == "my msg"
    import hashlib
    assert info["RootFS"]["Layers"] == ["sha256:" + hashlib.sha256(layer).hexdigest()]
    out2 = daemon.cli("import", "-", "imported:stdin", input=layer).stdout_text.strip()
    assert out2 in _ids(daemon, "imported")
    hist = daemon.cli("history", "imported:stdin").stdout_text
    assert "Imported from -" in hist
    res = daemon.cli("import", "--change", "RUN echo", str(path), check=False)
    assert res.returncode != 0 and "run is not a valid change command" in res.stderr_text.lower()


def test_prune_dangling_and_all(daemon, tmp_path):
    a = _image(tmp_path, "pa", ["prune/a:1"], "2020-01-01T00:00:00Z")
    b = _image(tmp_path, "pb", ["prune/a:1"], "2020-01-02T00:00:00Z")
    daemon.cli("load", "-i", a.path)
    daemon.cli("load", "-i", b.path)  # a is now dangling
    out = daemon.cli("image", "prune", "-f").stdout_text
    assert f"deleted: {a.image_id}" in out and "Total reclaimed space" in out
    assert a.image_id not in _ids(daemon, "-a")
    assert b.image_id in _ids(daemon)
    out = daemon.cli("image", "prune", "-a", "-f", "--filter", "until=2020-06-01T00:00:00Z").stdout_text
    assert "untagged: prune/a:1" in out
    assert b.image_id not in _ids(daemon, "-a")


def test_system_df_and_info(daemon, busybox_tar):
    daemon.cli("load", "-i", busybox_tar.path)
    df = daemon.cli("system", "df", "--format", "{{json .}}").stdout_text.splitlines()
    images = json.loads(df[0])
    assert images["Type"] == "Images" and int(images["TotalCount"]) >= 1
    verbose = daemon.cli("system", "df", "-v").stdout_text
    assert "busybox" in verbose
    info = json.loads(daemon.cli("info", "--format", "{{json .}}").stdout_text)
    assert info["Images"] == len(_ids(daemon, "-a"))
    assert info["Driver"] in ("overlay2", "vfs")


def test_image_events(daemon, busybox_tar):
    time.sleep(1.1)
    since = f"{time.time():.3f}"
    daemon.cli("load", "-i", busybox_tar.path)
    daemon.cli("tag", "busybox", "evt:1")
    daemon.cli("rmi", "evt:1")
    until = str(time.time() + 1)
    out = daemon.cli("events", "--since", since, "--until", until, "--filter", "type=image",
                     "--format", "{{.Action}} {{.Actor.Attributes.name}}").stdout_text
    actions = [line.split()[0] for line in out.splitlines()]
    assert actions == ["load", "tag", "untag"], out
    assert "tag evt:1" in out


def test_load_oci_layout(daemon, tmp_path):
    layer = _layer({"oci.txt": b"oci"})
    img = write_oci_layout(str(tmp_path / "oci.tar"), [rootfs_layer(), layer], ref_name="oci/img:v1")
    out = daemon.cli("load", "-i", img.path).stdout_text
    assert "Loaded image: oci/img:v1" in out
    assert img.image_id in _ids(daemon, "oci/img")
    img2 = write_oci_layout(str(tmp_path / "oci2.tar"), [layer], ref_name="latest")
    out = daemon.cli("load", "-i", img2.path).stdout_text
    assert f"Loaded image ID: {img2.image_id}" in out


def _layer_dirs(daemon) -> set[str]:
    root = os.path.join(daemon.data_root, daemon.driver_dir)
    return {n for n in os.listdir(root) if len(n) == 64}


def test_bad_archives_leave_nothing(daemon, tmp_path, busybox_tar):
    daemon.driver_dir = "overlay2"
    good_layer = _layer({"x": b"x" * 100000})
    before_ids, before_dirs = set(_ids(daemon, "-a")), _layer_dirs(daemon)

    def check(path, expect: str):
        res = daemon.cli("load", "-i", str(path), check=False)
        assert res.returncode != 0, res.stdout_text
        assert expect in (res.stderr_text + res.stdout_text), res.stderr_text
        assert set(_ids(daemon, "-a")) == before_ids
        assert _layer_dirs(daemon) == before_dirs
        tmp = os.path.join(daemon.data_root, daemon.driver_dir, "tmp")
        assert os.listdir(tmp) == []

    corrupt = tmp_path / "corrupt.tar"
    corrupt.write_bytes(b"this is not a tar archive at all" * 100)
    check(corrupt, "invalid")
    # a config whose diff ID does not match the layer
    cfg = image_config(["sha256:" + "0" * 64])
    bad_diff = write_docker_save(str(tmp_path / "baddiff.tar"), [good_layer], ["bad:diff"], config=cfg)
    check(bad_diff.path, "invalid diffID")
    # manifest naming a layer that is not in the archive
    missing = tmp_path / "missing.tar"
    with tarfile.open(bad_diff.path) as src, tarfile.open(missing, "w") as dst:
        for m in src.getmembers():
            if m.name.startswith("blobs/sha256/") and m.size > 50000:
                continue
            dst.addfile(m, src.extractfile(m) if m.isfile() else None)
    check(missing, "missing")
    # truncated upload
    data = open(busybox_tar.path, "rb").read()
    trunc = tmp_path / "trunc.tar"
    trunc.write_bytes(data[: len(data) // 2])
    check(trunc, "")


def test_load_legacy_layout_compressed_outer(daemon, tmp_path):
    """The pre-25 `docker save` layout (<id>/layer.tar, symlinked duplicates), gzip'd as a whole."""
    base, top = rootfs_layer(), _layer({"legacy.txt": b"old"})
    diff_ids = ["sha256:" + __import__("hashlib").sha256(x).hexdigest() for x in (base, top)]
    cfg = json.dumps(image_config(diff_ids)).encode()
    config_name = __import__("hashlib").sha256(cfg).hexdigest() + ".json"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        def add(name, data):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tar.addfile(ti, io.BytesIO(data))
        add("aaa/layer.tar", base)
        add("aaa/json", b"{}")
        add("bbb/layer.tar", top)
        link = tarfile.TarInfo("ccc/layer.tar")
        link.type, link.linkname = tarfile.SYMTYPE, "../aaa/layer.tar"
        tar.addfile(link)
        add(config_name, cfg)
        add("manifest.json", json.dumps([{"Config": config_name, "RepoTags": ["legacy:1"],
                                          "Layers": ["ccc/layer.tar", "bbb/layer.tar"]}]).encode())
    path = tmp_path / "legacy.tar.gz"
    path.write_bytes(gzip.compress(buf.getvalue()))
    out = daemon.cli("load", "-i", str(path)).stdout_text
    assert "Loaded image: legacy:1" in out
    assert json.loads(daemon.cli("image", "inspect", "legacy:1").stdout_text)[0]["RootFS"]["Layers"] == diff_ids


def test_truncated_http_upload_leaves_nothing(daemon, tmp_path):
    import socket
    tmp = os.path.join(daemon.data_root, "overlay2", "tmp")
    before = set(_ids(daemon, "-a"))
    img = write_docker_save(str(tmp_path / "t.tar"), [_layer({"big": os.urandom(8 << 20)})], ["trunc:1"])
    data = open(img.path, "rb").read()
    s = socket.socket(socket.AF_UNIX)
    s.connect(daemon.socket)
    s.sendall(b"POST /v1.50/images/load HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-tar\r\n"
              + f"Content-Length: {len(data)}\r\n\r\n".encode() + data[: len(data) // 2])
    time.sleep(0.5)
    s.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and os.listdir(tmp):
        time.sleep(0.1)
    assert os.listdir(tmp) == []
    assert set(_ids(daemon, "-a")) == before
    daemon.cli("version")  # still serving
