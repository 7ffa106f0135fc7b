"""``COPY --link`` (issue 16): a layer independent of the layers below it, reused from the cache when a
lower step changes. dockerd 20.10's classic builder refuses the flag, so no side-by-side run here."""

from __future__ import annotations

from pathlib import Path


def _build(d, ctx: Path, dockerfile: str, tag: str) -> str:
    (ctx / "Dockerfile").write_text(dockerfile)
    lines = list(d.api().build(path=str(ctx), tag=tag, decode=True, rm=True))
    assert not [m for m in lines if "error" in m], lines
    return "".join(m.get("stream", "") for m in lines)


def _steps_cached(out: str) -> list[bool]:
    """Per step after FROM: whether it came from the cache."""
    return ["Using cache" in part for part in out.split("Step ")[2:]]


def test_link_layer_is_reused_when_a_lower_step_changes(d, tmp_path) -> None:
    ctx = tmp_path / "c"
    (ctx / "d").mkdir(parents=True)
    (ctx / "f.txt").write_text("file\n")
    (ctx / "d" / "inner.txt").write_text("inner\n")
    template = ("FROM busybox\nRUN echo {v} > /one\nCOPY --link f.txt /app/f.txt\nCOPY --link d/ /app/d/\n"
                "COPY f.txt /plain.txt\nRUN cat /one /app/f.txt /app/d/inner.txt\n")
    first = _build(d, ctx, template.format(v="one"), "link1")
    assert _steps_cached(first) == [False] * 5
    second = _build(d, ctx, template.format(v="two"), "link2")
    # the RUN changed; both --link steps come from the cache, the plain COPY and what follows do not
    assert _steps_cached(second) == [False, True, True, False, False]
    assert d.cli("run", "--rm", "link2", "cat", "/one", "/app/f.txt", "/app/d/inner.txt").stdout_text == \
        "two\nfile\ninner\n"
    api = d.api()
    layers1 = api.inspect_image("link1")["RootFS"]["Layers"]
    layers2 = api.inspect_image("link2")["RootFS"]["Layers"]
    # busybox, RUN, two --link layers, COPY: the --link diffs are the same layers on another parent
    assert layers1[2:4] == layers2[2:4] and layers1[1] != layers2[1]
    history = [h["CreatedBy"] for h in api.history("link2")]
    assert any("COPY file:" in h and "/app/f.txt" in h for h in history)
    # the first parent again: the cached images as they were
    third = _build(d, ctx, template.format(v="one"), "link3")
    assert _steps_cached(third) == [True] * 5
    assert api.inspect_image("link3")["Id"] == api.inspect_image("link1")["Id"]
    d.cli("rmi", "link1", "link2", "link3")


def test_link_destination_is_made_fresh(d, tmp_path) -> None:
    # as BuildKit: the file goes to an empty destination, so a path that is a directory in the image is
    # not looked into; the plain COPY copies into it
    ctx = tmp_path / "c"
    ctx.mkdir()
    (ctx / "f.txt").write_text("file\n")
    _build(d, ctx, "FROM busybox\nRUN mkdir -p /target /plain\nCOPY --link f.txt /target\nCOPY f.txt /plain\n",
           "linkdest")
    out = d.cli("run", "--rm", "linkdest", "sh", "-c", "cat /target; ls /plain").stdout_text
    assert out == "file\nf.txt\n"
    d.cli("rmi", "linkdest")
