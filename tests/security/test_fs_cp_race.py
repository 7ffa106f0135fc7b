"""docker cp against a container that swaps a directory with a symlink to ``/`` (CVE-2018-15664 class).

The container exchanges ``/dir`` and ``/link`` (-> ``/``) in a loop while the real CLI copies into and out
of ``/dir/tmp/...``. Whatever the timing, a copy must stay inside the container: no host file is created,
no host secret is read back. Each loop is bounded in time and stops at the first escape.
"""

from __future__ import annotations

import io
import os
import tarfile
import time
import uuid

import pytest

from fsrace import start_swapper

LOOP_SECONDS = 15


@pytest.fixture
def swapping(d, tmp_path):
    name, tag = start_swapper(d, tmp_path, "echo decoy > /dir/tmp/dy-secret-$TAG")
    yield name, tag
    d.cli("rm", "-f", name, check=False)


def _server_errors(d) -> str:
    """The daemon's 5xx answers so far: a copy that lost a race is refused (4xx), never a server error."""
    with open(d.log_path, errors="replace") as f:
        return "".join(line for line in f if "-> 50" in line)


def test_cp_out_never_returns_host_files(d, swapping) -> None:
    name, tag = swapping
    secret_path = f"/tmp/dy-secret-{tag}"
    secret = f"host-secret-{uuid.uuid4().hex}".encode()
    with open(secret_path, "wb") as f:
        f.write(secret)
    try:
        tries = leaks = 0
        end = time.monotonic() + LOOP_SECONDS
        while time.monotonic() < end and not leaks:
            res = d.cli("cp", f"{name}:/dir/tmp/dy-secret-{tag}", "-", check=False)
            tries += 1
            if secret in res.stdout:
                leaks += 1
        assert leaks == 0, f"a host file came out of the container after {tries} copies"
        assert tries > 20, "too few copies to say anything"
        assert "/archive?" not in _server_errors(d)
    finally:
        os.unlink(secret_path)


def test_cp_in_never_writes_host_files(d, swapping, tmp_path) -> None:
    name, tag = swapping
    escape = f"/tmp/dy-escape-{tag}"
    payload = io.BytesIO()
    with tarfile.open(fileobj=payload, mode="w") as tar:
        ti = tarfile.TarInfo(f"dy-escape-{tag}")
        ti.size = 5
        tar.addfile(ti, io.BytesIO(b"owned"))
    try:
        tries = 0
        end = time.monotonic() + LOOP_SECONDS
        while time.monotonic() < end and not os.path.lexists(escape):
            d.cli("cp", "-", f"{name}:/dir/tmp/", input=payload.getvalue(), check=False)
            tries += 1
        assert not os.path.lexists(escape), f"a copy into the container wrote {escape} on the host after {tries}"
        assert tries > 20, "too few copies to say anything"
        assert "/archive?" not in _server_errors(d)
    finally:
        if os.path.lexists(escape):
            os.unlink(escape)
