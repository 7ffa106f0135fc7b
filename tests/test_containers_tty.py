"""`docker run -it` under a real terminal: tmux runs the real docker CLI, send-keys types, capture-pane reads."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import time
import uuid
from typing import Callable

import pytest

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


class Pane:
    """One tmux session on a private server, running a shell command with the daemon's environment."""

    def __init__(self, env: dict[str, str], command: str, width: int = 100, height: int = 30) -> None:
        self.server = "dy" + uuid.uuid4().hex[:8]
        exports = " ".join(f"{k}={shlex.quote(env[k])}" for k in ("DOCKER_HOST", "DOCKER_CONFIG"))
        self._tmux("new-session", "-d", "-s", "t", "-x", str(width), "-y", str(height),
                   f"env {exports} sh -c {shlex.quote(command + '; echo EXIT=$?; sleep 600')}")

    def _tmux(self, *args: str) -> str:
        res = subprocess.run(["tmux", "-L", self.server, *args], capture_output=True, text=True, timeout=10)
        assert res.returncode == 0, res.stderr
        return res.stdout

    def keys(self, *keys: str) -> None:
        self._tmux("send-keys", "-t", "t", *keys)

    def type(self, text: str) -> None:
        self._tmux("send-keys", "-t", "t", "-l", text)

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", "t")

    def wait_for(self, pred: Callable[[str], bool], timeout: float = 15) -> str:
        deadline = time.monotonic() + timeout
        while True:
            text = self.screen()
            if pred(text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"screen never matched:\n{text}")
            time.sleep(0.05)

    def resize(self, width: int, height: int) -> None:
        self._tmux("resize-window", "-t", "t", "-x", str(width), "-y", str(height))

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.server, "kill-server"], capture_output=True)


@pytest.fixture
def pane_for(d):
    panes: list[Pane] = []

    def make(command: str) -> Pane:
        p = Pane(d.env(), command)
        panes.append(p)
        return p

    yield make
    for p in panes:
        p.close()


def _prompt_count(text: str) -> int:
    return text.count("/ #")


def test_interactive_shell_editing_ctrl_c_resize_exit_code(d, pane_for) -> None:
    p = pane_for("docker run -it --rm --name tty1 busybox sh")
    p.wait_for(lambda s: "/ #" in s)
    p.type("echo $((6*7))")
    p.keys("Enter")
    p.wait_for(lambda s: "\n42" in s)
    # line editing: a typo erased with backspace, the cursor moved left to insert
    p.type("echo abX")
    p.keys("BSpace")
    p.type("d")
    p.keys("Left")
    p.type("c")
    p.keys("Enter")
    p.wait_for(lambda s: "\nabcd" in s)
    # Ctrl-C reaches the process in the container, not the CLI
    p.type("sleep 100")
    p.keys("Enter")
    time.sleep(0.3)
    before = _prompt_count(p.screen())
    started = time.monotonic()
    p.keys("C-c")
    p.wait_for(lambda s: _prompt_count(s) > before, timeout=5)
    assert time.monotonic() - started < 5
    p.type("stty size")
    p.keys("Enter")
    p.wait_for(lambda s: "30 100" in s)
    p.resize(120, 40)
    time.sleep(0.3)  # the CLI sees SIGWINCH and posts the new size
    p.type("clear; stty size")
    p.keys("Enter")
    p.wait_for(lambda s: "40 120" in s)
    p.type("exit 3")
    p.keys("Enter")
    p.wait_for(lambda s: "EXIT=3" in s)


def test_detach_with_ctrl_p_ctrl_q_and_attach_again(d, pane_for) -> None:
    p = pane_for("docker run -it --name tty2 busybox sh")
    p.wait_for(lambda s: "/ #" in s)
    p.type("echo first")
    p.keys("Enter")
    p.wait_for(lambda s: "\nfirst" in s)
    p.keys("C-p", "C-q")
    p.wait_for(lambda s: "EXIT=0" in s)
    assert d.cli("inspect", "-f", "{{.State.Running}}", "tty2").stdout_text.strip() == "true"
    q = pane_for("docker attach tty2")
    time.sleep(0.5)
    q.keys("Enter")
    q.wait_for(lambda s: "/ #" in s)
    q.type("echo again; exit 4")
    q.keys("Enter")
    q.wait_for(lambda s: "EXIT=4" in s)
    assert "again" in q.screen()
    assert d.cli("inspect", "-f", "{{.State.ExitCode}}", "tty2").stdout_text.strip() == "4"
    d.cli("rm", "tty2")


def test_piped_stdin_reaches_eof(d) -> None:
    res = d.cli("run", "--rm", "-i", "busybox", "sh", "-c", "wc -l; echo done", input="a\nb\nc\n")
    assert res.stdout_text.split() == ["3", "done"]
    big = os.urandom(3 << 20)
    res = d.cli("run", "--rm", "-i", "busybox", "md5sum", input=big)
    import hashlib
    assert res.stdout_text.split()[0] == hashlib.md5(big).hexdigest()
