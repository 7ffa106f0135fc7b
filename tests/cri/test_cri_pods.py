"""Pods and containers through the CRI's gRPC API against a real dockyardd, the flows of the kubelet and
critest: a pod on a bridge CNI network of the test's own, containers created, started, exec'd into,
logged, stopped and removed; a host-network pod; the same containers seen by docker-py; a daemon
restart (SIGKILL) that keeps pods running; a failing CNI plugin that leaves nothing behind."""

from __future__ import annotations

import json
import os
import secrets
import time
from pathlib import Path
from typing import Iterator

import grpc
import pytest
from cri_api.v1 import api_pb2 as cri_pb

from conftest import Daemon, make_daemon
from cri.conftest import Cri, connect, cri_socket
from cri.hostrules import nat_rules, remove_portmap_chains, sh
from fixtures.busybox import BuiltImage, _sha, image_config, rootfs_layer, write_docker_save

BIN_DIRS = [d for d in ("/opt/cni/bin", "/usr/lib/cni") if os.path.isfile(os.path.join(d, "bridge"))]
pytestmark = pytest.mark.skipif(not BIN_DIRS or os.geteuid() != 0, reason="needs root and the CNI plugins")

SUBNET = "10.233.52.0/24"
PAUSE = "test/pause:1"
BUSYBOX = "busybox:latest"


def conflist(name: str, bridge: str, ipam_dir: Path) -> dict:
    return {"cniVersion": "1.0.0", "name": name, "plugins": [
        {"type": "bridge", "bridge": bridge, "isGateway": True, "ipMasq": True,
         "ipam": {"type": "host-local", "dataDir": str(ipam_dir), "ranges": [[{"subnet": SUBNET}]],
                  "routes": [{"dst": "0.0.0.0/0"}]}},
        {"type": "portmap", "capabilities": {"portMappings": True}}]}


@pytest.fixture(scope="module")
def pause_tar(tmp_path_factory: pytest.TempPathFactory) -> BuiltImage:
    """A pause image of busybox's files whose command sleeps (the real pause binary is not at hand)."""
    layer = rootfs_layer()
    path = tmp_path_factory.mktemp("pause") / "pause.tar"
    return write_docker_save(str(path), [layer], [PAUSE],
                             config=image_config([_sha(layer)], cmd=["sleep", "2147483647"]))


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """The CNI directory with a bridge list on a bridge of the module's own; its teardown removes the
    bridge, the host-local leases and portmap's shared chains when the module made them."""
    base = tmp_path_factory.mktemp("podnet")
    bridge = "cripod" + secrets.token_hex(3)
    conf_dir = base / "net.d"
    conf_dir.mkdir()
    ipam_dir = base / "ipam"
    name = "podnet-" + bridge
    (conf_dir / "10-pods.conflist").write_text(json.dumps(conflist(name, bridge, ipam_dir)))
    chains_before = "CNI-HOSTPORT-" in nat_rules()
    yield {"conf_dir": conf_dir, "bridge": bridge, "ipam_dir": ipam_dir, "name": name}
    sh("ip", "link", "del", bridge, check=False)
    if not chains_before:
        remove_portmap_chains()


@pytest.fixture(scope="module")
def pod_daemon(tmp_path_factory: pytest.TempPathFactory, net: dict, pause_tar: BuiltImage,
               busybox_tar: BuiltImage) -> Iterator[Daemon]:
    d = make_daemon(tmp_path_factory.mktemp("dockyardd-pods"),
                    ["--cni-conf-dir", str(net["conf_dir"]), "--sandbox-image", PAUSE])
    d.start()
    d.cli("load", "-i", pause_tar.path)
    d.cli("load", "-i", busybox_tar.path)
    yield d
    if d.proc is None:
        d.start()
    client = connect(cri_socket(d))
    try:  # the CRI's removal runs the CNI DELs that docker's rm would not
        for pod in client.runtime.ListPodSandbox(cri_pb.ListPodSandboxRequest()).items:
            client.runtime.RemovePodSandbox(cri_pb.RemovePodSandboxRequest(pod_sandbox_id=pod.id))
    finally:
        client.channel.close()
    d.teardown()


