"""Content store: blobs by digest, written through a verifying ingest (containerd's shape).

Blobs live at ``<root>/blobs/sha256/<hex>``. A writer streams into a temp file
under ``<root>/ingest/``, hashing as it goes; ``commit`` checks the digest,
fsyncs and renames into place, so a reader only ever sees verified content
and a crash leaves only ingest files, which are removed at start.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from typing import IO

from .. import errors
from .streams import InvalidDigest


def is_digest(value: str) -> bool:
    if not value.startswith("sha256:") or len(value) != 71:
        return False
    try:
        int(value[7:], 16)
    except ValueError:
        return False
    return True


class Writer:
    def __init__(self, store: "ContentStore") -> None:
        self._store = store
        fd, self.path = tempfile.mkstemp(dir=store.ingest_dir, prefix="ingest-")
        self._file: IO[bytes] = os.fdopen(fd, "wb")
        self._hash = hashlib.sha256()
        self.size = 0
        self._done = False

    def write(self, data: bytes) -> None:
        self._file.write(data)
        self._hash.update(data)
        self.size += len(data)

    @property
    def digest(self) -> str:
        return "sha256:" + self._hash.hexdigest()

    def commit(self, expected: str | None = None) -> str:
        """Verify against ``expected`` (when given) and make the blob visible."""
        digest = self.digest
        try:
            if expected is not None and expected != digest:
                raise InvalidDigest(f"digest mismatch: expected {expected}, got {digest}")
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            final = self._store.path(digest)
            os.replace(self.path, final)
            self._done = True
            return digest
        finally:
            if not self._done:
                self.abort()

    def abort(self) -> None:
        if self._done:
            return
        self._done = True
        self._file.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    def __enter__(self) -> "Writer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.abort()


class ContentStore:
    def __init__(self, root: str) -> None:
        self.root = root
        self.blob_dir = os.path.join(root, "blobs", "sha256")
        self.ingest_dir = os.path.join(root, "ingest")
        os.makedirs(self.blob_dir, mode=0o700, exist_ok=True)
        # Interrupted ingests from a previous run: never visible, just remove.
        shutil.rmtree(self.ingest_dir, ignore_errors=True)
        os.makedirs(self.ingest_dir, mode=0o700, exist_ok=True)

    def path(self, digest: str) -> str:
        if not is_digest(digest):
            raise errors.InvalidParameter(f"invalid digest {digest!r}")
        return os.path.join(self.blob_dir, digest[7:])

    def writer(self) -> Writer:
        return Writer(self)

    def put(self, data: bytes, expected: str | None = None) -> str:
        if expected is not None and os.path.exists(self.path(expected)):
            if "sha256:" + hashlib.sha256(data).hexdigest() != expected:
                raise InvalidDigest(f"digest mismatch: expected {expected}")
            return expected
        with self.writer() as w:
            w.write(data)
            return w.commit(expected)

    def exists(self, digest: str) -> bool:
        return os.path.exists(self.path(digest))

    def read(self, digest: str) -> bytes:
        try:
            with open(self.path(digest), "rb") as f:
                return f.read()
        except FileNotFoundError:
            raise errors.NotFound(f"content {digest} not found") from None

    def size(self, digest: str) -> int:
        return os.path.getsize(self.path(digest))

    def delete(self, digest: str) -> None:
        try:
            os.unlink(self.path(digest))
        except FileNotFoundError:
            pass

    def digests(self) -> list[str]:
        return ["sha256:" + name for name in os.listdir(self.blob_dir) if len(name) == 64]
