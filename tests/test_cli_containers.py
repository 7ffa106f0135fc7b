"""The dockyard CLI's container commands against dockyardd, side by side with the real docker CLI."""

from __future__ import annotations

import json
import re
import time

import pytest
from test_cli import both, dockyard


def same(d, *args: str, input: bytes | None = None, exit_code: int | None = 0, stderr: bool = True) -> str:
    """Both CLIs give the same stdout, exit status and (with 'docker' read as 'dockyard') stderr."""
    ref, ours = both(d, *args, input=input)
    if exit_code is not None:
        assert ref.returncode == exit_code, ref.stderr_text
    assert ours.returncode == ref.returncode, (ours.stderr_text, ref.stderr_text)
    assert ours.stdout_text == ref.stdout_text, f"docker:\n{ref.stdout_text}\ndockyard:\n{ours.stdout_text}"
    if stderr:
        assert ours.stderr_text == ref.stderr_text.replace("docker", "dockyard")
    return ours.stdout_text


@pytest.fixture(scope="module")
def pair(d):
    """A running and a created container with labels, made by dockyard."""
    res = dockyard(d, "run", "-d", "--name", "runner", "-l", "team=a", "-l", "tier=web", "-e", "X=1",
                   "busybox", "sh", "-c", "echo out-line; echo err-line >&2; sleep 1000")
    assert res.returncode == 0, res.stderr_text
    assert re.fullmatch(r"[0-9a-f]{64}\n", res.stdout_text)
    made = dockyard(d, "create", "--name", "idle", "-l", "team=b", "busybox", "echo", "a very long command line here")
    assert made.returncode == 0, made.stderr_text
    deadline = time.time() + 10
    while "err-line" not in d.cli("logs", "runner").stderr_text and time.time() < deadline:
        time.sleep(0.05)
    return res.stdout_text.strip(), made.stdout_text.strip()


def test_ps_matches_docker(d, pair) -> None:
    for args in (["ps", "-q"], ["ps", "-aq"], ["ps", "-aq", "--no-trunc"], ["ps", "-l", "-q"], ["ps", "-n", "2", "-q"],
                 ["container", "ls", "-a", "--format", "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.Names}}\t{{.State}}"],
                 ["ps", "-a", "--no-trunc", "--format", "{{.Command}}|{{.Labels}}|{{.Mounts}}|{{.LocalVolumes}}"],
                 ["ps", "-a", "-f", "label=team=b", "--format", "{{.Names}}"],
                 ["ps", "-a", "-f", "status=created", "-q"], ["ps", "-f", "name=run", "--format", "{{.Names}} {{.Ports}}"],
                 ["ps", "-a", "--format", "{{.Names}}\t{{.CreatedAt}}"],
                 ["ps", "-a", "-s", "--format", "table {{.Names}}\t{{.Size}}"]):
        same(d, *args)
    # the default table, with the clock columns blanked (a second may tick between the two runs)
    ref, ours = both(d, "ps", "-a")
    clock = re.compile(r"(\d+|About an?|Less than a) \w+ ago|Up [^ ]+( \w+)?")
    assert clock.sub("T", ours.stdout_text) == clock.sub("T", ref.stdout_text)
    assert ours.stdout_text.splitlines()[0].split() == ["CONTAINER", "ID", "IMAGE", "COMMAND", "CREATED", "STATUS",
                                                        "PORTS", "NAMES"]
    assert "\"echo 'a very long c…\"" in ours.stdout_text  # dockerd quotes an argument with a space
    ref, ours = both(d, "ps", "-a", "--format", "json")
    strip = lambda text: [{k: v for k, v in json.loads(line).items() if k not in ("RunningFor", "Status")}
                          for line in text.splitlines()]
    assert strip(ours.stdout_text) == strip(ref.stdout_text)
    same(d, "ps", "-f", "bogus=1", exit_code=1)
    same(d, "ps", "extra", exit_code=1)