@pytest.fixture(scope="module")
def c(pod_daemon: Daemon) -> Iterator[Cri]:
    client = connect(cri_socket(pod_daemon))
    yield client
    client.channel.close()


def pod_config(name: str, tmp: Path, host_network: bool = False, **more) -> cri_pb.PodSandboxConfig:
    # pid CONTAINER, as the kubelet sends unless the pod shares its process namespace
    ns = cri_pb.NamespaceOption(network=cri_pb.NODE if host_network else cri_pb.POD, pid=cri_pb.CONTAINER)
    return cri_pb.PodSandboxConfig(
        metadata=cri_pb.PodSandboxMetadata(name=name, namespace="default", uid="uid-" + name, attempt=0),
        hostname=name, log_directory=str(tmp / name), labels={"app": name},
        annotations={"note": "x"},
        dns_config=cri_pb.DNSConfig(servers=["10.96.0.10"], searches=["default.svc.cluster.local"],
                                    options=["ndots:5"]),
        linux=cri_pb.LinuxPodSandboxConfig(security_context=cri_pb.LinuxSandboxSecurityContext(
            namespace_options=ns)), **more)


def container_config(name: str, args: list[str], **more) -> cri_pb.ContainerConfig:
    return cri_pb.ContainerConfig(metadata=cri_pb.ContainerMetadata(name=name), image=cri_pb.ImageSpec(image=BUSYBOX),
                                  command=["sh", "-c"], args=[" ".join(args)], log_path=f"{name}.log",
                                  labels={"role": name}, annotations={"a": "b"}, **more)


def run_pod(c: Cri, config: cri_pb.PodSandboxConfig) -> str:
    return c.runtime.RunPodSandbox(cri_pb.RunPodSandboxRequest(config=config)).pod_sandbox_id


def start_container(c: Cri, pod: str, pod_cfg: cri_pb.PodSandboxConfig, cfg: cri_pb.ContainerConfig) -> str:
    cid = c.runtime.CreateContainer(cri_pb.CreateContainerRequest(
        pod_sandbox_id=pod, config=cfg, sandbox_config=pod_cfg)).container_id
    c.runtime.StartContainer(cri_pb.StartContainerRequest(container_id=cid))
    return cid


def status(c: Cri, cid: str) -> cri_pb.ContainerStatus:
    return c.runtime.ContainerStatus(cri_pb.ContainerStatusRequest(container_id=cid)).status


def wait_exited(c: Cri, cid: str, timeout: float = 20) -> cri_pb.ContainerStatus:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = status(c, cid)
        if st.state == cri_pb.CONTAINER_EXITED:
            return st
        time.sleep(0.05)
    raise AssertionError(f"container {cid} did not exit")


def pod_status(c: Cri, pod: str, verbose: bool = False) -> cri_pb.PodSandboxStatusResponse:
    return c.runtime.PodSandboxStatus(cri_pb.PodSandboxStatusRequest(pod_sandbox_id=pod, verbose=verbose))


def rpc_error(call, *args) -> grpc.RpcError:  # noqa: ANN001 - any stub method
    with pytest.raises(grpc.RpcError) as e:
        call(*args)
    return e.value


