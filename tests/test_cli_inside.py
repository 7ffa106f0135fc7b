"""dockyard cp, diff, export and commit side by side with the real docker CLI against one dockyardd."""

from __future__ import annotations

import io
import json
import os
import re
import stat
import tarfile
from pathlib import Path

import pytest
from test_cli import both, dockyard
from test_cli_containers import same

SETUP = ("mkdir -p /data/dir/sub /data/emptydir && echo a > /data/dir/a && echo b > /data/dir/sub/b && "
         "echo f > /data/file && chmod 640 /data/file && ln -s file /data/link && ln -s dir /data/dirlink && "
         "ln -s /data/dir /data/abslink && mkdir -p /in_ref /in_ours && echo keep > /etc/changed && rm /etc/group")


@pytest.fixture(scope="module")
def d(daemon, busybox_tar):
    daemon.cli("load", "-i", busybox_tar.path)
    daemon.cli("run", "-d", "--name", "inside", "-l", "team=x", "busybox", "sleep", "1000")
    daemon.cli("exec", "inside", "sh", "-c", SETUP)
    yield daemon
    daemon.cli("rm", "-f", "inside", check=False)
    daemon.cli("rmi", "-f", "committed:ref", "committed:ours", check=False)


def tree(root: Path) -> dict[str, tuple[str, str]]:
    """Every path under root: its kind with permission bits, and its content or link target."""
    out: dict[str, tuple[str, str]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            rel = str(p.relative_to(root))
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.readlink(p))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = (f"dir {oct(st.st_mode & 0o7777)}", "")
            else:
                out[rel] = (f"file {oct(st.st_mode & 0o7777)}", p.read_text())
    return out


def run_both_in(d, tmp_path: Path, prepare: list[str], args: list[str], input: bytes | None = None):
    """Run `docker ARGS` in tmp/ref and `dockyard ARGS` in tmp/ours, each prepared alike; results and trees."""
    results = []
    for side in ("ref", "ours"):
        root = tmp_path / side
        root.mkdir()
        for item in prepare:
            if item.endswith("/"):
                (root / item).mkdir(parents=True)
            else:
                (root / item).parent.mkdir(parents=True, exist_ok=True)
                (root / item).write_text("old\n")
        cwd = os.getcwd()
        os.chdir(root)
        try:
            res = d.cli(*args, input=input, check=False) if side == "ref" else dockyard(d, *args, input=input)
        finally:
            os.chdir(cwd)
        results.append((res, tree(root)))
    (ref, ref_tree), (ours, ours_tree) = results
    assert ours.returncode == ref.returncode, (ours.stderr_text, ref.stderr_text)
    assert ours.stderr_text.replace(str(tmp_path / "ours"), "") == \
        ref.stderr_text.replace(str(tmp_path / "ref"), "").replace("docker", "dockyard")
    assert ours_tree == ref_tree
    return ref, ours, ours_tree


CP_OUT = [
    ([], ["cp", "inside:/data/file", "out"]),
    (["there/"], ["cp", "inside:/data/file", "there"]),
    (["there/"], ["cp", "inside:/data/file", "there/"]),
    (["there"], ["cp", "inside:/data/file", "there"]),
    ([], ["cp", "inside:/data/dir", "newdir"]),
    (["there/"], ["cp", "inside:/data/dir", "there"]),
    (["there/x"], ["cp", "inside:/data/dir/.", "there"]),
    ([], ["cp", "inside:/data/dir/", "copy"]),
    ([], ["cp", "inside:/data/link", "l"]),
    ([], ["cp", "-L", "inside:/data/link", "l"]),
    ([], ["cp", "-L", "inside:/data/dirlink", "dl"]),
    ([], ["cp", "inside:/data/emptydir", "e"]),
    ([], ["container", "cp", "-a", "inside:/data/dir/sub/b", "./b:colon"]),
    ([], ["cp", "inside:/data/nope", "x"]),
    ([], ["cp", "inside:/data/file", "missing/deeper/x"]),
    ([], ["cp", "inside:/data/file", "newdir/"]),
    (["there"], ["cp", "inside:/data/dir", "there"]),
    ([], ["cp", "nosuch:/data/file", "x"]),
]


