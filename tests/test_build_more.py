"""docker build: Dockerfile on stdin with a directory context, --network, -q, --platform, --cache-from, heredocs."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def d(daemon, busybox_tar):
    daemon.cli("load", "-i", busybox_tar.path)
    return daemon


def write(tmp_path: Path, files: dict[str, str]) -> str:
    for name, text in files.items():
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return str(tmp_path)


def cat(d, image: str, path: str) -> str:
    return d.cli("run", "--rm", image, "cat", path).stdout_text


def test_dockerfile_on_stdin_with_directory_context(d, tmp_path):
    # the CLI puts the Dockerfile into the context tar under a random name and sends that name
    context = write(tmp_path, {"a.txt": "from context\n", "Dockerfile": "FROM busybox\nRUN false\n"})
    res = d.cli("build", "-q", "-t", "stdin-df", "-f", "-", context,
                input=b"FROM busybox\nCOPY a.txt /a.txt\n")
    assert res.returncode == 0, res.stderr_text
    assert cat(d, "stdin-df", "/a.txt") == "from context\n"


@pytest.mark.parametrize("mode", ["none", "host", "default"])
def test_network_modes(d, tmp_path, mode):
    # the interfaces a step sees: loopback only with none, the host's with host, eth0 on the bridge
    context = write(tmp_path, {"Dockerfile": "FROM busybox\nRUN ls /sys/class/net | sort > /ifaces\n"})
    before = {p.name for p in Path("/sys/class/net").iterdir()}
    d.cli("build", "-q", "--network", mode, "-t", f"net-{mode}", context)
    steady = before & {p.name for p in Path("/sys/class/net").iterdir()}  # other tests add and drop veths
    ifaces = cat(d, f"net-{mode}", "/ifaces").split()
    if mode == "none":
        assert ifaces == ["lo"]
    elif mode == "host":
        assert steady <= set(ifaces)
    else:
        assert "lo" in ifaces and not steady - {"lo"} <= set(ifaces)


def test_quiet_prints_only_the_id_and_platform(d, tmp_path):
    context = write(tmp_path, {"Dockerfile": "FROM busybox\nRUN echo noisy\nLABEL a=b\n"})
    res = d.cli("build", "-q", "--platform", "linux/amd64", "-t", "quiet", context)
    out = res.stdout_text.strip()
    assert out.startswith("sha256:") and "\n" not in out and "noisy" not in out
    assert d.cli("image", "inspect", "-f", "{{.Id}}", "quiet").stdout_text.strip() == out
    bad = d.cli("build", "-q", "--platform", "windows/amd64", context, check=False)
    assert bad.returncode != 0 and "unsupported platform" in bad.stderr_text


def test_heredoc_variables(d, tmp_path):
    # RUN heredocs are run by the shell (its variables, ENV and build args); COPY heredocs expand at build time
    dockerfile = ("FROM busybox\nARG WHO=arg\nENV GREETING=hello\n"
                  "RUN <<EOF\necho \"$GREETING $WHO\" > /run.txt\nEOF\n"
                  "COPY <<EOF /copy.txt\n$GREETING ${WHO:-x}\nEOF\n"
                  "COPY <<'EOF' /raw.txt\n$GREETING\nEOF\n")
    context = write(tmp_path, {"Dockerfile": dockerfile})
    d.cli("build", "-q", "--build-arg", "WHO=world", "-t", "heredoc-vars", context)
    assert cat(d, "heredoc-vars", "/run.txt") == "hello world\n"
    assert cat(d, "heredoc-vars", "/copy.txt") == "hello world\n"
    assert cat(d, "heredoc-vars", "/raw.txt") == "$GREETING\n"


def test_cache_from_an_image_with_no_local_cache(d, tmp_path):
    # the image comes back from a tarball (no build cache records point at it): --cache-from reuses its steps
    context = write(tmp_path / "c", {"Dockerfile": "FROM busybox\nENV A=1\nRUN echo built > /f\nCMD [\"cat\", \"/f\"]\n"})
    first = d.cli("build", "-q", "-t", "cache-src", context).stdout_text.strip()
    saved = str(tmp_path / "src.tar")
    d.cli("save", "-o", saved, "cache-src")
    d.cli("rmi", "cache-src")
    d.cli("builder", "prune", "-f")
    d.cli("load", "-q", "-i", saved)
    without = d.cli("build", "-t", "cache-none", context).stdout_text
    assert "Using cache" not in without
    d.cli("rmi", "cache-none")
    res = d.cli("build", "--cache-from", "cache-src", "-t", "cache-hit", context).stdout_text
    assert res.count("Using cache") == 3 and "Running in" not in res
    assert d.cli("image", "inspect", "-f", "{{.Id}}", "cache-hit").stdout_text.strip() == first