def test_pod_lifecycle_on_a_cni_bridge(c: Cri, pod_daemon: Daemon, net: dict, tmp_path: Path) -> None:
    cfg = pod_config("web", tmp_path)
    pod = run_pod(c, cfg)
    st = pod_status(c, pod, verbose=True)
    assert st.status.state == cri_pb.SANDBOX_READY
    assert st.status.metadata.name == "web" and st.status.metadata.uid == "uid-web"
    assert dict(st.status.labels) == {"app": "web"} and dict(st.status.annotations) == {"note": "x"}
    ip = st.status.network.ip
    assert ip.startswith("10.233.52.")
    assert st.status.linux.namespaces.options.network == cri_pb.POD
    info = json.loads(st.info["info"])
    assert info["cniNetwork"] == net["name"]
    # the pod's veth is on the module's bridge
    assert "veth" in sh("ip", "-o", "link", "show", "master", net["bridge"]).stdout

    cid = start_container(c, pod, cfg, container_config("app", ["echo out; echo err >&2; exec sleep 1000"]))
    cst = status(c, cid)
    assert cst.state == cri_pb.CONTAINER_RUNNING and cst.started_at > 0
    assert cst.metadata.name == "app" and dict(cst.labels) == {"role": "app"}
    assert cst.log_path == str(tmp_path / "web" / "app.log")
    # joined the pod's network: the same address, the pod's DNS, the pod's hostname
    res = c.runtime.ExecSync(cri_pb.ExecSyncRequest(container_id=cid, cmd=["sh", "-c", "ip -o -4 addr show eth0; "
                                                                            "cat /etc/resolv.conf; hostname"],
                                                    timeout=10))
    assert res.exit_code == 0 and ip in res.stdout.decode()
    assert b"nameserver 10.96.0.10" in res.stdout and b"search default.svc.cluster.local" in res.stdout
    assert res.stdout.decode().splitlines()[-1] == "web"
    # stdout and stderr apart, the exit code
    res = c.runtime.ExecSync(cri_pb.ExecSyncRequest(container_id=cid, cmd=["sh", "-c", "echo a; echo b >&2; exit 3"]))
    assert (res.stdout, res.stderr, res.exit_code) == (b"a\n", b"b\n", 3)
    err = rpc_error(c.runtime.ExecSync, cri_pb.ExecSyncRequest(container_id=cid, cmd=["sleep", "30"], timeout=1))
    assert err.code() == grpc.StatusCode.DEADLINE_EXCEEDED

    listed = c.runtime.ListContainers(cri_pb.ListContainersRequest(filter=cri_pb.ContainerFilter(
        pod_sandbox_id=pod, label_selector={"role": "app"}))).containers
    assert [x.id for x in listed] == [cid]
    c.runtime.StopContainer(cri_pb.StopContainerRequest(container_id=cid, timeout=0))
    cst = wait_exited(c, cid)
    assert cst.exit_code == 137 and cst.reason == "Error" and cst.finished_at >= cst.started_at
    lines = (tmp_path / "web" / "app.log").read_text().splitlines()
    assert [line.split(" ", 1)[1] for line in lines] == ["stdout F out", "stderr F err"]
    c.runtime.StopContainer(cri_pb.StopContainerRequest(container_id=cid, timeout=0))  # again: fine
    c.runtime.RemoveContainer(cri_pb.RemoveContainerRequest(container_id=cid))
    c.runtime.RemoveContainer(cri_pb.RemoveContainerRequest(container_id=cid))
    assert rpc_error(c.runtime.ContainerStatus, cri_pb.ContainerStatusRequest(
        container_id=cid)).code() == grpc.StatusCode.NOT_FOUND

    c.runtime.StopPodSandbox(cri_pb.StopPodSandboxRequest(pod_sandbox_id=pod))
    st = pod_status(c, pod)
    assert st.status.state == cri_pb.SANDBOX_NOTREADY and st.status.network.ip == ""
    assert not list(net["ipam_dir"].rglob("10.233.52.*"))  # the address went back
    c.runtime.StopPodSandbox(cri_pb.StopPodSandboxRequest(pod_sandbox_id=pod))
    c.runtime.RemovePodSandbox(cri_pb.RemovePodSandboxRequest(pod_sandbox_id=pod))
    c.runtime.RemovePodSandbox(cri_pb.RemovePodSandboxRequest(pod_sandbox_id=pod))
    assert rpc_error(c.runtime.PodSandboxStatus, cri_pb.PodSandboxStatusRequest(
        pod_sandbox_id=pod)).code() == grpc.StatusCode.NOT_FOUND
    assert not os.path.exists(os.path.join(pod_daemon.exec_root, "cri", "netns", pod))


