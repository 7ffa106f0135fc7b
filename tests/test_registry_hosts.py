"""containerd's registry hosts directory (hosts.toml) for `docker pull` and the CRI's PullImage.

A dockyardd reads a test directory as its --registry-config-dir; Debian's
docker-registry on 127.0.0.1 is the mirror of registry names that do not
resolve. Every fallback a test provokes goes to a loopback port nothing
listens on or to a name under ``.invalid``: nothing leaves the machine.
"""

from __future__ import annotations

import ipaddress
import shutil
from pathlib import Path
from typing import Iterator

import grpc
import pytest
from cri_api.v1 import api_pb2 as cri_pb
from cri_api.v1 import api_pb2_grpc
from registry import Registry, free_port

from conftest import Daemon, make_daemon
from dockyard.distribution import hosts
from dockyard.distribution.registries import RegistryConfig
from dockyard.util.tlscerts import pki
from fixtures.busybox import rootfs_layer, write_oci_layout

IMAGE = "k8s/pause:3.9"


@pytest.fixture(scope="module")
def oci_image(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("oci") / "pause-oci.tar"
    return str(path), write_oci_layout(str(path), [rootfs_layer({"etc/motd": b"from the mirror\n"})])


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory, oci_image) -> Iterator[Registry]:
    with Registry(tmp_path_factory.mktemp("mirror")) as reg:
        reg.skopeo_copy(f"oci-archive:{oci_image[0]}", IMAGE)
        yield reg


@pytest.fixture(scope="module")
def hosts_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("certs.d")


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory, hosts_dir: Path) -> Iterator[Daemon]:
    d = make_daemon(tmp_path_factory.mktemp("dockyardd-hosts"), ["--registry-config-dir", str(hosts_dir)])
    d.start()
    yield d
    d.teardown()


@pytest.fixture
def write_hosts(hosts_dir: Path, daemon: Daemon) -> Iterator:
    """Writes <dir>/<namespace>/hosts.toml; the test's directories and pulled images go at its end."""
    def write(namespace: str, text: str) -> Path:
        path = hosts_dir / namespace / "hosts.toml"
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
        return path
    yield write
    for child in hosts_dir.iterdir():
        shutil.rmtree(child)
    ids = daemon.cli("images", "-q").stdout_text.split()
    if ids:
        daemon.cli("rmi", "-f", *ids)


def mirror_of(registry: Registry, capabilities: str = '"pull", "resolve"', server: str = "") -> str:
    # the upstream is named with a scheme so that no lookup of it happens while the mirror serves
    server = server or f"http://127.0.0.1:{free_port()}"
    return (f'server = "{server}"\n\n'
            f'[host."http://{registry.host}"]\n  capabilities = [{capabilities}]\n')


def repo_digest(daemon: Daemon, ref: str) -> str:
    return daemon.client().images.get(ref).attrs["RepoDigests"][0].split("@", 1)[1]


def test_pull_through_a_mirror_of_a_registry_that_does_not_resolve(daemon: Daemon, registry: Registry,
                                                                   write_hosts, oci_image) -> None:
    write_hosts("registry.k8s.io", mirror_of(registry, server="https://registry.k8s.io"))
    out = daemon.cli("pull", f"registry.k8s.io/{IMAGE}").stdout_text
    assert f"Status: Downloaded newer image for registry.k8s.io/{IMAGE}" in out
    image = daemon.client().images.get(f"registry.k8s.io/{IMAGE}")
    assert image.id == oci_image[1].image_id
    assert image.attrs["RepoDigests"][0].startswith("registry.k8s.io/k8s/pause@sha256:")
    # docker-py's pull is the same endpoint
    daemon.cli("rmi", f"registry.k8s.io/{IMAGE}")
    assert daemon.client().images.pull("registry.k8s.io/k8s/pause", tag="3.9").id == oci_image[1].image_id


def test_a_host_without_resolve_serves_only_digests(daemon: Daemon, registry: Registry, write_hosts,
                                                     oci_image) -> None:
    write_hosts("registry.k8s.io", mirror_of(registry))
    daemon.cli("pull", f"registry.k8s.io/{IMAGE}")
    digest = repo_digest(daemon, f"registry.k8s.io/{IMAGE}")
    daemon.cli("rmi", f"registry.k8s.io/{IMAGE}")
    upstream_port = free_port()
    write_hosts("registry.k8s.io", mirror_of(registry, '"pull"', f"http://127.0.0.1:{upstream_port}"))
    by_digest = f"registry.k8s.io/k8s/pause@{digest}"
    assert "Downloaded newer image" in daemon.cli("pull", by_digest).stdout_text
    assert daemon.client().images.get(by_digest).id == oci_image[1].image_id
    # by tag the mirror is not asked: the upstream is, and nothing listens there
    res = daemon.cli("pull", f"registry.k8s.io/{IMAGE}", check=False)
    assert res.returncode != 0
    assert f"127.0.0.1:{upstream_port}" in res.stderr_text