def test_run_exit_codes_match_docker(d) -> None:
    assert same(d, "run", "--rm", "busybox", "echo", "hello") == "hello\n"
    same(d, "run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3", exit_code=3)
    assert same(d, "run", "--rm", "-i", "busybox", "sh", "-c", "cat; echo done", input=b"piped\n") == "piped\ndone\n"
    same(d, "run", "--rm", "-h", "named", "-w", "/etc", "-u", "1:2", "-e", "A=b", "--entrypoint", "sh", "busybox",
         "-c", 'echo $(hostname) $(pwd) $(id -u):$(id -g) $A')
    same(d, "run", "--rm", "-m", "abc", "busybox", "true", exit_code=125)
    same(d, "run", "--rm", "--bogus", "busybox", "true", exit_code=125)
    for cmd, code in (("nope", 127), ("/etc/passwd", 126)):
        ref, ours = both(d, "run", "--rm", "busybox", cmd)
        assert ref.returncode == ours.returncode == code
        assert "dockyard: Error response from daemon: failed to create task" in ours.stderr_text
    ref, ours = both(d, "run", "--rm", "no-such-local:1", "true")
    assert ref.returncode == ours.returncode == 125
    assert ours.stderr_text.startswith("Unable to find image 'no-such-local:1' locally\n")
    assert d.cli("ps", "-aq", "-f", "ancestor=busybox", "-f", "status=exited").stdout_text == ""


def test_detached_run_then_lifecycle(d) -> None:
    cid = dockyard(d, "run", "-d", "--name", "life", "--stop-timeout", "1", "busybox", "sleep", "1000").stdout_text.strip()
    assert d.cli("inspect", "-f", "{{.State.Status}}", cid).stdout_text == "running\n"
    assert dockyard(d, "pause", "life").stdout_text == "life\n"
    assert d.cli("inspect", "-f", "{{.State.Status}}", cid).stdout_text == "paused\n"
    same(d, "pause", "life", exit_code=1)
    assert dockyard(d, "unpause", "life").stdout_text == "life\n"
    assert dockyard(d, "rename", "life", "life2").returncode == 0
    assert d.cli("inspect", "-f", "{{.Name}}", cid).stdout_text == "/life2\n"
    assert dockyard(d, "kill", "-s", "KILL", "life2").stdout_text == "life2\n"
    assert dockyard(d, "wait", "life2").stdout_text == "137\n"
    assert dockyard(d, "restart", "-t", "1", "life2").stdout_text == "life2\n"
    assert d.cli("inspect", "-f", "{{.State.Running}}", cid).stdout_text == "true\n"
    assert dockyard(d, "stop", "-t", "1", "life2").stdout_text == "life2\n"
    assert dockyard(d, "start", "life2").stdout_text == "life2\n"
    res = dockyard(d, "rm", "life2")
    assert res.returncode == 1 and "container is running" in res.stderr_text
    assert dockyard(d, "rm", "-f", "life2").stdout_text == "life2\n"
    for args in (["stop", "nope1", "nope2"], ["kill", "nope"], ["rm", "nope"], ["start", "nope"], ["wait", "nope"],
                 ["restart", "nope"], ["rename", "nope", "x"], ["unpause", "nope"], ["kill", "-s", "BOGUS", "nope"]):
        same(d, *args, exit_code=1)
    same(d, "rename", "x", exit_code=1)


def test_start_attach_and_wait_status(d) -> None:
    d.cli("create", "--name", "once", "-i", "busybox", "sh", "-c", "read x; echo got $x; exit 4")
    res = dockyard(d, "start", "-a", "-i", "once", input=b"word\n")
    assert (res.returncode, res.stdout_text) == (4, "got word\n")
    d.cli("rm", "once")


