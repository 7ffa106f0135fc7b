"""``docker images --filter reference=`` with wildcards and ``docker pull --platform`` refusals, side by side
with the reference dockerd (issue 15)."""

from __future__ import annotations

import pytest

from dockerd_side import api_of, needs_dockerd, outcome

pytestmark = needs_dockerd

TAGS = ("busy-one:1.0", "busy-one:1.5", "busy-one:2.0", "team/name:tag", "reg.example:5000/team/name:tag",
        "other:latest")


@pytest.fixture
def engines(d, ref):
    return {"dockerd": ref, "dockyard": d}


def test_reference_filter_wildcards(engines) -> None:
    patterns = ["busy*", "busy-one:1.*", "*/name:tag", "*/*/name:tag", "reg.example:5000/*/*", "*latest",
                "busy-[a-o]ne:?.0", "busy-[^a-o]ne*", "*", "team/*", "busybox", "busy\\*"]
    seen = {}
    for which, e in engines.items():
        for tag in TAGS:
            e.cli("tag", "busybox", tag)
        api = api_of(e)
        try:
            rows = []
            for p in patterns:
                tags = {t for i in api.images(filters={"reference": p}) for t in i["RepoTags"] or []}
                rows.append((p, sorted(tags & {*TAGS, "busybox:latest"})))
            # several patterns: any of them
            both = {t for i in api.images(filters={"reference": ["other*", "team/*"]}) for t in i["RepoTags"]}
            rows.append(("other* team/*", sorted(both & set(TAGS))))
            cli = e.cli("images", "--filter", "reference=busy-one:1.*", "--format", "{{.Repository}}:{{.Tag}}")
            rows.append(("cli", sorted(cli.stdout_text.split())))
            bad = outcome(lambda: api.images(filters={"reference": "["}))
            rows.append(("bad", bad[1]))
            seen[which] = rows
        finally:
            e.cli("rmi", *TAGS, check=False)
    assert seen["dockyard"] == seen["dockerd"]
    assert dict(seen["dockerd"])["busy-one:1.*"] == ["busy-one:1.0", "busy-one:1.5"]
    assert dict(seen["dockerd"])["*/name:tag"] == ["team/name:tag"]


def test_pull_with_an_invalid_platform_is_refused_before_any_registry(engines) -> None:
    # port 1 on loopback: nothing listens, so a daemon that went there would say so instead
    seen = {}
    for which, e in engines.items():
        api = api_of(e)
        rows = []
        for platform in ("linux/amd64/v1/extra", "lin ux", "notanos", "linux//v7", "a/b c"):
            rows.append((platform, outcome(lambda: api.pull("127.0.0.1:1/busybox", tag="latest", platform=platform))))
        cli = e.cli("pull", "--platform", "notanos", "127.0.0.1:1/busybox:latest", check=False)
        rows.append(("cli", cli.returncode, cli.stderr_text.strip()))
        seen[which] = rows
    assert seen["dockyard"] == seen["dockerd"]
    assert all(r[1][0] == 400 for r in seen["dockerd"][:-1])