def test_default_namespace_serves_registries_without_a_directory(daemon: Daemon, registry: Registry,
                                                                 write_hosts, oci_image) -> None:
    write_hosts("_default", f'server = "http://{registry.host}"\n')
    ref = f"anything.invalid/{IMAGE}"
    daemon.cli("pull", ref)
    assert daemon.client().images.get(ref).id == oci_image[1].image_id
    # a registry's own directory wins over _default, here with containerd's host_port_ spelling
    refused = free_port()
    write_hosts("other.invalid_5000_", f'server = "http://127.0.0.1:{refused}"\n')
    res = daemon.cli("pull", f"other.invalid:5000/{IMAGE}", check=False)
    assert res.returncode != 0 and f"127.0.0.1:{refused}" in res.stderr_text


def test_a_bad_file_is_ignored_with_a_warning(daemon: Daemon, registry: Registry, write_hosts) -> None:
    ref = f"{registry.host}/{IMAGE}"
    refused = free_port()
    # honoured first (read at each pull): the registry's own address is replaced by a dead upstream
    path = write_hosts(registry.host, f'server = "http://127.0.0.1:{refused}"\n')
    res = daemon.cli("pull", ref, check=False)
    assert res.returncode != 0 and f"127.0.0.1:{refused}" in res.stderr_text
    path.write_text(f'server = "http://127.0.0.1:{refused}"\n[host."x\n')
    daemon.cli("pull", ref)
    assert f"ignoring registry hosts file {path}: invalid TOML" in daemon.log()
    daemon.cli("rmi", ref)
    path.write_text(f'server = "http://127.0.0.1:{refused}"\n' + "#" * hosts.MAX_HOSTS_FILE)
    daemon.cli("pull", ref)
    assert f"ignoring registry hosts file {path}: larger than 64 KiB" in daemon.log()


def test_cri_pull_goes_through_the_hosts_directory(daemon: Daemon, registry: Registry, write_hosts,
                                                    oci_image) -> None:
    write_hosts("registry.k8s.io", mirror_of(registry))
    channel = grpc.insecure_channel(f"unix://{Path(daemon.exec_root) / 'cri.sock'}")
    try:
        images = api_pb2_grpc.ImageServiceStub(channel)
        image_ref = images.PullImage(cri_pb.PullImageRequest(
            image=cri_pb.ImageSpec(image=f"registry.k8s.io/{IMAGE}"))).image_ref
    finally:
        channel.close()
    assert image_ref == oci_image[1].image_id
    assert daemon.client().images.get(f"registry.k8s.io/{IMAGE}").id == image_ref


@pytest.fixture(scope="module")
def tls_registry(tmp_path_factory: pytest.TempPathFactory, registry: Registry) -> Iterator[tuple[Registry, Path]]:
    """The mirror's storage served over HTTPS by a CA of the test's own, demanding a client certificate;
    the second value is a directory with that CA (ca.pem) and a client pair (client.cert, client.key)."""
    base = tmp_path_factory.mktemp("tls-mirror")
    ca = pki.make_ca()
    server = pki.issue_server(ca, ["localhost"], [ipaddress.ip_address("127.0.0.1")])
    client = pki.issue_client(ca)
    files = tmp_path_factory.mktemp("tls-files")
    for name, data in [("ca.pem", ca.cert_pem()), ("client.cert", client.cert_pem()),
                       ("client.key", client.key_pem()), ("server.cert", server.cert_pem()),
                       ("server.key", server.key_pem())]:
        (files / name).write_bytes(data)
    reg = Registry(base, tls=(files / "server.cert", files / "server.key", files / "ca.pem"))
    reg.storage = registry.storage  # same content as the plain mirror
    with reg:
        yield reg, files


def test_ca_and_client_certificate_of_a_host(daemon: Daemon, tls_registry, write_hosts, oci_image) -> None:
    reg, files = tls_registry
    ref = f"registry.k8s.io/{IMAGE}"
    refused = f"http://127.0.0.1:{free_port()}"
    host = f'[host."https://{reg.host}"]\n  capabilities = ["pull", "resolve"]\n'
    # with a client certificate but not the CA: the system's CAs do not know the test's
    ca, cert, key = files / "ca.pem", files / "client.cert", files / "client.key"
    write_hosts("registry.k8s.io", f'server = "{refused}"\n{host}  client = [["{cert}", "{key}"]]\n')
    res = daemon.cli("pull", ref, check=False)
    assert res.returncode != 0
    assert "certificate verify failed" in daemon.log()
    write_hosts("registry.k8s.io", f'server = "{refused}"\n{host}  ca = "{ca}"\n  client = [["{cert}", "{key}"]]\n')
    daemon.cli("pull", ref)
    assert daemon.client().images.get(ref).id == oci_image[1].image_id


