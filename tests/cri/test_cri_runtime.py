"""The CRI's RuntimeService identity and readiness over gRPC against a real dockyardd: Version, Status
(NetworkReady follows the CNI directory), RuntimeConfig, UNIMPLEMENTED for what is not served yet, and the
socket's life (made under the exec root, moved or turned off by the flag)."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import docker
import grpc
import pytest
from cri_api.v1 import api_pb2 as cri_pb
from cri_api.v1 import api_pb2_grpc

from conftest import DOCKYARDD, Daemon, make_daemon
from dockyard.cri.images import ImageService
from dockyard.cri.runtime import RuntimeService

from .conftest import Cri, connect, cri_socket

CONFLIST = {"cniVersion": "1.0.0", "name": "podnet", "plugins": [
    {"type": "bridge", "bridge": "cni0", "ipam": {"type": "host-local", "subnet": "10.233.50.0/24"}},
    {"type": "portmap", "capabilities": {"portMappings": True}}]}


def conditions(cri: Cri) -> dict[str, cri_pb.RuntimeCondition]:
    status = cri.runtime.Status(cri_pb.StatusRequest()).status
    return {c.type: c for c in status.conditions}


def test_version(cri: Cri) -> None:
    v = cri.runtime.Version(cri_pb.VersionRequest(version="0.1.0"))
    assert (v.runtime_name, v.runtime_api_version, v.version) == ("dockyard", "v1", "0.1.0")
    assert v.runtime_version


def test_network_ready_follows_the_cni_directory(cri: Cri, cni_conf_dir: Path) -> None:
    cond = conditions(cri)
    assert cond["RuntimeReady"].status is True
    assert (cond["NetworkReady"].status, cond["NetworkReady"].reason, cond["NetworkReady"].message) == \
        (False, "NetworkPluginNotReady", "Network plugin returns error: cni plugin not initialized")
    # a file that is no valid list does not make the network ready
    (cni_conf_dir / "05-bad.conflist").write_text('{"cniVersion": "1.0.0", "name": "bad", "plugins": []}')
    assert conditions(cri)["NetworkReady"].status is False
    (cni_conf_dir / "10-podnet.conflist").write_text(json.dumps(CONFLIST))
    try:
        cond = conditions(cri)
        assert (cond["NetworkReady"].status, cond["NetworkReady"].reason) == (True, "")
        info = cri.runtime.Status(cri_pb.StatusRequest(verbose=True)).info
        assert json.loads(info["cniconfig"])["plugins"] == ["bridge", "portmap"]
        assert json.loads(info["config"])["cniConfDir"] == str(cni_conf_dir)
    finally:
        (cni_conf_dir / "10-podnet.conflist").unlink()
        (cni_conf_dir / "05-bad.conflist").unlink()
    assert conditions(cri)["NetworkReady"].status is False


def test_runtime_config_has_the_daemons_cgroup_driver(cri: Cri, cri_daemon: Daemon) -> None:
    driver = docker.APIClient(base_url=cri_daemon.host, version="1.44").info()["CgroupDriver"]
    linux = cri.runtime.RuntimeConfig(cri_pb.RuntimeConfigRequest()).linux
    assert cri_pb.CgroupDriver.Name(linux.cgroup_driver).lower() == driver


def test_what_is_not_served_yet_is_unimplemented(cri: Cri, cri_daemon: Daemon) -> None:
    """UNIMPLEMENTED naming the RPC, and nothing in the daemon's log: the generated servicer's default
    raised NotImplementedError, which gRPC logged with a traceback at every call."""
    log = Path(cri_daemon.log_path)
    before = log.stat().st_size
    calls = {"CheckpointContainer": cri_pb.CheckpointContainerRequest(container_id="x"),
             "ListMetricDescriptors": cri_pb.ListMetricDescriptorsRequest(),
             "ListPodSandboxMetrics": cri_pb.ListPodSandboxMetricsRequest(),
             "UpdatePodSandboxResources": cri_pb.UpdatePodSandboxResourcesRequest(pod_sandbox_id="x"),
             "UpdateRuntimeConfig": cri_pb.UpdateRuntimeConfigRequest()}
    for name, request in calls.items():
        with pytest.raises(grpc.RpcError) as e:
            getattr(cri.runtime, name)(request)
        assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED
        assert e.value.details() == f"RuntimeService.{name} is not implemented by dockyard"
    cri.runtime.Version(cri_pb.VersionRequest())  # served after them: the log has had its say
    with log.open("rb") as f:
        f.seek(before)
        written = f.read().decode(errors="replace")
    assert "Traceback" not in written and "NotImplementedError" not in written


def test_every_rpc_is_served_or_answered_unimplemented() -> None:
    """No RPC is left to the generated servicers' default, whichever CRI version the stubs carry."""
    for base, servicer in ((api_pb2_grpc.RuntimeServiceServicer, RuntimeService),
                           (api_pb2_grpc.ImageServiceServicer, ImageService)):
        left = [name for name, default in vars(base).items()
                if callable(default) and not name.startswith("_") and getattr(servicer, name) is default]
        assert left == [], (servicer.__name__, left)


