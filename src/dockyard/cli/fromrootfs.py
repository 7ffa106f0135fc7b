"""``dockyard image from-rootfs``: a first image without a registry.

A root filesystem directory, or one made of the host's static busybox and its
applet links, is sent as a tar to the import endpoint (``POST /images/create?
fromSrc=-``, what ``docker import`` does), so that a machine with no route to a
registry can still run its first container.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import struct
import subprocess
import tarfile
import tempfile
import time

from .. import errors as engine_errors
from ..util import reference
from . import jsonmessage
from .command import Arity, Cli, CliError, CommandTree
from .connection import json_stream, raw_post

HOST_BUSYBOX = "/bin/busybox"
CHUNK = 1 << 20
# what an applet path from `busybox --list-full` may look like ("usr/bin/[" included)
_APPLET = re.compile(r"^(?:(?:usr/)?s?bin)/[A-Za-z0-9_.+\[\]-]+$")
_ETC = {
    "etc/passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n",
    "etc/group": "root:x:0:\nnobody:x:65534:\n",
}


def is_static_elf(path: str) -> bool:
    """An ELF executable without a program interpreter (PT_INTERP): it runs in an image with no libc."""
    with open(path, "rb") as f:
        head = f.read(64)
        if len(head) < 64 or head[:4] != b"\x7fELF" or head[4] != 2 or head[5] != 1:  # 64-bit little-endian
            return False
        phoff, = struct.unpack_from("<Q", head, 32)
        phentsize, phnum = struct.unpack_from("<HH", head, 54)
        if phentsize < 4 or phnum > 256:
            return False
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    return all(struct.unpack_from("<I", table, i * phentsize)[0] != 3 for i in range(len(table) // phentsize))


def busybox_tar(out: io.BufferedIOBase, busybox: str = HOST_BUSYBOX) -> None:
    """A root filesystem of ``busybox`` (copied), its applets as links to it, and the usual directories."""
    if not os.path.isfile(busybox) or not is_static_elf(busybox):
        raise CliError(f"{busybox} is not a statically linked busybox; install one (Debian: apt-get install "
                       "busybox-static) or give a root filesystem directory instead")
    listed = subprocess.run([busybox, "--list-full"], capture_output=True, text=True, timeout=30)
    applets = sorted({p for p in listed.stdout.split() if _APPLET.match(p)} - {"bin/busybox"})
    if listed.returncode != 0 or not applets:
        raise CliError(f"{busybox} --list-full listed no applets")
    now = int(time.time())

    def entry(name: str, kind: bytes, mode: int, **kw: object) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.type, info.mode, info.mtime = kind, mode, now
        for k, v in kw.items():
            setattr(info, k, v)
        return info

    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for d in ("bin", "dev", "etc", "home", "proc", "root", "sbin", "sys", "usr", "usr/bin", "usr/sbin",
                  "var", "var/spool", "var/spool/mail", "var/www"):
            tar.addfile(entry(d, tarfile.DIRTYPE, 0o700 if d == "root" else 0o755))
        tar.addfile(entry("tmp", tarfile.DIRTYPE, 0o1777))
        with open(busybox, "rb") as f:
            tar.addfile(entry("bin/busybox", tarfile.REGTYPE, 0o755, size=os.fstat(f.fileno()).st_size), f)
        for path in applets:
            tar.addfile(entry(path, tarfile.SYMTYPE, 0o777, linkname="/bin/busybox"))
        for path, text in _ETC.items():
            data = text.encode()
            tar.addfile(entry(path, tarfile.REGTYPE, 0o644, size=len(data)), io.BytesIO(data))


def directory_tar(out: io.BufferedIOBase, root: str) -> None:
    """``root`` as is: owners, modes, links (not followed), as ``tar -C root -c .`` makes it."""
    if not os.path.isdir(root):
        raise CliError(f"{root}: not a directory")
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(os.listdir(root)):
            tar.add(os.path.join(root, name), arcname=name, recursive=True)


def cmd_from_rootfs(cli: Cli, ns: argparse.Namespace) -> None:
    if bool(ns.busybox) == bool(len(ns.args) == 2):
        raise CliError('"dockyard image from-rootfs" takes DIR NAME[:TAG], or --busybox NAME[:TAG]')
    name = ns.args[-1]
    try:
        reference.parse(name, default_tag=False)
    except engine_errors.InvalidParameter as e:
        raise CliError(str(e)) from None
    changes = list(ns.change)
    # a tar of a few MiB for busybox, of the directory's size otherwise; spooled to disk, not memory
    with tempfile.TemporaryFile(prefix="dockyard-rootfs-") as spool:
        if ns.busybox:
            busybox_tar(spool)
            changes = ['CMD ["sh"]', *changes]  # as Docker Hub's busybox image
        else:
            directory_tar(spool, ns.args[0])
        spool.seek(0)
        params = {"fromSrc": "-", "repo": name, "changes": changes,
                  "message": "dockyard image from-rootfs " + ("--busybox" if ns.busybox else ns.args[0])}
        res = raw_post(cli.client, "/images/create", params=params, data=iter(lambda: spool.read(CHUNK), b""),
                       headers={"Content-Type": "application/tar"}, stream=True)
        jsonmessage.display(json_stream(res), cli.out, cli.out.isatty())


def _flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--busybox", action="store_true",
                   help=f"Make the root filesystem from the host's static busybox ({HOST_BUSYBOX}) and its applets")
    p.add_argument("-c", "--change", action="append", default=[], metavar="list",
                   help="Apply Dockerfile instruction to the created image")


def register(tree: CommandTree) -> None:
    tree.add(["image from-rootfs"], "[OPTIONS] DIR|--busybox NAME[:TAG]",
             "Create an image from a root filesystem directory or the host's busybox (no registry needed)",
             cmd_from_rootfs, _flags, Arity(1, 2))
