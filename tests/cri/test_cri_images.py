"""The CRI's ImageService against a real dockyardd and Debian's docker-registry on 127.0.0.1: pull (with
credentials), list, status, remove, the image filesystem, and one image store shared with the Docker API."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Iterator

import docker
import grpc
import pytest
from cri_api.v1 import api_pb2 as cri_pb

from conftest import Daemon
from fixtures.busybox import BuiltImage, image_config, rootfs_layer, write_oci_layout
from registry import PASSWORD, USER, Registry

from .conftest import Cri


def oci_image(path: Path, user: str | None = None) -> str:
    layers = [rootfs_layer({"etc/motd": f"user {user}\n".encode()})]
    from fixtures.busybox import _sha  # the layer digests the config must name
    config = image_config([_sha(layer) for layer in layers], extra={"User": user} if user else None)
    write_oci_layout(str(path), layers, config=config)
    return str(path)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    base = tmp_path_factory.mktemp("cri-registry")
    with Registry(base / "reg") as reg:
        reg.skopeo_copy(f"oci-archive:{oci_image(base / 'plain.tar')}", "cri/plain:1")
        reg.skopeo_copy(f"oci-archive:{oci_image(base / 'uid.tar', '1234:5')}", "cri/uid:1")
        reg.skopeo_copy(f"oci-archive:{oci_image(base / 'name.tar', 'www-data')}", "cri/name:1")
        yield reg


@pytest.fixture(scope="module")
def private_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    base = tmp_path_factory.mktemp("cri-registry-auth")
    with Registry(base / "reg", auth="htpasswd") as reg:
        reg.skopeo_copy(f"oci-archive:{oci_image(base / 'secret.tar', 'nobody')}", "cri/secret:1")
        yield reg


def spec(ref: str) -> cri_pb.ImageSpec:
    return cri_pb.ImageSpec(image=ref)


def pull(cri: Cri, ref: str, auth: cri_pb.AuthConfig | None = None) -> str:
    return cri.images.PullImage(cri_pb.PullImageRequest(image=spec(ref), auth=auth)).image_ref


def status(cri: Cri, ref: str) -> cri_pb.ImageStatusResponse:
    return cri.images.ImageStatus(cri_pb.ImageStatusRequest(image=spec(ref)))


def rpc_error(call, *args) -> grpc.RpcError:  # noqa: ANN001 - any stub method
    with pytest.raises(grpc.RpcError) as e:
        call(*args)
    return e.value


def test_pulled_image_is_listed_by_docker(cri: Cri, cri_daemon: Daemon, registry: Registry) -> None:
    ref = f"{registry.host}/cri/plain:1"
    image_id = pull(cri, ref)
    assert image_id.startswith("sha256:") and len(image_id) == 71
    image = status(cri, ref).image
    assert image.id == image_id and image.repo_tags == [ref]
    [digest] = image.repo_digests
    assert digest.startswith(f"{registry.host}/cri/plain@sha256:")
    assert image.size > 0 and not image.pinned and not image.HasField("uid") and image.username == ""
    assert image.spec.image == image_id

    client = docker.DockerClient(base_url=cri_daemon.host, version="1.44")
    listed = {i.id: i for i in client.images.list()}
    assert listed[image_id].tags == [ref] and listed[image_id].attrs["RepoDigests"] == [digest]
    # the same image by its digest, by its ID and by an ID prefix
    assert status(cri, digest).image.id == image_id
    assert status(cri, image_id).image.id == image_id
    assert status(cri, image_id[7:19]).image.id == image_id


def test_docker_loaded_image_is_listed_by_the_cri(cri: Cri, cri_daemon: Daemon, busybox_tar: BuiltImage) -> None:
    cri_daemon.cli("load", "-i", busybox_tar.path)
    # fully qualified, as containerd names images (docker shows the familiar busybox:latest)
    images = cri.images.ListImages(cri_pb.ListImagesRequest()).images
    [image] = [i for i in images if i.id == busybox_tar.image_id]
    assert list(image.repo_tags) == ["docker.io/library/busybox:latest"]
    assert status(cri, "busybox").image.id == busybox_tar.image_id


def test_list_filter(cri: Cri, registry: Registry) -> None:
    image_id = pull(cri, f"{registry.host}/cri/uid:1")
    only = cri.images.ListImages(cri_pb.ListImagesRequest(
        filter=cri_pb.ImageFilter(image=spec(f"{registry.host}/cri/uid:1")))).images
    assert [i.id for i in only] == [image_id]
    none = cri.images.ListImages(cri_pb.ListImagesRequest(
        filter=cri_pb.ImageFilter(image=spec(f"{registry.host}/cri/absent:1")))).images
    assert list(none) == []


def test_user_of_the_image(cri: Cri, registry: Registry) -> None:
    pull(cri, f"{registry.host}/cri/uid:1")
    pull(cri, f"{registry.host}/cri/name:1")
    numeric = status(cri, f"{registry.host}/cri/uid:1").image
    assert numeric.HasField("uid") and numeric.uid.value == 1234 and numeric.username == ""
    named = status(cri, f"{registry.host}/cri/name:1").image
    assert not named.HasField("uid") and named.username == "www-data"


def test_verbose_status_has_the_image_config(cri: Cri, registry: Registry) -> None:
    ref = f"{registry.host}/cri/name:1"
    pull(cri, ref)
    info = json.loads(cri.images.ImageStatus(cri_pb.ImageStatusRequest(image=spec(ref), verbose=True)).info["info"])
    assert info["imageSpec"]["config"]["User"] == "www-data"
    assert info["chainID"].startswith("sha256:") and len(info["imageSpec"]["rootfs"]["diff_ids"]) == 1


def test_status_of_an_unknown_image_is_empty(cri: Cri) -> None:
    answer = status(cri, "docker.io/library/no-such-image:1")
    assert not answer.HasField("image") and dict(answer.info) == {}


def test_remove_by_reference_and_id(cri: Cri, cri_daemon: Daemon, registry: Registry) -> None:
    ref = f"{registry.host}/cri/plain:1"
    image_id = pull(cri, ref)
    cri.images.RemoveImage(cri_pb.RemoveImageRequest(image=spec(ref)))
    assert not status(cri, ref).HasField("image") and not status(cri, image_id).HasField("image")
    client = docker.DockerClient(base_url=cri_daemon.host, version="1.44")
    assert image_id not in {i.id for i in client.images.list()}
    # removing what is gone succeeds, as the CRI requires
    cri.images.RemoveImage(cri_pb.RemoveImageRequest(image=spec(ref)))

    image_id = pull(cri, ref)
    cri.images.RemoveImage(cri_pb.RemoveImageRequest(image=spec(image_id)))
    assert not status(cri, ref).HasField("image")


def test_image_removed_by_docker_is_gone_for_the_cri(cri: Cri, cri_daemon: Daemon, registry: Registry) -> None:
    ref = f"{registry.host}/cri/name:1"
    pull(cri, ref)
    cri_daemon.cli("rmi", ref)
    assert not status(cri, ref).HasField("image")


def test_pull_with_credentials(cri: Cri, private_registry: Registry) -> None:
    ref = f"{private_registry.host}/cri/secret:1"
    # dockerd's answer (and so the engine's): a repository that refuses an anonymous pull may not exist
    err = rpc_error(pull, cri, ref)
    assert err.code() == grpc.StatusCode.NOT_FOUND and "authentication required" in err.details()
    err = rpc_error(pull, cri, ref, cri_pb.AuthConfig(username=USER, password="not-it"))
    assert err.code() == grpc.StatusCode.NOT_FOUND and "authentication required" in err.details()
    image_id = pull(cri, ref, cri_pb.AuthConfig(username=USER, password=PASSWORD))
    cri.images.RemoveImage(cri_pb.RemoveImageRequest(image=spec(image_id)))
    # the config.json form: base64 of user:password
    encoded = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    assert pull(cri, ref, cri_pb.AuthConfig(auth=encoded, server_address=private_registry.host)) == image_id


def test_bad_pulls(cri: Cri, registry: Registry) -> None:
    assert rpc_error(pull, cri, f"{registry.host}/cri/absent:1").code() == grpc.StatusCode.NOT_FOUND
    err = rpc_error(pull, cri, "Not A Reference")
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "invalid reference format" in err.details()
    err = rpc_error(pull, cri, "")
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "image.image" in err.details()


def test_image_fs_info(cri: Cri, cri_daemon: Daemon, registry: Registry) -> None:
    pull(cri, f"{registry.host}/cri/uid:1")
    [fs] = cri.images.ImageFsInfo(cri_pb.ImageFsInfoRequest()).image_filesystems
    assert os.path.dirname(fs.fs_id.mountpoint) == cri_daemon.data_root
    assert os.path.basename(fs.fs_id.mountpoint) in ("overlay2", "vfs")
    assert fs.used_bytes.value > 0 and fs.inodes_used.value > 0 and fs.timestamp > 0
    before = fs.used_bytes.value, fs.inodes_used.value
    ref = f"{registry.host}/cri/plain:1"
    image_id = pull(cri, ref)
    [fs] = cri.images.ImageFsInfo(cri_pb.ImageFsInfoRequest()).image_filesystems
    assert fs.used_bytes.value > before[0] and fs.inodes_used.value > before[1]
    cri.images.RemoveImage(cri_pb.RemoveImageRequest(image=spec(image_id)))
    [fs] = cri.images.ImageFsInfo(cri_pb.ImageFsInfoRequest()).image_filesystems
    assert (fs.used_bytes.value, fs.inodes_used.value) == before
