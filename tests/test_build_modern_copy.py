"""COPY/ADD flags of the current Dockerfile syntax in the classic builder: --chmod (octal, symbolic), --chown by
name, --link, --parents, --exclude, ADD of a URL with --checksum, COPY --from an image not yet pulled."""

from __future__ import annotations

import hashlib
import http.server
import threading
from pathlib import Path

import pytest
from modern_build_helpers import build, ctx, run


@pytest.fixture(scope="module")
def d(daemon, busybox_tar):
    daemon.cli("load", "-i", busybox_tar.path)
    return daemon


def test_chmod_octal_and_symbolic(d, tmp_path):
    files = {"run.sh": "#!/bin/sh\n", "data.txt": "d\n", "tree/a": "a\n"}
    (tmp_path / "tree").mkdir(parents=True)
    c = ctx(tmp_path, "FROM busybox\nCOPY --chmod=0750 run.sh /o/\nCOPY --chmod=u+x,go-r data.txt /s/\n"
                      "COPY --chmod=a+X,g+w tree /t/\nCOPY --link --chmod=600 data.txt /linked\n", files)
    (tmp_path / "run.sh").chmod(0o644)
    (tmp_path / "data.txt").chmod(0o644)
    (tmp_path / "tree" / "a").chmod(0o644)
    (tmp_path / "tree").chmod(0o755)
    build(d, "-t", "mod-chmod", c)
    out = run(d, "mod-chmod", "stat", "-c", "%a %n", "/o/run.sh", "/s/data.txt", "/t", "/t/a", "/linked")
    # the destination directory itself is created as the classic builder creates it (0755)
    assert out == "750 /o/run.sh\n700 /s/data.txt\n755 /t\n664 /t/a\n600 /linked\n"
    bad = build(d, ctx(tmp_path / "bad", "FROM busybox\nCOPY --chmod=u+q Dockerfile /x\n"), check=False)
    assert bad.returncode != 0 and "invalid chmod parameter: u+q" in bad.stderr_text


def test_chown_names_from_the_image(d, tmp_path):
    df = ("FROM busybox\n"
          "RUN echo 'app:x:1234:4321::/home/app:/bin/sh' >> /etc/passwd && echo 'grp:x:777:' >> /etc/group\n"
          "COPY --chown=app f /byname\nCOPY --chown=app:grp f /both\nCOPY --chown=55:grp f /mixed\n")
    build(d, "-t", "mod-chown", ctx(tmp_path, df, {"f": "x\n"}))
    assert run(d, "mod-chown", "stat", "-c", "%u:%g", "/byname", "/both", "/mixed") == "1234:4321\n1234:777\n55:777\n"
    # /etc/passwd a symlink to the host's: the lookup stays inside the image, so a host-only user is unknown
    df2 = "FROM busybox\nRUN rm /etc/passwd && ln -s ../../../../../etc/passwd /etc/passwd\nCOPY --chown=app f /x\n"
    Path("/etc/passwd").read_text()  # the host has one
    bad = build(d, ctx(tmp_path / "link", df2, {"f": "x\n"}), check=False)
    assert bad.returncode != 0 and "no such user: app" in bad.stderr_text


def test_parents_and_exclude(d, tmp_path):
    files = {"src/a/one.py": "1", "src/a/one.pyc": "c", "src/b/two.py": "2", "docs/x.md": "m", "docs/y.txt": "t"}
    df = ("FROM busybox\nCOPY --parents src/*/*.py /app/\nCOPY --exclude=**/*.pyc --exclude=b src /ex/\n"
          "COPY --exclude=*.md docs/* /docs/\n")
    build(d, "-t", "mod-parents", ctx(tmp_path, df, files))
    listing = run(d, "mod-parents", "sh", "-c", "cd / && find app ex docs -type f | sort")
    assert listing == "app/src/a/one.py\napp/src/b/two.py\ndocs/y.txt\nex/a/one.py\n"


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_dir(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    handler = lambda *a, **kw: _Handler(*a, directory=str(root), **kw)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_add_url_with_checksum(d, tmp_path, http_dir):
    root, base = http_dir
    (root / "pkg.tar.gz").write_bytes(b"not really a tarball\n")
    good = hashlib.sha256(b"not really a tarball\n").hexdigest()
    df = f"FROM busybox\nADD --checksum=sha256:{good} {base}/pkg.tar.gz /dl/\nADD --chmod=644 {base}/pkg.tar.gz /f\n"
    build(d, "-t", "mod-url", ctx(tmp_path / "ok", df))
    assert run(d, "mod-url", "stat", "-c", "%a %s %n", "/dl/pkg.tar.gz", "/f") == \
        "600 21 /dl/pkg.tar.gz\n644 21 /f\n"
    before = d.cli("images", "-aq").stdout_text
    bad = build(d, ctx(tmp_path / "bad", f"FROM busybox\nADD --checksum=sha256:{'0' * 64} {base}/pkg.tar.gz /x\n"),
                check=False)
    assert bad.returncode != 0 and "digest mismatch" in bad.stderr_text + bad.stdout_text
    assert d.cli("images", "-aq").stdout_text == before
    local = build(d, ctx(tmp_path / "local", f"FROM busybox\nADD --checksum=sha256:{good} Dockerfile /x\n"),
                  check=False)
    assert local.returncode != 0 and "checksum can't be specified for non-HTTP(S) sources" in local.stderr_text


def test_copy_from_an_image_not_here_pulls_it(d, tmp_path):
    from registry import REGISTRY_BIN, Registry

    if not Path(REGISTRY_BIN).exists():
        pytest.skip("docker-registry is not installed")
    with Registry(tmp_path / "reg") as reg:
        src = f"{reg.host}/tools/busybox:1"
        d.cli("tag", "busybox", src)
        d.cli("push", src)
        d.cli("rmi", src)
        out = build(d, "-t", "mod-from-pull", ctx(tmp_path / "c", f"FROM busybox\nCOPY --from={src} /bin/true /t\n"))
        assert "Pulling from tools/busybox" in out.stdout_text
        assert run(d, "mod-from-pull", "ls", "/t") == "/t\n"
        d.cli("rmi", src, "mod-from-pull")
