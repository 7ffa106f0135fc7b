"""docker diff, commit and export of a running container that swaps a directory with a symlink to the host.

All three read the container's files while the container changes them; a walk that re-resolves names
would list (diff) or copy into an image or a tar (commit, export) the host's files. Bounded loops,
stopped at the first hit.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid

import pytest

from fsrace import start_swapper

LOOP_SECONDS = 12


@pytest.fixture
def swapping(d, tmp_path):
    """/link leads to a host directory holding one secret file: a walk that follows it has little to read."""
    tag = uuid.uuid4().hex[:12]
    hostdir = f"/tmp/dy-hostdir-{tag}"
    os.mkdir(hostdir)
    secret = f"host-secret-{uuid.uuid4().hex}".encode()
    with open(f"{hostdir}/dy-probe-{tag}", "wb") as f:
        f.write(secret)
    try:
        name, _ = start_swapper(d, tmp_path, "echo decoy > /dir/decoy", target=hostdir, tag=tag)
        yield name, tag, secret
        d.cli("rm", "-f", name, check=False)
    finally:
        shutil.rmtree(hostdir)


def test_diff_never_lists_host_files(d, swapping) -> None:
    name, tag, _ = swapping
    tries = leaks = 0
    end = time.monotonic() + LOOP_SECONDS
    while time.monotonic() < end and not leaks:
        out = d.cli("diff", name, check=False).stdout_text
        tries += 1
        leaks += f"dy-probe-{tag}" in out
    assert leaks == 0, f"docker diff listed a host file after {tries} tries"
    assert tries > 20, "too few tries to say anything"


def test_commit_never_takes_host_files(d, swapping) -> None:
    name, tag, secret = swapping
    image = f"dyrace-{tag}"
    tries = leaks = 0
    end = time.monotonic() + LOOP_SECONDS
    try:
        while time.monotonic() < end and not leaks:
            if d.cli("commit", "--pause=false", name, image, check=False).returncode == 0:
                leaks += secret in d.cli("save", image).stdout
            tries += 1
    finally:
        d.cli("rmi", "-f", image, check=False)
    assert leaks == 0, f"docker commit put a host file in the image after {tries} tries"
    assert tries > 5, "too few tries to say anything"


def test_export_never_takes_host_files(d, swapping) -> None:
    name, tag, secret = swapping
    tries = leaks = 0
    end = time.monotonic() + LOOP_SECONDS
    while time.monotonic() < end and not leaks:
        res = d.cli("export", name, check=False)
        leaks += secret in res.stdout
        tries += 1
    assert leaks == 0, f"docker export put a host file in its tar after {tries} tries"
    assert tries > 5, "too few tries to say anything"