def test_later_clients_reach_grpc_directly(cri: Cri, cri_daemon: Daemon) -> None:
    """The first connection loaded gRPC; the socket's path is gRPC's own now, root's only."""
    cri.runtime.Version(cri_pb.VersionRequest())
    st = os.stat(cri_socket(cri_daemon))
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
    second = connect(cri_socket(cri_daemon))
    try:
        assert second.runtime.Version(cri_pb.VersionRequest()).runtime_name == "dockyard"
    finally:
        second.channel.close()
    assert not os.path.exists(cri_socket(cri_daemon) + ".grpc")


def test_socket_flag_moves_or_disables_it(tmp_path: Path) -> None:
    moved = str(tmp_path / "k8s" / "runtime.sock")
    d = make_daemon(tmp_path / "moved", ["--cri-socket", moved])
    d.base.mkdir()
    d.start()
    try:
        client = connect(moved)
        assert client.runtime.Version(cri_pb.VersionRequest()).runtime_name == "dockyard"
        client.channel.close()
        assert not os.path.exists(cri_socket(d))
    finally:
        d.teardown()
    assert not os.path.exists(moved)

    off = make_daemon(tmp_path / "off")
    off.config = {"cri-socket": ""}  # the daemon.json key
    off.base.mkdir()
    off.start()
    try:
        assert not os.path.exists(cri_socket(off))
    finally:
        off.teardown()


def grpc_loaded(d: Daemon) -> bool:
    """Whether gRPC's native module is mapped into the daemon's process."""
    assert d.proc is not None
    return "cygrpc" in Path(f"/proc/{d.proc.pid}/maps").read_text()


def test_grpc_is_loaded_by_the_first_client_only(tmp_path: Path) -> None:
    """A daemon that no kubelet talks to does not carry gRPC's memory (docs/status.md's idle RSS)."""
    d = make_daemon(tmp_path, [])
    d.start()
    try:
        d.cli("version")
        assert not grpc_loaded(d)
        client = connect(cri_socket(d))
        assert client.runtime.Version(cri_pb.VersionRequest()).runtime_name == "dockyard"
        client.channel.close()
        assert grpc_loaded(d)
    finally:
        d.teardown()


def test_a_socket_another_daemon_serves_stops_the_start(cri_daemon: Daemon, tmp_path: Path) -> None:
    d = make_daemon(tmp_path)
    (tmp_path / "daemon.json").write_text("{}")
    try:
        res = subprocess.run([DOCKYARDD, "-H", d.host, "--data-root", d.data_root, "--exec-root", d.exec_root,
                              "--pidfile", str(tmp_path / "d.pid"), "--config-file", str(tmp_path / "daemon.json"),
                              "--bridge", "none", "--cri-socket", cri_socket(cri_daemon)],
                             capture_output=True, text=True, timeout=60)
        assert res.returncode == 1
        assert f"CRI socket {cri_socket(cri_daemon)} is in use by another process" in res.stderr
        # before the engine started: its own API socket gone again
        assert not os.path.exists(d.socket) and not os.path.exists(os.path.join(d.data_root, "image"))
    finally:
        shutil.rmtree(os.path.dirname(d.socket), ignore_errors=True)  # make_daemon's own directory
    # the first daemon's CRI socket is untouched
    client = connect(cri_socket(cri_daemon))
    assert client.runtime.Version(cri_pb.VersionRequest()).runtime_name == "dockyard"
    client.channel.close()
