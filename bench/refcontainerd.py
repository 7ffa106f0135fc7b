"""The reference CRI runtime: Debian's containerd with its CRI plugin, on private paths.

Everything of it lives under one base directory (config, root, state, sockets, CNI configuration and the
registry hosts directory), so it never touches a containerd of the machine. Its shims put their sockets
in /run/containerd/s whatever the configuration says, so it runs in a mount namespace of its own with a
tmpfs on /run/containerd; the rest of /run stays shared (iptables' /run/xtables.lock must be the one
every other iptables user takes). ``restrict_oom_score_adj`` keeps the kubelet's negative oom_score_adj
from failing where the process lacks CAP_SYS_RESOURCE, as on these machines.

``python -m bench.refcontainerd BASE [--registry HOST:PORT]`` starts one and keeps it running until
Ctrl-C, e.g. to run critest against it; with a registry, registry.k8s.io, gcr.io and k8s.gcr.io are
pulled from it (containerd's hosts.toml layout), as ../shared/cri-test-images/push-images.sh fills one.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

CONTAINERD = "/usr/bin/containerd"
CNI_BIN_DIR = "/usr/lib/cni"
SANDBOX_IMAGE = "registry.k8s.io/pause:3.9"
MIRRORED = ("registry.k8s.io", "gcr.io", "k8s.gcr.io")


def config_toml(base: Path) -> str:
    return f'''version = 2
root = "{base}/root"
state = "{base}/state"
[grpc]
  address = "{base}/containerd.sock"
[ttrpc]
  address = "{base}/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "{base}/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{SANDBOX_IMAGE}"
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_BIN_DIR}"
    conf_dir = "{base}/net.d"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "{base}/certs.d"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
'''


def pod_network(name: str, bridge: str, subnet: str) -> dict:
    return {"cniVersion": "1.0.0", "name": name, "plugins": [
        {"type": "bridge", "bridge": bridge, "isGateway": True, "ipMasq": True,
         "ipam": {"type": "host-local", "ranges": [[{"subnet": subnet}]], "routes": [{"dst": "0.0.0.0/0"}]}},
        {"type": "portmap", "capabilities": {"portMappings": True}}]}


class RefContainerd:
    def __init__(self, base: Path, registry: str = "", bridge: str = "refcri0",
                 subnet: str = "10.233.60.0/24", plain_http: tuple[str, ...] = ()) -> None:
        """``registry`` stands in for the internet's registries; ``plain_http`` are HOST:PORTs served over
        HTTP (containerd, unlike dockerd, wants https from loopback registries too unless told)."""
        self.base = base
        self.registry = registry
        self.plain_http = plain_http
        self.bridge = bridge
        self.subnet = subnet
        self.proc: subprocess.Popen | None = None
        self._portmap_chains_before = True

    @property
    def socket(self) -> str:
        return str(self.base / "containerd.sock")

    @property
    def endpoint(self) -> str:
        return f"unix://{self.socket}"

    def start(self, timeout: float = 30.0) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        (self.base / "config.toml").write_text(config_toml(self.base))
        (self.base / "net.d").mkdir(exist_ok=True)
        (self.base / "net.d" / "10-refcri.conflist").write_text(
            json.dumps(pod_network("refcri", self.bridge, self.subnet)))
        if self.registry:
            for host in MIRRORED:
                d = self.base / "certs.d" / host
                d.mkdir(parents=True, exist_ok=True)
                (d / "hosts.toml").write_text(f'server = "https://{host}"\n\n[host."http://{self.registry}"]\n'
                                              '  capabilities = ["pull", "resolve"]\n')
        for host in {*self.plain_http, *([self.registry] if self.registry else [])}:
            d = self.base / "certs.d" / host
            d.mkdir(parents=True, exist_ok=True)
            (d / "hosts.toml").write_text(f'server = "http://{host}"\n')
        self._portmap_chains_before = "CNI-HOSTPORT-" in _nat_rules()
        os.makedirs("/run/containerd", exist_ok=True)  # the mount point of the private tmpfs
        script = f"mount -t tmpfs -o mode=0711 tmpfs /run/containerd && exec {CONTAINERD} --config {self.base}/config.toml"
        log = open(self.base / "containerd.log", "ab")
        self.proc = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script],
                                     stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"containerd exited with {self.proc.returncode}: see {self.base}/containerd.log")
            if os.path.exists(self.socket):
                return
            time.sleep(0.05)
        raise RuntimeError(f"containerd did not come up: see {self.base}/containerd.log")

    def namespace_pids(self) -> list[int]:
        """containerd and every process of its mount namespace (its shims and their containers)."""
        assert self.proc is not None
        ns = os.readlink(f"/proc/{self.proc.pid}/ns/mnt")
        pids = []
        for entry in filter(str.isdigit, os.listdir("/proc")):
            try:
                if os.readlink(f"/proc/{entry}/ns/mnt") == ns:
                    pids.append(int(entry))
            except OSError:
                continue
        return pids

    def rss_kb(self) -> int:
        """Resident memory of containerd and its shims (the containers' own processes excluded)."""
        total = 0
        for pid in self.namespace_pids():
            try:
                status = Path(f"/proc/{pid}/status").read_text()
                cmd = Path(f"/proc/{pid}/comm").read_text().strip()
            except OSError:
                continue
            if cmd.startswith("containerd"):
                total += int(status.split("VmRSS:")[1].split()[0])
        return total

    def stop(self) -> None:
        """containerd and whatever it left running (shims outlive it by design), then the bridge."""
        if self.proc is None:
            return
        self._remove_pods()
        leftovers = [p for p in self.namespace_pids() if p != self.proc.pid]
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for pid in leftovers:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc = None
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)
        if not self._portmap_chains_before:
            _drop_portmap_chains()


    def _remove_pods(self) -> None:
        """Every pod stopped and removed through the CRI, so that no container outlives the bench."""
        import grpc
        from cri_api.v1 import api_pb2 as cri, api_pb2_grpc

        with grpc.insecure_channel(self.endpoint) as channel:
            runtime = api_pb2_grpc.RuntimeServiceStub(channel)
            try:
                for pod in runtime.ListPodSandbox(cri.ListPodSandboxRequest(), timeout=10).items:
                    runtime.StopPodSandbox(cri.StopPodSandboxRequest(pod_sandbox_id=pod.id), timeout=30)
                    runtime.RemovePodSandbox(cri.RemovePodSandboxRequest(pod_sandbox_id=pod.id), timeout=30)
            except grpc.RpcError as e:
                print(f"refcontainerd: removing pods: {e.details()}", file=sys.stderr)


