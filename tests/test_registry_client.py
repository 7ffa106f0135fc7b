"""The Distribution API client against real registries (docker-registry, a token server), no daemon."""

from __future__ import annotations

import base64
import gzip
import json

import pytest
from registry import PASSWORD, SERVICE, USER, Registry, TokenServer, sha256

from dockyard.distribution import manifest as mf
from dockyard.distribution.auth import AuthConfig, parse_challenge
from dockyard.distribution.client import RegistryError, Transport
from dockyard.distribution.names import from_image_and_tag
from dockyard.distribution.registries import RegistryConfig
from dockyard.distribution.session import Sessions
from dockyard.errors import InvalidParameter, NotFound, Unauthorized, Unavailable
from fixtures.busybox import rootfs_layer, write_oci_layout


def sessions(insecure: list[str] | None = None, mirrors: list[str] | None = None) -> Sessions:
    return Sessions(RegistryConfig(mirrors or [], insecure or []), Transport())


# -- pure parsing --------------------------------------------------------------------
def test_x_registry_auth_decoding() -> None:
    raw = json.dumps({"username": "u", "password": "p?>", "serveraddress": "127.0.0.1:5000"}).encode()
    unpadded = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    auth = AuthConfig.from_header(unpadded)
    assert (auth.username, auth.password, auth.server_address) == ("u", "p?>", "127.0.0.1:5000")
    token = AuthConfig.from_header(base64.urlsafe_b64encode(b'{"identitytoken":"abc"}').decode())
    assert token.identity_token == "abc" and token.has_credentials
    assert not AuthConfig.from_header(base64.b64encode(b"{}").decode()).has_credentials
    with pytest.raises(InvalidParameter):
        AuthConfig.from_header("!!!not base64 json")


def test_challenge_parsing() -> None:
    ch = parse_challenge('Bearer realm="https://auth.example/token",service="registry.example",'
                         'scope="repository:library/busybox:pull,push"')
    assert ch is not None and ch.scheme == "bearer"
    assert ch.params == {"realm": "https://auth.example/token", "service": "registry.example",
                         "scope": "repository:library/busybox:pull,push"}
    basic = parse_challenge('Basic realm="Registry Realm"')
    assert basic is not None and basic.scheme == "basic"


def test_reference_forms_of_images_create() -> None:
    assert str(from_image_and_tag("busybox", "latest")) == "docker.io/library/busybox:latest"
    digest = "sha256:" + "a" * 64
    assert from_image_and_tag("127.0.0.1:5000/x", digest).digest == digest
    assert from_image_and_tag("localhost:5000/team/app", "").tag is None  # pull -a


def test_endpoints_and_insecure_registries() -> None:
    cfg = RegistryConfig(["https://mirror.example"], ["10.20.0.0/16", "reg.internal:5000"])
    hub = cfg.endpoints("docker.io")
    assert [e.url for e in hub] == ["https://mirror.example", "https://registry-1.docker.io"]
    assert hub[0].mirror and not cfg.push_endpoints("docker.io")[0].mirror
    assert [e.url for e in cfg.endpoints("127.0.0.1:5000")] == ["https://127.0.0.1:5000", "http://127.0.0.1:5000"]
    assert [e.url for e in cfg.endpoints("10.20.3.4:443")][-1] == "http://10.20.3.4:443"
    assert [e.url for e in cfg.endpoints("reg.internal:5000")][-1] == "http://reg.internal:5000"
    assert [e.url for e in cfg.endpoints("10.21.0.1:5000")] == ["https://10.21.0.1:5000"]


def test_platform_selection() -> None:
    def entry(arch: str, variant: str = "") -> dict:
        p = {"os": "linux", "architecture": arch, **({"variant": variant} if variant else {})}
        return {"mediaType": mf.OCI_MANIFEST, "digest": sha256(json.dumps(p).encode()), "size": 1, "platform": p}

    index = mf.Index(mf.OCI_INDEX, [mf.Descriptor.from_json(e) for e in
                                    [entry("arm", "v6"), entry("arm", "v7"), entry("amd64", "v3"),
                                     entry("amd64"), entry("arm64", "v8")]])
    assert mf.select(index, mf.Platform("linux", "amd64")).platform == {"os": "linux", "architecture": "amd64"}
    assert mf.select(index, mf.parse_platform("linux/arm/v7")).platform["variant"] == "v7"
    assert mf.select(index, mf.parse_platform("linux/arm64")).platform["architecture"] == "arm64"
    with pytest.raises(NotFound, match="no matching manifest for linux/s390x"):
        mf.select(index, mf.parse_platform("linux/s390x"))


def test_schema1_refused_with_a_clear_message() -> None:
    body = json.dumps({"schemaVersion": 1, "name": "x", "tag": "old", "fsLayers": []}).encode()
    with pytest.raises(InvalidParameter, match="schema 1 support has been removed"):
        mf.parse(body, mf.SCHEMA1[1], "x:old")
    with pytest.raises(InvalidParameter, match="not valid JSON"):
        mf.parse(b"<html>", mf.DOCKER_MANIFEST, "x:bad")


# -- against docker-registry -----------------------------------------------------------
@pytest.fixture(scope="module")
def oci_archive(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, object]:
    path = tmp_path_factory.mktemp("oci") / "busybox-oci.tar"
    built = write_oci_layout(str(path), [rootfs_layer()])
    return str(path), built


@pytest.fixture(scope="module")
def open_registry(tmp_path_factory: pytest.TempPathFactory, oci_archive: tuple[str, object]):
    with Registry(tmp_path_factory.mktemp("registry")) as reg:
        reg.skopeo_copy(f"oci-archive:{oci_archive[0]}", "busybox:latest")
        yield reg


