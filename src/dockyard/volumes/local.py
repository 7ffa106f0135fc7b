"""The `local` volume driver: a directory under <data-root>/volumes, or a filesystem mounted there.

Each volume is `<root>/<name>/` holding `_data` (what containers see) and `volume.json` (its
metadata, written atomically). With `type`/`device`/`o` options the driver mounts that
filesystem on `_data` at first use and unmounts it after the last, as dockerd's local driver does.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass, field

from .. import errors
from ..util import timefmt
from ..util import fields
from ..util.atomic import write_json_atomic

NAME_RE = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+")  # whole-string (fullmatch): "$" passes "abc\n"
VALID_OPTIONS = ("type", "device", "o", "size")
ANONYMOUS_LABEL = "com.docker.volume.anonymous"
METADATA = "volume.json"


@dataclass
class Volume:
    name: str
    driver: str = "local"
    labels: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)
    created_at: str = ""

    @property
    def anonymous(self) -> bool:
        return ANONYMOUS_LABEL in self.labels


def validate_name(name: str) -> None:
    if len(name) > 255:  # the name is a directory's: mkdir would fail (ENAMETOOLONG)
        raise errors.InvalidParameter(f"create {name[:64]}...: volume name is longer than 255 characters")
    if not NAME_RE.fullmatch(name):
        raise errors.InvalidParameter(
            f'create {name}: "{name}" includes invalid characters for a local volume name, only '
            f'"[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path')


def validate_options(name: str, options: dict[str, str]) -> None:
    for key in options:
        if key not in VALID_OPTIONS:
            raise errors.InvalidParameter(f'create {name}: invalid option: "{key}"')
    if "size" in options:
        # dockerd needs XFS project quotas for this; so would we
        raise errors.InvalidParameter(f"create {name}: quota size requested but no quota support")
    if options.get("type") and not options.get("device"):
        raise errors.InvalidParameter(f'create {name}: missing required option: "device"')
    if options.get("device") and not options.get("type") and "bind" not in options.get("o", "").split(","):
        raise errors.InvalidParameter(f'create {name}: missing required option: "type"')


class LocalDriver:
    name = "local"

    def __init__(self, root: str) -> None:
        self.root = root
        os.makedirs(root, mode=0o701, exist_ok=True)

    def directory(self, name: str) -> str:
        return os.path.join(self.root, name)

    def mountpoint(self, name: str) -> str:
        return os.path.join(self.root, name, "_data")

    def load_all(self) -> list[Volume]:
        out = []
        for name in sorted(os.listdir(self.root)):
            path = os.path.join(self.root, name, METADATA)
            try:
                with open(path, encoding="utf-8") as f:
                    vol = Volume(**json.load(f))
                fields.check(vol)  # a record that would break `volume ls` is skipped
                out.append(vol)
            except FileNotFoundError:
                # a create that never finished: no metadata was committed
                shutil.rmtree(os.path.join(self.root, name), ignore_errors=True)
            except (OSError, ValueError, TypeError) as e:
                logging.getLogger("dockyard.volumes").warning("skipping unreadable volume record %s: %s", path, e)
                continue
        return out

    def create(self, name: str, labels: dict[str, str], options: dict[str, str]) -> Volume:
        validate_name(name)
        validate_options(name, options)
        vol = Volume(name=name, labels=dict(labels), options=dict(options),
                     created_at=timefmt.rfc3339(time.time()))
        os.makedirs(self.mountpoint(name), mode=0o755, exist_ok=True)
        self.save(vol)
        return vol

    def save(self, vol: Volume) -> None:
        write_json_atomic(os.path.join(self.directory(vol.name), METADATA), asdict(vol))

    def remove(self, vol: Volume) -> None:
        self.unmount(vol)
        directory = self.directory(vol.name)
        # metadata first: a crash midway leaves a dir without metadata, swept at the next start
        try:
            os.unlink(os.path.join(directory, METADATA))
        except FileNotFoundError:
            pass
        shutil.rmtree(directory, ignore_errors=True)

    def needs_mount(self, vol: Volume) -> bool:
        return bool(vol.options.get("type") or vol.options.get("device"))

    def mount(self, vol: Volume) -> None:
        """Mount the volume's filesystem on `_data` (options as `mount -t TYPE -o O DEVICE`)."""
        target = self.mountpoint(vol.name)
        if not self.needs_mount(vol) or os.path.ismount(target):
            return
        opts = vol.options
        cmd = ["mount"]
        if opts.get("type"):
            cmd += ["-t", opts["type"]]
        if opts.get("o"):
            cmd += ["-o", opts["o"]]
        cmd += [opts.get("device", ""), target]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise errors.SystemError_(f"error while mounting volume '{target}': {proc.stderr.strip()}")

    def unmount(self, vol: Volume) -> None:
        target = self.mountpoint(vol.name)
        if self.needs_mount(vol) and os.path.ismount(target):
            subprocess.run(["umount", target], capture_output=True)
