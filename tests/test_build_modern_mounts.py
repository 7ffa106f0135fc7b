"""RUN --mount (cache, bind, tmpfs; secret and ssh refused), RUN --network and --security in the classic builder."""

from __future__ import annotations

import json

import pytest
from modern_build_helpers import build, ctx, run


@pytest.fixture(scope="module")
def d(daemon, busybox_tar):
    daemon.cli("load", "-i", busybox_tar.path)
    return daemon


def cache_records(d) -> list[dict]:
    du = json.loads(d.cli("system", "df", "-v", "--format", "{{json .}}").stdout_text)
    return [c for c in du.get("BuildCache") or [] if c.get("CacheType") == "exec.cachemount"
            or c.get("Type") == "exec.cachemount"]


def test_cache_mount_persists_across_builds_and_stays_out_of_the_image(d, tmp_path):
    df = ("FROM busybox\nARG V\n"
          "RUN --mount=type=cache,target=/root/.cache/pkg,id=pkgs sh -c "
          "'test -e /root/.cache/pkg/fetched && echo reused || { echo fetching; echo $V > /root/.cache/pkg/fetched; }'"
          " && echo built-$V > /built\n")
    c = ctx(tmp_path, df)
    first = build(d, "--build-arg", "V=1", "-t", "mod-cache", c)
    assert "\nfetching\n" in first.stdout_text
    second = build(d, "--build-arg", "V=2", "-t", "mod-cache", c)  # another key: the step runs again
    assert "\nreused\n" in second.stdout_text and "\nfetching\n" not in second.stdout_text
    assert run(d, "mod-cache", "cat", "/built") == "built-2\n"
    # neither the cache's content nor its mount point is in the image
    assert run(d, "mod-cache", "sh", "-c", "ls -a /root; test ! -e /root/.cache && echo none") == ".\n..\nnone\n"
    assert any("/root/.cache/pkg" in r.get("Description", "") for r in cache_records(d))


def test_cache_mount_options_and_sharing(d, tmp_path):
    df = ("FROM busybox AS seed\nRUN mkdir /s && echo seeded > /s/f\n"
          "FROM busybox\nUSER 1000:1000\n"
          "RUN --mount=type=cache,target=/c,id=owned,uid=1000,gid=1000,mode=0700,sharing=locked,from=seed,source=/s "
          "sh -c 'stat -c \"%u %g %a\" /c; cat /c/f; touch /c/mine' > /tmp/out 2>&1; cat /tmp/out\n"
          "RUN --mount=type=cache,target=/p,sharing=private,uid=1000 touch /p/x\n")
    r = build(d, "--no-cache", ctx(tmp_path, df))
    assert "1000 1000 700\nseeded\n" in r.stdout_text


def test_bind_mounts_of_context_and_stage_commit_nothing(d, tmp_path):
    df = ("FROM busybox AS tools\nRUN mkdir -p /opt/t && echo tool > /opt/t/x\n"
          "FROM busybox\n"
          "RUN --mount=target=/src cat /src/app.txt > /app && ! touch /src/w 2>/dev/null\n"
          "RUN --mount=type=bind,source=sub,target=/m,rw sh -c 'echo w > /m/new && cat /m/b'\n"
          "RUN --mount=from=tools,source=/opt/t,target=/t cat /t/x > /x\n"
          "RUN --mount=type=tmpfs,target=/scratch,size=1m sh -c 'df /scratch | grep -q tmpfs && touch /scratch/y'\n")
    files = {"app.txt": "v1\n", "sub/b": "b\n"}
    c = ctx(tmp_path, df, files)
    build(d, "-t", "mod-bind", c)
    assert run(d, "mod-bind", "cat", "/app", "/x") == "v1\ntool\n"
    assert run(d, "mod-bind", "sh", "-c", "for p in /src /m /t /scratch; do test -e $p && echo $p; done; true") == ""
    assert not (tmp_path / "sub" / "new").exists()
    # the bound source's content is in the step's cache key
    (tmp_path / "app.txt").write_text("v2\n")
    r = build(d, "-t", "mod-bind", c)
    assert run(d, "mod-bind", "cat", "/app") == "v2\n"
    assert "Step 5/7 : RUN --mount=type=bind,source=sub" in r.stdout_text


@pytest.mark.parametrize("line, message", [
    ("RUN --mount=type=secret,id=tok cat /run/secrets/tok", "cannot carry secrets"),
    ("RUN --mount=type=ssh true", "an SSH agent"),
    ("RUN --mount=type=volume,target=/x true", "unsupported mount type 'volume'"),
    ("RUN --mount=type=cache true", "mount type cache requires a target"),
    ("RUN --mount=type=cache,target=/c,sharing=sometimes true", "unsupported sharing value 'sometimes'"),
    ("RUN --mount=type=tmpfs,target=/t,colour=red true", "unexpected key 'colour'"),
    ("RUN --mount=type=cache,target=/c,mode=rwx true", "failed to parse mode"),
    ("RUN --network=bridge2 true", "unsupported network mode 'bridge2'"),
    ("RUN --security=insecure true", "security.insecure entitlement"),
    ("RUN --frobnicate true", "Unknown flag: frobnicate"),
    ("COPY --mount=type=cache,target=/c a b", "Unknown flag: mount"),
    ("RUN " + " ".join(f"--mount=type=tmpfs,target=/t{i}" for i in range(65)) + " true", "too many --mount flags"),
])
def test_bad_run_flags_fail_before_any_step(d, tmp_path, line, message):
    before = d.cli("images", "-aq").stdout_text
    r = build(d, ctx(tmp_path, f"FROM busybox\nRUN echo first > /first\n{line}\n"), check=False)
    assert r.returncode != 0
    assert "dockerfile parse error line 3: " in r.stderr_text and message in r.stderr_text, r.stderr_text
    assert "Step 1/" not in r.stdout_text
    assert d.cli("images", "-aq").stdout_text == before