def test_completed_container_and_list_filters(c: Cri, tmp_path: Path) -> None:
    cfg = pod_config("batch", tmp_path, host_network=True)
    pod = run_pod(c, cfg)
    st = pod_status(c, pod).status
    assert st.network.ip == "" and st.linux.namespaces.options.network == cri_pb.NODE
    cid = start_container(c, pod, cfg, container_config("job", ["echo done"]))
    cst = wait_exited(c, cid)
    assert (cst.exit_code, cst.reason) == (0, "Completed")
    assert (tmp_path / "batch" / "job.log").read_text().endswith(" stdout F done\n")
    ready = c.runtime.ListPodSandbox(cri_pb.ListPodSandboxRequest(filter=cri_pb.PodSandboxFilter(
        state=cri_pb.PodSandboxStateValue(state=cri_pb.SANDBOX_READY), label_selector={"app": "batch"}))).items
    assert [p.id for p in ready] == [pod]
    assert [p.id for p in c.runtime.ListPodSandbox(cri_pb.ListPodSandboxRequest(
        filter=cri_pb.PodSandboxFilter(id=pod[:12]))).items] == [pod]
    exited = c.runtime.ListContainers(cri_pb.ListContainersRequest(filter=cri_pb.ContainerFilter(
        state=cri_pb.ContainerStateValue(state=cri_pb.CONTAINER_EXITED), pod_sandbox_id=pod))).containers
    assert [x.id for x in exited] == [cid]
    c.runtime.RemovePodSandbox(cri_pb.RemovePodSandboxRequest(pod_sandbox_id=pod))
    assert not c.runtime.ListContainers(cri_pb.ListContainersRequest(filter=cri_pb.ContainerFilter(
        pod_sandbox_id=pod))).containers


def pause_of(d: Daemon, pod: str) -> list:
    return d.client().containers.list(all=True, filters={"label": [f"io.kubernetes.sandbox.id={pod}",
                                                                  "io.kubernetes.docker.type=podsandbox"]})


def test_docker_sees_the_pod_and_a_docker_rm_is_seen(c: Cri, pod_daemon: Daemon, tmp_path: Path) -> None:
    cfg = pod_config("shared", tmp_path, host_network=True)
    cfg.linux.security_context.namespace_options.pid = cri_pb.POD  # a pod with a pause container
    pod = run_pod(c, cfg)
    cid = start_container(c, pod, cfg, container_config("main", ["echo hello; exec sleep 1000"]))
    docker = pod_daemon.client()
    [sandbox] = pause_of(pod_daemon, pod)
    assert sandbox.name == "k8s_POD_shared_default_uid-shared_0"
    assert sandbox.labels["io.kubernetes.docker.type"] == "podsandbox" and sandbox.labels["app"] == "shared"
    main = docker.containers.get(cid)
    assert main.name == "k8s_main_shared_default_uid-shared_0"
    assert main.labels["io.kubernetes.sandbox.id"] == pod and main.labels["annotation.a"] == "b"
    assert main.exec_run(["echo", "hi"]).output == b"hi\n"
    deadline = time.monotonic() + 10
    while main.logs() != b"hello\n" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert main.logs() == b"hello\n"  # `docker logs` of a pod container: the engine's own json-file log
    main.remove(force=True)
    assert rpc_error(c.runtime.ContainerStatus, cri_pb.ContainerStatusRequest(
        container_id=cid)).code() == grpc.StatusCode.NOT_FOUND
    c.runtime.RemovePodSandbox(cri_pb.RemovePodSandboxRequest(pod_sandbox_id=pod))


