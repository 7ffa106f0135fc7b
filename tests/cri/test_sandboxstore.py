"""The CRI's sandbox records without a daemon: written atomically, read back after a restart, and a file
that is not a record of ours (bad JSON, wrong types, a name that is not its ID, pins outside the CRI's
directory, too large) skipped with a warning instead of breaking the listing."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from pathlib import Path

import pytest

from dockyard.cri.sandboxstore import MAX_RECORD, READY, SandboxRecord, SandboxStore


def record(sandbox_id: str, pins: Path, **more) -> SandboxRecord:
    return SandboxRecord(id=sandbox_id, name="p", attempt=0, labels={"a": "b"}, annotations={},
                         extra={"namespace": "n", "uid": "u"}, created_ns=1, state=READY,
                         namespaces={"ipc": str(pins / "pods" / sandbox_id / "ipc")}, **more)


def test_records_survive_a_restart_and_bad_files_are_skipped(tmp_path: Path,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    directory, pins = tmp_path / "records", tmp_path / "cri"
    store = SandboxStore(str(directory), str(pins))
    good = record("a" * 64, pins)
    store.save(good)
    gone = record("b" * 64, pins)
    store.save(gone)
    store.delete(gone.id)
    bad = {
        "c" * 64: "{not json",
        "d" * 64: json.dumps({**asdict(record("d" * 64, pins)), "attempt": "zero"}),
        "e" * 64: json.dumps(asdict(record("f" * 64, pins))),  # not its file's record
        "1" * 64: json.dumps({**asdict(record("1" * 64, pins)), "namespaces": {"ipc": "/etc/passwd"}}),
        "2" * 64: json.dumps({**asdict(record("2" * 64, pins)),
                              "namespaces": {"ipc": str(pins / ".." / "x")}}),
        "3" * 64: " " * (MAX_RECORD + 1),
    }
    for name, text in bad.items():
        (directory / f"{name}.json").write_text(text)
    (directory / "notes.txt").write_text("ignored")
    with caplog.at_level(logging.WARNING, logger="dockyard.cri"):
        again = SandboxStore(str(directory), str(pins))
    assert [r.id for r in again.all()] == [good.id]
    assert again.get(good.id) == good
    assert sum("skipping the pod sandbox record" in r.message for r in caplog.records) == len(bad)