def test_run_network_per_step(d, tmp_path):
    df = ("FROM busybox\n"
          "RUN --network=none sh -c 'ls /sys/class/net | tr \"\\n\" \" \"; echo'\n"
          "RUN --network=default sh -c 'ls /sys/class/net | tr \"\\n\" \" \"; echo'\n")
    r = build(d, "--no-cache", ctx(tmp_path, df))
    lines = [ln.strip() for ln in r.stdout_text.splitlines() if ln.startswith("lo ") or ln.startswith("eth0")
             or ln.startswith("lo")]
    assert lines[0] == "lo"
    assert "eth0" in lines[1]


def test_builder_prune_removes_cache_mounts_with_filters(d, tmp_path):
    c = ctx(tmp_path, "FROM busybox\nRUN --mount=type=cache,target=/c,id=prune-me sh -c 'dd if=/dev/zero "
                      "of=/c/blob bs=1k count=64 2>/dev/null'\n")
    build(d, "--no-cache", c)
    assert any(r.get("Description", "").startswith("cached mount /c") for r in cache_records(d))
    # a filter that names only the classic records leaves the cache mounts
    d.cli("builder", "prune", "-f", "--filter", "type=regular")
    assert any(r.get("Description", "").startswith("cached mount /c") for r in cache_records(d))
    # used just now: not older than an hour
    d.cli("builder", "prune", "-f", "--filter", "until=1h")
    assert any(r.get("Description", "").startswith("cached mount /c") for r in cache_records(d))
    out = d.cli("builder", "prune", "-f", "--filter", "type=exec.cachemount").stdout_text
    assert "Total reclaimed space" in out
    assert cache_records(d) == []


def test_mount_points_are_dropped_without_following_the_steps_symlinks(d, tmp_path):
    """The step may swap a mount target's parent for a symlink to a host path: the cleanup of runc's mount
    points in the upper dir must not act on the host."""
    victim = tmp_path / "host"
    (victim / "b").mkdir(parents=True)
    (victim / "hostname").write_text("")
    df = ("FROM busybox\n"
          f"RUN --mount=type=tmpfs,target=/a/b sh -c 'mv /a /a2 && ln -s {victim} /a'\n"
          f"RUN --mount=type=tmpfs,target=/e/hostname sh -c 'mv /e /e2 && ln -s {victim} /e' || true\n")
    build(d, "--no-cache", ctx(tmp_path / "c", df), check=False)
    assert (victim / "b").is_dir()
    assert (victim / "hostname").exists()


def test_builder_prune_keep_storage_removes_the_least_recently_used_cache_first(d, tmp_path):
    d.cli("builder", "prune", "-f", "--filter", "type=exec.cachemount")
    for name in ("older", "newer"):
        build(d, "--no-cache", ctx(tmp_path / name, f"FROM busybox\nRUN --mount=type=cache,target=/c,id={name} "
                                                    "dd if=/dev/zero of=/c/blob bs=1k count=256 2>/dev/null\n"))
    d.cli("builder", "prune", "-f", "--keep-storage", "300k")
    left = [r.get("Description", "") for r in cache_records(d)]
    assert len(left) == 1 and "dd if=/dev/zero" in left[0]
    # the newer one is the one kept: its data is still there for the next build
    r = build(d, "--no-cache", ctx(tmp_path / "check", "FROM busybox\nRUN --mount=type=cache,target=/c,id=newer "
                                                       "ls /c\n"))
    assert "\nblob\n" in r.stdout_text
    d.cli("builder", "prune", "-f")
    assert cache_records(d) == []


def test_security_insecure_needs_the_entitlement(d, tmp_path, fresh_daemon, busybox_tar):
    df = "FROM busybox\nRUN --security=insecure grep CapEff /proc/self/status\nRUN grep CapEff /proc/self/status\n"
    # the module's daemon grants nothing: refused before any step
    r = build(d, ctx(tmp_path / "c", df), check=False)
    assert r.returncode != 0 and "security.insecure entitlement" in r.stderr_text
    # nor through an ONBUILD trigger of the base image, which no planning check sees
    build(d, "-t", "mod-onbuild-insecure", ctx(tmp_path / "base", "FROM busybox\n"
                                               "ONBUILD RUN --security=insecure true\n"))
    r = build(d, ctx(tmp_path / "child", "FROM mod-onbuild-insecure\n"), check=False)
    assert r.returncode != 0 and "security.insecure entitlement" in r.stderr_text + r.stdout_text
    # a daemon configured as dockerd's daemon.json grants it runs the step privileged, and only that one
    fresh_daemon.config["builder"] = {"entitlements": {"security-insecure": True}}
    fresh_daemon.start()
    fresh_daemon.cli("load", "-i", busybox_tar.path)
    out = build(fresh_daemon, "--no-cache", ctx(tmp_path / "c", df)).stdout_text
    caps = [line.split()[1] for line in out.splitlines() if line.startswith("CapEff:")]
    assert caps[0] == "000001ffffffffff" or int(caps[0], 16) > int(caps[1], 16)
    assert caps[1] == "00000000a80425fb"