def test_pods_survive_a_daemon_kill(c: Cri, pod_daemon: Daemon, tmp_path: Path) -> None:
    cfg = pod_config("durable", tmp_path)
    pod = run_pod(c, cfg)
    ip = pod_status(c, pod).status.network.ip
    cid = start_container(c, pod, cfg, container_config("tick", ["echo before; read x; exec sleep 1000"],
                                                        stdin=True))
    pod_daemon.stop(9)
    pod_daemon.start()
    again = connect(cri_socket(pod_daemon))
    try:
        st = pod_status(again, pod).status
        assert st.state == cri_pb.SANDBOX_READY and st.network.ip == ip and dict(st.labels) == {"app": "durable"}
        cst = status(again, cid)
        assert cst.state == cri_pb.CONTAINER_RUNNING and cst.metadata.name == "tick"
        assert again.runtime.ExecSync(cri_pb.ExecSyncRequest(container_id=cid, cmd=["echo", "ok"])).stdout == b"ok\n"
        again.runtime.StopPodSandbox(cri_pb.StopPodSandboxRequest(pod_sandbox_id=pod))
        again.runtime.RemovePodSandbox(cri_pb.RemovePodSandboxRequest(pod_sandbox_id=pod))
    finally:
        again.channel.close()
    log_lines = (tmp_path / "durable" / "tick.log").read_text().splitlines()
    assert [line.split(" ", 1)[1] for line in log_lines] == ["stdout F before"]  # once, not again after restart


def test_bad_input(c: Cri, tmp_path: Path) -> None:
    for call, req in ((c.runtime.PodSandboxStatus, cri_pb.PodSandboxStatusRequest(pod_sandbox_id="nope")),
                      (c.runtime.ContainerStatus, cri_pb.ContainerStatusRequest(container_id="nope")),
                      (c.runtime.StartContainer, cri_pb.StartContainerRequest(container_id="nope")),
                      (c.runtime.ExecSync, cri_pb.ExecSyncRequest(container_id="nope", cmd=["true"])),
                      (c.runtime.CreateContainer, cri_pb.CreateContainerRequest(
                          pod_sandbox_id="nope", config=container_config("x", ["true"])))):
        assert rpc_error(call, req).code() == grpc.StatusCode.NOT_FOUND
    # stopping and removing what does not exist succeeds, as the CRI asks
    c.runtime.StopPodSandbox(cri_pb.StopPodSandboxRequest(pod_sandbox_id="nope"))
    c.runtime.RemovePodSandbox(cri_pb.RemovePodSandboxRequest(pod_sandbox_id="nope"))
    c.runtime.StopContainer(cri_pb.StopContainerRequest(container_id="nope"))
    c.runtime.RemoveContainer(cri_pb.RemoveContainerRequest(container_id="nope"))
    no_name = pod_config("", tmp_path)
    err = rpc_error(c.runtime.RunPodSandbox, cri_pb.RunPodSandboxRequest(config=no_name))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "metadata.name" in err.details()


def test_a_failing_cni_plugin_leaves_no_sandbox(c: Cri, pod_daemon: Daemon, net: dict, tmp_path: Path) -> None:
    conf = net["conf_dir"] / "10-pods.conflist"
    good = conf.read_text()
    broken = json.loads(good)
    broken["plugins"].append({"type": "does-not-exist"})
    conf.write_text(json.dumps(broken))
    try:
        err = rpc_error(c.runtime.RunPodSandbox, cri_pb.RunPodSandboxRequest(config=pod_config("broken", tmp_path)))
    finally:
        conf.write_text(good)
    assert "does-not-exist" in err.details()
    assert not [x for x in pod_daemon.client().containers.list(all=True) if "broken" in x.name]
    assert not list(net["ipam_dir"].rglob("10.233.52.*"))
    assert not os.listdir(os.path.join(pod_daemon.exec_root, "cri", "netns"))
    assert not os.listdir(os.path.join(pod_daemon.exec_root, "cri", "pods"))
    records = Path(pod_daemon.data_root, "cri", "sandboxes")
    assert not [r for r in records.iterdir() if '"broken"' in r.read_text()]
    assert "veth" not in sh("ip", "-o", "link", "show", "master", net["bridge"], check=False).stdout


