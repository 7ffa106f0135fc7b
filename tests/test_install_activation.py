"""dockyardd started by socket activation (``-H fd://``), as systemd's dockyard.socket starts it.

systemd is not PID 1 here; ``systemd-socket-activate`` speaks the same protocol
(LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES): it opens the sockets, waits for the
first client, then execs the daemon with them. The clients below connect before
the daemon runs, so they also show that a client never races the daemon's start.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import docker
import pytest

from conftest import DOCKER, DOCKYARDD, Daemon, make_daemon
from dockyard.util.tlscerts.layout import CertDir

SSA = shutil.which("systemd-socket-activate") or "/lib/systemd/systemd-socket-activate"
pytestmark = pytest.mark.skipif(not os.path.exists(SSA), reason="systemd-socket-activate is not installed "
                                                                "(scripts/install-system.sh installs it)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bridge_exists(name: str) -> bool:
    return subprocess.run(["ip", "link", "show", name], capture_output=True).returncode == 0


def activate(d: Daemon, listen: list[str], hosts: list[str], *, fdnames: str = "", extra: list[str] = (),
             ssa_args: list[str] = ()) -> subprocess.Popen:
    """dockyardd with ``d``'s paths under systemd-socket-activate, listening on ``listen``; not yet started
    (that happens on the first connection)."""
    d.log_path = str(d.base / "dockyardd.log")
    (d.base / "daemon.json").write_text(json.dumps(d.config))
    argv = [SSA, *ssa_args]
    for addr in listen:
        argv += ["-l", addr]
    if fdnames:
        argv.append(f"--fdname={fdnames}")
    argv += ["--", DOCKYARDD, *[a for h in hosts for a in ("-H", h)], "--data-root", d.data_root,
             "--exec-root", d.exec_root, "--pidfile", str(d.base / "dockyardd.pid"),
             "--config-file", str(d.base / "daemon.json"), "--log-level", "debug", *d.bridge_args(), *extra]
    with open(d.log_path, "ab") as logf:
        proc = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
    d.proc = proc
    deadline = time.monotonic() + 10
    while d.log().count("Listening on") < len(listen):  # the sockets are open; the daemon is not running
        assert proc.poll() is None and time.monotonic() < deadline, d.log()
        time.sleep(0.05)
    return proc


def poke(addr: str) -> None:
    """One connection, which makes systemd-socket-activate start the daemon."""
    family = socket.AF_UNIX if addr.startswith("/") else socket.AF_INET
    with socket.socket(family) as s:
        s.connect(addr if family == socket.AF_UNIX else ("127.0.0.1", int(addr.rsplit(":", 1)[1])))


def refused(d: Daemon, proc: subprocess.Popen) -> str:
    """The daemon's start error, after checking that it exited and made nothing on the host."""
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError("dockyardd did not refuse to start:\n" + d.log())
    d.proc = None
    assert proc.returncode != 0
    bridge = d.bridge_args()[1]
    assert not bridge_exists(bridge), f"a refused start made the bridge {bridge}"
    assert not os.path.exists(d.data_root), "a refused start made the data root"
    return d.log()


@pytest.fixture
def dd(tmp_path: Path):
    d = make_daemon(tmp_path)
    yield d
    d.teardown()


def test_fd_serves_the_docker_cli(dd: Daemon, busybox_tar):
    activate(dd, [dd.socket], ["fd://"])
    # the first client connects before the daemon exists; its request waits in the socket's backlog
    version = dd.cli("version", "--format", "{{.Server.Version}}", timeout=60)
    assert version.stdout_text.strip()
    dd.cli("load", "-i", busybox_tar.path)
    assert dd.cli("run", "--rm", "busybox", "echo", "activated").stdout_text == "activated\n"
    assert "API listen on fd://" in dd.log()
    pid = dd.proc.pid
    assert dd.stop() == 0
    # systemd owns the socket: the daemon leaves it in place for the next start
    assert os.path.exists(dd.socket), "the daemon removed the activated socket"
    assert not os.path.exists(f"/proc/{pid}")


def test_two_named_sockets_unix_and_tls_tcp(dd: Daemon, tmp_path: Path):
    certs = CertDir(tmp_path / "certs")
    certs.create(["localhost"], [ipaddress.ip_address("127.0.0.1")])
    port = free_port()
    activate(dd, [dd.socket, f"127.0.0.1:{port}"], ["fd://local", "fd://remote"], fdnames="local:remote",
             extra=["--tlsverify", "--tlscacert", str(certs.file("ca.pem")),
                    "--tlscert", str(certs.file("server-cert.pem")), "--tlskey", str(certs.file("server-key.pem"))])
    tls = ["--tlsverify", "--tlscacert", str(certs.file("ca.pem")), "--tlscert", str(certs.file("cert.pem")),
           "--tlskey", str(certs.file("key.pem")), "-H", f"tcp://127.0.0.1:{port}"]
    env = dd.env()
    env.pop("DOCKER_HOST")
    over_tcp = subprocess.run([DOCKER, *tls, "info", "--format", "{{.ID}}"], env=env, capture_output=True,
                              text=True, timeout=60)
    assert over_tcp.returncode == 0, over_tcp.stderr + dd.log()
    assert dd.cli("info", "--format", "{{.ID}}").stdout_text == over_tcp.stdout
    # TLS is applied to the TCP socket only: plain HTTP there is told to speak TLS, and no certificate, no entry
    plain = subprocess.run([DOCKER, "-H", f"tcp://127.0.0.1:{port}", "version"], env=env, capture_output=True,
                           text=True, timeout=30)
    assert plain.returncode != 0 and "HTTPS" in plain.stderr
    nocert = subprocess.run([DOCKER, "--tls", "--tlscacert", str(certs.file("ca.pem")), "-H",
                             f"tcp://127.0.0.1:{port}", "version"], env=env, capture_output=True, text=True,
                            timeout=30)
    assert nocert.returncode != 0
    log = dd.log()
    assert "API listen on fd://local fd 3 (local, unix" in log and "API listen on fd://remote fd 4 (remote, tcp" in log


