"""Logging drivers through the real docker CLI: json-file on disk as dockerd writes it, rotation, none."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import time



def _json_lines(path: str) -> list[dict]:
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def _wait_exit(d, name: str) -> None:
    d.cli("wait", name)


def test_json_file_on_disk_as_dockerd_writes_it(d) -> None:
    script = 'echo "a <&> \\"q\\" \\\\ é"; echo err >&2; printf piece; sleep 0.3; echo " rest"; printf end'
    cid = d.cli("run", "-d", "busybox", "sh", "-c", script).stdout_text.strip()
    _wait_exit(d, cid)
    path = os.path.join(d.data_root, "containers", cid, f"{cid}-json.log")
    assert d.cli("inspect", "-f", "{{.LogPath}}", cid).stdout_text.strip() == path
    with open(path, "rb") as f:
        raw = f.read()
    # Go's escaping: <, > and & as \u00XX, non-ASCII as is
    assert raw.splitlines()[0].startswith(b'{"log":"a \\u003c\\u0026\\u003e \\"q\\" \\\\ \xc3\xa9\\n","stream":"stdout",'
                                          b'"time":"')
    entries = _json_lines(path)
    assert [(e["log"], e["stream"]) for e in entries] == [
        ('a <&> "q" \\ é\n', "stdout"), ("err\n", "stderr"), ("piece rest\n", "stdout"), ("end", "stdout")]
    for e in entries:
        assert e["time"].endswith("Z") and "+" not in e["time"]
    res = d.cli("logs", cid)
    assert res.stdout_text == 'a <&> "q" \\ é\npiece rest\nend'
    assert res.stderr_text == "err\n"
    d.cli("rm", cid)
    assert not os.path.exists(os.path.dirname(path))


def test_logs_tail_timestamps_since_until(d) -> None:
    cid = d.cli("run", "-d", "busybox", "sh", "-c",
                "for i in 1 2 3 4 5; do echo line$i; done; sleep 1.2; echo late").stdout_text.strip()
    _wait_exit(d, cid)
    assert d.cli("logs", "--tail", "2", cid).stdout_text == "line5\nlate\n"
    assert d.cli("logs", "--tail", "0", cid).stdout_text == ""
    stamped = d.cli("logs", "-t", cid).stdout_text.splitlines()
    assert len(stamped) == 6
    stamp = stamped[-1].split(" ", 1)[0]
    assert stamp.endswith("Z") and len(stamp.split(".")[1]) == 10  # 9 digits and the Z, as dockerd
    late = stamped[-1].split(" ", 1)[0]
    assert d.cli("logs", "--since", late, cid).stdout_text == "late\n"
    first_five = d.cli("logs", "--until", stamped[4].split(" ", 1)[0], cid).stdout_text
    assert first_five == "".join(f"line{i}\n" for i in range(1, 6))
    d.cli("rm", cid)


def test_logs_follow_until_exit_and_tty_raw(d) -> None:
    cid = d.cli("run", "-d", "busybox", "sh", "-c",
                "for i in 1 2 3; do echo f$i; sleep 0.3; done").stdout_text.strip()
    res = d.cli("logs", "-f", cid, timeout=20)  # returns by itself when the container exits
    assert res.stdout_text == "f1\nf2\nf3\n"
    tty = d.cli("run", "-d", "-t", "busybox", "sh", "-c", "echo out; echo err >&2").stdout_text.strip()
    _wait_exit(d, tty)
    res = d.cli("logs", tty)
    assert res.stdout_text == "out\r\nerr\r\n" and res.stderr_text == ""
    d.cli("rm", cid, tty)


def test_big_output_every_byte(d) -> None:
    cid = d.cli("run", "-d", "busybox", "seq", "1", "200000").stdout_text.strip()
    _wait_exit(d, cid)
    out = d.cli("logs", cid).stdout
    assert out == b"".join(b"%d\n" % i for i in range(1, 200001))
    entries = sum(1 for _ in open(os.path.join(d.data_root, "containers", cid, f"{cid}-json.log"), "rb"))
    assert entries == 200000  # one entry per line, whatever the shim's reads were
    d.cli("rm", cid)


def test_rotation_max_size_max_file_compress(d) -> None:
    cid = d.cli("run", "-d", "--log-opt", "max-size=2k", "--log-opt", "max-file=3", "--log-opt", "compress=true",
                "busybox", "sh", "-c", "seq 1 3000").stdout_text.strip()
    _wait_exit(d, cid)
    base = os.path.join(d.data_root, "containers", cid, f"{cid}-json.log")
    d.cli("logs", cid)  # brings the copy up to date
    names = sorted(os.listdir(os.path.dirname(base)))
    assert f"{cid}-json.log.1.gz" in names and f"{cid}-json.log.2.gz" in names
    assert f"{cid}-json.log.3.gz" not in names and f"{cid}-json.log.1" not in names
    assert os.path.getsize(base) < 2048 + 200
    rotated = _json_lines(base + ".1.gz")
    assert rotated and all(e["stream"] == "stdout" for e in rotated)
    kept = d.cli("logs", cid).stdout_text.split()
    # the newest lines survive, contiguous, ending with the last one
    assert kept[-1] == "3000" and kept == [str(i) for i in range(int(kept[0]), 3001)] and len(kept) < 3000
    assert d.cli("logs", "--tail", "5", cid).stdout_text.split() == ["2996", "2997", "2998", "2999", "3000"]
    plain = d.cli("run", "-d", "--log-opt", "max-size=1k", "--log-opt", "max-file=2",
                  "busybox", "seq", "1", "500").stdout_text.strip()
    _wait_exit(d, plain)
    d.cli("logs", plain)
    assert os.path.exists(os.path.join(d.data_root, "containers", plain, f"{plain}-json.log.1"))
    kept = d.cli("logs", plain).stdout_text.split()
    assert kept == [str(i) for i in range(int(kept[0]), 501)] and 15 < len(kept) < 500  # one full rotated file and the current one
    d.cli("rm", cid, plain)


def test_none_driver_and_bad_log_options(d) -> None:
    cid = d.cli("run", "-d", "--log-driver", "none", "busybox", "echo", "hi").stdout_text.strip()
    _wait_exit(d, cid)
    res = d.cli("logs", cid, check=False)
    assert res.returncode != 0 and "configured logging driver does not support reading" in res.stderr_text
    assert d.cli("inspect", "-f", "{{.LogPath}}", cid).stdout_text.strip() == ""
    d.cli("rm", cid)
    res = d.cli("run", "--rm", "--log-opt", "bogus=1", "busybox", "true", check=False)
    assert res.returncode != 0 and "unknown log opt 'bogus' for json-file log driver" in res.stderr_text
    res = d.cli("run", "--rm", "--log-driver", "gelf2", "busybox", "true", check=False)
    assert res.returncode != 0 and "no log driver named 'gelf2'" in res.stderr_text
    res = d.cli("run", "--rm", "--log-opt", "max-size=lots", "busybox", "true", check=False)
    assert res.returncode != 0 and "max-size" in res.stderr_text


def test_lines_written_while_the_daemon_is_down_reach_the_json_file(fresh_daemon, busybox_tar) -> None:
    d = fresh_daemon
    d.start()
    try:
        d.cli("load", "-i", busybox_tar.path)
        cid = d.cli("run", "-d", "busybox", "sh", "-c",
                    "i=0; while [ $i -lt 60 ]; do echo n$i; i=$((i+1)); sleep 0.02; done; sleep 1000"
                    ).stdout_text.strip()
        time.sleep(0.3)
        d.stop(signal.SIGKILL)
        time.sleep(1.5)  # the shim keeps recording
        d.start()
        path = os.path.join(d.data_root, "containers", cid, f"{cid}-json.log")
        deadline = time.time() + 10
        while time.time() < deadline and (not os.path.exists(path) or len(_json_lines(path)) < 60):
            time.sleep(0.1)  # the daemon's copier catches up by itself, no reader needed
        assert [e["log"] for e in _json_lines(path)] == [f"n{i}\n" for i in range(60)]
        proc = subprocess.Popen(["docker", "logs", "-f", "--tail", "1", cid], env=d.env(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(0.5)
        d.cli("stop", "-t", "1", cid)
        out, _ = proc.communicate(timeout=15)
        assert out == b"n59\n"
        d.cli("rm", cid)
    finally:
        ids = d.cli("ps", "-aq", check=False).stdout_text.split() if d.proc else []
        if ids:
            d.cli("rm", "-f", *ids, check=False)
