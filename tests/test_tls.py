"""Remote access over mutual TLS between two "hosts" on one machine.

Two network namespaces made here, joined by a veth pair: dockyardd runs in one
(under its own hostname, in its own UTS namespace) with TLS on its veth
addresses, the real docker CLI and docker-py run in the other. Then the
refusals: each fails the handshake, the daemon logs why and keeps serving,
and no connection is left behind.
"""

from __future__ import annotations

import datetime as dt
import grp
import ipaddress
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import DOCKER, DOCKYARDD
from dockyard.util.tlscerts import pki
from dockyard.util.tlscerts.layout import CertDir, write_file, write_pair

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("ip"),
                                reason="needs root and iproute2 for network namespaces")

REMOTE_HOSTNAME = "dy-remote-host"
PORT = 2376


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, check=check, timeout=30)


@dataclass
class Hosts:
    server_ns: str
    client_ns: str
    addr: str  # the server's address that its certificate names
    other_addr: str  # another address of the server, not in the certificate


@pytest.fixture(scope="module")
def hosts():
    tag = os.getpid() % 100000
    subnet = 20 + os.getpid() % 200
    h = Hosts(f"dyts{tag}", f"dytc{tag}", f"10.251.{subnet}.1", f"10.251.{subnet}.3")
    veth_s, veth_c = f"dyvs{tag}", f"dyvc{tag}"
    try:
        sh("ip", "netns", "add", h.server_ns)
        sh("ip", "netns", "add", h.client_ns)
        # made directly inside the namespaces: nothing appears in the machine's own
        sh("ip", "link", "add", veth_s, "netns", h.server_ns, "type", "veth", "peer", "name", veth_c,
           "netns", h.client_ns)
        sh("ip", "-n", h.server_ns, "addr", "add", f"{h.addr}/29", "dev", veth_s)
        sh("ip", "-n", h.server_ns, "addr", "add", f"{h.other_addr}/29", "dev", veth_s)
        sh("ip", "-n", h.client_ns, "addr", "add", f"10.251.{subnet}.2/29", "dev", veth_c)
        for ns, dev in ((h.server_ns, veth_s), (h.client_ns, veth_c)):
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            sh("ip", "-n", ns, "link", "set", dev, "up")
        yield h
    finally:
        # deleting a namespace destroys the veth end in it, and with it the pair
        for ns in (h.server_ns, h.client_ns):
            sh("ip", "netns", "del", ns, check=False)


@dataclass
class Pki:
    root: Path
    good: CertDir  # ca.pem, cert.pem, key.pem (client) and server-cert.pem, server-key.pem

    def client_dir(self, name: str) -> Path:
        return self.root / name


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory, hosts: Hosts) -> Pki:
    root = tmp_path_factory.mktemp("pki")
    good = CertDir(root / "good")
    good.create([REMOTE_HOSTNAME], [ipaddress.ip_address(hosts.addr)])
    ca = good.load_ca()
    # a client certificate from a CA the daemon does not trust
    other = CertDir(root / "other-ca")
    other.create(["elsewhere"], [])
    write_file(root / "foreign" / "ca.pem", ca.cert_pem(), private=False)
    write_pair(root / "foreign", "cert.pem", "key.pem", other.load_ca() and pki.issue_client(other.load_ca()))
    # signed by the right CA, but expired yesterday
    now = dt.datetime.now(dt.timezone.utc)
    write_file(root / "expired" / "ca.pem", ca.cert_pem(), private=False)
    write_pair(root / "expired", "cert.pem", "key.pem",
               pki.issue_client(ca, not_before=now - dt.timedelta(days=30), not_after=now - dt.timedelta(days=1)))
    (root / "nocert").mkdir()
    write_file(root / "nocert" / "ca.pem", ca.cert_pem(), private=False)
    return Pki(root, good)


@dataclass
class RemoteDaemon:
    proc: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def sockets(self) -> int:
        fd_dir = f"/proc/{self.proc.pid}/fd"
        count = 0
        for fd in os.listdir(fd_dir):
            try:
                count += os.readlink(f"{fd_dir}/{fd}").startswith("socket:")
            except OSError:
                pass
        return count


