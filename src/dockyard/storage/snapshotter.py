"""What the overlay and vfs snapshotters share: layer dirs, snapshots, their metadata.

A *layer* is a committed, read-only directory named by its chain ID
(``<root>/<chain hex>/``: ``diff/`` holds the content, ``layer.json`` its
facts, ``tar-split`` the record to rebuild its tar). A *snapshot* is a
writable directory on top of a layer (a container's rw layer:
``<root>/<key>/diff`` and ``work``, ``snapshot.json`` names the parent).
Layers are built in ``<root>/tmp/`` and renamed into place when verified;
``tmp/`` is emptied at start.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass, field
from typing import Any, Iterator

from .. import errors
from ..util.archive import Whiteouts
from ..util.atomic import write_json_atomic

LAYER_META = "layer.json"
SNAPSHOT_META = "snapshot.json"
TAR_SPLIT = "tar-split"


@dataclass
class Mounts:
    """How to mount a snapshot: overlay options, or a bind of ``upperdir`` when ``type`` is bind."""

    type: str
    lowerdirs: list[str] = field(default_factory=list)  # top first
    upperdir: str = ""
    workdir: str = ""


@dataclass
class Snapshot:
    key: str
    parent: str | None
    path: str  # the snapshot directory
    upperdir: str
    workdir: str


def fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def is_mountpoint(path: str) -> bool:
    real = os.path.realpath(path)
    try:
        with open("/proc/self/mountinfo", encoding="utf-8") as f:
            return any(line.split()[4] == real for line in f)
    except OSError:
        return False


class Snapshotter:
    name = ""
    whiteouts: Whiteouts = None
    # True when a layer can be unpacked without its parent's content (overlay).
    independent_layers = False

    def __init__(self, root: str) -> None:
        self.root = root
        self.tmp_dir = os.path.join(root, "tmp")
        os.makedirs(root, mode=0o711, exist_ok=True)
        shutil.rmtree(self.tmp_dir, ignore_errors=True)
        os.makedirs(self.tmp_dir, mode=0o700, exist_ok=True)

    # -- layers --------------------------------------------------------------------
    def _dir(self, chain_or_key: str) -> str:
        name = chain_or_key[7:] if chain_or_key.startswith("sha256:") else chain_or_key
        if not name or "/" in name or name in (".", "..", "tmp", "l"):
            raise errors.InvalidParameter(f"invalid snapshot key {chain_or_key!r}")
        return os.path.join(self.root, name)

    def layer_path(self, chain_id: str) -> str:
        return os.path.join(self._dir(chain_id), "diff")

    def layer_exists(self, chain_id: str) -> bool:
        return os.path.exists(os.path.join(self._dir(chain_id), LAYER_META))

    def layer_meta(self, chain_id: str) -> dict[str, Any]:
        with open(os.path.join(self._dir(chain_id), LAYER_META), encoding="utf-8") as f:
            return json.load(f)

    def tar_split_path(self, chain_id: str) -> str:
        return os.path.join(self._dir(chain_id), TAR_SPLIT)

    def layers(self) -> list[str]:
        out = []
        for name in os.listdir(self.root):
            if len(name) == 64 and os.path.exists(os.path.join(self.root, name, LAYER_META)):
                out.append("sha256:" + name)
        return out

    def new_layer(self, parent: str | None) -> str:
        """A fresh build directory (with ``diff/`` to extract into) for a layer on ``parent``."""
        path = os.path.join(self.tmp_dir, secrets.token_hex(8))
        os.makedirs(path, mode=0o700)
        self._populate(os.path.join(path, "diff"), parent)
        return path

    def _populate(self, diff: str, parent: str | None) -> None:
        os.mkdir(diff, 0o755)

    def commit_layer(self, build_dir: str, chain_id: str, meta: dict[str, Any]) -> None:
        """Make a verified build directory the layer ``chain_id``."""
        write_json_atomic(os.path.join(build_dir, LAYER_META), meta)
        final = self._dir(chain_id)
        os.rename(build_dir, final)
        fsync_dir(self.root)
        self._after_commit(chain_id, meta)

    def _after_commit(self, chain_id: str, meta: dict[str, Any]) -> None:
        pass

    def discard(self, build_dir: str) -> None:
        shutil.rmtree(build_dir, ignore_errors=True)

    def remove_layer(self, chain_id: str) -> None:
        path = self._dir(chain_id)
        if not os.path.exists(path):
            return
        # Rename first so that a crash mid-delete never leaves a half layer under its name.
        doomed = os.path.join(self.tmp_dir, "rm-" + secrets.token_hex(8))
        os.rename(path, doomed)
        self._after_remove(chain_id)
        shutil.rmtree(doomed, ignore_errors=True)

    def _after_remove(self, chain_id: str) -> None:
        pass

    def lower_chain(self, chain_id: str) -> list[str]:
        """Layer dirs from ``chain_id`` down to the base, top first."""
        out = []
        cur: str | None = chain_id
        while cur:
            out.append(self.layer_path(cur))
            cur = self.layer_meta(cur).get("parent") or None
        return out

    # -- snapshots (writable, for containers) ----------------------------------------
    def prepare(self, key: str, parent: str | None) -> Snapshot:
        path = self._dir(key)
        if os.path.exists(path):
            raise errors.Conflict(f"snapshot {key} already exists")
        if parent and not self.layer_exists(parent):
            raise errors.NotFound(f"layer {parent} does not exist")
        build = os.path.join(self.tmp_dir, secrets.token_hex(8))
        os.makedirs(build, mode=0o700)
        self._populate_snapshot(build, parent)
        write_json_atomic(os.path.join(build, SNAPSHOT_META), {"key": key, "parent": parent})
        os.rename(build, path)
        return self.snapshot(key)

    def _populate_snapshot(self, build: str, parent: str | None) -> None:
        self._populate(os.path.join(build, "diff"), parent)
        os.mkdir(os.path.join(build, "work"), 0o700)

    def snapshot(self, key: str) -> Snapshot:
        path = self._dir(key)
        try:
            with open(os.path.join(path, SNAPSHOT_META), encoding="utf-8") as f:
                meta = json.load(f)
        except FileNotFoundError:
            raise errors.NotFound(f"snapshot {key} does not exist") from None
        return Snapshot(key, meta.get("parent"), path, os.path.join(path, "diff"), os.path.join(path, "work"))

    def snapshots(self) -> list[Snapshot]:
        out = []
        for name in os.listdir(self.root):
            if os.path.exists(os.path.join(self.root, name, SNAPSHOT_META)):
                out.append(self.snapshot(name))
        return out

    def remove(self, key: str) -> None:
        snap = self.snapshot(key)
        doomed = os.path.join(self.tmp_dir, "rm-" + secrets.token_hex(8))
        os.rename(snap.path, doomed)
        shutil.rmtree(doomed, ignore_errors=True)

    def mounts(self, key: str) -> Mounts:
        raise NotImplementedError

    def mount(self, key: str, target: str) -> None:
        raise NotImplementedError

    def unmount(self, target: str) -> None:
        if is_mountpoint(target):
            subprocess.run(["umount", target], check=True, capture_output=True)

    def diff(self, key: str) -> Iterator[bytes]:
        raise NotImplementedError

    def status(self) -> list[list[str]]:
        return [["Backing Filesystem", backing_fs(self.root)]]


def backing_fs(path: str) -> str:
    try:
        out = subprocess.run(["stat", "-f", "-c", "%T", path], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    kind = out.strip()
    return {"ext2/ext3": "extfs"}.get(kind, kind or "unknown")
