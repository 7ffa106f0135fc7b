"""Image commands: images, image inspect, history, tag, rmi, image prune, save, load, import."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from typing import Any, BinaryIO, Iterator

import docker

from ..util import timefmt
from .. import errors as engine_errors
from ..util import reference
from . import config, jsonmessage
from .command import (Arity, Cli, CliError, CommandTree, add_bool, add_filter_flag, add_format_flag, confirm,
                      filters_from)
from .common import parse_reference, print_inspect
from .connection import api_message, json_stream, raw_get, raw_post
from .output import Context, Format, ellipsis, human_size, since, truncate_id, write_formatted

CHUNK = 1 << 20


# ---------------------------------------------------------------- formatter contexts

class ImageContext(Context):
    """One row of ``docker images`` (docker's ``formatter.imageContext``)."""

    HEADERS = {
        "ID": "IMAGE ID", "Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST",
        "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE", "Containers": "CONTAINERS",
        "VirtualSize": "SIZE", "SharedSize": "SHARED SIZE", "UniqueSize": "UNIQUE SIZE",
    }
    type_name = "*formatter.imageContext"

    def __init__(self, image: dict[str, Any] | None = None, repo: str = "", tag: str = "", digest: str = "",
                 trunc: bool = True) -> None:
        self.i = image or {}
        self.repo, self.tag, self.digest, self.trunc = repo, tag, digest, trunc

    def ID(self) -> str:
        return truncate_id(self.i["Id"]) if self.trunc else self.i["Id"]

    def Repository(self) -> str:
        return self.repo

    def Tag(self) -> str:
        return self.tag

    def Digest(self) -> str:
        return self.digest

    def CreatedSince(self) -> str:
        return since(self.i.get("Created", 0))

    def CreatedAt(self) -> str:
        return timefmt.go_time_string(self.i.get("Created", 0))

    def Size(self) -> str:
        return human_size(self.i.get("Size", 0), 3)

    def VirtualSize(self) -> str:
        return human_size(self.i.get("VirtualSize", self.i.get("Size", 0)))

    def Containers(self) -> str:
        n = self.i.get("Containers", -1)
        return "N/A" if n == -1 else str(n)

    def SharedSize(self) -> str:
        n = self.i.get("SharedSize", -1)
        return "N/A" if n == -1 else human_size(n)

    def UniqueSize(self) -> str:
        size, shared = self.i.get("Size", -1), self.i.get("SharedSize", -1)
        return "N/A" if size == -1 or shared == -1 else human_size(size - shared)


def is_dangling(image: dict[str, Any]) -> bool:
    tags, digests = image.get("RepoTags") or [], image.get("RepoDigests") or []
    if not tags and not digests:
        return True
    return tags == ["<none>:<none>"] and digests == ["<none>@<none>"]


def split_tag(ref: str) -> tuple[str, str | None]:
    """``repo:tag`` -> (repo, tag); the colon of a registry port is not a tag."""
    name, sep, tag = ref.rpartition(":")
    if sep and "/" not in tag:
        return name, tag
    return ref, None


def image_rows(images: list[dict[str, Any]], trunc: bool, digests: bool) -> Iterator[ImageContext]:
    """docker's imageFormat: a row per repository tag (times digest with --digests), or one <none> row."""
    for img in images:
        if is_dangling(img):
            yield ImageContext(img, "<none>", "<none>", "<none>", trunc)
            continue
        repo_tags: dict[str, list[str]] = {}
        repo_digests: dict[str, list[str]] = {}
        for ref in img.get("RepoTags") or []:
            repo, tag = split_tag(ref)
            if tag is not None and repo != "<none>":
                repo_tags.setdefault(repo, []).append(tag)
        for ref in img.get("RepoDigests") or []:
            repo, sep, dgst = ref.partition("@")
            if sep and repo != "<none>":
                repo_digests.setdefault(repo, []).append(dgst)
        for repo, tags in repo_tags.items():
            # a repository's digests never make rows of their own; shown beside its tags with --digests
            dgsts = repo_digests.pop(repo, [])
            if not digests:
                dgsts = []
            for tag in tags:
                if not dgsts:
                    yield ImageContext(img, repo, tag, "<none>", trunc)
                for d in dgsts:
                    yield ImageContext(img, repo, tag, d, trunc)
        for repo, dgsts in repo_digests.items():
            if digests:
                for d in dgsts:
                    yield ImageContext(img, repo, "<none>", d, trunc)
            else:
                yield ImageContext(img, repo, "<none>", "", trunc)


class HistoryContext(Context):
    """One row of ``docker history`` (docker's ``historyContext``)."""

    HEADERS = {"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "CreatedBy": "CREATED BY",
               "Size": "SIZE", "Comment": "COMMENT"}
    type_name = "*image.historyContext"

    def __init__(self, h: dict[str, Any] | None = None, trunc: bool = True, human: bool = True) -> None:
        self.h = h or {}
        self.trunc, self.human = trunc, human

    def ID(self) -> str:
        return truncate_id(self.h["Id"]) if self.trunc else self.h["Id"]

    def CreatedAt(self) -> str:
        return timefmt.rfc3339_local(self.h.get("Created", 0))

    def CreatedSince(self) -> str:
        return since(self.h.get("Created", 0)) if self.human else self.CreatedAt()

    def CreatedBy(self) -> str:
        text = (self.h.get("CreatedBy") or "").replace("\t", " ")
        return ellipsis(text, 45) if self.trunc else text

    def Size(self) -> str:
        size = self.h.get("Size", 0)
        return human_size(size, 3) if self.human else str(size)

    def Comment(self) -> str:
        return self.h.get("Comment") or ""


IMAGES_TABLE = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
IMAGES_TABLE_DIGESTS = "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
QUIET = "{{.ID}}"
HISTORY_TABLE = "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
HISTORY_TABLE_RAW = "table {{.ID}}\t{{.CreatedAt}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"


def image_format(source: str, quiet: bool, digests: bool) -> Format:
    """docker's NewImageFormat."""
    if source in ("", "table"):
        return Format(QUIET if quiet else IMAGES_TABLE_DIGESTS if digests else IMAGES_TABLE)
    fmt = Format(source)
    if fmt.is_table and digests and "{{.Digest}}" not in source:
        fmt = Format(source + "\t{{.Digest}}")
    return fmt


# ---------------------------------------------------------------- commands

def cmd_images(cli: Cli, ns: argparse.Namespace) -> None:
    filters = filters_from(ns.filter, ns.command_parser)
    if ns.args:
        filters.setdefault("reference", []).append(ns.args[0])
    images = cli.client.api.images(all=ns.all, filters=filters or None)
    source = ns.format or ("" if ns.quiet else config.default_format("imagesFormat"))
    write_formatted(cli.out, image_format(source, ns.quiet, ns.digests),
                    image_rows(images, not ns.no_trunc, ns.digests), ImageContext())


def cmd_image_inspect(cli: Cli, ns: argparse.Namespace) -> int:
    found: list[Any] = []
    problems: list[str] = []
    for name in ns.args:
        try:
            found.append(cli.client.api.inspect_image(name))
        except docker.errors.NotFound as e:
            problems.append(f"Error response from daemon: {api_message(e)}")
    print_inspect(cli, found, ns.format)
    for p in problems:
        cli.err.write(p + "\n")
    return 1 if problems else 0


def cmd_history(cli: Cli, ns: argparse.Namespace) -> None:
    rows = cli.client.api.history(ns.args[0])
    source = ns.format or "table"
    if source == "table":
        fmt = Format(QUIET if ns.quiet else HISTORY_TABLE if ns.human else HISTORY_TABLE_RAW)
    else:
        fmt = Format(source)
    trunc = not ns.no_trunc
    write_formatted(cli.out, fmt, (HistoryContext(h, trunc, ns.human) for h in rows), HistoryContext())


def cmd_tag(cli: Cli, ns: argparse.Namespace) -> None:
    source, target = ns.args
    ref = parse_reference(target)
    if ref.digest:
        raise CliError("refusing to create a tag with a digest reference")
    # dockerd takes the normalised name, as the docker CLI sends it
    cli.client.api.tag(source, ref.name, ref.tag or reference.DEFAULT_TAG)


def cmd_rmi(cli: Cli, ns: argparse.Namespace) -> int:
    problems: list[str] = []
    for name in ns.args:
        try:
            results = cli.client.api.remove_image(name, force=ns.force, noprune=ns.no_prune)
        except docker.errors.APIError as e:
            problems.append(f"Error response from daemon: {api_message(e)}")
            continue
        for item in results or []:
            if item.get("Untagged"):
                cli.out.write(f"Untagged: {item['Untagged']}\n")
            if item.get("Deleted"):
                cli.out.write(f"Deleted: {item['Deleted']}\n")
    if problems:
        cli.err.write("\n".join(problems) + "\n")
        return 1
    return 0


PRUNE_DANGLING = "WARNING! This will remove all dangling images."
PRUNE_ALL = "WARNING! This will remove all images without at least one container associated to them."


def cmd_image_prune(cli: Cli, ns: argparse.Namespace) -> int:
    filters = filters_from(ns.filter, ns.command_parser, "--filter")
    filters["dangling"] = ["false" if ns.all else "true"]
    if not ns.force and not confirm(cli.out, (PRUNE_ALL if ns.all else PRUNE_DANGLING) +
                                    "\nAre you sure you want to continue?"):
        return 0
    report = cli.client.api.prune_images(filters=filters)
    deleted = report.get("ImagesDeleted") or []
    if deleted:
        lines = ["Deleted Images:"]
        for item in deleted:
            lines.append(f"untagged: {item['Untagged']}" if item.get("Untagged") else f"deleted: {item.get('Deleted')}")
        cli.out.write("\n".join(lines) + "\n\n")
    cli.out.write(f"Total reclaimed space: {human_size(report.get('SpaceReclaimed') or 0)}\n")
    return 0


def cmd_save(cli: Cli, ns: argparse.Namespace) -> None:
    if not ns.output and cli.out.isatty():
        raise CliError("cowardly refusing to save to a terminal. Use the -o flag or redirect")
    if ns.output:
        directory = os.path.dirname(os.path.abspath(ns.output))
        if not os.path.isdir(directory):
            raise CliError(f'failed to save image: invalid output path: directory "{directory}" does not exist')
    res = raw_get(cli.client, "/images/get", params={"names": ns.args}, stream=True)
    if not ns.output:
        out = sys.stdout.buffer
        for chunk in res.iter_content(CHUNK):
            out.write(chunk)
        out.flush()
        return
    # Written beside the target and renamed, so a failed save leaves no partial file.
    fd, tmp = tempfile.mkstemp(prefix=".docker_temp_", dir=os.path.dirname(os.path.abspath(ns.output)))
    try:
        with os.fdopen(fd, "wb") as f:
            for chunk in res.iter_content(CHUNK):
                f.write(chunk)
        os.replace(tmp, ns.output)
    except BaseException:
        os.unlink(tmp)
        raise


def _chunks(stream: BinaryIO) -> Iterator[bytes]:
    while True:
        block = stream.read(CHUNK)
        if not block:
            return
        yield block


def cmd_load(cli: Cli, ns: argparse.Namespace) -> None:
    if ns.input:
        try:
            src: BinaryIO = open(ns.input, "rb")
        except OSError as e:
            raise CliError(f"open {ns.input}: {e.strerror.lower() if e.strerror else e}") from None
    else:
        if sys.stdin.isatty():
            raise CliError("requested load from stdin, but stdin is empty")
        src = sys.stdin.buffer
    with src:
        res = raw_post(cli.client, "/images/load", params={"quiet": "1" if ns.quiet else "0"},
                       data=_chunks(src), headers={"Content-Type": "application/x-tar"}, stream=True)
        jsonmessage.display(json_stream(res), cli.out, cli.out.isatty())


def cmd_import(cli: Cli, ns: argparse.Namespace) -> None:
    source = ns.args[0]
    repo = ns.args[1] if len(ns.args) == 2 else ""  # docker takes no reference from three or more arguments
    if repo:
        try:
            reference.parse(repo, default_tag=False)
        except engine_errors.InvalidParameter as e:
            raise CliError(str(e)) from None
    params: dict[str, Any] = {"changes": ns.change}
    if repo:
        params["repo"] = repo
    if ns.message:
        params["message"] = ns.message
    if ns.platform:
        params["platform"] = ns.platform
    body: Any = None
    if source == "-":
        params["fromSrc"] = "-"
        body = _chunks(sys.stdin.buffer)
        src = None
    elif source.startswith(("http://", "https://")):
        params["fromSrc"] = source
        src = None
    else:
        try:
            src = open(source, "rb")
        except OSError as e:
            raise CliError(f"open {source}: {e.strerror.lower() if e.strerror else e}") from None
        params["fromSrc"] = "-"
        body = _chunks(src)
    try:
        res = raw_post(cli.client, "/images/create", params=params, data=body,
                       headers={"Content-Type": "application/tar"}, stream=True)
        jsonmessage.display(json_stream(res), cli.out, cli.out.isatty())
    finally:
        if src is not None:
            src.close()


# ---------------------------------------------------------------- registration

def _images_flags(p: argparse.ArgumentParser) -> None:
    add_bool(p, "-a", "--all", help="Show all images (default hides intermediate images)")
    add_bool(p, "--digests", help="Show digests")
    add_filter_flag(p)
    add_format_flag(p)
    add_bool(p, "--no-trunc", help="Don't truncate output")
    add_bool(p, "-q", "--quiet", help="Only show image IDs")


def _inspect_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--format", default="", metavar="string", help="Format output using a custom template")


def _history_flags(p: argparse.ArgumentParser) -> None:
    add_format_flag(p)
    add_bool(p, "-H", "--human", default=True, help="Print sizes and dates in human readable format")
    add_bool(p, "--no-trunc", help="Don't truncate output")
    add_bool(p, "-q", "--quiet", help="Only show image IDs")


def _rmi_flags(p: argparse.ArgumentParser) -> None:
    add_bool(p, "-f", "--force", help="Force removal of the image")
    add_bool(p, "--no-prune", help="Do not delete untagged parents")


def _prune_flags(p: argparse.ArgumentParser) -> None:
    add_bool(p, "-a", "--all", help="Remove all unused images, not just dangling ones")
    p.add_argument("--filter", action="append", default=[], metavar="filter",
                   help="Provide filter values (e.g. \"until=<timestamp>\")")
    add_bool(p, "-f", "--force", help="Do not prompt for confirmation")


def _save_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", metavar="string", help="Write to a file, instead of STDOUT")


def _load_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-i", "--input", metavar="string", help="Read from tar archive file, instead of STDIN")
    add_bool(p, "-q", "--quiet", help="Suppress the load output")


def _import_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--change", action="append", default=[], metavar="list",
                   help="Apply Dockerfile instruction to the created image")
    p.add_argument("-m", "--message", default="", metavar="string", help="Set commit message for imported image")
    p.add_argument("--platform", default="", metavar="string", help="Set platform if server is multi-platform capable")


