"""Layer store: layers by diff ID and chain ID, unpacked once, shared, reference-counted.

chainID(L0) = diffID(L0); chainID(Ln) = sha256(chainID(Ln-1) + " " + diffID(Ln)).
Unpacking is two-phase like containerd's: the stream is decompressed, hashed
and extracted into a build dir beside the layers in one pass; only when the
diff ID is known (and verified by the caller) is the dir renamed to its
chain ID. References are counted in memory from the images that use each
chain; at start every layer no image (or snapshot) needs is removed, which
also cleans up after a crash between a layer's commit and its image's.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import threading
from dataclasses import dataclass
from typing import IO, Callable, Iterable, Iterator

from .. import errors
from ..storage.snapshotter import TAR_SPLIT, Snapshotter
from ..storage.vfs import copy_tree
from ..util.archive import extract
from ..util.iterio import IterReader
from .streams import HashingReader, Peekable, compression_of, decompressed
from .tarsplit import Recorder, replay

log = logging.getLogger("dockyard.images")

READ_CHUNK = 1024 * 1024

# failures of the host rather than of the data sent
HOST_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS, errno.ENOMEM})


def chain_id(parent: str | None, diff_id: str) -> str:
    if not parent:
        return diff_id
    return "sha256:" + hashlib.sha256(f"{parent} {diff_id}".encode()).hexdigest()


def chain_ids(diff_ids: list[str]) -> list[str]:
    out: list[str] = []
    for d in diff_ids:
        out.append(chain_id(out[-1] if out else None, d))
    return out


@dataclass
class PendingLayer:
    """An unpacked, not yet committed layer."""

    build_dir: str
    diff_id: str
    size: int  # content bytes
    tar_size: int  # uncompressed tar bytes
    blob_digest: str  # digest of the bytes as received (compressed or not)
    parent: str | None  # the chain it was built on (matters only without independent layers)


class LayerStore:
    def __init__(self, snapshotter: Snapshotter) -> None:
        self.snap = snapshotter
        self._lock = threading.RLock()
        self._refs: dict[str, int] = {}
        self._meta: dict[str, dict] = {}
        for cid in snapshotter.layers():
            try:
                self._meta[cid] = snapshotter.layer_meta(cid)
            except (OSError, ValueError):
                log.warning("layer %s has unreadable metadata; removing it", cid)
                snapshotter.remove_layer(cid)

    # -- unpack / commit -----------------------------------------------------------
    def unpack(self, raw: IO[bytes], parent: str | None = None,
               blob_digest: Callable[[], str] | None = None) -> PendingLayer:
        """Decompress, hash and extract ``raw`` into a build dir (nothing visible yet).

        ``blob_digest``: the caller's own reader already hashes the blob as
        received (a download does); read after ``raw`` is drained.
        """
        base = None if self.snap.independent_layers else parent
        build = self.snap.new_layer(base)
        try:
            head = Peekable(raw)
            # An uncompressed blob's digest is its diff ID, and a caller's hash is as good: hash once.
            compressed = compression_of(head.peek(6)) is not None
            outer = HashingReader(head) if compressed and blob_digest is None else None
            try:
                plain = decompressed(outer or head) if compressed else head  # type: ignore[arg-type]
            except ValueError as e:
                raise errors.InvalidParameter(str(e)) from None
            with open(os.path.join(build, TAR_SPLIT), "wb", buffering=1024 * 1024) as ts:
                rec = Recorder(plain, ts)
                result = extract(rec, os.path.join(build, "diff"), whiteouts=self.snap.whiteouts, devices=True,
                                 on_payload=rec.payload)
                diff_id, tar_size = rec.finish()
            # the compressed stream may go on past the tar's end: the blob's digest covers it all
            while (outer or head).read(READ_CHUNK):
                pass
            digest = blob_digest() if blob_digest else outer.digest if outer else diff_id
            return PendingLayer(build, diff_id, result.size, tar_size, digest, base)
        except errors.DockyardError:
            self.snap.discard(build)
            raise
        except Exception as e:
            self.snap.discard(build)
            if isinstance(e, OSError) and e.errno in HOST_ERRNOS:
                raise errors.SystemError_(f"failed to unpack layer: {e}") from None
            # corrupt or truncated data: gzip/zstd/tar errors, hostile entries
            raise errors.InvalidParameter(f"failed to unpack layer: {e or type(e).__name__}") from None
        except BaseException:
            self.snap.discard(build)
            raise

    def commit(self, pending: PendingLayer, parent: str | None) -> str:
        """Register ``pending`` on top of ``parent``; returns its chain ID.

        An already present chain wins and the pending dir is dropped. Caller
        holds no reference yet: take one with ``acquire``.
        """
        cid = chain_id(parent, pending.diff_id)
        with self._lock:
            if cid in self._meta:
                self.snap.discard(pending.build_dir)
                return cid
            if not self.snap.independent_layers and pending.parent != parent:
                # A full-copy layer must be built on its parent's files: unpack it again there.
                rebuilt = self.unpack(IterReader(replay(os.path.join(pending.build_dir, TAR_SPLIT),
                                                         os.path.join(pending.build_dir, "diff"))), parent)
                self.snap.discard(pending.build_dir)
                pending = rebuilt
            meta = {"chain_id": cid, "diff_id": pending.diff_id, "parent": parent, "size": pending.size,
                    "tar_size": pending.tar_size}
            self.snap.commit_layer(pending.build_dir, cid, meta)
            self._meta[cid] = meta
            self._refs.setdefault(cid, 0)
        return cid

    def discard(self, pending: PendingLayer) -> None:
        self.snap.discard(pending.build_dir)

    def clone(self, source: str, parent: str | None) -> str:
        """The layer with ``source``'s content on top of ``parent`` (same diff ID, other chain)."""
        meta = self.meta(source)
        cid = chain_id(parent, meta["diff_id"])
        with self._lock:
            if cid in self._meta:
                return cid
        if not self.snap.independent_layers:
            # A full-copy layer holds its parent's files too: rebuild it from its tar.
            return self.commit(self.unpack(IterReader(self.tar_stream(source)), parent), parent)
        build = os.path.join(self.snap.tmp_dir, "clone-" + os.urandom(8).hex())
        os.makedirs(build, mode=0o700)
        try:
            copy_tree(self.snap.layer_path(source), os.path.join(build, "diff"))
            copy_tree(self.snap.tar_split_path(source), os.path.join(build, TAR_SPLIT))
        except BaseException:
            self.snap.discard(build)
            raise
        return self.commit(PendingLayer(build, meta["diff_id"], meta["size"], meta["tar_size"], "", parent), parent)

    # -- queries ---------------------------------------------------------------------
    def exists(self, cid: str) -> bool:
        return cid in self._meta

    def meta(self, cid: str) -> dict:
        try:
            return self._meta[cid]
        except KeyError:
            raise errors.NotFound(f"layer {cid} does not exist") from None

    def size(self, cid: str) -> int:
        return int(self.meta(cid).get("size", 0))

    def find_diff(self, diff_id: str) -> str | None:
        """Some layer holding ``diff_id`` (any parent)."""
        for cid, meta in self._meta.items():
            if meta.get("diff_id") == diff_id:
                return cid
        return None

    def path(self, cid: str) -> str:
        self.meta(cid)
        return self.snap.layer_path(cid)

    def all(self) -> list[str]:
        return list(self._meta)

    def total_size(self) -> int:
        return sum(int(m.get("size", 0)) for m in self._meta.values())

    def tar_stream(self, cid: str) -> Iterator[bytes]:
        """The layer's original uncompressed tar (its sha256 is the diff ID)."""
        self.meta(cid)
        return replay(self.snap.tar_split_path(cid), self.snap.layer_path(cid))

    # -- references -----------------------------------------------------------------
    def acquire(self, cids: Iterable[str]) -> None:
        with self._lock:
            for cid in cids:
                self.meta(cid)
                self._refs[cid] = self._refs.get(cid, 0) + 1

    def release(self, cids: Iterable[str]) -> list[str]:
        """Drop one reference to each; removes and returns the layers nothing uses any more."""
        cids = list(cids)
        freed = []
        with self._lock:
            for cid in cids:
                self._refs[cid] = self._refs.get(cid, 0) - 1
            for cid in reversed(list(cids)):
                if self._refs.get(cid, 0) <= 0 and not self._needed_by_snapshot(cid):
                    self._remove(cid)
                    freed.append(cid)
        return freed

    def _needed_by_snapshot(self, cid: str) -> bool:
        for snap in self.snap.snapshots():
            cur = snap.parent
            while cur:
                if cur == cid:
                    return True
                cur = self._meta.get(cur, {}).get("parent")
        return False

    def _remove(self, cid: str) -> None:
        self._refs.pop(cid, None)
        self._meta.pop(cid, None)
        self.snap.remove_layer(cid)

    def garbage_collect(self) -> list[str]:
        """Remove every layer with no reference (after a crash, or pending commits never used)."""
        removed = []
        with self._lock:
            needed: set[str] = set()
            for snap in self.snap.snapshots():
                cur = snap.parent
                while cur and cur not in needed:
                    needed.add(cur)
                    cur = self._meta.get(cur, {}).get("parent")
            for cid in list(self._meta):
                if self._refs.get(cid, 0) <= 0 and cid not in needed:
                    self._remove(cid)
                    removed.append(cid)
        return removed
