"""The one-pass stream plumbing under load and pull: gzip inflate, the forward-only tar reader, tar-split.

Corrupt and truncated input must fail as the callers expect (``zlib.error`` /
``EOFError`` from gzip, ``UnsafeArchive`` from the extractor), with ISA-L's
zlib and with the standard one, and every byte of a layer must come back
exactly (content, tar-split replay, diff ID) whatever the chunk boundaries.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import subprocess
import tarfile
import zlib
from pathlib import Path

import pytest

from dockyard.images import streams
from dockyard.images.layers import LayerStore
from dockyard.storage.overlay import OverlaySnapshotter
from dockyard.util.archive import ForwardReader, UnsafeArchive, extract


@pytest.fixture(params=["isal", "zlib"])
def inflater(request, monkeypatch):
    if request.param == "zlib":
        monkeypatch.setattr(streams, "_zlib", lambda: zlib)
    else:
        pytest.importorskip("isal")
    return request.param


def _inflate(data: bytes, n: int = 1 << 20) -> bytes:
    reader = streams.decompressed(io.BytesIO(data))
    out = []
    while chunk := reader.read(n):
        out.append(chunk)
    return b"".join(out)


def test_gzip_members_and_padding(inflater):
    a, b = os.urandom(3 << 20), b"text " * 300_000
    assert _inflate(gzip.compress(a)) == a
    # several members and zero padding after them, as some registries' blobs have
    assert _inflate(gzip.compress(a) + gzip.compress(b) + b"\0" * 4096) == a + b
    assert _inflate(gzip.compress(b), n=1000) == b


def test_gzip_truncated_and_corrupt(inflater):
    blob = gzip.compress(os.urandom(1 << 20) + b"x" * (1 << 20))
    with pytest.raises(EOFError):
        _inflate(blob[:-100])
    corrupt = bytearray(blob)
    corrupt[len(blob) // 2] ^= 0xFF
    with pytest.raises(zlib.error):
        _inflate(bytes(corrupt))
    with pytest.raises(zlib.error):  # the CRC-32 in the trailer is checked too
        _inflate(blob[:-8] + bytes(a ^ 1 for a in blob[-8:-4]) + blob[-4:])
    with pytest.raises(zlib.error):  # garbage after the last member
        _inflate(blob + b"garbage after the gzip stream")
    with pytest.raises((zlib.error, EOFError)):  # too short to be a header: ISA-L waits for more
        _inflate(blob + b"garbage!")


def _tar(members: list[tarfile.TarInfo | tuple[tarfile.TarInfo, bytes]], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for m in members:
            if isinstance(m, tuple):
                tar.addfile(m[0], io.BytesIO(m[1]))
            else:
                tar.addfile(m)
    return buf.getvalue()


def _file(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    ti = tarfile.TarInfo(name)
    ti.size, ti.mode, ti.mtime = len(data), 0o644, 1_700_000_000
    return ti, data


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT])
def test_extract_across_chunk_boundaries(tmp_path, fmt):
    long_dir = "d" * 120 + "/" + "e" * 120
    files = {
        "block.bin": os.urandom(512 * 3),  # ends on a block boundary: tarfile steps back a byte
        "big.bin": os.urandom((1 << 20) * 2 + 777),  # spans several reader chunks
        f"{long_dir}/long-name-{'x' * 150}.txt": b"long names, pax or GNU\n",
        "empty": b"",
        "tail.txt": b"t" * 1000,
    }
    raw = _tar([_file(n, d) for n, d in files.items()], fmt)
    for chunk in (512, 4096, 1 << 20):  # the forward reader's chunk against the member layout
        dest = tmp_path / f"out-{chunk}"
        dest.mkdir()
        extract(ForwardReader(io.BytesIO(raw), chunk), str(dest))  # type: ignore[arg-type]
        for name, data in files.items():
            assert (dest / name).read_bytes() == data, (chunk, name)


def test_truncated_tar_fails(tmp_path):
    raw = _tar([_file("a", os.urandom(5000)), _file("b", os.urandom(3 << 20))])
    for cut in (2000, 5000 + 1024 + 100_000, len(raw) - 2048 - 10):
        dest = tmp_path / f"cut-{cut}"
        dest.mkdir()
        with pytest.raises((UnsafeArchive, tarfile.TarError)):
            extract(io.BytesIO(raw[:cut]), str(dest))


def test_forward_reader_refuses_going_back():
    r = ForwardReader(io.BytesIO(bytes(range(256)) * 16), chunk=1024)
    assert r.read(10) == bytes(range(10))
    r.seek(2000)
    assert r.read(1) == bytes([2000 % 256])
    r.seek(-1, io.SEEK_CUR)  # within the chunk in hand
    assert r.read(2) == bytes([2000 % 256, 2001 % 256])
    with pytest.raises(io.UnsupportedOperation):
        r.seek(10)


@pytest.mark.parametrize("fmt", ["gnu", "pax"])
def test_sparse_member(tmp_path, fmt):
    src = tmp_path / "src"
    src.mkdir()
    with open(src / "sparse", "wb") as f:
        f.write(b"head")
        f.seek(5 << 20)
        f.write(b"tail")
    (src / "after").write_bytes(b"after the sparse one")
    raw = subprocess.run(["tar", "--sparse", f"--format={fmt}", "-C", str(src), "-cf", "-", "sparse", "after"],
                         check=True, capture_output=True).stdout
    dest = tmp_path / "dest"
    dest.mkdir()
    extract(io.BytesIO(raw), str(dest))
    assert (dest / "sparse").read_bytes() == (src / "sparse").read_bytes()
    assert (dest / "after").read_bytes() == b"after the sparse one"
    # in a layer: its tar (for `docker save`) comes back byte for byte
    store = LayerStore(OverlaySnapshotter(str(tmp_path / "o")))
    cid = store.commit(store.unpack(io.BytesIO(raw)), None)
    assert b"".join(store.tar_stream(cid)) == raw
    assert (Path(store.path(cid)) / "sparse").read_bytes() == (src / "sparse").read_bytes()


def test_layer_unpack_once_hashed(tmp_path, inflater):
    """A gzip layer through the layer store: diff ID, blob digest (own or the caller's) and exact tar-split."""
    raw = _tar([_file("a/big", os.urandom(3 << 20)), _file("a/small", b"s" * 513), _file("z", b"z" * 4096)])
    blob = gzip.compress(raw) + b"\0" * 1024
    store = LayerStore(OverlaySnapshotter(str(tmp_path / "o")))
    own = store.unpack(io.BytesIO(blob))
    assert own.diff_id == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert own.blob_digest == "sha256:" + hashlib.sha256(blob).hexdigest()
    cid = store.commit(own, None)
    assert b"".join(store.tar_stream(cid)) == raw

    seen = hashlib.sha256()

    class Counting(io.BytesIO):
        def read(self, n: int | None = -1) -> bytes:
            data = super().read(n)
            seen.update(data)
            return data

    theirs = store.unpack(Counting(blob), blob_digest=lambda: "sha256:" + seen.hexdigest())  # type: ignore[arg-type]
    assert theirs.blob_digest == own.blob_digest  # the whole blob was read, padding included
    store.discard(theirs)


@pytest.mark.parametrize("kind", ["gzip", "xz", "bzip2", "zstd"])
def test_corrupt_compressed_archive_is_a_bad_request(tmp_path, kind):
    """`docker load` of a compressed archive that is corrupt or cut short: a 400, not a 500."""
    import bz2
    import lzma

    import zstandard

    from dockyard import errors
    from dockyard.images.load import ArchiveReader

    compress = {"gzip": gzip.compress, "xz": lzma.compress, "bzip2": bz2.compress,
                "zstd": zstandard.ZstdCompressor(write_checksum=True).compress}[kind]  # as the zstd CLI
    archive = compress(_tar([_file("manifest.json", b"[]"), _file("blob", os.urandom(1 << 20))]))
    corrupt = bytearray(archive)
    corrupt[len(corrupt) // 2:len(corrupt) // 2 + 64] = bytes(64)
    store = LayerStore(OverlaySnapshotter(str(tmp_path / "o")))
    for bad in (archive[:len(archive) // 2], bytes(corrupt)):
        with pytest.raises(errors.InvalidParameter, match="invalid tar archive"):
            ArchiveReader(store).read(io.BytesIO(bad))