@pytest.mark.parametrize("prepare,args", CP_OUT, ids=[" ".join(a[1:]) + (" into " + ",".join(p) if p else "")
                                                      for p, a in CP_OUT])
def test_cp_from_container_matches_docker(d, tmp_path, prepare, args) -> None:
    run_both_in(d, tmp_path, prepare, args)


def test_cp_to_stdout_is_the_daemons_tar(d) -> None:
    ref, ours = both(d, "cp", "inside:/data/dir", "-")
    assert (ours.returncode, ref.returncode) == (0, 0)
    assert ours.stdout == ref.stdout
    names = tarfile.open(fileobj=io.BytesIO(ours.stdout)).getnames()
    assert sorted(names) == ["dir", "dir/a", "dir/sub", "dir/sub/b"]


def container_tree(d, root: str) -> list[str]:
    out = d.cli("exec", "inside", "sh", "-c",
                f"cd {root} && find . | sort | while read p; do "
                "if [ -L \"$p\" ]; then echo \"$p -> $(readlink \"$p\")\"; "
                "elif [ -f \"$p\" ]; then echo \"$p $(stat -c '%a %u' \"$p\") $(cat \"$p\")\"; "
                "else echo \"$p $(stat -c '%a %u' \"$p\")/\"; fi; done").stdout_text
    return out.splitlines()


CP_IN = [
    ("file", "{root}/"),
    ("file", "{root}/renamed"),
    ("src", "{root}/newdir"),
    ("src", "{root}"),
    ("src/.", "{root}"),
    ("src/", "{root}/x"),
    ("link", "{root}/l"),
    ("file", "{root}/nodir/"),
    ("missing", "{root}/x"),
]


@pytest.mark.parametrize("src,dest", CP_IN, ids=[f"{s} to {t}" for s, t in CP_IN])
def test_cp_into_container_matches_docker(d, tmp_path, src, dest) -> None:
    local = tmp_path / "local"
    (local / "src" / "deep").mkdir(parents=True)
    (local / "src" / "one").write_text("1\n")
    (local / "src" / "deep" / "two").write_text("2\n")
    os.chmod(local / "src" / "one", 0o751)
    (local / "file").write_text("content\n")
    (local / "link").symlink_to("file")
    d.cli("exec", "inside", "sh", "-c", "rm -rf /in_ref /in_ours && mkdir /in_ref /in_ours")
    cwd = os.getcwd()
    os.chdir(local)
    try:
        ref = d.cli("cp", src, "inside:" + dest.format(root="/in_ref"), check=False)
        ours = dockyard(d, "cp", src, "inside:" + dest.format(root="/in_ours"))
    finally:
        os.chdir(cwd)
    assert ours.returncode == ref.returncode, (ours.stderr_text, ref.stderr_text)
    # docker may also log its tar goroutine failing on the closed pipe (a race): not part of the answer
    ref_err = "".join(line for line in ref.stderr_text.splitlines(True) if not line.startswith('time="'))
    assert ours.stderr_text.replace("/in_ours", "/in_") == \
        ref_err.replace("/in_ref", "/in_").replace("docker", "dockyard")
    assert container_tree(d, "/in_ours") == container_tree(d, "/in_ref")


def test_cp_tar_from_stdin_and_errors(d, tmp_path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("fromtar/hello")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"hi\n"))
    d.cli("exec", "inside", "sh", "-c", "rm -rf /in_ref /in_ours && mkdir /in_ref /in_ours")
    ref = d.cli("cp", "-", "inside:/in_ref", input=buf.getvalue(), check=False)
    ours = dockyard(d, "cp", "-", "inside:/in_ours", input=buf.getvalue())
    assert (ours.returncode, ours.stdout_text, ours.stderr_text) == (ref.returncode, ref.stdout_text, ref.stderr_text)
    assert container_tree(d, "/in_ours") == container_tree(d, "/in_ref")
    for args in (["cp", "-", "inside:/in_ours/nope"], ["cp", "-", "inside:/data/file"], ["cp", "a", "b"],
                 ["cp", "inside:/a", "inside:/b"], ["cp", "", "inside:/b"], ["cp", "x", ""], ["cp", "x"],
                 ["cp", str(tmp_path / "nope"), "inside:/tmp"], ["cp", "/etc/hostname", "nosuch:/tmp"]):
        same(d, *args, input=b"", exit_code=None)