def _nat_rules() -> str:
    return subprocess.run(["iptables", "-w", "-t", "nat", "-S"], capture_output=True, text=True).stdout


def _drop_portmap_chains() -> None:
    """portmap's chains shared by all pods, which it never removes (made by this containerd's pods)."""
    for rule in _nat_rules().splitlines():
        if rule.startswith("-A ") and "-j CNI-HOSTPORT-" in rule and not rule.startswith("-A CNI-"):
            subprocess.run(["iptables", "-w", "-t", "nat", "-D", *shlex.split(rule)[1:]], capture_output=True)
    for chain in ("CNI-HOSTPORT-DNAT", "CNI-HOSTPORT-SETMARK", "CNI-HOSTPORT-MASQ"):
        subprocess.run(["iptables", "-w", "-t", "nat", "-F", chain], capture_output=True)
        subprocess.run(["iptables", "-w", "-t", "nat", "-X", chain], capture_output=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.refcontainerd", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("base", help="directory for everything of this containerd")
    p.add_argument("--registry", default="", help="HOST:PORT serving registry.k8s.io, gcr.io and k8s.gcr.io images")
    args = p.parse_args(argv)
    ref = RefContainerd(Path(args.base).resolve(), args.registry)
    ref.start()
    print(f"containerd serves the CRI on {ref.endpoint}; Ctrl-C stops it", flush=True)
    try:
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    finally:
        ref.stop()
    return 0


if __name__ == "__main__":
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    sys.exit(main())
