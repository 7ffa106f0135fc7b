"""RUN steps as lean containers: ``runc run`` on a throwaway overlay, straight from a worker thread.

A build step needs a real container (namespaces, capabilities, seccomp and
the build's network, with the same OCI spec ``docker run`` gets) but none of
what a long-lived container carries: no record on disk, no conmon, no
json-file log, no events. The step's output comes from runc's pipes and is
relayed line by line; runc deletes its state when the process exits.

The network is per build, not per step: the first RUN on the default bridge
joins it once (a namespace, a veth, hosts and resolv.conf) and every later
step of the build enters that namespace, as BuildKit shares one.

What a step holds on the host (a runc container, its overlay mount, the
build's namespace and veth) is announced by a marker under
``<data-root>/build/steps/`` before it exists and the marker goes after it
is released, so a daemon killed mid-step reaps it at its next start
(``reap``), as container restore reaps a container whose shim died.
"""

from __future__ import annotations

import contextlib
import json
import logging
import ipaddress
import os
import secrets
import shutil
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

from .. import errors
from ..runtime import spec as specmod
from ..runtime.task import StepTask
from ..util.atomic import write_json_atomic

log = logging.getLogger("dockyard.build")

SPECIAL = ("none", "host")


@dataclass
class _BuildNet:
    """What a build's steps share: a network namespace (None for ``host``) and the files bound into /etc."""

    netns: str | None
    files: specmod.Files


@dataclass
class _NetOwner:
    """The shape the network service reads from a container when it plugs one in."""

    id: str
    host_config: dict[str, Any]
    config: dict[str, Any] = field(default_factory=dict)
    name: str = ""


def markers_dir(data_root: str) -> str:
    return os.path.join(data_root, "build", "steps")


