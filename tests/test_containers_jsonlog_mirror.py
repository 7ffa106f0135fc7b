"""The json-file copier's mirror (a CRI pod container's log at the kubelet's path): the journal's lines,
in the CRI format as conmon wrote them (partial lines too), appended as they are copied; a rotation
(rename) needs nothing but the path; a mirror that cannot be written leaves the json-file copy whole."""

from __future__ import annotations

import json
from pathlib import Path

from dockyard.containers import jsonlog

LINES = [b"2026-12-07T10:00:00.000000001+00:00 stdout F one",
         b"2026-12-07T10:00:00.000000002+00:00 stdout P par",
         b"2026-12-07T10:00:00.000000003+00:00 stdout F tial",
         b"2026-12-07T10:00:00.000000004+00:00 stderr F err"]


def copier(tmp_path: Path, mirror: str) -> tuple[jsonlog.Copier, Path]:
    (tmp_path / jsonlog.JOURNAL).write_bytes(b"")
    return jsonlog.Copier(str(tmp_path), str(tmp_path / "c-json.log"), jsonlog.Policy(), mirror), \
        tmp_path / jsonlog.JOURNAL


def append(journal: Path, lines: list[bytes]) -> None:
    with open(journal, "ab") as f:
        f.write(b"\n".join(lines) + b"\n")


def entries(tmp_path: Path) -> list[str]:
    return [json.loads(line)["log"] for line in (tmp_path / "c-json.log").read_text().splitlines()]


def test_the_mirror_gets_the_journal_lines_and_follows_a_rename(tmp_path: Path) -> None:
    mirror = tmp_path / "kubelet" / "app.log"
    mirror.parent.mkdir()
    c, journal = copier(tmp_path, str(mirror))
    append(journal, LINES[:2])
    c.sync()
    assert mirror.read_bytes() == b"\n".join(LINES[:2]) + b"\n"
    mirror.rename(mirror.with_suffix(".log.1"))  # the kubelet's rotation
    append(journal, LINES[2:])
    c.sync()
    c.finish()
    assert mirror.with_suffix(".log.1").read_bytes() == b"\n".join(LINES[:2]) + b"\n"
    assert mirror.read_bytes() == b"\n".join(LINES[2:]) + b"\n"
    assert entries(tmp_path) == ["one\n", "partial\n", "err\n"]


def test_a_mirror_that_cannot_be_written_leaves_the_copy_whole(tmp_path: Path) -> None:
    c, journal = copier(tmp_path, str(tmp_path / "gone" / "app.log"))  # the pod's log directory is gone
    append(journal, LINES)
    c.sync()
    assert entries(tmp_path) == ["one\n", "partial\n", "err\n"]
    assert not (tmp_path / "gone").exists()