def test_diff_matches_docker(d) -> None:
    out = same(d, "diff", "inside")
    assert "C /etc\n" in out and "D /etc/group\n" in out and "A /data\n" in out
    same(d, "container", "diff", "nosuch", exit_code=1)
    same(d, "diff", exit_code=1)


def test_export_writes_the_containers_tar(d, tmp_path) -> None:
    ref_out, ours_out = tmp_path / "ref.tar", tmp_path / "ours.tar"
    assert d.cli("export", "-o", str(ref_out), "inside").returncode == 0
    res = dockyard(d, "export", "-o", str(ours_out), "inside")
    assert (res.returncode, res.stdout_text, res.stderr_text) == (0, "", "")
    names = set(tarfile.open(ours_out).getnames())
    assert names == set(tarfile.open(ref_out).getnames())
    assert {"data/dir/sub/b", "bin/busybox", "etc/changed"} <= names and "etc/group" not in names
    res = dockyard(d, "container", "export", "inside")
    assert set(tarfile.open(fileobj=io.BytesIO(res.stdout)).getnames()) == names
    for args in (["export", "nosuch"], ["export", "-o", str(tmp_path / "no" / "x.tar"), "inside"], ["export"]):
        same(d, *args, exit_code=None)
    assert not (tmp_path / "no").exists()


def test_commit_matches_docker(d) -> None:
    for tag in ("ref", "ours"):
        args = ["commit", "-m", "a message", "-a", "Someone <s@example.com>", "-c", "ENV MODE=committed",
                "-c", 'CMD ["cat", "/data/file"]', "-c", "LABEL stage=two", "--pause=false", "inside",
                f"committed:{tag}"]
        res = d.cli(*args) if tag == "ref" else dockyard(d, *args)
        assert res.returncode == 0, res.stderr_text
        assert res.stdout_text.startswith("sha256:") and len(res.stdout_text.strip()) == 71
    ref, ours = (json.loads(d.cli("image", "inspect", f"committed:{t}").stdout_text)[0] for t in ("ref", "ours"))
    for key in ("Comment", "Author"):
        assert ours[key] == ref[key]
    for key in ("Env", "Cmd", "Labels"):
        assert ours["Config"][key] == ref["Config"][key]
    assert ours["RootFS"] == ref["RootFS"]
    assert dockyard(d, "run", "--rm", "committed:ours").stdout_text == "f\n"
    untagged = dockyard(d, "commit", "inside")
    assert untagged.returncode == 0 and untagged.stdout_text.startswith("sha256:")
    d.cli("rmi", untagged.stdout_text.strip())
    for args in (["commit", "nosuch"], ["commit", "inside", "Bad:Ref"], ["commit", "inside", "x@sha256:" + "0" * 64],
                 ["commit", "inside", "a", "b"], ["commit"], ["commit", "-c", "BOGUS x", "inside"]):
        same(d, *args, exit_code=None)


def test_ps_label_method_matches_docker(d) -> None:
    same(d, "ps", "--format", 'table {{.Names}}\t{{.Label "team"}}')
    same(d, "ps", "--format", '{{.Names}} {{.Label "team"}} {{.Label "nope"}}')


# ---------------------------------------------------------------- stats, update

def test_stats_figures_are_computed_as_docker_does() -> None:
    from dockyard.cli.stats import StatsContext, entry_from_sample
    sample = {"name": "/web", "id": "ab" * 32,
              "precpu_stats": {"cpu_usage": {"total_usage": 100}, "system_cpu_usage": 1000},
              "cpu_stats": {"cpu_usage": {"total_usage": 300, "percpu_usage": [1, 2]}, "system_cpu_usage": 1400,
                            "online_cpus": 4},
              "memory_stats": {"usage": 1000, "limit": 4000, "stats": {"inactive_file": 200}},
              "networks": {"eth0": {"rx_bytes": 1500, "tx_bytes": 20}, "eth1": {"rx_bytes": 500, "tx_bytes": 0}},
              "blkio_stats": {"io_service_bytes_recursive": [{"op": "read", "value": 4096},
                                                             {"op": "Write", "value": 10}, {"op": "", "value": 7}]},
              "pids_stats": {"current": 3}}
    row = StatsContext(entry_from_sample("web", sample))
    assert (row.CPUPerc(), row.MemUsage(), row.MemPerc(), row.NetIO(), row.BlockIO(), row.PIDs(), row.Name(),
            row.ID()) == ("200.00%", "800B / 3.906KiB", "20.00%", "2kB / 20B", "4.1kB / 10B", "3", "web", "ab" * 6)
    # no online_cpus: the per-CPU list's length; a cgroup v1 sample: total_inactive_file
    sample["cpu_stats"].pop("online_cpus")
    sample["memory_stats"]["stats"] = {"total_inactive_file": 600, "inactive_file": 1}
    row = StatsContext(entry_from_sample("web", sample))
    assert (row.CPUPerc(), row.MemUsage(), row.MemPerc()) == ("100.00%", "400B / 3.906KiB", "10.00%")


