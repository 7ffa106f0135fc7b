"""``dockyard build``: the classic builder's client, as docker 28 drives it without buildx.

The context is sent the way the docker CLI sends it: a directory becomes a tar
with ``.dockerignore`` applied client-side (the Dockerfile and .dockerignore
always go), ``-`` is a tar or a lone Dockerfile from stdin, and a Dockerfile
outside the context (or ``-f -``) travels inside the tar under a random name.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import tarfile
import tempfile
from typing import IO, Any, Iterator

from ..util.dockerignore import Matcher
from . import jsonmessage
from .command import Arity, Cli, CliError, CommandTree, add_bool
from .connection import json_stream, raw_post

CHUNK = 1 << 20


def _key_values(items: list[str], what: str) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not key:
            raise CliError(f"invalid {what}: {item}")
        # `--build-arg NAME` takes NAME from the environment, as docker does
        out[key] = value if sep else os.environ.get(key)
    return out


def _context_tar(root: str, dockerfile: str | None, dockerfile_text: bytes | None, out: IO[bytes]) -> str:
    """Write ``root`` as the context tar; returns the Dockerfile name to send."""
    try:
        with open(os.path.join(root, ".dockerignore"), encoding="utf-8", errors="replace") as f:
            matcher = Matcher.from_text(f.read())
    except FileNotFoundError:
        matcher = Matcher.from_text("")
    # -f is relative to the working directory; inside the context it is sent as its path there
    path = os.path.abspath(dockerfile) if dockerfile else os.path.join(os.path.abspath(root), "Dockerfile")
    rel_df = os.path.relpath(path, os.path.abspath(root))
    inside = dockerfile_text is None and not rel_df.startswith("..")
    if dockerfile_text is None and not inside:
        with open(path, "rb") as f:
            dockerfile_text = f.read()
    keep = {".dockerignore", rel_df if inside else ""}
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for entry in sorted(dirnames) + sorted(filenames):
                path = os.path.join(dirpath, entry)
                rel = os.path.relpath(path, root)
                if matcher.excluded(rel) and rel not in keep:
                    # a directory can be skipped whole unless a `!` pattern may take something back inside it
                    if entry in dirnames and not matcher.has_exclusions():
                        dirnames.remove(entry)
                    continue
                tar.add(path, arcname=rel, recursive=False)
        if dockerfile_text is not None:
            name = ".dockerfile." + secrets.token_hex(10)
            info = tarfile.TarInfo(name)
            info.size = len(dockerfile_text)
            info.mode = 0o600
            tar.addfile(info, _Bytes(dockerfile_text))
            return name
    return rel_df


class _Bytes:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def read(self, n: int = -1) -> bytes:
        out, self._data = (self._data, b"") if n < 0 else (self._data[:n], self._data[n:])
        return out


def _chunks(stream: IO[bytes]) -> Iterator[bytes]:
    while block := stream.read(CHUNK):
        yield block


def cmd_build(cli: Cli, ns: argparse.Namespace) -> None:
    source = ns.args[0]
    params: dict[str, Any] = {
        "t": ns.tag, "q": "1" if ns.quiet else "0", "nocache": "1" if ns.no_cache else "0",
        "pull": "1" if ns.pull else "0", "rm": "1" if ns.rm else "0", "forcerm": "1" if ns.force_rm else "0",
        "buildargs": json.dumps(_key_values(ns.build_arg, "build-arg")),
        "labels": json.dumps(_key_values(ns.label, "label")), "version": "1",
    }
    for key, value in (("target", ns.target), ("networkmode", ns.network), ("platform", ns.platform)):
        if value:
            params[key] = value
    if ns.cache_from:
        params["cachefrom"] = json.dumps(ns.cache_from)
    with tempfile.TemporaryFile() as body:
        if source == "-":
            if ns.file == "-":
                raise CliError("invalid argument: can't use stdin for both build context and dockerfile")
            body.write(sys.stdin.buffer.read())  # a tar (any compression) or a lone Dockerfile: the daemon tells
            if ns.file:
                params["dockerfile"] = ns.file
        else:
            if not os.path.isdir(source):
                raise CliError(f'unable to prepare context: path "{source}" not found')
            text = sys.stdin.buffer.read() if ns.file == "-" else None
            params["dockerfile"] = _context_tar(source, None if ns.file == "-" else ns.file, text, body)
        body.seek(0)
        res = raw_post(cli.client, "/build", params=params, data=_chunks(body),
                       headers={"Content-Type": "application/x-tar"}, stream=True)
        aux = jsonmessage.display(json_stream(res), cli.out, cli.out.isatty())
    image_id = next((a["ID"] for a in aux if isinstance(a, dict) and a.get("ID")), "")
    if ns.iidfile:
        if not image_id:
            raise CliError("cannot write the image ID: the daemon did not report it")
        with open(ns.iidfile, "w", encoding="utf-8") as f:
            f.write(image_id)


def _build_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-t", "--tag", action="append", default=[], metavar="list",
                   help='Name and optionally a tag in the "name:tag" format')
    p.add_argument("-f", "--file", metavar="string", help="Name of the Dockerfile (Default is \"PATH/Dockerfile\")")
    p.add_argument("--build-arg", action="append", default=[], metavar="list", help="Set build-time variables")
    p.add_argument("--target", metavar="string", help="Set the target build stage to build.")
    p.add_argument("--label", action="append", default=[], metavar="list", help="Set metadata for an image")
    p.add_argument("--cache-from", action="append", default=[], metavar="strings",
                   help="Images to consider as cache sources")
    p.add_argument("--network", metavar="string", help="Set the networking mode for the RUN instructions during build")
    p.add_argument("--platform", metavar="string", help="Set platform if server is multi-platform capable")
    p.add_argument("--iidfile", metavar="string", help="Write the image ID to the file")
    add_bool(p, "--no-cache", help="Do not use cache when building the image")
    add_bool(p, "--pull", help="Always attempt to pull a newer version of the image")
    add_bool(p, "--rm", default=True, help="Remove intermediate containers after a successful build")
    add_bool(p, "--force-rm", help="Always remove intermediate containers")
    add_bool(p, "-q", "--quiet", help="Suppress the build output and print image ID on success")


def register(tree: CommandTree) -> None:
    tree.add(["build", "image build"], "[OPTIONS] PATH | URL | -",
             "Build an image from a Dockerfile", cmd_build, _build_flags, Arity(1, 1))