def test_logs_top_port_inspect_match_docker(d, pair) -> None:
    for args in (["logs", "runner"], ["logs", "--tail", "1", "runner"], ["logs", "-n", "0", "runner"],
                 ["logs", "--since", "1h", "runner"], ["logs", "--until", "1h", "runner"], ["logs", "-t", "runner"],
                 ["top", "runner"], ["top", "runner", "-o", "pid,comm"], ["port", "runner"],
                 ["container", "inspect", "-f", "{{.Name}} {{.State.Status}} {{.Config.Labels}}", "runner", "idle"],
                 ["container", "inspect", "--format", "json", "runner"]):
        same(d, *args)
    for args in (["logs", "nope"], ["port", "runner", "80"], ["container", "inspect", "runner", "nope"],
                 ["top", "idle"]):
        same(d, *args, exit_code=1)
    ref, ours = both(d, "container", "inspect", "runner")
    assert json.loads(ours.stdout_text) == json.loads(ref.stdout_text)


def test_logs_follow_ends_with_the_container(d) -> None:
    d.cli("run", "-d", "--name", "follow", "busybox", "sh", "-c", "for i in 1 2 3; do echo $i; sleep 0.2; done")
    res = dockyard(d, "logs", "-f", "follow", timeout=20)
    assert (res.returncode, res.stdout_text) == (0, "1\n2\n3\n")
    d.cli("rm", "follow")


def test_prune_matches_docker(d) -> None:
    for n in ("p1", "p2"):
        d.cli("create", "--name", n, "-l", "prune=yes", "busybox", "true")
    res = dockyard(d, "container", "prune", "--filter", "label=prune=yes", input=b"n\n")
    assert res.stdout_text.startswith("WARNING! This will remove all stopped containers.")
    assert "p1" in d.cli("ps", "-a", "--format", "{{.Names}}").stdout_text
    ids = d.cli("ps", "-aq", "--no-trunc", "-f", "label=prune=yes").stdout_text.split()
    res = dockyard(d, "container", "prune", "-f", "--filter", "label=prune=yes")
    assert res.stdout_text.startswith("Deleted Containers:\n")
    assert sorted(res.stdout_text.split("\n\n")[0].splitlines()[1:]) == sorted(ids)
    assert res.stdout_text.endswith("Total reclaimed space: 0B\n")
    same(d, "container", "prune", "-f", "--filter", "label=prune=yes")


def test_exec_matches_docker(d, pair) -> None:
    for args, code in ((["exec", "runner", "sh", "-c", "echo out; echo err >&2; exit 5"], 5),
                       (["exec", "-w", "/etc", "-u", "1:2", "-e", "A=b", "runner", "sh", "-c",
                         "echo $A $(pwd) $(id -u):$(id -g)"], 0),
                       (["exec", "nope", "true"], 1), (["exec", "runner", "nope"], 127),
                       (["exec", "runner"], 1), (["exec", "-t", "runner", "echo", "tty"], 0)):
        same(d, *args, exit_code=code)
    assert same(d, "exec", "-i", "runner", "sh", "-c", "cat; echo end", input=b"fed\n") == "fed\nend\n"
    assert dockyard(d, "exec", "-d", "runner", "touch", "/detached").returncode == 0
    deadline = time.time() + 5
    while d.cli("exec", "runner", "ls", "/detached", check=False).returncode and time.time() < deadline:
        time.sleep(0.05)
    assert d.cli("exec", "runner", "ls", "/detached").stdout_text == "/detached\n"


def test_security_opt_profile_file_and_systempaths_match_docker(d, tmp_path) -> None:
    """The CLI sends a seccomp profile's contents (the daemon cannot read the client's files)."""
    profile = tmp_path / "deny-mkdir.json"
    profile.write_text(json.dumps({"defaultAction": "SCMP_ACT_ALLOW",
                                   "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}))
    same(d, "run", "--rm", "--security-opt", f"seccomp={profile}", "busybox", "mkdir", "/x", exit_code=1)
    # masked and read-only paths are mounts over /proc's entries: none are left with systempaths=unconfined
    masks = "grep -c ' /proc/[a-z]' /proc/self/mountinfo || true"
    assert same(d, "run", "--rm", "busybox", "sh", "-c", masks) != "0\n"
    assert same(d, "run", "--rm", "--security-opt", "systempaths=unconfined", "busybox", "sh", "-c", masks) == "0\n"
    same(d, "run", "--rm", "--security-opt", f"seccomp={tmp_path}/missing.json", "busybox", "true",
         exit_code=125)