def register(tree: CommandTree) -> None:
    tree.group("image", "Manage images")
    tree.add(["images", "image ls", "image list"], "[OPTIONS] [REPOSITORY[:TAG]]", "List images",
             cmd_images, _images_flags, Arity(0, 1))
    tree.add(["image inspect"], "[OPTIONS] IMAGE [IMAGE...]", "Display detailed information on one or more images",
             cmd_image_inspect, _inspect_flags, Arity(1))
    tree.add(["history", "image history"], "[OPTIONS] IMAGE", "Show the history of an image",
             cmd_history, _history_flags, Arity(1, 1))
    tree.add(["tag", "image tag"], "SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
             "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE", cmd_tag, None, Arity(2, 2))
    tree.add(["rmi", "image rm", "image remove"], "[OPTIONS] IMAGE [IMAGE...]", "Remove one or more images",
             cmd_rmi, _rmi_flags, Arity(1))
    tree.add(["image prune"], "[OPTIONS]", "Remove unused images", cmd_image_prune, _prune_flags, Arity(0, 0))
    tree.add(["save", "image save"], "[OPTIONS] IMAGE [IMAGE...]",
             "Save one or more images to a tar archive (streamed to STDOUT by default)",
             cmd_save, _save_flags, Arity(1))
    tree.add(["load", "image load"], "[OPTIONS]", "Load an image from a tar archive or STDIN",
             cmd_load, _load_flags, Arity(0, 0))
    tree.add(["import", "image import"], "[OPTIONS] file|URL|- [REPOSITORY[:TAG]]",
             "Import the contents from a tarball to create a filesystem image", cmd_import, _import_flags,
             Arity(1))
