"""The cheap upload path of docker cp (GuardedTar): the stream passes unchanged, headers still checked.

Unit tests: the filter is best tested alone against archives the docker CLI rarely sends
(pax and GNU long names, old GNU sparse files, truncated streams).
"""

from __future__ import annotations

import io
import os
import subprocess
import tarfile

import pytest

from dockyard import errors
from dockyard.containers.archive import GuardedTar
from dockyard.util import archive as tarsafe


def _tar(members: list[tuple[tarfile.TarInfo, bytes | None]], fmt: int) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _file(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def _dir(name: str) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    return info, None


def _through(data: bytes, guard: str | None, read: int = 1000) -> bytes:
    g = GuardedTar(io.BytesIO(data), guard)
    out = []
    while chunk := g.read(read):
        out.append(chunk)
    return b"".join(out)


LONG = "d" * 120 + "/" + "f" * 150


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT])
def test_stream_passes_unchanged(fmt) -> None:
    members = [_dir("a"), _file("a/one", b"1" * 513), _file("a/empty", b""), _file("a/two", os.urandom(70000))]
    if fmt != tarfile.USTAR_FORMAT:
        members += [_dir("d" * 120), _file(LONG, b"long")]
    data = _tar(members, fmt)
    for read in (1, 512, 1000, 1 << 20):
        assert _through(data, None, read) == data


def test_long_names_are_checked(tmp_path) -> None:
    (tmp_path / ("d" * 120) / ("f" * 150)).mkdir(parents=True)
    for fmt in (tarfile.PAX_FORMAT, tarfile.GNU_FORMAT):
        data = _tar([_file(LONG, b"x")], fmt)
        with pytest.raises(errors.InvalidParameter, match="cannot overwrite directory"):
            _through(data, str(tmp_path))


def test_pax_size_record_is_honoured(tmp_path) -> None:
    # a pax header's size overrides the ustar field: the next header is found where tarfile finds it
    info, data = _file("big", b"z" * 3000)
    info.pax_headers = {"size": "3000"}
    raw = _tar([(info, data), _file("after", b"x")], tarfile.PAX_FORMAT)
    (tmp_path / "after").mkdir()
    with pytest.raises(errors.InvalidParameter, match='"after"'):
        _through(raw, str(tmp_path))


def test_old_gnu_sparse_file_extracts(tmp_path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    with open(src / "sparse", "wb") as f:
        for i in range(12):  # more extents than the header holds: extension blocks follow it
            f.seek(i * 100_000)
            f.write(b"x" * 10)
    out = tmp_path / "sparse.tar"
    subprocess.run(["tar", "--format=gnu", "-S", "-C", str(src), "-cf", str(out), "sparse", "--owner=0",
                    "--group=0"], check=True)
    sparse = out.read_bytes()
    while sparse.endswith(bytes(512)):  # drop the end-of-archive blocks: another entry follows
        sparse = sparse[:-512]
    data = sparse + _tar([_file("after", b"after")], tarfile.GNU_FORMAT)
    assert _through(data, None) == data
    dest = tmp_path / "dest"
    dest.mkdir()
    tarsafe.extract(GuardedTar(io.BytesIO(data), str(dest)), str(dest), devices=False, same_owner=False)
    assert (dest / "sparse").read_bytes() == (src / "sparse").read_bytes()
    assert (dest / "after").read_bytes() == b"after"


def test_truncated_and_garbage_streams_refused(tmp_path) -> None:
    data = _tar([_file("f", os.urandom(5000))], tarfile.PAX_FORMAT)
    with pytest.raises(tarsafe.UnsafeArchive):
        tarsafe.extract(GuardedTar(io.BytesIO(data[:3000]), None), str(tmp_path), devices=False,
                        same_owner=False)
    with pytest.raises(tarsafe.UnsafeArchive):
        tarsafe.extract(GuardedTar(io.BytesIO(b"not a tar" * 200), None), str(tmp_path), devices=False,
                        same_owner=False)


def test_hostile_entries_still_contained(tmp_path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    link = tarfile.TarInfo("up")
    link.type = tarfile.SYMTYPE
    link.linkname = "../../.."
    data = _tar([(link, None), _file("up/escaped", b"x"), _file("../../climb", b"y")], tarfile.PAX_FORMAT)
    try:
        tarsafe.extract(GuardedTar(io.BytesIO(data), str(dest)), str(dest), devices=False, same_owner=False)
    except tarsafe.UnsafeArchive:
        pass
    assert not (tmp_path / "escaped").exists() and not (tmp_path.parent / "climb").exists()
    assert not os.path.exists(tmp_path.parent.parent / "escaped")
