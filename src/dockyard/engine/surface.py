"""The engine's front-end surface: the calls a front-end (the Docker API's routes, later the CRI)
makes, one level deep, in the front-end's terms (references as the client wrote them, filters as
parsed maps, views as API objects). ``Engine`` inherits it; api/backend.py lists them as protocols.

Each call here may block (locks, disk, the runtime): a front-end on an event loop runs it in a
thread, except the few named in docs/architecture.md that only read memory."""

from __future__ import annotations

import concurrent.futures
import socket
import threading
from typing import IO, Any, Callable, Iterator

from ..builder.options import Options as BuildOptions
from ..builder.service import BuildService
from ..containers import links
from ..containers import view as container_view
from ..containers.archive import ContainerFiles, PathStat
from ..containers.commit import Committer
from ..containers.exec import ExecService, Session
from ..containers.health import HealthMonitor
from ..containers.logs import LogReader, Options as LogOptions
from ..containers.service import ContainerService, parse_signal
from ..containers.stats import StatsService
from ..distribution.auth import AuthConfig
from ..distribution.names import from_image_and_tag
from ..distribution.service import Distribution
from ..images import view as image_view
from ..util.reference import Reference, parse as parse_reference
from ..images.service import ImageService
from ..network import view as network_view
from ..network.service import NetworkService
from ..storage.snapshotter import Snapshotter
from ..streams.attach import ContainerStdio
from ..util import filters as flt
from ..volumes import view as volume_view
from ..volumes.service import VolumeService, describe
from .events import EventBus


