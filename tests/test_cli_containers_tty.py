"""`dockyard run -it` and `dockyard attach` under a real terminal (tmux): raw mode, resize, detach keys, exit code."""

from __future__ import annotations

import shutil
import time

import pytest
from test_cli import DOCKYARD
from test_containers_tty import Pane

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


def test_run_it_shell_resize_exit_code(d) -> None:
    pane = Pane(d.env(), f"{DOCKYARD} run -it --rm --name tty1 busybox sh", width=90, height=25)
    try:
        pane.wait_for(lambda s: "/ #" in s)
        pane.type("echo $((6*7)); stty size\n")
        pane.wait_for(lambda s: "42" in s and "25 90" in s)
        pane.resize(120, 40)
        pane.type("stty size\n")
        pane.wait_for(lambda s: "40 120" in s)
        pane.type("sleep 100\n")
        # ^C only once sleep runs: sent while the shell still forks it, the signal can miss it (seen once)
        deadline = time.monotonic() + 10
        while "sleep 100" not in d.cli("top", "tty1").stdout_text and time.monotonic() < deadline:
            time.sleep(0.05)
        pane.keys("C-c")  # raw mode: ^C goes to the container's terminal, not to the CLI
        pane.type("echo still-here\n")
        pane.wait_for(lambda s: "still-here\n" in s.replace("echo still-here", ""))
        pane.type("exit 7\n")
        pane.wait_for(lambda s: "EXIT=7" in s)
    finally:
        pane.close()


def test_detach_keys_and_attach_again(d) -> None:
    pane = Pane(d.env(), f"{DOCKYARD} run -it --name tty2 busybox sh")
    try:
        pane.wait_for(lambda s: "/ #" in s)
        pane.type("touch /marker\n")
        pane.keys("C-p", "C-q")
        pane.wait_for(lambda s: "EXIT=0" in s)
    finally:
        pane.close()
    assert d.cli("inspect", "-f", "{{.State.Running}}", "tty2").stdout_text == "true\n"
    pane = Pane(d.env(), f"{DOCKYARD} attach tty2")
    try:
        # an Enter typed before the attach is connected is lost (a loaded machine took longer than any
        # fixed wait): press it until the shell answers with a prompt
        deadline = time.monotonic() + 15
        while True:
            pane.keys("Enter")
            try:
                pane.wait_for(lambda s: "/ #" in s, timeout=1)
                break
            except AssertionError:
                if time.monotonic() > deadline:
                    raise
        pane.type("ls /marker && exit 3")
        pane.keys("Enter")
        pane.wait_for(lambda s: "EXIT=3" in s)
    finally:
        pane.close()
    d.cli("rm", "tty2")


def test_exec_it_shell(d) -> None:
    d.cli("run", "-d", "--name", "host3", "busybox", "sleep", "1000")
    pane = Pane(d.env(), f"{DOCKYARD} exec -it host3 sh", width=80, height=20)
    try:
        pane.wait_for(lambda s: "/ #" in s)
        pane.type("stty size; exit 6")
        pane.keys("Enter")
        pane.wait_for(lambda s: "20 80" in s and "EXIT=6" in s)
    finally:
        pane.close()
        d.cli("rm", "-f", "host3")