def test_docker_rm_of_a_pause_container_takes_its_pod(c: Cri, pod_daemon: Daemon, net: dict,
                                                       tmp_path: Path) -> None:
    cfg = pod_config("removed", tmp_path)
    cfg.linux.security_context.namespace_options.pid = cri_pb.POD
    pod = run_pod(c, cfg)
    cid = start_container(c, pod, cfg, container_config("app", ["exec sleep 1000"]))
    [pause] = pause_of(pod_daemon, pod)
    pause.remove(force=True)
    record = Path(pod_daemon.data_root, "cri", "sandboxes", pod + ".json")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and (record.exists() or list(net["ipam_dir"].rglob("10.233.52.*")) or
                                           pod_daemon.client().containers.list(all=True, filters={"id": cid})):
        time.sleep(0.05)
    assert not list(net["ipam_dir"].rglob("10.233.52.*"))
    assert rpc_error(c.runtime.ContainerStatus, cri_pb.ContainerStatusRequest(
        container_id=cid)).code() == grpc.StatusCode.NOT_FOUND
    assert rpc_error(c.runtime.PodSandboxStatus, cri_pb.PodSandboxStatusRequest(
        pod_sandbox_id=pod)).code() == grpc.StatusCode.NOT_FOUND
    assert not os.path.exists(os.path.join(pod_daemon.exec_root, "cri", "netns", pod))
    assert not os.path.exists(os.path.join(pod_daemon.exec_root, "cri", "pods", pod))


def test_events_stats_update_and_log_reopen(c: Cri, tmp_path: Path) -> None:
    events = c.runtime.GetContainerEvents(cri_pb.GetEventsRequest())
    cfg = pod_config("watched", tmp_path, host_network=True)
    pod = run_pod(c, cfg)
    cid = start_container(c, pod, cfg, container_config(
        "w", ["echo one; while [ ! -e /tmp/go ]; do sleep 0.05; done; echo two; exec sleep 1000"]))
    try:
        seen = []
        for ev in events:
            if ev.container_id == cid:
                seen.append(ev.container_event_type)
            if seen == [cri_pb.CONTAINER_CREATED_EVENT, cri_pb.CONTAINER_STARTED_EVENT]:
                break
    finally:
        events.cancel()
    stats = c.runtime.ContainerStats(cri_pb.ContainerStatsRequest(container_id=cid)).stats
    assert stats.attributes.id == cid and stats.attributes.metadata.name == "w"
    assert stats.memory.working_set_bytes.value > 0 and stats.cpu.usage_core_nano_seconds.value > 0
    assert [s.attributes.id for s in c.runtime.ListContainerStats(cri_pb.ListContainerStatsRequest(
        filter=cri_pb.ContainerStatsFilter(pod_sandbox_id=pod))).stats] == [cid]
    pod_stats = c.runtime.PodSandboxStats(cri_pb.PodSandboxStatsRequest(pod_sandbox_id=pod)).stats
    assert pod_stats.attributes.id == pod and [x.attributes.id for x in pod_stats.linux.containers] == [cid]

    c.runtime.UpdateContainerResources(cri_pb.UpdateContainerResourcesRequest(
        container_id=cid, linux=cri_pb.LinuxContainerResources(memory_limit_in_bytes=64 << 20, cpu_shares=512)))
    res = status(c, cid).resources.linux
    assert (res.memory_limit_in_bytes, res.cpu_shares) == (64 << 20, 512)

    # the kubelet's rotation: rename, reopen, and what comes next lands in the new file
    log = tmp_path / "watched" / "w.log"
    deadline = time.monotonic() + 10
    while "one" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    log.rename(log.with_suffix(".log.1"))
    c.runtime.ReopenContainerLog(cri_pb.ReopenContainerLogRequest(container_id=cid))
    assert log.exists() and log.read_text() == ""
    c.runtime.ExecSync(cri_pb.ExecSyncRequest(container_id=cid, cmd=["touch", "/tmp/go"]))
    deadline = time.monotonic() + 10
    while "two" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [line.split(" ", 1)[1] for line in log.read_text().splitlines()] == ["stdout F two"]
    assert [line.split(" ", 1)[1] for line in log.with_suffix(".log.1").read_text().splitlines()] == ["stdout F one"]
    c.runtime.RemovePodSandbox(cri_pb.RemovePodSandboxRequest(pod_sandbox_id=pod))