SIZE = r"[\d.]+[kKMGTP]?i?B"  # go-units HumanSize / BytesSize: 0B, 1.2kB, 3.4MiB


def table_cells(text: str) -> list[list[str]]:
    """A tabwriter table's rows as cells: columns are parted by three spaces or more, a cell holds single ones."""
    return [re.split(r" {2,}", line.strip()) for line in text.splitlines()]


def test_stats_no_stream_matches_docker(d) -> None:
    d.cli("create", "--name", "idle", "busybox", "true")
    try:
        for args in (["stats", "--no-stream", "--format", "{{.Name}} {{.Container}} {{.ID}} {{.PIDs}}", "inside"],
                     ["container", "stats", "--no-stream", "--no-trunc", "--format", "{{.ID}}\t{{.Name}}", "inside"],
                     ["stats", "--no-stream", "-a", "--format", "{{.Name}}"],
                     ["stats", "--no-stream", "--format", "{{.Name}}"],
                     ["stats", "--no-stream", "--format", "table {{.Container}}\t{{.PIDs}}", "inside"],
                     ["stats", "--no-stream", "idle"],  # not running: every figure is a deterministic zero
                     ["stats", "--no-stream", "--format", "json", "idle"]):
            same(d, *args)
        ref, ours = both(d, "stats", "--no-stream", "--format", "json", "inside")
        assert json.loads(ours.stdout_text).keys() == json.loads(ref.stdout_text).keys()
        # a running container's figures change between the two runs, and with them the table's column widths:
        # compare the cells (split where tabwriter pads), the figures by their shape
        ref, ours = both(d, "stats", "--no-stream", "inside")
        ref_rows, our_rows = (table_cells(r.stdout_text) for r in (ref, ours))
        assert our_rows[0] == ref_rows[0] == ["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %",
                                              "NET I/O", "BLOCK I/O", "PIDS"]
        assert len(our_rows) == len(ref_rows) == 2, ours.stdout_text
        assert our_rows[1][:2] == ref_rows[1][:2] == [d.cli("inspect", "-f", "{{.Id}}", "inside").stdout_text[:12],
                                                      "inside"]
        figures = [r"\d+\.\d\d%", rf"{SIZE} / {SIZE}", r"\d+\.\d\d%", rf"{SIZE} / {SIZE}", rf"{SIZE} / {SIZE}", "1"]
        assert len(our_rows[1]) == len(ref_rows[1]) == len(figures) + 2, (ours.stdout_text, ref.stdout_text)
        for pattern, cell in zip(figures, our_rows[1][2:]):
            assert re.fullmatch(pattern, cell), (pattern, ours.stdout_text)
        for args in (["stats", "--no-stream", "nosuch"], ["stats", "--no-stream", "inside", "nosuch"],
                     ["stats", "--no-stream", "--format", "{{.Bogus}}", "inside"]):
            same(d, *args, exit_code=None)
    finally:
        d.cli("rm", "idle")


def test_stats_stream_redraws_as_docker_does(d) -> None:
    import subprocess
    import time
    from test_cli import DOCKYARD
    outputs = []
    for argv in (["/usr/local/bin/docker"], [DOCKYARD]):
        p = subprocess.Popen(argv + ["stats", "--format", "{{.Name}} {{.PIDs}}", "inside"], env=d.env(),
                             stdout=subprocess.PIPE)
        time.sleep(3)
        p.kill()
        outputs.append(p.communicate()[0].decode())
    tick = "\x1b[Hinside 1\n\x1b[Hinside 1 \x1b[K\n \x1b[K\n\x1b[J"
    for out in outputs:
        assert out.startswith(tick + tick), out


