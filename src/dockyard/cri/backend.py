"""What the CRI front-end needs of the engine, as Protocols: it is handed the engine and sees only this.

The engine satisfies them structurally; the CRI imports no engine module.
"""

from __future__ import annotations

import builtins
import concurrent.futures
import threading
from typing import Any, Callable, Iterator, Protocol

from ..distribution.auth import AuthConfig
from ..util.reference import Reference
from ..images.store import Image


class Settings(Protocol):
    """The daemon's settings the CRI reads."""

    data_root: str
    exec_root: str
    cgroup_driver: str
    cni_conf_dir: str
    cni_bin_dirs: list[str]
    sandbox_image: str


class Images(Protocol):
    # builtins.list: the method's name shadows the type in the class body
    def list(self, all_images: bool = False) -> builtins.list[Image]: ...
    def resolve(self, name: str) -> Image: ...
    def delete(self, name: str, force: bool = False, prune: bool = True) -> builtins.list[dict[str, str]]: ...
    def layer_chain(self, image_id: str) -> builtins.list[str]: ...


class Distribution(Protocol):
    def pull(self, ref: Reference, platform: str | None, auth: AuthConfig,
             progress_fn: Callable[[dict[str, Any]], None], cancel: threading.Event | None = None) -> None: ...


class ContainerState(Protocol):
    status: str  # Docker's: created, running, paused, restarting, removing, exited, dead
    pid: int
    exit_code: int
    error: str
    oom_killed: bool
    started_at: str  # RFC 3339, "0001-01-01T00:00:00Z" when never
    finished_at: str

    @property
    def running(self) -> bool: ...


class Container(Protocol):
    """An engine container's record, as ``docker inspect`` shows it."""

    id: str
    name: str  # with the leading "/"
    created: str
    image_id: str
    image_name: str
    config: dict[str, Any]  # Docker's Config: Labels, Env, Image, Tty…
    host_config: dict[str, Any]
    state: ContainerState
    log_path: str  # the json-file log; "" with the none driver
    resolv_conf_path: str
    mounts: builtins.list[dict[str, Any]]


class LogOptions(Protocol):
    stdout: bool
    stderr: bool
    since_ns: int
    timestamps: bool


class LogReader(Protocol):
    """The engine's reader of a container's json-file log, rendered as the Docker API sends it."""

    finished: bool

    def backlog(self) -> Iterator[bytes]: ...
    def more(self) -> Iterator[bytes]: ...
    def close(self) -> None: ...


class Containers(Protocol):
    """``engine.containers``: the Docker API's container service, used with Docker-shaped bodies."""

    def get(self, ref: str) -> Container: ...
    def all(self) -> builtins.list[Container]: ...
    # namespaces: pinned namespaces the container joins by path (its record's Container.namespaces);
    # log_mirror: a second copy of its log in the CRI's format (the kubelet's log_path)
    def create(self, name: str | None, body: dict[str, Any], *,
               namespaces: dict[str, str] | None = None, log_mirror: str = "") -> Container: ...
    def start(self, ref: str) -> Container: ...
    def stop(self, ref: str, timeout: int | None = None, sig: str | None = None) -> None: ...
    def kill(self, ref: str, sig: int = ...) -> None: ...
    def update(self, ref: str, body: dict[str, Any]) -> builtins.list[str]: ...  # resources, as `docker update`
    def remove(self, ref: str, force: bool = False, volumes: bool = False) -> None: ...
    def wait(self, ref: str, condition: str = "not-running") -> concurrent.futures.Future[dict[str, Any]]: ...
    def log_reader(self, ref: str, opts: Any) -> LogReader: ...
    def sync_log(self, c: Container) -> None: ...
    def sizes(self, c: Container) -> tuple[int, int]: ...


class Exec(Protocol):
    id: str
    error: str
    done: concurrent.futures.Future[int]


class ExecSession(Protocol):
    exec: Exec
    stdin: int | None
    stdout: int | None
    stderr: int | None


class Execs(Protocol):
    def create(self, ref: str, body: dict[str, Any]) -> Exec: ...
    def start(self, exec_id: str, detach: bool = False) -> ExecSession: ...
    def pid(self, e: Exec) -> int: ...
    def forget(self, exec_id: str) -> None: ...  # the record dropped once its result is read


class Stats(Protocol):
    def sample(self, ref: str) -> dict[str, Any]: ...  # one sample in the Docker API's shape


class Event(Protocol):
    type: str
    action: str
    actor_id: str
    attributes: dict[str, str]
    time_nano: int


class Events(Protocol):
    def subscribe(self, deliver: Callable[[Any], None], since_nano: int | None = None) -> builtins.list[Any]: ...
    def unsubscribe(self, deliver: Callable[[Any], None]) -> None: ...


class Backend(Protocol):
    @property
    def config(self) -> Settings: ...
    @property
    def images(self) -> Images: ...
    @property
    def distribution(self) -> Distribution: ...
    @property
    def containers(self) -> Containers: ...
    @property
    def execs(self) -> Execs: ...
    @property
    def stats(self) -> Stats: ...
    @property
    def events(self) -> Events: ...
    def storage_driver_name(self) -> str: ...