def test_the_sandbox_image_setting(tmp_path: Path) -> None:
    from dockyard.daemon import config as daemon_config

    conf = tmp_path / "daemon.json"
    conf.write_text("{}")
    assert daemon_config.load(["--config-file", str(conf)]).sandbox_image == "registry.k8s.io/pause:3.10"
    assert daemon_config.load(["--config-file", str(conf), "--sandbox-image", "r.example/p:1"]).sandbox_image == \
        "r.example/p:1"
    conf.write_text(json.dumps({"sandbox-image": "r.example/p:2"}))
    assert daemon_config.load(["--config-file", str(conf)]).sandbox_image == "r.example/p:2"


def test_pod_pid_and_ipc_are_the_sandboxs(c: Cri, tmp_path: Path) -> None:
    """namespace_options.pid = POD: the containers see the pause process as PID 1; the pod's IPC
    namespace and /dev/shm are shared by its containers (critest's PodPID; dockershim's shareable pause)."""
    cfg = pod_config("pidpod", tmp_path)
    cfg.linux.security_context.namespace_options.pid = cri_pb.POD
    pod = run_pod(c, cfg)
    try:
        one = start_container(c, pod, cfg, container_config("one", ["echo shared > /dev/shm/f; exec sleep 1000"]))
        two = start_container(c, pod, cfg, container_config("two", ["exec sleep 1000"]))
        res = c.runtime.ExecSync(cri_pb.ExecSyncRequest(container_id=two, cmd=["cat", "/proc/1/cmdline"], timeout=10))
        assert res.stdout.split(b"\0")[:2] == [b"sleep", b"2147483647"]
        ipc = [c.runtime.ExecSync(cri_pb.ExecSyncRequest(container_id=cid, cmd=["readlink", "/proc/self/ns/ipc"],
                                                         timeout=10)).stdout for cid in (one, two)]
        assert ipc[0] == ipc[1] != b""
        res = c.runtime.ExecSync(cri_pb.ExecSyncRequest(container_id=two, cmd=["cat", "/dev/shm/f"], timeout=10))
        assert res.stdout == b"shared\n"
    finally:
        c.runtime.StopPodSandbox(cri_pb.StopPodSandboxRequest(pod_sandbox_id=pod))
        c.runtime.RemovePodSandbox(cri_pb.RemovePodSandboxRequest(pod_sandbox_id=pod))


def namespaces_of(c: Cri, cid: str) -> list[bytes]:
    res = c.runtime.ExecSync(cri_pb.ExecSyncRequest(container_id=cid, cmd=[
        "sh", "-c", "for k in net ipc uts pid; do readlink /proc/self/ns/$k; done"], timeout=10))
    return res.stdout.splitlines()