def test_stats_without_names_follows_started_containers(d) -> None:
    import subprocess
    import time
    from test_cli import DOCKYARD
    p = subprocess.Popen([DOCKYARD, "stats", "--format", "{{.Name}}"], env=d.env(), stdout=subprocess.PIPE)
    try:
        time.sleep(0.5)
        d.cli("run", "-d", "--name", "late", "busybox", "sleep", "1000")
        time.sleep(2.5)
        d.cli("rm", "-f", "late")
        time.sleep(1.5)
    finally:
        p.kill()
    ticks = p.communicate()[0].decode().split("\x1b[J")
    assert any("late \x1b[K" in t for t in ticks)
    assert "late" not in ticks[-2]


def test_update_matches_docker(d) -> None:
    for name in ("upd_ref", "upd_ours"):
        d.cli("run", "-d", "--name", name, "busybox", "sleep", "1000")
    try:
        args = ["-m", "64m", "--memory-swap", "128m", "--memory-reservation", "32m", "--cpus", "0.5",
                "--cpu-shares", "512", "--cpuset-cpus", "0", "--pids-limit", "50", "--restart", "on-failure:3",
                "--blkio-weight", "300"]
        assert d.cli("update", *args, "upd_ref").stdout_text == "upd_ref\n"
        res = dockyard(d, "container", "update", *args, "upd_ours")
        assert (res.returncode, res.stdout_text, res.stderr_text) == (0, "upd_ours\n", "")
        keys = ("Memory", "MemorySwap", "MemoryReservation", "NanoCpus", "CpuShares", "CpusetCpus", "PidsLimit",
                "RestartPolicy", "BlkioWeight")
        ref, ours = (json.loads(d.cli("inspect", n).stdout_text)[0]["HostConfig"] for n in ("upd_ref", "upd_ours"))
        assert {k: ours[k] for k in keys} == {k: ref[k] for k in keys}
        assert ours["Memory"] == 64 << 20 and ours["PidsLimit"] == 50
        for args in (["update", "upd_ours"], ["update", "-m", "64m", "nosuch"], ["update", "-m", "64m"],
                     ["update", "--restart", "bogus", "upd_ours"], ["update", "--pids-limit", "-1", "upd_ours"],
                     ["update", "-m", "64m", "upd_ours", "nosuch"], ["update", "--restart", "always:x", "upd_ours"]):
            same(d, *args, exit_code=None)
        for args in (["update", "-m", "lots", "upd_ours"], ["update", "--cpus", "x", "upd_ours"],
                     ["update", "-c", "x", "upd_ours"], ["update", "--device-read-bps", "/dev/sda:1mb", "upd_ours"]):
            same(d, *args, exit_code=125)
    finally:
        d.cli("rm", "-f", "upd_ref", "upd_ours")


def on_terminal(argv: list[str], env: dict[str, str], cwd: Path, timeout: float = 20) -> bytes:
    """What a command writes on a terminal (stdout and stderr are the same pty)."""
    import pty
    import select
    import time
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child
        os.chdir(cwd)
        os.execve(argv[0], argv, env)
    out = b""
    deadline = time.time() + timeout
    try:
        while time.time() < deadline:
            if select.select([fd], [], [], 0.2)[0]:
                try:
                    data = os.read(fd, 65536)
                except OSError:
                    break
                if not data:
                    break
                out += data
    finally:
        os.close(fd)
        os.waitpid(pid, 0)
    return out


def test_cp_summary_on_a_terminal_matches_docker(d, tmp_path) -> None:
    from test_cli import DOCKYARD
    (tmp_path / "small").write_text("hi\n")
    for args in (["cp", "inside:/data/dir", "d1"], ["cp", "small", "inside:/tmp/"], ["cp", "-q", "inside:/data/file", "f"]):
        ref = on_terminal(["/usr/local/bin/docker", *args], d.env(), tmp_path)
        ours = on_terminal([DOCKYARD, *args], d.env(), tmp_path)
        assert ours == ref