class _Marker:
    """One marker file: written (durably) before the thing it names is made, removed once it is gone."""

    def __init__(self, directory: str, name: str, record: dict[str, str]) -> None:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        self.path = os.path.join(directory, name + ".json")
        write_json_atomic(self.path, record, mode=0o600)

    def drop(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


class StepRunner:
    """Runs the RUN steps of one build; ``close()`` releases the build's network."""

    def __init__(self, engine: Any, workdir: str, network: str,
                 extra_hosts: list[tuple[str, str]] | None = None) -> None:
        self.engine = engine
        self.extra_hosts = extra_hosts or []
        self.workdir = workdir
        self.markers = markers_dir(engine.config.data_root)
        self._net_marker: _Marker | None = None
        self.mode = network or "default"
        self.net: _BuildNet | None = None
        self._net_id = ""
        self._runtime = engine.containers.runtime(engine.containers.config.default_runtime)

    # -- the build's network ----------------------------------------------------------------
    def _network(self) -> _BuildNet:
        if self.net is not None:
            return self.net
        net = self._join_network()
        if self.extra_hosts:
            net = self._add_hosts(net)
        self.net = net
        return net

    def _add_hosts(self, net: _BuildNet) -> _BuildNet:
        """``--add-host`` entries after the network's own, as dockerd writes them (``ip\thost``); with
        the host's network the steps get a copy of the host's file, never the file itself."""
        own = os.path.join(self.workdir, "net", "hosts-extra")
        with open(net.files.hosts, encoding="utf-8", errors="replace") as f:
            base = f.read()
        if base and not base.endswith("\n"):
            base += "\n"
        lines = []
        for host, ip in self.extra_hosts:
            bare = ip[1:-1] if ip.startswith("[") and ip.endswith("]") else ip
            try:
                lines.append(f"{ipaddress.ip_address(bare)}\t{host}\n")
            except ValueError:
                raise errors.InvalidParameter(f'invalid IP address in add-host: "{ip}"') from None
        with open(own, "w", encoding="utf-8") as f:
            f.write(base + "".join(lines))
        return _BuildNet(net.netns, specmod.Files(hosts=own, resolv_conf=net.files.resolv_conf))

    def _join_network(self) -> _BuildNet:
        netdir = os.path.join(self.workdir, "net")
        os.makedirs(netdir, exist_ok=True)
        hosts, resolv = os.path.join(netdir, "hosts"), os.path.join(netdir, "resolv.conf")
        if self.mode == "host":
            return _BuildNet(None, specmod.Files(hosts="/etc/hosts", resolv_conf="/etc/resolv.conf"))
        _write_default_files(hosts, resolv)
        if self.mode == "none":
            # a fresh namespace per step (runc brings its loopback up), nothing else in it
            return _BuildNet(None, specmod.Files(hosts=hosts, resolv_conf=resolv))
        if self.mode.startswith("container:"):
            raise errors.InvalidParameter(f"network mode {self.mode} is not supported for builds")
        networks = self.engine.networks
        self._net_id = secrets.token_hex(32)
        owner = _NetOwner(self._net_id, {"NetworkMode": self.mode}, {"Hostname": "buildkitsandbox"})
        self._net_marker = _Marker(self.markers, "net-" + owner.id, {"network": owner.id})
        try:
            networks.register(owner.id, "build-" + owner.id[:12], owner.host_config, None)
            ns = networks.attach(owner, hosts, resolv)
        except BaseException:
            self.close()
            raise
        return _BuildNet(ns, specmod.Files(hosts=hosts, resolv_conf=resolv))

    def close(self) -> None:
        if self._net_id:
            try:
                self.engine.networks.unregister(self._net_id)
            except Exception as e:  # the marker stays: the next start tries again
                log.warning("releasing the network of build steps %s: %s", self._net_id[:12], e)
            else:
                if self._net_marker is not None:
                    self._net_marker.drop()
            self._net_id = ""
        self.net = None

    # -- one step ---------------------------------------------------------------------------
    def run(self, container_id: str, snapshot_key: str, cmd: list[str], env: list[str], workdir: str, user: str,
            out: Callable[[str], None], cancel: threading.Event,
            mounts: list[dict[str, Any]] | None = None, privileged: bool = False) -> int:
        """Run ``cmd`` on the prepared snapshot ``snapshot_key`` (with the step's own ``mounts``, from
        RUN --mount, and ``privileged`` for RUN --security=insecure); returns its exit status.

        The snapshot stays (unmounted) for the caller to diff and remove.
        """
        net = self._network()
        bundle = os.path.join(self.workdir, "run-" + container_id[:12])
        rootfs = os.path.join(bundle, "rootfs")
        os.makedirs(rootfs)
        snap = self.engine.snapshotter
        marker = _Marker(self.markers, "step-" + container_id,
                         {"container": container_id, "runtime": self._runtime.name, "rootfs": rootfs})
        released = False
        try:
            snap.mount(snapshot_key, rootfs)
            try:
                spec = specmod.build(
                    container_id=container_id, rootfs=rootfs, image_config={},
                    config={"Entrypoint": cmd, "Cmd": None, "Env": env, "WorkingDir": workdir, "User": user},
                    host_config={"NetworkMode": self.mode, "Privileged": privileged}, files=net.files,
                    netns_path=net.netns,
                    extra_mounts=mounts)
                return self._run_task(StepTask(self._runtime, container_id, bundle), spec, out, cancel)
            finally:
                snap.unmount(rootfs)
                released = True
        finally:
            if released:
                shutil.rmtree(bundle, ignore_errors=True)  # never through a rootfs still mounted
                marker.drop()

    def _run_task(self, task: StepTask, spec: dict[str, Any], out: Callable[[str], None],
                  cancel: threading.Event) -> int:
        log_path = os.path.join(task.bundle.path, "runc.log")
        # runc's own errors go to its log; the process's stdout and stderr share one pipe, as in the build output
        proc = task.run(spec, log_path)
        stop = threading.Event()

        def watch_cancel() -> None:
            while not stop.wait(0.1):
                if cancel.is_set():
                    with contextlib.suppress(Exception):
                        task.kill(9, all_processes=True)
                    return

        watcher = threading.Thread(target=watch_cancel, daemon=True)
        watcher.start()
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                out(line.decode("utf-8", "replace"))
            code = proc.wait()
        finally:
            stop.set()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            with contextlib.suppress(Exception):
                task.delete()
        if cancel.is_set():
            raise errors.InvalidParameter("build cancelled")
        failure = _runc_failure(log_path)
        if failure:
            # the process never ran: dockerd reports the runtime's refusal, not an exit status
            raise errors.InvalidParameter(failure)
        return code


def reap(engine: Any) -> None:
    """At start, before the build directory is emptied: end the steps a killed daemon left running,
    unmount their rootfs and release their builds' networks (dockerd's restore of containers, for steps)."""
    directory = markers_dir(engine.config.data_root)
    try:
        names = sorted(os.listdir(directory))
    except FileNotFoundError:
        return
    for name in names:
        path = os.path.join(directory, name)
        try:
            with open(path, encoding="utf-8") as f:
                record = json.load(f)
            _reap_one(engine, record)
        except (OSError, ValueError, TypeError, KeyError, errors.DockyardError) as e:
            log.warning("reaping the build step of %s: %s (marker kept)", name, e)
            continue
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def _reap_one(engine: Any, record: dict[str, Any]) -> None:
    if "network" in record:
        engine.networks.unregister(str(record["network"]))
        return
    container_id, rootfs = str(record["container"]), str(record["rootfs"])
    bundle = os.path.dirname(rootfs)
    StepTask(engine.containers.runtime(str(record["runtime"])), container_id, bundle).delete()
    engine.snapshotter.unmount(rootfs)
    try:
        engine.containers.get(container_id)  # a failed step kept as a container owns its snapshot
    except errors.NotFound:
        with contextlib.suppress(errors.NotFound, FileNotFoundError):
            engine.snapshotter.remove(container_id)
    log.info("reaped build step %s left by a daemon that stopped mid-build", container_id[:12])


def _write_default_files(hosts: str, resolv: str) -> None:
    """localhost only, and the host's non-loopback resolvers: what a step sees unless its network writes its own."""
    with open(hosts, "w", encoding="utf-8") as f:
        f.write("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
    try:
        with open("/etc/resolv.conf", encoding="utf-8", errors="replace") as f:
            lines = [ln for ln in f if not (ln.startswith("nameserver") and
                                            (" 127." in ln or " ::1" in ln))]
    except OSError:
        lines = []
    with open(resolv, "w", encoding="utf-8") as f:
        f.writelines(lines)


def _runc_failure(log_path: str) -> str:
    """runc's error when it could not start the process ('' when the process ran)."""
    try:
        with open(log_path, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return ""
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("level") in ("error", "fatal"):
            return "failed to create task for container: OCI runtime create failed: runc create failed: " + \
                str(entry.get("msg", ""))
    return ""
