"""docker build: Dockerfile on stdin with a directory context, --network, -q, --platform, --cache-from, heredocs,
intermediate containers as dockerd 20.10's classic builder shows and keeps them, builder prune."""

from __future__ import annotations

import io
import re
import tarfile
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


def _ps(d) -> list[list[str]]:
    out = d.cli("ps", "-a", "--no-trunc", "--format", "{{.ID}}\t{{.Image}}\t{{.Command}}\t{{.Status}}").stdout_text
    return [line.split("\t") for line in out.splitlines()]


def test_failed_run_keeps_its_container_unless_force_rm(d, tmp_path):
    context = write(tmp_path, {"Dockerfile": "FROM busybox\nENV A=1\nRUN echo said; echo part > /partial; exit 3\n"})
    before = {row[0] for row in _ps(d)}  # by ID: the status of older containers ages
    res = d.cli("build", "-t", "kept-fail", context, check=False)
    assert res.returncode == 3  # the CLI exits with the step's code
    assert "The command '/bin/sh -c echo said; echo part > /partial; exit 3' returned a non-zero code: 3" in \
        res.stderr_text
    step = res.stdout_text.split("Step 3/3 : ")[1]
    short = re.search(r" ---> Running in ([0-9a-f]{12})\n", step).group(1)
    assert "Removing intermediate container" not in step
    parent = res.stdout_text.split("Step 3/3")[0].rstrip().rsplit(" ---> ", 1)[1]
    [kept] = [row for row in _ps(d) if row[0] not in before]
    # as dockerd shows it: from the parent image (by ID), the step's command, its exit status
    assert kept[0].startswith(short)
    assert kept[1].removeprefix("sha256:").startswith(parent)
    assert kept[2] == "\"/bin/sh -c 'echo said; echo part > /partial; exit 3'\""
    assert kept[3].startswith("Exited (3) ")
    # its filesystem holds what the step wrote before it failed
    assert "A /partial" in d.cli("diff", short).stdout_text
    assert d.cli("logs", short).stdout_text == "said\n"  # what the step printed is its log
    assert d.cli("inspect", "-f", "{{.State.ExitCode}} {{.Config.Env}}", short).stdout_text.startswith("3 [")
    d.cli("rm", short)
    # --force-rm removes it, and says so
    res = d.cli("build", "--force-rm", context, check=False)
    assert res.returncode == 3
    short = re.search(r"Step 3/3 .*? ---> Running in ([0-9a-f]{12})\n", res.stdout_text, re.S).group(1)
    assert f"Removing intermediate container {short}\n" in res.stdout_text
    assert {row[0] for row in _ps(d)} == before


def test_metadata_steps_show_their_container_as_dockerd(d, tmp_path):
    dockerfile = "FROM busybox\nENV A=1\nLABEL x=y\nWORKDIR /w\nEXPOSE 80\nUSER 1\nCMD [\"sh\"]\n"
    write(tmp_path, {"Dockerfile": dockerfile})
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        t.add(tmp_path / "Dockerfile", "Dockerfile")
    api = d.api()
    lines = [m.get("stream") for m in api.build(fileobj=io.BytesIO(buf.getvalue()), custom_context=True,
                                                 decode=True, nocache=True, rm=True) if "stream" in m]
    text = "".join(lines)
    steps = text.split("Step ")[2:]
    assert len(steps) == 6
    for step in steps:
        # e.g. "2/7 : ENV A=1\n ---> Running in ID\nRemoving intermediate container ID\n ---> IMAGE\n"
        m = re.fullmatch(r"\d/7 : [^\n]+\n ---> Running in ([0-9a-f]{12})\n"
                         r"Removing intermediate container \1\n ---> [0-9a-f]{12}\n(Successfully built .*)?", step,
                         re.S)
        assert m, step
    again = d.cli("build", tmp_path.as_posix()).stdout_text
    assert again.count(" ---> Using cache\n") == 6 and "Running in" not in again


def test_rm_false_keeps_every_step_container(d, tmp_path):
    context = write(tmp_path, {"Dockerfile": "FROM busybox\nENV A=1\nRUN echo one > /one\n"})
    before = {row[0] for row in _ps(d)}
    res = d.cli("build", "--rm=false", "--no-cache", context)
    assert "Removing intermediate container" not in res.stdout_text
    ids = re.findall(r" ---> Running in ([0-9a-f]{12})", res.stdout_text)
    new = [row for row in _ps(d) if row[0] not in before]
    assert sorted(row[0][:12] for row in new) == sorted(ids)
    states = {row[0][:12]: row[3] for row in new}
    assert states[ids[0]] == "Created"  # the ENV step's container is created, never started
    assert states[ids[1]].startswith("Exited (0) ")
    assert "A /one" in d.cli("diff", ids[1]).stdout_text
    d.cli("rm", *ids)


