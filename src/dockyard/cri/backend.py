"""What the CRI front-end needs of the engine, as Protocols: it is handed the engine and sees only this.

The engine satisfies them structurally; the CRI imports no engine module.
"""

from __future__ import annotations

import builtins
import threading
from typing import Any, Callable, Protocol

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


class Images(Protocol):
    # builtins.list: the method's name shadows the type in the class body
    def list(self, all_images: bool = False) -> builtins.list[Image]: ...
    def resolve(self, name: str) -> Image: ...
    def delete(self, name: str, force: bool = False, prune: bool = True) -> builtins.list[dict[str, str]]: ...
    def layer_chain(self, image_id: str) -> builtins.list[str]: ...


class Distribution(Protocol):
    def pull(self, ref: Reference, platform: str | None, auth: AuthConfig,
             progress_fn: Callable[[dict[str, Any]], None], cancel: threading.Event | None = None) -> None: ...


class Backend(Protocol):
    @property
    def config(self) -> Settings: ...
    @property
    def images(self) -> Images: ...
    @property
    def distribution(self) -> Distribution: ...
    def storage_driver_name(self) -> str: ...
