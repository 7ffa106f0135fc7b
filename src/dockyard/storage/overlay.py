"""The overlay snapshotter (overlay2's on-disk shape): layers stacked by the kernel.

Each layer's ``diff/`` holds only that layer's changes, with whiteouts in the
kernel's form, so a layer unpacks without its parent. Mount options name the
lower dirs through short symlinks ``l/<id>`` and the mount runs with its cwd at
the root, as overlay2 does, so 40+ layers fit the one-page mount data limit.
"""

from __future__ import annotations

import os
import secrets
import shutil
import string
import subprocess
import tempfile
from typing import Any, Iterator

from .. import errors
from .difftar import overlay_upper_tar
from .snapshotter import Mounts, Snapshotter

LINK_DIR = "l"
_ALPHABET = string.ascii_uppercase + string.digits


def overlay_supported(root: str) -> bool:
    """Whether an overlay mount with our layout works on ``root``'s filesystem."""
    os.makedirs(root, mode=0o711, exist_ok=True)
    probe = tempfile.mkdtemp(prefix="overlay-probe-", dir=root)
    try:
        for d in ("lower", "upper", "work", "merged"):
            os.mkdir(os.path.join(probe, d))
        res = subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                              "lowerdir=lower,upperdir=upper,workdir=work", "merged"],
                             cwd=probe, capture_output=True, timeout=10)
        if res.returncode != 0:
            return False
        subprocess.run(["umount", os.path.join(probe, "merged")], capture_output=True, timeout=10)
        return True
    except (OSError, subprocess.SubprocessError):
        return False
    finally:
        shutil.rmtree(probe, ignore_errors=True)


class OverlaySnapshotter(Snapshotter):
    name = "overlay2"
    whiteouts = "overlay"
    independent_layers = True

    def __init__(self, root: str) -> None:
        super().__init__(root)
        self.link_dir = os.path.join(root, LINK_DIR)
        os.makedirs(self.link_dir, mode=0o700, exist_ok=True)
        self._repair_links()

    def _repair_links(self) -> None:
        """A crash between a layer's rename and its link leaves a layer without ``l/`` entry."""
        for chain_id in self.layers():
            if not os.path.exists(os.path.join(self._dir(chain_id), "link")):
                self._after_commit(chain_id, {})
        for name in os.listdir(self.link_dir):
            path = os.path.join(self.link_dir, name)
            if not os.path.exists(path):
                os.unlink(path)

    def _short(self, path: str) -> str:
        with open(os.path.join(path, "link"), encoding="ascii") as f:
            return f.read().strip()

    def _after_commit(self, chain_id: str, meta: dict[str, Any]) -> None:
        layer = self._dir(chain_id)
        short = "".join(secrets.choice(_ALPHABET) for _ in range(26))
        os.symlink(os.path.join("..", os.path.basename(layer), "diff"), os.path.join(self.link_dir, short))
        tmp = os.path.join(layer, "link.tmp")
        with open(tmp, "w", encoding="ascii") as f:
            f.write(short)
        os.replace(tmp, os.path.join(layer, "link"))

    def remove_layer(self, chain_id: str) -> None:
        try:
            short = self._short(self._dir(chain_id))
        except FileNotFoundError:
            short = ""
        super().remove_layer(chain_id)
        if short:
            try:
                os.unlink(os.path.join(self.link_dir, short))
            except FileNotFoundError:
                pass

    def mounts(self, key: str) -> Mounts:
        snap = self.snapshot(key)
        lowers = self.lower_chain(snap.parent) if snap.parent else []
        if not lowers:
            return Mounts("bind", upperdir=snap.upperdir)
        return Mounts("overlay", lowerdirs=lowers, upperdir=snap.upperdir, workdir=snap.workdir)

    def mount(self, key: str, target: str) -> None:
        snap = self.snapshot(key)
        if not snap.parent:
            self._run(["mount", "--bind", snap.upperdir, target])
            return
        shorts = []
        cur: str | None = snap.parent
        while cur:
            shorts.append(f"{LINK_DIR}/{self._short(self._dir(cur))}")
            cur = self.layer_meta(cur).get("parent") or None
        rel = os.path.basename(snap.path)
        opts = f"lowerdir={':'.join(shorts)},upperdir={rel}/diff,workdir={rel}/work"
        if len(opts) >= 4096:
            raise errors.SystemError_(f"too many layers to mount ({len(shorts)})")
        self._run(["mount", "-t", "overlay", "overlay", "-o", opts, os.path.abspath(target)], cwd=self.root)

    @staticmethod
    def _run(argv: list[str], cwd: str | None = None) -> None:
        res = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=60)
        if res.returncode != 0:
            raise errors.SystemError_(f"{' '.join(argv[:3])} failed: {res.stderr.strip()}")

    def diff(self, key: str) -> Iterator[bytes]:
        return overlay_upper_tar(self.snapshot(key).upperdir)