def test_a_pod_without_a_pause_container(c: Cri, pod_daemon: Daemon, net: dict, tmp_path: Path) -> None:
    """A pod that does not share its PID namespace holds its namespaces pinned, with no process: its
    containers share network, IPC (and /dev/shm) and UTS, not PIDs; its sysctls are set in them; docker
    lists only the app containers; stop releases the pins and remove the record."""
    cfg = pod_config("pinned", tmp_path)
    cfg.linux.sysctls.update({"kernel.shm_rmid_forced": "1", "net.ipv4.ip_unprivileged_port_start": "80"})
    pod = run_pod(c, cfg)
    pins = os.path.join(pod_daemon.exec_root, "cri", "pods", pod)
    try:
        assert not pause_of(pod_daemon, pod)
        one = start_container(c, pod, cfg, container_config("one", ["echo shared > /dev/shm/f; exec sleep 1000"]))
        two = start_container(c, pod, cfg, container_config("two", ["exec sleep 1000"]))
        ns_one, ns_two = namespaces_of(c, one), namespaces_of(c, two)
        assert ns_one[:3] == ns_two[:3] and ns_one[3] != ns_two[3]
        host_ns = [os.readlink(f"/proc/self/ns/{k}").encode() for k in ("net", "ipc", "uts")]
        assert all(a != b for a, b in zip(ns_one[:3], host_ns))
        res = c.runtime.ExecSync(cri_pb.ExecSyncRequest(container_id=two, cmd=[
            "sh", "-c", "cat /dev/shm/f; hostname; cat /proc/sys/kernel/shm_rmid_forced "
                        "/proc/sys/net/ipv4/ip_unprivileged_port_start; cat /etc/resolv.conf"], timeout=10))
        out = res.stdout.decode().splitlines()
        assert out[:4] == ["shared", "pinned", "1", "80"] and "nameserver 10.96.0.10" in out
        ip = pod_status(c, pod).status.network.ip
        assert ip.startswith("10.233.52.")
        assert [x.name for x in pod_daemon.client().containers.list(filters={"label": f"io.kubernetes.sandbox.id={pod}"})] \
            == ["k8s_two_pinned_default_uid-pinned_0", "k8s_one_pinned_default_uid-pinned_0"]
        info = json.loads(pod_status(c, pod, verbose=True).info["info"])
        assert info["pid"] == 0 and set(info["namespaces"]) == {"network", "ipc", "uts", "shm"}
        pod_stats = c.runtime.PodSandboxStats(cri_pb.PodSandboxStatsRequest(pod_sandbox_id=pod)).stats
        assert pod_stats.linux.network.default_interface.name == "eth0"
        assert sorted(x.attributes.id for x in pod_stats.linux.containers) == sorted([one, two])
        c.runtime.StopPodSandbox(cri_pb.StopPodSandboxRequest(pod_sandbox_id=pod))
        assert pod_status(c, pod).status.state == cri_pb.SANDBOX_NOTREADY
        assert not os.path.exists(os.path.join(pod_daemon.exec_root, "cri", "netns", pod))
        assert pod not in Path("/proc/self/mountinfo").read_text()  # no pin, no /dev/shm left mounted
        err = rpc_error(c.runtime.StartContainer, cri_pb.StartContainerRequest(container_id=two))
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "is gone" in err.details()
    finally:
        c.runtime.StopPodSandbox(cri_pb.StopPodSandboxRequest(pod_sandbox_id=pod))
        c.runtime.RemovePodSandbox(cri_pb.RemovePodSandboxRequest(pod_sandbox_id=pod))
    assert not os.path.exists(pins)
    assert not os.path.exists(os.path.join(pod_daemon.data_root, "cri", "sandboxes", pod + ".json"))
    assert pod not in open("/proc/self/mountinfo").read()


def test_pod_sysctls_and_names_are_checked(c: Cri, tmp_path: Path) -> None:
    for sysctls, words in (({"kernel.panic": "1"}, "not namespaced"), ({"../x": "1"}, "invalid sysctl name"),
                           ({"net.ipv4.ip_forward": "1"}, "network namespace")):
        cfg = pod_config("sysctl", tmp_path, host_network="net.ipv4.ip_forward" in sysctls)
        cfg.linux.sysctls.update(sysctls)
        err = rpc_error(c.runtime.RunPodSandbox, cri_pb.RunPodSandboxRequest(config=cfg))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and words in err.details(), err.details()
    cfg = pod_config("twice", tmp_path, host_network=True)
    pod = run_pod(c, cfg)
    try:
        err = rpc_error(c.runtime.RunPodSandbox, cri_pb.RunPodSandboxRequest(config=cfg))
        assert err.code() == grpc.StatusCode.ALREADY_EXISTS
    finally:
        c.runtime.RemovePodSandbox(cri_pb.RemovePodSandboxRequest(pod_sandbox_id=pod))
    assert not c.runtime.ListPodSandbox(cri_pb.ListPodSandboxRequest(
        filter=cri_pb.PodSandboxFilter(label_selector={"app": "sysctl"}))).items