def test_docker_style_certificates_beside(daemon: Daemon, tls_registry, write_hosts, hosts_dir: Path,
                                          oci_image) -> None:
    reg, files = tls_registry
    ref = f"{reg.host}/{IMAGE}"
    # a loopback registry is tried over HTTPS without verification, then HTTP: the client certificate is
    # what the registry wants
    assert daemon.cli("pull", ref, check=False).returncode != 0
    ns = hosts_dir / reg.host
    ns.mkdir()
    shutil.copy(files / "ca.pem", ns / "ca.crt")
    shutil.copy(files / "client.cert", ns / "client.cert")
    shutil.copy(files / "client.key", ns / "client.key")
    daemon.cli("pull", ref)
    assert daemon.client().images.get(ref).id == oci_image[1].image_id


# -- the directory's reading, without a daemon -------------------------------------------------

def test_hosts_toml_fields(tmp_path: Path) -> None:
    ns = tmp_path / "reg.invalid"
    ns.mkdir()
    (ns / "hosts.toml").write_text(
        'server = "https://up.invalid"\n'
        'skip_verify = true\n'
        '[host."https://m1.invalid/api/v2/reg"]\n'
        '  capabilities = ["pull"]\n'
        '  override_path = true\n'
        '  ca = ["ca.pem", "/abs/ca2.pem"]\n'
        '  client = [["c.cert", "c.key"], ["both.pem", ""]]\n'
        '  [host."https://m1.invalid/api/v2/reg".header]\n'
        '    x-one = "1"\n'
        '    x-two = ["a", "b"]\n'
        '[host."http://m2.invalid"]\n')
    pull = RegistryConfig([], [], str(tmp_path)).endpoints("reg.invalid", "pull")
    assert [e.url for e in pull] == ["https://m1.invalid/api/v2/reg", "http://m2.invalid", "https://up.invalid"]
    m1, m2, server = pull
    assert m1.api_root == "https://m1.invalid/api/v2/reg" and m2.api_root == "http://m2.invalid/v2"
    assert m1.ca == (str(ns / "ca.pem"), "/abs/ca2.pem")
    assert m1.client == ((str(ns / "c.cert"), str(ns / "c.key")), (str(ns / "both.pem"), None))
    assert m1.headers == (("x-one", "1"), ("x-two", "a, b"))
    assert m1.mirror and m2.mirror and not server.mirror
    assert not server.verify_tls and m1.verify_tls
    resolve = RegistryConfig([], [], str(tmp_path)).endpoints("reg.invalid", "resolve")
    assert [e.url for e in resolve] == ["http://m2.invalid", "https://up.invalid"]


def test_docker_style_certificates_beside_apply_to_the_upstream(tmp_path: Path) -> None:
    ns = tmp_path / "reg.invalid"
    ns.mkdir()
    for name in ("ca.crt", "client.cert", "client.key", "lonely.cert"):
        (ns / name).write_text("")
    [server] = RegistryConfig([], [], str(tmp_path)).endpoints("reg.invalid")
    assert server.url == "https://reg.invalid"
    assert server.ca == (str(ns / "ca.crt"),)
    assert server.client == ((str(ns / "client.cert"), str(ns / "client.key")),)


def test_registry_mirrors_keep_working_beside_a_hub_hosts_file(tmp_path: Path) -> None:
    (tmp_path / "docker.io").mkdir()
    (tmp_path / "docker.io" / "hosts.toml").write_text(
        'server = "https://docker.io"\n[host."https://hub-mirror.invalid"]\n  capabilities = ["pull", "resolve"]\n')
    cfg = RegistryConfig(["https://dockerd-mirror.invalid"], [], str(tmp_path))
    assert [e.url for e in cfg.endpoints("docker.io")] == [
        "https://hub-mirror.invalid", "https://dockerd-mirror.invalid", "https://registry-1.docker.io"]
    # neither mirror may be pushed to: one lacks the capability, the other is dockerd's read-only mirror
    assert [e.url for e in cfg.push_endpoints("docker.io")] == ["https://registry-1.docker.io"]


@pytest.mark.parametrize("text, why", [
    ('server = 1\n', "server must be a string"),
    ('[host."https://m.invalid"]\ncapabilities = ["fly"]\n', "unknown capabilities"),
    ('[host."ftp://m.invalid"]\n', "unsupported scheme"),
    ('[host."https://m.invalid"]\nskip_verify = "yes"\n', "must be true or false"),
    ('[host."https://m.invalid".header]\nx = 1\n', "header 'x'"),
])
def test_invalid_values_ignore_the_file(tmp_path: Path, text: str, why: str,
                                        caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "reg.invalid").mkdir()
    (tmp_path / "reg.invalid" / "hosts.toml").write_text(text)
    assert hosts.load(str(tmp_path), "reg.invalid") is None
    assert why in caplog.text
