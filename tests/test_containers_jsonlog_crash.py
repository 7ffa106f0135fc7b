"""The json-file copier stopped dead at every point where it persists something, then resumed by a new
copier (as after `kill -9` of the daemon): the json-file log ends up exactly as without the crash.

A unit test: the copier is best tested alone here, since a real kill -9 rarely lands inside a copy."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pytest

from dockyard.containers import jsonlog


class Crash(BaseException):
    """The daemon died here (BaseException: nothing in the copier may catch it)."""


def _journal_chunks() -> list[bytes]:
    """What the shim appends between copies: whole lines, pieces of lines (P), both streams."""
    chunks = []
    n = 0
    for c in range(12):
        out = []
        for _ in range(40):
            stamp = f"2026-11-23T09:17:{n % 60:02d}.{n:09d}+00:00".encode()
            if n % 11 == 0:
                out.append(stamp + b" stdout P piece%d-" % n)
                out.append(stamp + b" stdout F end%d" % n)
            elif n % 7 == 0:
                out.append(stamp + b" stderr F err%d <&>" % n)
            else:
                out.append(stamp + b" stdout F line%d" % n)
            n += 1
        chunks.append(b"\n".join(out) + b"\n")
    return chunks


def _entries(path: str, policy: jsonlog.Policy) -> list[dict]:
    files = list(reversed(jsonlog.rotated_paths(path, policy.max_file, True))) + [path]
    out = []
    for p in files:
        opener = gzip.open if p.endswith(".gz") else open
        with opener(p, "rt", encoding="utf-8") as f:
            out += [json.loads(line) for line in f]
    return out


def _run(tmp: Path, policy: jsonlog.Policy, crash_at: tuple[str, int] | None,
         monkeypatch: pytest.MonkeyPatch) -> tuple[list[dict], bool]:
    directory = tmp / f"c-{crash_at}"
    directory.mkdir()
    json_path = str(directory / "c-json.log")
    journal = directory / jsonlog.JOURNAL
    journal.write_bytes(b"")
    calls = {"save": 0, "replace": 0}
    crashed = False
    real_save, real_replace = jsonlog.Copier._save_position, os.replace

    def save(self: jsonlog.Copier) -> None:
        calls["save"] += 1
        if crash_at == ("save", calls["save"]):
            raise Crash
        real_save(self)

    def replace(src: str, dst: str) -> None:
        calls["replace"] += 1
        if crash_at == ("replace", calls["replace"]):
            raise Crash
        real_replace(src, dst)

    with monkeypatch.context() as m:
        m.setattr(jsonlog.Copier, "_save_position", save)
        m.setattr(jsonlog.os, "replace", replace)
        copier = jsonlog.Copier(str(directory), json_path, policy)

        def step(action: str) -> None:
            # the restarted daemon's copier does the same again: the copy loop syncs, restore finishes
            # an exited container's journal, a start settles it first
            nonlocal copier, crashed
            try:
                getattr(copier, action)()
            except Crash:
                crashed = True
                copier = jsonlog.Copier(str(directory), json_path, policy)
                if action != "finish" or os.path.getsize(journal):  # as ContainerService._restore
                    getattr(copier, action)()

        for chunk in _journal_chunks():
            with open(journal, "ab") as j:
                j.write(chunk)
            step("sync")
        step("finish")  # the container exited
        step("before_start")  # it starts again and writes a burst before the next copy
        with open(journal, "ab") as j:
            j.write(b"".join(_journal_chunks()).replace(b" line", b" again"))
        step("sync")
        step("finish")
    return _entries(json_path, policy), crashed


@pytest.mark.parametrize("policy", [jsonlog.Policy(), jsonlog.Policy(2048, 50, False), jsonlog.Policy(2048, 50, True)],
                         ids=["plain", "rotating", "compressed"])
def test_a_crash_at_any_persist_point_loses_and_doubles_nothing(tmp_path: Path, policy: jsonlog.Policy,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    expected, _ = _run(tmp_path, policy, None, monkeypatch)
    assert len(expected) == 2 * 12 * 40 and expected[0]["log"] == "piece0-end0\n"
    assert expected[-1]["log"] == "again479\n"
    tried = 0
    for kind in ("save", "replace"):
        for k in [*range(1, 16), *range(16, 1000, 9)]:
            got, crashed = _run(tmp_path, policy, (kind, k), monkeypatch)
            if not crashed:
                break  # past the last call of this kind
            tried += 1
            assert [(e["log"], e["stream"], e["time"]) for e in got] == \
                   [(e["log"], e["stream"], e["time"]) for e in expected], (kind, k)
    assert tried > 12