def test_resolve_and_fetch_blobs_over_plain_http(open_registry: Registry, oci_archive: tuple[str, object]) -> None:
    s = sessions().open(open_registry.host, "busybox", AuthConfig())
    assert s.endpoint.url == f"http://{open_registry.host}"  # https tried first, http answered
    got = s.get_manifest("latest", mf.ACCEPT)
    m = mf.parse(got.data, got.media_type, "busybox")
    assert isinstance(m, mf.ImageManifest)
    assert got.digest == sha256(got.data)
    config = s.request("GET", f"blobs/{m.config.digest}").data
    assert json.loads(config)["rootfs"]["diff_ids"] == oci_archive[1].diff_ids
    resp = s.open_blob(m.layers[0].digest)
    blob = resp.read()
    resp.release_conn()
    assert sha256(blob) == m.layers[0].digest
    assert sha256(gzip.decompress(blob)) == oci_archive[1].diff_ids[0]
    with pytest.raises(RegistryError) as err:
        s.get_manifest("nope", mf.ACCEPT)
    assert err.value.code == "MANIFEST_UNKNOWN" and str(err.value) == "manifest unknown: manifest unknown"


def test_push_primitives_and_manifest_list(open_registry: Registry) -> None:
    s = sessions().open(open_registry.host, "multi", AuthConfig(), ("pull", "push"))
    config = json.dumps({"architecture": "arm64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}
                        ).encode()
    assert s.blob_size(sha256(config)) is None
    s.upload_blob(sha256(config), iter([config[:10], config[10:]]), len(config), chunk_size=7)
    assert s.blob_size(sha256(config)) == len(config)
    image = json.dumps({"schemaVersion": 2, "mediaType": mf.OCI_MANIFEST,
                        "config": {"mediaType": mf.OCI_CONFIG, "digest": sha256(config), "size": len(config)},
                        "layers": []}).encode()
    s.put_manifest(sha256(image), mf.OCI_MANIFEST, image)
    index = json.dumps({"schemaVersion": 2, "mediaType": mf.OCI_INDEX, "manifests": [
        {"mediaType": mf.OCI_MANIFEST, "digest": sha256(image), "size": len(image),
         "platform": {"os": "linux", "architecture": "arm64"}}]}).encode()
    s.put_manifest("v1", mf.OCI_INDEX, index)
    got = s.get_manifest("v1", mf.ACCEPT)
    parsed = mf.parse(got.data, got.media_type, "multi:v1")
    assert isinstance(parsed, mf.Index)
    assert mf.select(parsed, mf.parse_platform("linux/arm64")).digest == sha256(image)
    # a blob another repository has is mounted, not uploaded
    other = sessions().open(open_registry.host, "other", AuthConfig(), ("pull", "push"))
    assert other.mount_blob(sha256(config), "multi") is True
    assert other.blob_size(sha256(config)) == len(config)


def test_registry_down_is_unavailable() -> None:
    from registry import free_port
    with pytest.raises(Unavailable, match="(?i)refused"):
        sessions().open(f"127.0.0.1:{free_port()}", "x", AuthConfig())


def test_basic_auth(tmp_path, oci_archive) -> None:
    with Registry(tmp_path / "reg", auth="htpasswd") as reg:
        anon = sessions().open(reg.host, "busybox", AuthConfig())
        assert anon.authorizer.challenge is not None and anon.authorizer.challenge.scheme == "basic"
        with pytest.raises(RegistryError) as err:
            anon.tags()
        assert err.value.status == 401
        s = sessions().open(reg.host, "busybox", AuthConfig(USER, PASSWORD), ("pull", "push"))
        data = b"hello blob"
        s.upload_blob(sha256(data), iter([data]), len(data))
        assert s.blob_size(sha256(data)) == len(data)


def test_bearer_token_flow(tmp_path) -> None:
    with TokenServer(tmp_path / "tok") as tokens, Registry(tmp_path / "reg", auth=tokens) as reg:
        creds = sessions().open(reg.host, "app", AuthConfig(USER, PASSWORD), ("pull", "push"))
        assert creds.authorizer.challenge.params["service"] == SERVICE
        data = b"token-protected blob"
        creds.upload_blob(sha256(data), iter([data]), len(data))
        # anonymous: the token server grants pull only
        anon = sessions().open(reg.host, "app", AuthConfig(), ("pull",))
        assert anon.blob_size(sha256(data)) == len(data)
        anon_push = sessions().open(reg.host, "app", AuthConfig(), ("pull", "push"))
        with pytest.raises(RegistryError) as err:
            anon_push.upload_blob(sha256(b"x"), iter([b"x"]), 1)
        assert err.value.status == 401
        # wrong password: the token server refuses
        bad = sessions().open(reg.host, "app", AuthConfig(USER, "wrong"))
        with pytest.raises(Unauthorized, match="incorrect username or password"):
            bad.blob_size(sha256(data))
        # login hands out a refresh token; it works as an identity token
        login = sessions().open(reg.host, "app", AuthConfig(USER, PASSWORD))
        login.authorizer.token(["registry:catalog:*"], offline=True)
        refresh = login.authorizer.refresh_token
        assert refresh in tokens.refresh_tokens
        ident = sessions().open(reg.host, "app", AuthConfig(identity_token=refresh), ("pull", "push"))
        ident.upload_blob(sha256(b"via refresh"), iter([b"via refresh"]), len(b"via refresh"))
        assert any(r["method"] == "POST" for r in tokens.requests)