class Surface:
    """The calls; the parts they use are the engine's, set when it is built."""

    containers: ContainerService
    execs: ExecService
    images: ImageService
    networks: NetworkService
    volumes: VolumeService
    health: HealthMonitor
    stats: StatsService
    container_files: ContainerFiles
    committer: Committer
    builds: BuildService
    distribution: Distribution
    events: EventBus
    snapshotter: Snapshotter
    container_views: container_view.ContainerViews

    # -- containers -------------------------------------------------------------------------
    def find_container(self, ref: str) -> str:
        """The ID of the container ``ref`` names (NotFound else)."""
        return self.containers.get(ref).id

    def create_container(self, name: str | None, body: dict[str, Any], shareable_ipc: bool) -> str:
        return self.containers.create(name, body, shareable_ipc=shareable_ipc).id

    def start_container(self, ref: str) -> None:
        self.containers.start(ref)

    def stop_container(self, ref: str, timeout: int | None, signal: str | None) -> None:
        self.containers.stop(ref, timeout, signal)

    def restart_container(self, ref: str, timeout: int | None, signal: str | None) -> None:
        self.containers.restart(ref, timeout, signal)

    def signal_number(self, signal: str | None) -> int:
        """``KILL``, ``SIGKILL`` or ``9`` (SIGKILL when None); InvalidParameter for another. Memory only."""
        return parse_signal(signal)

    def kill_container(self, ref: str, signal: int) -> None:
        self.containers.kill(ref, signal)

    def pause_container(self, ref: str) -> None:
        self.containers.pause(ref)

    def unpause_container(self, ref: str) -> None:
        self.containers.unpause(ref)

    def wait_container(self, ref: str, condition: str) -> concurrent.futures.Future[dict[str, Any]]:
        return self.containers.wait(ref, condition)

    def remove_container(self, ref: str, force: bool, volumes: bool) -> None:
        self.containers.remove(ref, force, volumes)

    def remove_link(self, name: str) -> None:
        """Forget the legacy link ``/parent/alias`` (the child stays)."""
        links.unlink(self.containers, name)

    def rename_container(self, ref: str, new_name: str) -> None:
        self.containers.rename(ref, new_name)

    def resize_container(self, ref: str, height: int, width: int) -> None:
        self.containers.resize(ref, height, width)

    def inspect_container(self, ref: str, size: bool) -> dict[str, Any]:
        return self.container_views.inspect(ref, size)

    def list_containers(self, all_: bool, limit: int, wanted: dict[str, list[str]], size: bool) -> list[dict[str, Any]]:
        return self.container_views.list(all_, limit, wanted, size)

    def top_container(self, ref: str, ps_args: str) -> dict[str, Any]:
        return self.container_views.top(ref, ps_args)

    def prune_containers(self, wanted: dict[str, list[str]]) -> tuple[list[str], int]:
        return self.containers.prune(container_view.prune_keep(wanted))

    def update_container(self, ref: str, body: dict[str, Any]) -> list[str]:
        return self.containers.update(ref, body)

    def container_stats(self, ref: str, one_shot: bool) -> dict[str, Any]:
        return self.stats.stats(self.containers.get(ref).id, one_shot)

    def next_container_stats(self, container_id: str, previous: dict[str, Any] | None) -> dict[str, Any]:
        return self.stats.next(container_id, previous)

    # -- a container's stdio ------------------------------------------------------------------
    def container_stdio(self, ref: str) -> ContainerStdio:
        c = self.containers.get(ref)
        return ContainerStdio(c.id, bool(c.config.get("Tty")), bool(c.config.get("OpenStdin")),
                              bool(c.config.get("StdinOnce")), bool(c.log_path))

    def attach_socket(self, container_id: str) -> concurrent.futures.Future[socket.socket]:
        """The shim's attach socket: now if the container runs, else when it next starts."""
        return self.containers.attach_socket(container_id)

    def open_log(self, ref: str, stdout: bool, stderr: bool, *, timestamps: bool = False, since_ns: int = 0,
                 until_ns: int = 0, tail: int = -1, framed: bool = False) -> LogReader:
        """``framed``: every entry in a multiplexed frame, even a TTY's (whose log is otherwise raw)."""
        reader = self.containers.log_reader(ref, LogOptions(stdout=stdout, stderr=stderr, since_ns=since_ns,
                                                            until_ns=until_ns, tail=tail, timestamps=timestamps))
        if framed:
            reader.tty = False
        return reader

    def sync_log(self, container_id: str) -> None:
        self.containers.sync_log(self.containers.get(container_id))

    def container_running(self, container_id: str) -> bool:
        return self.containers.is_running(container_id)

    # -- a container's files ------------------------------------------------------------------
    def stat_path(self, ref: str, path: str) -> PathStat:
        return self.container_files.stat(ref, path)

    def read_archive(self, ref: str, path: str) -> tuple[PathStat, Iterator[bytes]]:
        return self.container_files.read(ref, path)

    def write_archive(self, ref: str, path: str, body: IO[bytes], copy_uid_gid: bool,
                      no_overwrite_dir_non_dir: bool) -> None:
        self.container_files.write(ref, path, body, copy_uid_gid=copy_uid_gid,
                                   no_overwrite_dir_non_dir=no_overwrite_dir_non_dir)

    def export_container(self, ref: str) -> Iterator[bytes]:
        return self.container_files.export(ref)

    def container_changes(self, ref: str) -> list[dict[str, Any]]:
        return self.committer.changes(ref)

    def commit_container(self, ref: str, repo: str, tag: str, comment: str, author: str, pause: bool,
                         changes: list[str], config: dict[str, Any] | None) -> str:
        return self.committer.commit(ref, repo, tag, comment, author, pause, changes, config)

    # -- exec ---------------------------------------------------------------------------------
    def create_exec(self, container_ref: str, body: dict[str, Any]) -> str:
        return self.execs.create(container_ref, body).id

    def prepare_exec_start(self, exec_id: str, console_size: list[int] | None) -> bool:
        """Whether the exec already ran; ``console_size`` is its terminal's size once it starts."""
        e = self.execs.startable(exec_id)
        if console_size:
            e.console_size = console_size
        return e.started

    def start_exec_detached(self, exec_id: str) -> None:
        self.execs.start(exec_id, True)

    def start_exec(self, exec_id: str) -> Session:
        """The started process's stdio (a ``streams.exec.ExecSession``), for ``close_exec`` at the end."""
        return self.execs.start(exec_id)

    def exec_started(self, session: Session) -> None:
        """Until the runtime started the session's process or gave up."""
        self.execs.wait_started(session.exec)

    def close_exec(self, session: Session) -> None:
        self.execs.close_session(session)

    def resize_exec(self, exec_id: str, height: int, width: int) -> None:
        self.execs.resize(exec_id, height, width)

    def inspect_exec(self, exec_id: str) -> dict[str, Any]:
        e = self.execs.get(exec_id)
        # a pid not known yet may take runc a few ms to write
        return container_view.exec_inspect(e, e.pid or self.execs.pid(e))

    # -- images -------------------------------------------------------------------------------
    def list_images(self, wanted: dict[str, list[str]], all_images: bool, shared_size: bool,
                    refuse: Callable[[dict[str, Any]], str | None]) -> list[dict[str, Any]]:
        """ImageSummary rows; an image whose config ``refuse`` finds fault with is left out (logged)."""
        return image_view.rows(self.images, wanted, all_images, shared_size, refuse)

    def inspect_image(self, name: str, legacy_fields: tuple[bool, bool] = (False, False)) -> dict[str, Any]:
        """``legacy_fields``: (VirtualSize, Container and ContainerConfig), which older API versions show."""
        image = self.images.resolve(name)
        dirs = self.images.layer_chain(image.id) if image.chain_ids else []
        return image_view.inspect(image, self.snapshotter.name, dirs, *legacy_fields)

    def image_exists(self, name: str) -> None:
        """NotFound unless ``name`` resolves to an image."""
        self.images.resolve(name)

    def image_history(self, name: str) -> list[dict[str, Any]]:
        return self.images.history(name)

    def tag_image(self, name: str, repo: str, tag: str | None) -> None:
        self.images.tag(name, repo, tag)

    def delete_image(self, name: str, force: bool, prune: bool) -> list[dict[str, str]]:
        return self.images.delete(name, force, prune)

    def prune_images(self, wanted: dict[str, list[str]]) -> tuple[list[dict[str, str]], int]:
        dangling = flt.bool_value(wanted.get("dangling", []), "dangling")
        return self.images.prune(True if dangling is None else dangling, flt.LabelSelector.of(wanted))

    def load_images(self, body: IO[bytes]) -> list[str]:
        return self.images.load(body)

    def save_images(self, names: list[str]) -> Iterator[bytes]:
        return self.images.save(names)

    def import_image(self, body: IO[bytes], repo: str | None, tag: str | None, changes: list[str], message: str,
                     src: str) -> str:
        return self.images.import_image(body, repo, tag, changes, message, src).id

    # -- registries ----------------------------------------------------------------------------
    def pull_reference(self, image: str, tag: str) -> Reference:
        """What ``fromImage`` and ``tag`` name (InvalidParameter when nothing valid). Memory only."""
        return from_image_and_tag(image, tag)

    def push_reference(self, name: str, tag: str) -> Reference:
        """What a push of ``name`` (retagged ``tag`` when given) sends. Memory only."""
        ref = parse_reference(name, default_tag=False)
        return from_image_and_tag(ref.familiar_name, tag) if tag else ref

    def pull(self, ref: Reference, platform: str | None, auth: AuthConfig, emit: Callable[[dict[str, Any]], None],
             cancel: threading.Event) -> None:
        self.distribution.pull(ref, platform, auth, emit, cancel)

    def push(self, ref: Reference, auth: AuthConfig, emit: Callable[[dict[str, Any]], None],
             cancel: threading.Event) -> None:
        self.distribution.push(ref, auth, emit, cancel)

    def login(self, auth: AuthConfig) -> tuple[str, str]:
        return self.distribution.login(auth)

    def distribution_inspect(self, name: str, auth: AuthConfig) -> dict[str, Any]:
        return self.distribution.inspect(parse_reference(name, default_tag=False), auth)

    # -- builds ------------------------------------------------------------------------------------
    def build_image(self, body: IO[bytes], opts: BuildOptions, emit: Callable[[dict[str, Any]], None],
                    cancel: threading.Event) -> str:
        return self.builds.build(body, opts, emit, cancel)

    def prune_build_cache(self, wanted: dict[str, list[str]], until_ns: int | None,
                          keep_storage: int) -> tuple[list[str], int]:
        return self.builds.prune_all(wanted, until_ns, keep_storage)

    # -- networks -------------------------------------------------------------------------------
    def list_networks(self, wanted: dict[str, list[str]]) -> list[dict[str, Any]]:
        network_view.check_list_filters(wanted)
        out = []
        for n in self.networks.all():
            try:
                if network_view.matches(n, wanted):
                    out.append(network_view.resource(n, containers=False))
            except Exception:  # one bad record must not take the list from every client
                network_view.log.exception("skipping network %s in the list", n.id)
        return out

    def inspect_network(self, ref: str) -> dict[str, Any]:
        return network_view.resource(self.networks.get(ref), containers=True)

    def create_network(self, body: dict[str, Any]) -> str:
        return self.networks.create(body).id

    def remove_network(self, ref: str) -> None:
        self.networks.remove(ref)

    def connect_network(self, ref: str, container_ref: str, endpoint: dict[str, Any]) -> None:
        c = self.containers.get(container_ref)
        self.networks.connect(ref, c, endpoint, c.state.running)

    def disconnect_network(self, ref: str, container_ref: str, force: bool) -> None:
        self.networks.disconnect(ref, self.containers.get(container_ref), force)

    def prune_networks(self, wanted: dict[str, list[str]]) -> list[str]:
        return self.networks.prune(network_view.prune_keep(wanted))

    # -- volumes ---------------------------------------------------------------------------------
    def create_volume(self, name: str, driver: str, labels: dict[str, str], options: dict[str, str]) -> dict[str, Any]:
        vol = self.volumes.create(name, driver, labels, options)
        return describe(vol, self.volumes.mountpoint(vol.name))

    def list_volumes(self, wanted: dict[str, list[str]]) -> list[dict[str, Any]]:
        out = []
        for vol in volume_view.select(self.volumes.all(), wanted, lambda name: bool(self.volumes.users(name))):
            try:
                out.append(describe(vol, self.volumes.mountpoint(vol.name)))
            except Exception:  # one bad record must not take the list from every client
                volume_view.log.exception("skipping volume %s in the list", vol.name)
        return out

    def inspect_volume(self, name: str) -> dict[str, Any]:
        vol = self.volumes.get(name)
        return describe(vol, self.volumes.mountpoint(vol.name))

    def remove_volume(self, name: str, force: bool) -> None:
        self.volumes.remove(name, force)

    def prune_volumes(self, wanted: dict[str, list[str]], all_: bool) -> tuple[list[str], int]:
        return self.volumes.prune(volume_view.prune_keep(wanted, all_))