def test_fd_without_activation_is_a_start_error(dd: Daemon):
    proc = subprocess.Popen([DOCKYARDD, "-H", "fd://", "--data-root", dd.data_root, "--exec-root", dd.exec_root,
                             "--pidfile", str(dd.base / "pid"), *dd.bridge_args()],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    dd.log_path = str(dd.base / "dockyardd.log")
    out, _ = proc.communicate(timeout=20)
    Path(dd.log_path).write_text(out)
    assert "no sockets found via socket activation" in refused(dd, proc)


def test_activation_for_another_process_is_a_start_error(dd: Daemon):
    env = {**os.environ, "LISTEN_FDS": "1", "LISTEN_PID": "1"}
    out = subprocess.run([DOCKYARDD, "-H", "fd://", "--data-root", dd.data_root, "--exec-root", dd.exec_root,
                          "--pidfile", str(dd.base / "pid"), *dd.bridge_args()],
                         env=env, capture_output=True, text=True, timeout=20)
    assert out.returncode != 0
    assert "LISTEN_PID=1 is not this process" in out.stderr
    assert not bridge_exists(dd.bridge_args()[1]) and not os.path.exists(dd.data_root)


def test_a_name_not_passed_is_a_start_error(dd: Daemon):
    proc = activate(dd, [dd.socket], ["fd://remote"], fdnames="local")
    poke(dd.socket)
    assert "fd://remote: no socket named 'remote' was passed" in refused(dd, proc)


def test_more_sockets_than_hosts_is_a_start_error(dd: Daemon):
    port = free_port()
    proc = activate(dd, [dd.socket, f"127.0.0.1:{port}"], ["fd://local"], fdnames="local:remote")
    poke(dd.socket)
    log = refused(dd, proc)
    assert "more sockets than the -H hosts take" in log and "fd 4 (remote, tcp 127.0.0.1:" in log


def test_tcp_socket_without_tls_is_a_start_error(dd: Daemon):
    port = free_port()
    proc = activate(dd, [f"127.0.0.1:{port}"], ["fd://"])
    poke(f"127.0.0.1:{port}")
    assert "is TCP, without TLS" in refused(dd, proc)


def test_datagram_socket_is_a_start_error(dd: Daemon):
    proc = activate(dd, [dd.socket], ["fd://"], ssa_args=["--datagram"])
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.sendto(b"x", dd.socket)
    assert "is not a listening unix or TCP stream socket" in refused(dd, proc)


def test_same_socket_for_two_hosts_is_a_start_error(dd: Daemon):
    proc = activate(dd, [dd.socket], ["fd://", "fd://local"], fdnames="local")
    poke(dd.socket)
    assert "both take fd 3 (local" in refused(dd, proc)


def test_dockerd_fd_number_form(dd: Daemon):
    activate(dd, [dd.socket], ["fd://3"])
    assert docker.APIClient(base_url=dd.host, version="1.44", timeout=30).ping()


UNITS = Path(__file__).resolve().parent.parent / "contrib" / "systemd"


def unit_values(path: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            out.setdefault(key, []).append(value)
    return out


def test_contrib_units_verify_and_serve(dd: Daemon, tmp_path: Path):
    """The units pass systemd-analyze verify, and the service's ExecStart serves the socket unit's socket
    (systemd itself is not PID 1 here: its paths are swapped for the test's)."""
    service, sock = unit_values(UNITS / "dockyard.service"), unit_values(UNITS / "dockyard.socket")
    assert service["Type"] == ["notify"] and service["Delegate"] == ["yes"] and service["KillMode"] == ["process"]
    assert sock["ListenStream"] == ["/run/dockyard.sock"] and sock["SocketMode"] == ["0660"]
    assert sock["SocketGroup"] == ["docker"]
    exec_start = service["ExecStart"][0].split()
    assert exec_start == ["/opt/dockyard/venv/bin/dockyardd", "-H", "fd://"]
    units = tmp_path / "units"
    units.mkdir()
    (units / "dockyard.socket").write_text((UNITS / "dockyard.socket").read_text())
    (units / "dockyard.service").write_text((UNITS / "dockyard.service").read_text()
                                            .replace(exec_start[0], DOCKYARDD))
    analyze = shutil.which("systemd-analyze")
    if analyze:
        res = subprocess.run([analyze, "verify", "--man=no", "dockyard.socket", "dockyard.service"], cwd=units,
                             capture_output=True, text=True, timeout=60)
        assert res.returncode == 0 and not res.stderr.strip(), res.stderr
    activate(dd, [sock["ListenStream"][0].replace("/run/dockyard.sock", dd.socket)], [exec_start[2]])
    assert docker.APIClient(base_url=dd.host, version="1.44", timeout=30).ping()