def test_builder_prune_with_the_cli(d, tmp_path):
    context = write(tmp_path, {"Dockerfile": "FROM busybox\nRUN echo prune-me > /p\nLABEL p=1\n"})
    d.cli("build", "-t", "prune-me", context)
    res = d.cli("builder", "prune", "-f")
    assert res.stdout_text.startswith("Deleted build cache objects:\n")
    assert re.search(r"\nTotal reclaimed space: \d", res.stdout_text)
    # the records are gone (the tagged image and its layers stay): the same build runs its steps again
    again = d.cli("build", "-t", "prune-me", context).stdout_text
    assert "Using cache" not in again and "Successfully tagged prune-me:latest\n" in again
    res = d.cli("builder", "prune", "-f")
    assert res.stdout_text.startswith("Deleted build cache objects:\n")
    assert d.cli("builder", "prune", "-f").stdout_text == "Total reclaimed space: 0B\n"
    df = d.cli("system", "df", "--format", "{{.Type}} {{.TotalCount}}").stdout_text
    assert "Build Cache 0" in df


def test_scratch_platform_exec_form_arg_scopes_proxy_args_and_copy_from_image(d, tmp_path):
    dockerfile = ("ARG TOP=top\n"
                  "FROM --platform=linux/amd64 busybox AS first\n"
                  "ARG STAGE=one\n"
                  "RUN [\"sh\", \"-c\", \"echo [$TOP][$STAGE][$HTTP_PROXY] > /seen\"]\n"
                  "FROM busybox\n"
                  "ARG TOP\n"
                  "RUN echo [$TOP][$STAGE] > /seen2\n"
                  "FROM scratch\n"
                  "COPY --from=first /seen /\n"
                  "COPY --from=1 /seen2 /\n"
                  "COPY --from=busybox /bin/busybox /bin/cat\n"
                  "CMD [\"/bin/cat\", \"/seen\", \"/seen2\"]\n")
    context = write(tmp_path, {"Dockerfile": dockerfile})
    d.cli("build", "--build-arg", "HTTP_PROXY=http://proxy.invalid:3128", "-t", "scoped", context)
    # a meta ARG is seen only where a stage declares it again, a stage's ARG only in that stage; proxy args
    # need no ARG line
    assert d.cli("run", "--rm", "scoped").stdout_text == "[][one][http://proxy.invalid:3128]\n[top][]\n"
    # scratch: only what was copied in, and no proxy value kept in the history
    assert d.cli("image", "inspect", "-f", "{{len .RootFS.Layers}}", "scoped").stdout_text.strip() == "3"
    history = d.cli("history", "--no-trunc", "--format", "{{.CreatedBy}}", "scoped").stdout_text
    assert "proxy.invalid" not in history
    first_history = d.cli("history", "--no-trunc", "--format", "{{.CreatedBy}}",
                          d.cli("build", "-q", "--target", "first", "--build-arg",
                                "HTTP_PROXY=http://proxy.invalid:3128", context).stdout_text.strip()).stdout_text
    assert "|1 STAGE=one sh -c echo [$TOP][$STAGE][$HTTP_PROXY] > /seen" in first_history
    assert "proxy.invalid" not in first_history


def test_pull_refreshes_the_base_from_its_registry(d, tmp_path):
    from registry import REGISTRY_BIN, Registry

    if not Path(REGISTRY_BIN).exists():
        pytest.skip("docker-registry is not installed")
    with Registry(tmp_path / "reg") as reg:
        base = f"{reg.host}/base/busybox:1"
        d.cli("tag", "busybox", base)
        d.cli("push", base)
        context = write(tmp_path / "c", {"Dockerfile": f"FROM {base}\nRUN echo pulled > /p\n"})
        # without --pull the local image is used; with it the base is pulled again first
        assert "Pulling from" not in d.cli("build", context).stdout_text
        out = d.cli("build", "--pull", "-t", "pulled-base", context).stdout_text
        assert "Pulling from base/busybox" in out and "Digest: sha256:" in out
        assert cat(d, "pulled-base", "/p") == "pulled\n"
        d.cli("rmi", base, "pulled-base")
        # a base that is not here is pulled without --pull too
        out = d.cli("build", "-t", "pulled-base", context).stdout_text
        assert "Pulling from base/busybox" in out
        d.cli("rmi", base, "pulled-base")


def test_dockerfile_by_path_in_and_outside_the_context(d, tmp_path):
    context = write(tmp_path / "c", {"f.txt": "ctx\n", "sub/dev.Dockerfile": "FROM busybox\nCOPY f.txt /in\n",
                                     "Dockerfile": "FROM busybox\nRUN false\n"})
    # the CLI takes -f from its working directory; inside the context it is sent by its path there
    d.cli("build", "-q", "-f", f"{context}/sub/dev.Dockerfile", "-t", "df-in", context)
    assert cat(d, "df-in", "/in") == "ctx\n"
    outside = write(tmp_path / "o", {"Other": "FROM busybox\nCOPY f.txt /out\n"})
    d.cli("build", "-q", "-f", f"{outside}/Other", "-t", "df-out", context)
    assert cat(d, "df-out", "/out") == "ctx\n"
    d.cli("rmi", "df-in", "df-out")
