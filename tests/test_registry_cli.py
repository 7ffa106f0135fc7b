"""docker pull / push / login through dockyardd against real registries, checked with skopeo."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from registry import PASSWORD, USER, FaultyProxy, Registry, TokenServer, corrupt_blob, free_port

from fixtures.busybox import rootfs_layer, write_oci_layout


@pytest.fixture(scope="module")
def oci_image(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("oci") / "busybox-oci.tar"
    return str(path), write_oci_layout(str(path), [rootfs_layer(), rootfs_layer({"etc/motd": b"layer two\n"})])


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory, oci_image):
    with Registry(tmp_path_factory.mktemp("registry")) as reg:
        reg.skopeo_copy(f"oci-archive:{oci_image[0]}", "busybox:latest")
        yield reg


def image_ids(daemon) -> list[str]:
    return daemon.cli("images", "-q", "--no-trunc").stdout_text.split()


def test_pull_shows_progress_and_records_digest(daemon, registry: Registry, oci_image) -> None:
    name = f"{registry.host}/busybox:latest"
    res = daemon.cli("pull", name)
    out = res.stdout_text
    assert "latest: Pulling from busybox" in out
    assert "Pull complete" in out
    assert "Digest: sha256:" in out
    assert f"Status: Downloaded newer image for {name}" in out
    inspect = json.loads(daemon.cli("image", "inspect", name).stdout_text)[0]
    assert inspect["Id"] == oci_image[1].image_id
    assert inspect["RootFS"]["Layers"] == oci_image[1].diff_ids
    raw_digest = "sha256:" + __import__("hashlib").sha256(
        subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{name}"],
                       capture_output=True, check=True).stdout).hexdigest()
    assert inspect["RepoDigests"] == [f"{registry.host}/busybox@{raw_digest}"]
    digests = daemon.cli("images", "--digests").stdout_text
    assert raw_digest in digests
    # a second pull downloads nothing
    again = daemon.cli("pull", name).stdout_text
    assert f"Status: Image is up to date for {name}" in again
    assert "Pull complete" not in again and "Downloading" not in again
    # by digest
    by_digest = daemon.cli("pull", f"{registry.host}/busybox@{raw_digest}").stdout_text
    assert "Image is up to date" in by_digest


def test_pull_progress_stream_is_dockerd_shaped(daemon, registry: Registry) -> None:
    api = daemon.api()
    daemon.cli("rmi", "-f", f"{registry.host}/busybox:latest", check=False)
    lines = list(api.pull(f"{registry.host}/busybox", tag="latest", stream=True, decode=True))
    statuses = [line.get("status", "") for line in lines]
    assert statuses[0] == "Pulling from busybox" and lines[0]["id"] == "latest"
    for expected in ("Pulling fs layer", "Downloading", "Verifying Checksum", "Download complete",
                     "Extracting", "Pull complete"):
        assert expected in statuses, statuses
    downloading = next(line for line in lines if line.get("status") == "Downloading")
    assert downloading["progressDetail"]["total"] > 0 and len(downloading["id"]) == 12
    assert statuses[-1].startswith("Status: ")


def test_push_then_skopeo_verifies(daemon, registry: Registry, tmp_path: Path, oci_image) -> None:
    src = f"{registry.host}/busybox:latest"
    daemon.cli("pull", src)
    dest = f"{registry.host}/pushed/app:v1"
    daemon.cli("tag", src, dest)
    res = daemon.cli("push", dest)
    out = res.stdout_text
    assert f"The push refers to repository [{registry.host}/pushed/app]" in out
    assert "v1: digest: sha256:" in out
    assert "Mounted from busybox" in out or "Pushed" in out
    info = registry.skopeo_inspect("pushed/app:v1")
    assert info["Layers"] and len(info["Layers"]) == 2
    subprocess.run(["skopeo", "copy", "--src-tls-verify=false", f"docker://{dest}", f"oci:{tmp_path / 'out'}"],
                   check=True, capture_output=True)
    config = registry.skopeo_inspect("pushed/app:v1", raw=False)
    assert config["Digest"].startswith("sha256:")
    # pushing again uploads nothing
    again = daemon.cli("push", dest).stdout_text
    assert "Layer already exists" in again and "Pushed" not in again
    inspect = json.loads(daemon.cli("image", "inspect", dest).stdout_text)[0]
    assert any(d.startswith(f"{registry.host}/pushed/app@sha256:") for d in inspect["RepoDigests"])


def test_push_fresh_layers_compresses_and_uploads(daemon, registry: Registry, busybox_tar) -> None:
    daemon.cli("load", "-i", busybox_tar.path)
    dest = f"{registry.host}/fresh:1"
    daemon.cli("tag", "busybox:latest", dest)
    out = daemon.cli("push", dest).stdout_text
    assert "Mounted from pushed/app" in out  # the same layer went to pushed/app before
    info = registry.skopeo_inspect("fresh:1")
    assert len(info["Layers"]) == 1
    daemon.cli("rmi", dest, "busybox:latest")
    daemon.cli("pull", dest)
    inspect = json.loads(daemon.cli("image", "inspect", dest).stdout_text)[0]
    assert inspect["RootFS"]["Layers"] == busybox_tar.diff_ids


def test_errors_name_the_image_and_the_reason(daemon, registry: Registry) -> None:
    before = image_ids(daemon)
    res = daemon.cli("pull", f"{registry.host}/busybox:nope", check=False)
    assert res.returncode != 0
    assert f"manifest for {registry.host}/busybox:nope not found" in res.stderr_text
    res = daemon.cli("pull", f"127.0.0.1:{free_port()}/busybox:latest", check=False)
    assert res.returncode != 0 and "refused" in res.stderr_text.lower()
    res = daemon.cli("push", f"{registry.host}/not-local:1", check=False)
    assert "An image does not exist locally with the tag" in res.stderr_text
    assert image_ids(daemon) == before


def _data_files(daemon) -> set[str]:
    root = Path(daemon.data_root)
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and "ingest" not in p.parts}


def test_corrupt_blob_then_retry(fresh_daemon, tmp_path: Path, oci_image) -> None:
    fresh_daemon.start()
    with Registry(tmp_path / "reg") as reg:
        reg.skopeo_copy(f"oci-archive:{oci_image[0]}", "busybox:latest")
        m = reg.skopeo_inspect("busybox:latest", raw=True)
        layer = m["layers"][1]["digest"]
        original = corrupt_blob(reg, layer)
        before = _data_files(fresh_daemon)
        res = fresh_daemon.cli("pull", f"{reg.host}/busybox:latest", check=False)
        assert res.returncode != 0
        assert "verification failed" in (res.stderr_text + res.stdout_text)
        assert f"{reg.host}/busybox" in (res.stderr_text + res.stdout_text)
        assert fresh_daemon.cli("images", "-q").stdout_text.strip() == ""
        leftover = {f for f in _data_files(fresh_daemon) - before if "blobindex" not in f}
        assert not [f for f in leftover if "/blobs/" in f or f.startswith("image/blobs")]
        reg.blob_path(layer).write_bytes(original)
        fresh_daemon.cli("pull", f"{reg.host}/busybox:latest")
        assert len(fresh_daemon.cli("images", "-q").stdout_text.split()) == 1


def test_faulty_registry_then_retry(fresh_daemon, tmp_path: Path, oci_image) -> None:
    fresh_daemon.start()
    with Registry(tmp_path / "reg") as reg, FaultyProxy(reg.port) as proxy:
        reg.skopeo_copy(f"oci-archive:{oci_image[0]}", "busybox:latest")
        name = f"{proxy.host}/busybox:latest"
        proxy.arm("close-mid-blob")
        res = fresh_daemon.cli("pull", name, check=False)
        assert res.returncode != 0, res.stdout_text
        text = res.stderr_text + res.stdout_text
        assert name.rsplit(":", 1)[0] in text
        assert fresh_daemon.cli("images", "-q").stdout_text.strip() == ""
        proxy.arm("bad-manifest")
        res = fresh_daemon.cli("pull", name, check=False)
        assert res.returncode != 0 and "not valid JSON" in res.stderr_text + res.stdout_text
        assert fresh_daemon.cli("images", "-q").stdout_text.strip() == ""
        fresh_daemon.cli("pull", name)
        assert len(fresh_daemon.cli("images", "-q").stdout_text.split()) == 1


def test_login_and_push_with_basic_auth(fresh_daemon, tmp_path: Path, busybox_tar) -> None:
    fresh_daemon.start()
    with Registry(tmp_path / "reg", auth="htpasswd") as reg:
        bad = fresh_daemon.cli("login", "-u", USER, "--password-stdin", reg.host, input="wrong", check=False)
        assert bad.returncode != 0 and "401" in bad.stderr_text
        fresh_daemon.cli("login", "-u", USER, "--password-stdin", reg.host, input=PASSWORD)
        fresh_daemon.cli("load", "-i", busybox_tar.path)
        fresh_daemon.cli("tag", "busybox:latest", f"{reg.host}/private:1")
        assert "Pushed" in fresh_daemon.cli("push", f"{reg.host}/private:1").stdout_text
        assert reg.skopeo_inspect("private:1")["Layers"]
        fresh_daemon.cli("logout", reg.host)
        res = fresh_daemon.cli("pull", f"{reg.host}/private:1", check=False)
        assert res.returncode != 0 and "pull access denied" in res.stderr_text


def test_token_auth_login_pull_push(fresh_daemon, tmp_path: Path, busybox_tar) -> None:
    fresh_daemon.start()
    with TokenServer(tmp_path / "tok") as tokens, Registry(tmp_path / "reg", auth=tokens) as reg:
        fresh_daemon.cli("load", "-i", busybox_tar.path)
        fresh_daemon.cli("tag", "busybox:latest", f"{reg.host}/team/app:1")
        denied = fresh_daemon.cli("push", f"{reg.host}/team/app:1", check=False)
        # the registry's own refusal of an anonymous push, as dockerd relays it (not any failure)
        assert denied.returncode != 0 and denied.stderr_text == "unauthorized: authentication required\n"
        assert "Pushed" not in denied.stdout_text
        fresh_daemon.cli("login", "-u", USER, "--password-stdin", reg.host, input=PASSWORD)
        fresh_daemon.cli("push", f"{reg.host}/team/app:1")
        fresh_daemon.cli("rmi", f"{reg.host}/team/app:1")
        fresh_daemon.cli("pull", f"{reg.host}/team/app:1")
        client = fresh_daemon.client()
        client.images.pull(f"{reg.host}/team/app", tag="1", auth_config={"username": USER, "password": PASSWORD})
