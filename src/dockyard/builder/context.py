"""The build context as dockerd receives it: a tar (plain, gzip, bzip2, xz) or a lone Dockerfile.

The tar is untrusted: it is unpacked with the safe extractor into a private
directory (entries escaping it are refused). A body that is not a tar is the
Dockerfile itself, as with ``docker build - < Dockerfile``.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tarfile
import threading
from dataclasses import dataclass
from typing import IO

from .. import errors
from ..images.streams import Peekable, decompressed
from ..util.archive import UnsafeArchive, extract
from ..util.dockerignore import Matcher

DEFAULT_DOCKERFILE = "Dockerfile"
# A Dockerfile is read whole (to parse it): bounded, so a body or a context file of gigabytes that
# claims to be one is refused instead of held in memory. Real ones are kilobytes.
MAX_DOCKERFILE = 16 * 1024 * 1024


@dataclass
class Context:
    root: str  # the unpacked context
    dockerfile: str  # its text

    def close(self) -> None:
        # Deleting a big context (20,000 files) takes seconds: renamed away at once, removed in the
        # background, so the build's answer does not wait. The service empties its tmp dir at start.
        trash = self.root + ".removing"
        try:
            os.rename(self.root, trash)
        except OSError:
            trash = self.root
        threading.Thread(target=shutil.rmtree, args=(trash,), kwargs={"ignore_errors": True},
                         name="context-remove", daemon=True).start()


def _is_tar(head: bytes) -> bool:
    return len(head) >= 262 and head[257:262] == b"ustar"


class _Completed:
    """The tar with its last block padded and an end-of-archive marker added.

    docker 28 with ``-f -`` and a directory context appends the Dockerfile to
    the context tar without closing the tar writer: the last file's data ends
    unpadded and no trailer follows. dockerd's Go reader takes that; so do we.
    """

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self._total = 0
        self._tail: bytes | None = None

    def read(self, n: int = -1) -> bytes:
        if self._tail is None:
            data = self._raw.read(n)
            if data:
                self._total += len(data)
                return data
            self._tail = b"\0" * ((-self._total) % 512 + 1024)
        out = self._tail if n is None or n < 0 else self._tail[:n]
        self._tail = self._tail[len(out):]
        return out


def receive(body: IO[bytes], workdir: str, dockerfile_name: str) -> Context:
    """Unpack ``body`` under ``workdir`` and read the Dockerfile named ``dockerfile_name`` from it."""
    root = os.path.join(workdir, secrets.token_hex(8))
    os.makedirs(root, mode=0o700)
    try:
        try:
            plain = Peekable(decompressed(body))
        except ValueError as e:
            raise errors.InvalidParameter(str(e)) from None
        head = plain.peek(512)
        if _is_tar(head) or (len(head) == 512 and head == b"\0" * 512):
            try:
                extract(_Completed(plain), root, devices=False, same_owner=False)  # type: ignore[arg-type]
            except UnsafeArchive as e:
                raise errors.InvalidParameter(f"failed to unpack the build context: {e}") from None
            except (tarfile.TarError, EOFError) as e:
                raise errors.InvalidParameter(f"failed to unpack the build context: {e}") from None
            text = _read_dockerfile(root, dockerfile_name or DEFAULT_DOCKERFILE)
        else:
            text = _bounded(plain, dockerfile_name or DEFAULT_DOCKERFILE).decode("utf-8", "replace")
            if not text.strip():
                raise errors.InvalidParameter(f"the Dockerfile ({dockerfile_name or DEFAULT_DOCKERFILE}) "
                                              f"cannot be empty")
        _drop_ignored_dockerfile(root, _in_context(dockerfile_name or DEFAULT_DOCKERFILE))
        return Context(root, text)
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise


def _in_context(name: str) -> str:
    """The Dockerfile's path relative to the context root; one that leaves the context is refused in
    dockerd's words (it answers 500 there, an untyped error: this is the client's mistake, so 400)."""
    rel = os.path.normpath(name.lstrip("/"))
    if rel == ".." or rel.startswith("../"):
        raise errors.InvalidParameter(f"forbidden path outside the build context: {name} ()")
    return rel


def _read_dockerfile(root: str, name: str) -> str:
    path = os.path.join(root, _in_context(name))
    # a symlinked Dockerfile must stay inside the context
    real = os.path.realpath(path)
    if not (real == os.path.realpath(root) or real.startswith(os.path.realpath(root) + os.sep)):
        raise errors.InvalidParameter(f"forbidden path outside the build context: {name}")
    if not os.path.exists(path) and name == DEFAULT_DOCKERFILE and os.path.exists(os.path.join(root, "dockerfile")):
        path = os.path.join(root, "dockerfile")
    try:
        with open(path, "rb") as f:
            data = _bounded(f, name)
    except (FileNotFoundError, IsADirectoryError):
        raise errors.InvalidParameter(
            f"Cannot locate specified Dockerfile: {name}") from None
    if not data.strip():
        raise errors.InvalidParameter(f"the Dockerfile ({name}) cannot be empty")
    return data.decode("utf-8", "replace")


def _bounded(f: IO[bytes] | Peekable, name: str) -> bytes:
    parts: list[bytes] = []
    size = 0
    while size <= MAX_DOCKERFILE and (chunk := f.read(MAX_DOCKERFILE + 1 - size)):  # reads may come short
        parts.append(chunk)
        size += len(chunk)
    data = b"".join(parts)
    if len(data) > MAX_DOCKERFILE:
        raise errors.InvalidParameter(f"the Dockerfile ({name}) is larger than {MAX_DOCKERFILE >> 20} MiB")
    return data


def _drop_ignored_dockerfile(root: str, name: str) -> None:
    """As dockerd: the Dockerfile and .dockerignore leave the context when .dockerignore excludes them."""
    try:
        with open(os.path.join(root, ".dockerignore"), encoding="utf-8", errors="replace") as f:
            matcher = Matcher.from_text(f.read())
    except (FileNotFoundError, IsADirectoryError):
        return
    for rel in (".dockerignore", name):
        if matcher.excluded(rel):
            try:
                os.unlink(os.path.join(root, rel))
            except OSError:
                pass
