"""`dockyard certs` and `dockyard env`: the set they make works for the daemon and
the docker CLI, renewing the server certificate leaves the CA and clients alone,
and the env output is something a shell can eval."""

from __future__ import annotations

import ipaddress
import os
import socket
import subprocess
from pathlib import Path
from types import SimpleNamespace

from cryptography import x509

from dockyard.cli import remote
from dockyard.util.tlscerts import hostaddrs, pki

from conftest import DOCKER, DOCKYARDD

DOCKYARD_CLI = str(Path(DOCKYARDD).with_name("dockyard"))


def dockyard(*argv: str, env: dict[str, str] | None = None) -> SimpleNamespace:
    """Run the real `dockyard` command."""
    res = subprocess.run([DOCKYARD_CLI, *argv], capture_output=True, text=True, timeout=60,
                         env=env or os.environ.copy())
    return SimpleNamespace(status=res.returncode, out=res.stdout, err=res.stderr)


def cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_create_makes_the_docker_layout_with_detected_and_given_names(tmp_path):
    d = tmp_path / "certs"
    res = dockyard("certs", "create", "--dir", str(d), "--host", "dy.example.org", "--host", "10.9.8.7")
    assert res.status == 0, res.err
    files = {p.name: p.stat().st_mode & 0o777 for p in d.iterdir()}
    assert files == {"ca.pem": 0o644, "ca-key.pem": 0o600, "cert.pem": 0o644, "key.pem": 0o600,
                     "server-cert.pem": 0o644, "server-key.pem": 0o600}
    names, addresses = pki.san_of(cert(d / "server-cert.pem"))
    assert {"dy.example.org", socket.gethostname(), "localhost"} <= set(names)
    assert {ipaddress.ip_address("10.9.8.7"), ipaddress.ip_address("127.0.0.1")} <= set(addresses)
    assert set(hostaddrs.addresses()) <= set(addresses)
    assert pki.san_of(cert(d / "cert.pem")) == ([], [])
    # a second create would orphan every certificate of the first CA: refused without --force
    again = dockyard("certs", "create", "--dir", str(d))
    assert again.status == 1 and "--force" in again.err


def test_server_renewal_keeps_ca_and_clients(tmp_path):
    d = tmp_path / "certs"
    assert dockyard("certs", "create", "--dir", str(d), "--no-detect", "--host", "10.0.0.1").status == 0
    before = {n: (d / n).read_bytes() for n in ("ca.pem", "ca-key.pem", "cert.pem", "key.pem", "server-cert.pem")}
    res = dockyard("certs", "server", "--dir", str(d), "--no-detect", "--host", "10.0.0.2", "--host", "new.example")
    assert res.status == 0, res.err
    for n in ("ca.pem", "ca-key.pem", "cert.pem", "key.pem"):
        assert (d / n).read_bytes() == before[n], n
    assert (d / "server-cert.pem").read_bytes() != before["server-cert.pem"]
    assert pki.san_of(cert(d / "server-cert.pem")) == (["new.example"], [ipaddress.ip_address("10.0.0.2")])
    new = cert(d / "server-cert.pem")
    new.verify_directly_issued_by(cert(d / "ca.pem"))
    assert (d / "server-key.pem").stat().st_mode & 0o777 == 0o600
    # no CA there: nothing to sign with
    res = dockyard("certs", "server", "--dir", str(tmp_path / "empty"), "--host", "x")
    assert res.status == 1 and "ca.pem" in res.err


def test_env_output_evals_in_a_shell(tmp_path):
    d = tmp_path / "my certs"
    assert dockyard("certs", "create", "--dir", str(d), "--no-detect", "--host", "127.0.0.1").status == 0
    res = dockyard("env", "--cert-path", str(d), "10.1.2.3")
    assert res.status == 0, res.err
    shown = subprocess.run(["sh", "-c", res.out + 'printf "%s|%s|%s" "$DOCKER_HOST" "$DOCKER_TLS_VERIFY" '
                            '"$DOCKER_CERT_PATH"'], capture_output=True, text=True, check=True).stdout
    assert shown == f"tcp://10.1.2.3:2376|1|{d}"
    assert remote.docker_host("host:2377") == "tcp://host:2377"
    assert remote.docker_host("::1") == "tcp://[::1]:2376"
    assert remote.docker_host("tcp://[fd00::1]:2379") == "tcp://[fd00::1]:2379"
    unset = dockyard("env", "--unset", "x").out
    assert unset.strip() == "unset DOCKER_HOST DOCKER_TLS_VERIFY DOCKER_CERT_PATH"
    assert dockyard("env", "--cert-path", str(tmp_path / "none"), "h").status == 1


def test_the_set_serves_docker_over_tls(tmp_path, fresh_daemon):
    """What `certs create` makes is what dockyardd and the docker CLI take, end to end."""
    d = tmp_path / "certs"
    assert dockyard("certs", "create", "--dir", str(d)).status == 0
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    fresh_daemon.extra_args = ["-H", f"tcp://127.0.0.1:{port}", "--tlsverify", "--tlscacert", str(d / "ca.pem"),
                               "--tlscert", str(d / "server-cert.pem"), "--tlskey", str(d / "server-key.pem")]
    fresh_daemon.start()
    env_out = dockyard("env", "--cert-path", str(d), f"127.0.0.1:{port}").out
    res = subprocess.run(["sh", "-c", env_out + f'exec "{DOCKER}" version --format "{{{{.Server.APIVersion}}}}"'],
                         capture_output=True, text=True, timeout=60,
                         env={**{k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")},
                              "DOCKER_CONFIG": str(tmp_path / "docker-config")})
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "1.50"
    # the dockyard CLI takes the same flags and variables (it is on docker-py and requests, and requests
    # lets REQUESTS_CA_BUNDLE replace the CA it was given: requests issue 3829)
    base_env = {k: v for k, v in os.environ.items()
                if not k.startswith("DOCKER_") and k not in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")}
    flags = ["--tlsverify", "--tlscacert", str(d / "ca.pem"), "--tlscert", str(d / "cert.pem"),
             "--tlskey", str(d / "key.pem"), "-H", f"tcp://127.0.0.1:{port}"]
    res = dockyard(*flags, "version", "--format", "{{.Server.APIVersion}}", env=base_env)
    assert res.status == 0 and res.out.strip() == "1.50", res.err
    env = {**base_env, "DOCKER_HOST": f"tcp://127.0.0.1:{port}", "DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": str(d)}
    res = dockyard("info", "--format", "{{.Name}}", env=env)
    assert res.status == 0 and res.out.strip() == socket.gethostname(), res.err