@pytest.fixture(scope="module")
def remote(hosts: Hosts, certs: Pki, tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp("remote")
    (base / "daemon.json").write_text(json.dumps({
        "tlsverify": True, "tlscacert": str(certs.good.file("ca.pem")),
        "tlscert": str(certs.good.file("server-cert.pem")), "tlskey": str(certs.good.file("server-key.pem"))}))
    log_path = base / "dockyardd.log"
    with open(log_path, "wb") as logf:
        # nsenter rather than `ip netns exec`, which remounts /sys for the namespace and so hides the
        # cgroup mounts runc needs; its own UTS namespace gives the remote host a name for `docker info`
        proc = subprocess.Popen(
            ["nsenter", f"--net=/run/netns/{hosts.server_ns}", "unshare", "--uts", "sh", "-c",
             f'hostname {REMOTE_HOSTNAME} && exec "$@"', "sh",
             DOCKYARDD, "-H", f"tcp://{hosts.addr}:{PORT}", "-H", f"tcp://{hosts.other_addr}:{PORT}",
             "--data-root", str(base / "data"), "--exec-root", str(base / "exec"),
             "--pidfile", str(base / "dockyardd.pid"), "--config-file", str(base / "daemon.json")],
            stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
    d = RemoteDaemon(proc, log_path)
    deadline = time.monotonic() + 30
    while "Daemon has completed initialization" not in d.log():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"dockyardd did not come up:\n{d.log()}")
        time.sleep(0.05)
    yield d
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def client_env(tmp: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    env["HOME"] = str(tmp)  # no ~/.docker of the machine's
    env["DOCKER_CONFIG"] = str(tmp / "docker-config")
    env.update(extra)
    return env


def docker_in(ns: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", "netns", "exec", ns, DOCKER, *args], capture_output=True, text=True,
                          env=env, timeout=60)


def tls_flags(cert_dir: Path, with_cert: bool = True) -> list[str]:
    flags = ["--tlsverify", "--tlscacert", str(cert_dir / "ca.pem")]
    if with_cert:
        flags += ["--tlscert", str(cert_dir / "cert.pem"), "--tlskey", str(cert_dir / "key.pem")]
    return flags


def test_docker_version_with_flags(hosts, certs, remote, tmp_path):
    res = docker_in(hosts.client_ns, client_env(tmp_path), *tls_flags(certs.good.path),
                    "-H", f"tcp://{hosts.addr}:{PORT}", "version")
    assert res.returncode == 0, res.stderr
    assert "Client:" in res.stdout and "Server: dockyard" in res.stdout
    assert "API version:       1.50" in res.stdout


def test_docker_with_environment_and_remote_name(hosts, certs, remote, tmp_path):
    env = client_env(tmp_path, DOCKER_HOST=f"tcp://{hosts.addr}:{PORT}", DOCKER_TLS_VERIFY="1",
                     DOCKER_CERT_PATH=str(certs.good.path))
    res = docker_in(hosts.client_ns, env, "version")
    assert res.returncode == 0, res.stderr
    assert "Client:" in res.stdout and "Server: dockyard" in res.stdout
    res = docker_in(hosts.client_ns, env, "info", "--format", "{{.Name}}")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == REMOTE_HOSTNAME != socket.gethostname()


def test_docker_py_with_tls_config(hosts, certs, remote):
    c = certs.good.path
    script = f"""
import json, docker
from docker.tls import TLSConfig
tls = TLSConfig(client_cert=({str(c / 'cert.pem')!r}, {str(c / 'key.pem')!r}), ca_cert={str(c / 'ca.pem')!r},
                verify=True)
client = docker.DockerClient(base_url="tcp://{hosts.addr}:{PORT}", tls=tls, version="auto")
print(json.dumps({{"version": client.version()["ApiVersion"], "name": client.info()["Name"],
                  "ping": client.ping()}}))
"""
    # requests lets these override a session's CA (requests issue 3829), for dockerd as for us
    env = {k: v for k, v in os.environ.items() if k not in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")}
    res = subprocess.run(["ip", "netns", "exec", hosts.client_ns, sys.executable, "-c", script],
                         capture_output=True, text=True, timeout=60, env=env)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == {"version": "1.50", "name": REMOTE_HOSTNAME, "ping": True}


def _refused(hosts: Hosts, remote: RemoteDaemon, tmp_path: Path, flags: list[str], addr: str,
             logged: str, client_says: str) -> None:
    before = remote.sockets()
    mark = len(remote.log())
    for _ in range(3):
        res = docker_in(hosts.client_ns, client_env(tmp_path), *flags, "-H", f"tcp://{addr}:{PORT}", "version")
        assert res.returncode != 0
        assert "Server:" not in res.stdout
        assert client_says in res.stderr, res.stderr
    deadline = time.monotonic() + 5
    while logged not in remote.log()[mark:] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "TLS handshake error from 10.251." in remote.log()[mark:]
    assert logged in remote.log()[mark:], remote.log()[mark:]
    assert remote.proc.poll() is None
    while remote.sockets() > before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert remote.sockets() <= before


def test_refuses_client_without_certificate(hosts, certs, remote, tmp_path):
    _refused(hosts, remote, tmp_path, tls_flags(certs.client_dir("nocert"), with_cert=False), hosts.addr,
             "peer did not return a certificate", "remote error: tls: certificate required")


def test_refuses_client_certificate_from_another_ca(hosts, certs, remote, tmp_path):
    _refused(hosts, remote, tmp_path, tls_flags(certs.client_dir("foreign")), hosts.addr,
             "certificate verify failed: unable to get local issuer certificate",
             "remote error: tls: unknown certificate authority")


def test_refuses_expired_client_certificate(hosts, certs, remote, tmp_path):
    _refused(hosts, remote, tmp_path, tls_flags(certs.client_dir("expired")), hosts.addr,
             "certificate verify failed: certificate has expired", "remote error: tls: expired certificate")


def test_client_refuses_server_certificate_without_the_address(hosts, certs, remote, tmp_path):
    _refused(hosts, remote, tmp_path, tls_flags(certs.good.path), hosts.other_addr,
             "alert bad certificate", f"certificate is valid for {hosts.addr}, not {hosts.other_addr}")


def test_plain_http_client_is_told(hosts, remote, tmp_path):
    res = docker_in(hosts.client_ns, client_env(tmp_path), "-H", f"tcp://{hosts.addr}:{PORT}", "version")
    assert res.returncode != 0
    assert "Client sent an HTTP request to an HTTPS server." in res.stderr


def test_still_serving_after_refusals(hosts, certs, remote, tmp_path):
    res = docker_in(hosts.client_ns, client_env(tmp_path), *tls_flags(certs.good.path),
                    "-H", f"tcp://{hosts.addr}:{PORT}", "version")
    assert res.returncode == 0, res.stderr
    assert remote.proc.poll() is None
    assert "Traceback" not in remote.log()


# -- start-up: what the daemon refuses, what it warns about ------------------------

def _start_refused(tmp_path: Path, *args: str) -> str:
    res = subprocess.run([DOCKYARDD, "--data-root", str(tmp_path / "data"), "--exec-root", str(tmp_path / "exec"),
                          "--pidfile", str(tmp_path / "pid"), "--config-file", str(tmp_path / "none.json"), *args],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode != 0
    return res.stderr


def test_start_refuses_bad_tls_files_naming_them(certs, tmp_path):
    (tmp_path / "none.json").write_text("{}")
    good = certs.good
    args = ["-H", "tcp://127.0.0.1:0", "--tlsverify"]
    missing = str(tmp_path / "missing-key.pem")
    err = _start_refused(tmp_path, *args, "--tlscacert", str(good.file("ca.pem")),
                         "--tlscert", str(good.file("server-cert.pem")), "--tlskey", missing)
    assert missing in err
    err = _start_refused(tmp_path, *args, "--tlscacert", str(good.file("ca.pem")),
                         "--tlscert", str(good.file("server-cert.pem")), "--tlskey", str(good.file("key.pem")))
    assert "does not match" in err and str(good.file("key.pem")) in err
    err = _start_refused(tmp_path, *args, "--tlscacert", str(good.file("ca-key.pem")),
                         "--tlscert", str(good.file("server-cert.pem")), "--tlskey", str(good.file("server-key.pem")))
    assert str(good.file("ca-key.pem")) in err and "no PEM certificate" in err


def test_plain_tcp_needs_the_flag_and_warns(fresh_daemon, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (tmp_path / "none.json").write_text("{}")
    err = _start_refused(tmp_path, "-H", f"tcp://127.0.0.1:{port}")
    assert "--allow-insecure-tcp" in err
    fresh_daemon.extra_args = ["-H", f"tcp://127.0.0.1:{port}", "--allow-insecure-tcp"]
    for _ in range(2):  # on every start
        fresh_daemon.start()
        fresh_daemon.stop()
    assert fresh_daemon.log().count("Binding to IP address without --tlsverify is insecure") == 2
    assert "level=WARNING" in fresh_daemon.log()


def test_unix_socket_mode_and_docker_group(fresh_daemon):
    created = False
    try:
        grp.getgrnam("docker")
    except KeyError:
        sh("groupadd", "--system", "docker")
        created = True
    try:
        fresh_daemon.start()
        st = os.stat(fresh_daemon.socket)
        assert st.st_mode & 0o777 == 0o660
        assert st.st_gid == grp.getgrnam("docker").gr_gid
        assert st.st_uid == 0
    finally:
        fresh_daemon.stop()
        if created:
            sh("groupdel", "docker")


# -- containers over TLS ------------------------------------------------------------

@pytest.fixture(scope="module")
def remote_env(hosts, certs, tmp_path_factory) -> dict[str, str]:
    return client_env(tmp_path_factory.mktemp("client"), DOCKER_HOST=f"tcp://{hosts.addr}:{PORT}",
                      DOCKER_TLS_VERIFY="1", DOCKER_CERT_PATH=str(certs.good.path))


@pytest.fixture(scope="module")
def remote_busybox(hosts, remote, remote_env, busybox_tar) -> None:
    res = docker_in(hosts.client_ns, remote_env, "load", "-i", busybox_tar.path)
    assert res.returncode == 0, res.stderr


def test_run_over_tls(hosts, remote_env, remote_busybox):
    res = docker_in(hosts.client_ns, remote_env, "run", "--rm", "busybox", "echo", "hello")
    assert res.returncode == 0, res.stderr
    assert res.stdout == "hello\n"


def test_attached_stdin_ends_and_output_still_comes(hosts, remote_env, remote_busybox):
    """`docker run -i` ends stdin with a TLS close_notify and keeps reading: what the
    container writes after that must still arrive (asyncio's SSL transport alone drops it)."""
    res = subprocess.run(["ip", "netns", "exec", hosts.client_ns, DOCKER, "run", "-i", "--rm", "busybox",
                          "sh", "-c", "cat; sleep 0.3; echo late"],
                         input="hi there\n", capture_output=True, text=True, env=remote_env, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout == "hi there\nlate\n"


# -- streams over TLS: terminals, attach, follow, build, pull -----------------------

@pytest.fixture
def remote_pane(hosts, remote_env, remote_busybox):
    """tmux panes running the real docker CLI in the client's namespace, over TLS."""
    from test_containers_tty import Pane

    panes: list[Pane] = []

    def make(command: str) -> Pane:
        tls = f"DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH={remote_env['DOCKER_CERT_PATH']}"
        p = Pane(remote_env, f"ip netns exec {hosts.client_ns} env {tls} {command}")
        panes.append(p)
        return p

    yield make
    for p in panes:
        p.close()


@pytest.fixture
def remote_cleanup(hosts, remote_env):
    """Names of containers a test made, removed afterwards."""
    names: list[str] = []
    yield names
    if names:
        docker_in(hosts.client_ns, remote_env, "rm", "-f", *names)


def test_run_it_over_tls(remote_pane):
    p = remote_pane(f"{DOCKER} run -it --rm busybox sh")
    p.wait_for(lambda s: "/ #" in s)
    p.type("echo $((6*7)); stty size")
    p.keys("Enter")
    p.wait_for(lambda s: "\n42\n30 100" in s)
    p.type("exit 3")
    p.keys("Enter")
    p.wait_for(lambda s: "EXIT=3" in s)


def test_exec_it_over_tls(hosts, remote_env, remote_pane, remote_cleanup):
    remote_cleanup.append("tls-exec")
    res = docker_in(hosts.client_ns, remote_env, "run", "-d", "--name", "tls-exec", "busybox", "sleep", "300")
    assert res.returncode == 0, res.stderr
    p = remote_pane(f"{DOCKER} exec -it tls-exec sh")
    p.wait_for(lambda s: "/ #" in s)
    p.type("echo in-$((2+3)) $(cat /proc/1/cmdline | tr '\\0' ' ')")
    p.keys("Enter")
    p.wait_for(lambda s: "in-5 sleep 300" in s)
    p.type("exit 4")
    p.keys("Enter")
    p.wait_for(lambda s: "EXIT=4" in s)


def test_attach_after_run_dit_over_tls(hosts, remote_env, remote_pane, remote_cleanup):
    remote_cleanup.append("tls-attach")
    res = docker_in(hosts.client_ns, remote_env, "run", "-dit", "--name", "tls-attach", "busybox", "sh")
    assert res.returncode == 0, res.stderr
    p = remote_pane(f"{DOCKER} attach tls-attach")
    time.sleep(0.3)  # the attach is up before the first keys reach the shell
    p.type("echo att-$((3*3))")
    p.keys("Enter")
    p.wait_for(lambda s: "att-9" in s)
    p.keys("C-p", "C-q")
    # what the docker CLI says and returns on a detach from `docker attach`, against dockerd too
    p.wait_for(lambda s: "read escape sequence\nEXIT=1" in s)
    res = docker_in(hosts.client_ns, remote_env, "inspect", "-f", "{{.State.Running}}", "tls-attach")
    assert res.stdout.strip() == "true"


def test_logs_follow_over_tls(hosts, remote_env, remote_cleanup):
    remote_cleanup.append("tls-logs")
    res = docker_in(hosts.client_ns, remote_env, "run", "-d", "--name", "tls-logs", "busybox", "sh", "-c",
                    "echo first; sleep 1.5; echo second")
    assert res.returncode == 0, res.stderr
    started = time.monotonic()
    proc = subprocess.Popen(["ip", "netns", "exec", hosts.client_ns, DOCKER, "logs", "-f", "tls-logs"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=remote_env)
    try:
        assert proc.stdout.readline() == "first\n"  # type: ignore[union-attr]
        assert time.monotonic() - started < 1.5  # seen before the container wrote its second line
        assert proc.stdout.readline() == "second\n"  # type: ignore[union-attr]
        assert proc.wait(15) == 0  # the follow ends with the container
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_build_over_tls(hosts, remote_env, remote_busybox, tmp_path):
    (tmp_path / "hello.txt").write_text("sent over TLS\n")
    (tmp_path / "Dockerfile").write_text("FROM busybox\nCOPY hello.txt /\nRUN cat /hello.txt > /copy.txt\n")
    env = {**remote_env, "DOCKER_BUILDKIT": "0"}
    res = docker_in(hosts.client_ns, env, "build", "-t", "tls-built", str(tmp_path))
    assert res.returncode == 0, res.stderr
    assert "Step 3/3 : RUN cat /hello.txt > /copy.txt" in res.stdout
    assert "Successfully tagged tls-built:latest" in res.stdout
    res = docker_in(hosts.client_ns, remote_env, "run", "--rm", "tls-built", "cat", "/copy.txt")
    assert res.returncode == 0, res.stderr
    assert res.stdout == "sent over TLS\n"
    docker_in(hosts.client_ns, remote_env, "rmi", "tls-built")


@pytest.fixture
def remote_registry(hosts, tmp_path):
    """Debian's docker-registry on the loopback of the daemon's namespace: 127.0.0.1 there, insecure by default."""
    from registry import REGISTRY_BIN

    if not os.path.exists(REGISTRY_BIN):
        pytest.skip("docker-registry is not installed")
    port = 5000
    config = tmp_path / "registry.yml"
    config.write_text("\n".join([
        "version: 0.1", "log:", "  level: info", "storage:", "  filesystem:",
        f"    rootdirectory: {tmp_path / 'storage'}", "http:", f"  addr: 127.0.0.1:{port}"]) + "\n")
    log_path = tmp_path / "registry.log"
    with open(log_path, "wb") as logf:
        proc = subprocess.Popen(["nsenter", f"--net=/run/netns/{hosts.server_ns}", REGISTRY_BIN, "serve",
                                 str(config)], stdout=logf, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 15
        while "listening on" not in log_path.read_text(errors="replace"):
            assert proc.poll() is None and time.monotonic() < deadline, log_path.read_text(errors="replace")
            time.sleep(0.05)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_push_and_pull_over_tls(hosts, remote_env, remote_busybox, remote_registry):
    ref = f"{remote_registry}/tls/busybox:pulled"
    for args in (("tag", "busybox", ref), ("push", ref), ("rmi", ref)):
        res = docker_in(hosts.client_ns, remote_env, *args)
        assert res.returncode == 0, (args, res.stderr)
    res = docker_in(hosts.client_ns, remote_env, "pull", ref)
    assert res.returncode == 0, res.stderr
    assert "pulled: Pulling from tls/busybox" in res.stdout and "Digest: sha256:" in res.stdout
    # the layers were here (busybox), but the tag was not: dockerd says so
    assert res.stdout.endswith(f"Status: Downloaded newer image for {ref}\n{ref}\n")
    res = docker_in(hosts.client_ns, remote_env, "run", "--rm", ref, "echo", "pulled")
    assert res.stdout == "pulled\n", res.stderr
    docker_in(hosts.client_ns, remote_env, "rmi", ref)
