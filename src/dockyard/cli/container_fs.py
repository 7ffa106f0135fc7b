"""A container's files from the command line: cp, diff, export, commit (docker's ``cli/command/container``).

``cp`` follows docker's ``go-archive`` copy rules (``CopyInfoSourcePath``,
``CopyInfoDestinationPath``, ``PrepareArchiveCopy``): whether the destination
exists, is a directory, or is asserted to be one (trailing ``/`` or ``/.``)
decides which directory the archive is extracted into and whether its top
entry is renamed. Local extraction goes through the engine's safe extractor,
so a hostile archive from the daemon cannot write outside the destination.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import stat
import sys
import tarfile
import threading
from dataclasses import dataclass
from typing import IO, Any, Iterator

from .. import errors as engine_errors
from ..util import reference
from ..util import archive as safe_archive
from .command import Arity, Cli, CliError, CommandTree, add_bool
from .connection import raw_get
from .output import human_size

CHUNK = 1 << 20

# Go's os.FileMode type bits, as the daemon's path-stat header carries them
MODE_DIR = 1 << 31
MODE_SYMLINK = 1 << 27
MODE_DEVICE = 1 << 26
MODE_IRREGULAR = 1 << 19


# ---------------------------------------------------------------- diff, export, commit

_KINDS = {0: "C", 1: "A", 2: "D"}


def cmd_diff(cli: Cli, ns: argparse.Namespace) -> None:
    changes = raw_get(cli.client, f"/containers/{ns.args[0]}/changes").json() or []
    cli.out.write("".join(f"{_KINDS.get(c.get('Kind'), '?')} {c.get('Path', '')}\n" for c in changes))


def validate_output_path(path: str) -> None:
    """docker's ValidateOutputPath: the parent must exist; an existing path must be a directory or a file."""
    parent = os.path.dirname(os.path.normpath(path))
    if parent and parent != "." and not os.path.exists(parent):
        raise CliError(f'invalid output path: directory "{parent}" does not exist')
    if os.path.exists(path):
        mode = os.stat(path).st_mode
        if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
            kind = "got a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "got an irregular file"
            raise CliError(f'invalid output path: "{path}" must be a directory or a regular file: {kind}')


def _write_stream(chunks: Iterator[bytes], target: IO[bytes]) -> None:
    for chunk in chunks:
        target.write(chunk)


def cmd_export(cli: Cli, ns: argparse.Namespace) -> None:
    if not ns.output and sys.stdout.isatty():
        raise CliError("cowardly refusing to save to a terminal. Use the -o flag or redirect")
    if ns.output:
        parent = os.path.dirname(os.path.normpath(ns.output))
        if parent and parent != "." and not os.path.exists(parent):
            raise CliError(f"failed to export container: invalid output path: stat {parent}: no such file or directory")
        validate_output_path(ns.output)
    res = raw_get(cli.client, f"/containers/{ns.args[0]}/export", stream=True)
    chunks = res.iter_content(chunk_size=CHUNK)
    if not ns.output:
        _write_stream(chunks, sys.stdout.buffer)
        sys.stdout.buffer.flush()
        return
    # docker's CopyToFile: a temporary file beside the target, renamed over it once complete
    tmp = os.path.join(os.path.dirname(os.path.abspath(ns.output)), f".docker_temp_{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            _write_stream(chunks, f)
        os.replace(tmp, ns.output)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def cmd_commit(cli: Cli, ns: argparse.Namespace) -> None:
    container = ns.args[0]
    repo = tag = None
    if len(ns.args) > 1 and ns.args[1]:
        try:
            ref = reference.parse(ns.args[1], default_tag=False)
        except engine_errors.InvalidParameter as e:
            raise CliError(str(e)) from None
        if ref.digest:
            raise CliError("refusing to create a tag with a digest reference")
        repo, tag = ref.name, ref.tag or "latest"
    result = cli.client.api.commit(container, repository=repo, tag=tag, message=ns.message or None,
                                   author=ns.author or None, pause=ns.pause, changes=ns.change or None)
    cli.out.write(result["Id"] + "\n")


# ---------------------------------------------------------------- cp: path rules (go-archive)

@dataclass
class CopyInfo:
    path: str
    exists: bool = False
    is_dir: bool = False
    rebase_name: str = ""


def _has_trailing_sep(path: str) -> bool:
    return path.endswith("/")


def _specifies_current_dir(path: str) -> bool:
    return os.path.basename(path) == "."


def split_path_dir_entry(path: str) -> tuple[str, str]:
    """go-archive SplitPathDirEntry: ``/a/b/`` -> (``/a``, ``b``), ``/a/b/.`` -> (``/a/b``, ``.``)."""
    cleaned = os.path.normpath(path) if path else "."
    if path.startswith("//"):
        cleaned = "/" + cleaned.lstrip("/")
    if _specifies_current_dir(path):
        cleaned += "/."
    return os.path.dirname(cleaned) or ".", os.path.basename(cleaned)


def preserve_trailing(cleaned: str, original: str) -> str:
    """archive.PreserveTrailingDotOrSeparator."""
    if _specifies_current_dir(original) and not _specifies_current_dir(cleaned):
        cleaned += "/."
    if _has_trailing_sep(original) and not _has_trailing_sep(cleaned):
        cleaned += "/"
    return cleaned


def resolve_local_path(path: str) -> str:
    return preserve_trailing(os.path.abspath(path), path)


def get_rebase_name(path: str, resolved: str) -> tuple[str, str]:
    """archive.GetRebaseName: keep the name the user asked for when a symlink was resolved."""
    if _specifies_current_dir(path) and not _specifies_current_dir(resolved):
        resolved += "/."
    if _has_trailing_sep(path) and not _has_trailing_sep(resolved):
        resolved += "/"
    rebase = os.path.basename(path) if os.path.basename(path) != os.path.basename(resolved) else ""
    return resolved, rebase


def _eval_symlinks(path: str) -> str:
    """filepath.EvalSymlinks, with Go's error text for a missing path."""
    if not os.path.lexists(path.rstrip("/") or "/"):
        raise CliError(f"lstat {path.rstrip('/') or '/'}: no such file or directory")
    return os.path.realpath(path)


def copy_info_source_path(path: str, follow_link: bool) -> CopyInfo:
    """archive.CopyInfoSourcePath for a local source."""
    if follow_link:
        resolved, rebase = get_rebase_name(path, _eval_symlinks(path))
    else:
        dir_part, base = os.path.split(path)
        resolved_dir = _eval_symlinks(dir_part or ".")
        resolved = resolved_dir.rstrip("/") + "/" + base
        rebase = os.path.basename(path) if _has_trailing_sep(path) and \
            os.path.basename(path) != os.path.basename(resolved) else ""
    try:
        st = os.lstat(resolved)
    except FileNotFoundError:
        raise CliError(f"lstat {resolved}: no such file or directory") from None
    except NotADirectoryError:
        raise CliError(f"lstat {resolved}: not a directory") from None
    return CopyInfo(resolved, True, stat.S_ISDIR(st.st_mode), rebase)


def copy_info_destination_path(path: str) -> CopyInfo:
    """archive.CopyInfoDestinationPath for a local destination: symlinks followed; the parent must exist."""
    original = path
    for _ in range(11):
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            parent, _ = split_path_dir_entry(path)
            if not os.path.exists(parent):
                raise CliError(f"stat {parent}: no such file or directory") from None
            if not os.path.isdir(parent):
                raise CliError("not a directory") from None
            return CopyInfo(path)
        except NotADirectoryError:
            raise CliError(f"lstat {path}: not a directory") from None
        if not stat.S_ISLNK(st.st_mode):
            return CopyInfo(path, True, stat.S_ISDIR(st.st_mode))
        target = os.readlink(path)
        if not target.startswith("/"):
            target = os.path.join(split_path_dir_entry(path)[0], target)
        path = target
    raise CliError(f"too many symlinks in {original}")


def prepare_archive_copy(src: CopyInfo, dst: CopyInfo) -> tuple[str, tuple[str, str] | None]:
    """archive.PrepareArchiveCopy: the directory to extract into and the (old, new) top-name rebase, if any."""
    dst_dir, dst_base = split_path_dir_entry(dst.path)
    _, src_base = split_path_dir_entry(src.path)
    if dst.exists and dst.is_dir:
        return dst.path, None
    if dst.exists and src.is_dir:
        raise CliError("cannot copy directory")
    if not dst.exists and not src.is_dir and (_has_trailing_sep(dst.path) or _specifies_current_dir(dst.path)):
        raise CliError("no such directory")
    return dst_dir, (src.rebase_name or src_base, dst_base)


def rebase_name(name: str, old: str, new: str) -> str:
    """RebaseArchiveEntries: the first occurrence of the old top name becomes the new one."""
    return name.replace(old, new, 1)


# ---------------------------------------------------------------- cp: streams

class _PipeWriter(threading.Thread):
    """Runs ``produce(write_end)`` on a thread; the read end is a file to stream from."""

    def __init__(self, produce: Any) -> None:
        super().__init__(daemon=True)
        r, w = os.pipe()
        self.reader = os.fdopen(r, "rb")
        self._w = os.fdopen(w, "wb")
        self._produce = produce
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._produce(self._w)
        except BaseException as e:  # handed to the reader's side
            self.error = e
        finally:
            try:
                self._w.close()
            except OSError:
                pass


def _rebased_tar(src: IO[bytes], old: str, new: str, out: IO[bytes]) -> None:
    with tarfile.open(fileobj=src, mode="r|") as tin, tarfile.open(fileobj=out, mode="w|",
                                                                   format=tarfile.PAX_FORMAT) as tout:
        for m in tin:
            m.name = rebase_name(m.name, old, new)
            if m.islnk():
                m.linkname = rebase_name(m.linkname, old, new)
            tout.addfile(m, tin.extractfile(m) if m.isreg() else None)


class _GoTarFile(tarfile.TarFile):
    """A tar that ends as Go's archive/tar ends one: two zero blocks, no padding to a 10 KiB record.

    docker's summary line counts the bytes sent, so a 3-byte file is ``2.05kB`` as with docker.
    """

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self.fileobj.write(tarfile.NUL * (tarfile.BLOCKSIZE * 2))
        finally:
            if not self._extfileobj:
                self.fileobj.close()


class _Position:
    """A write-only stream that knows its position (TarFile asks; a pipe cannot tell)."""

    def __init__(self, out: IO[bytes]) -> None:
        self.out = out
        self.offset = 0

    def write(self, data: bytes) -> int:
        self.out.write(data)
        self.offset += len(data)
        return len(data)

    def tell(self) -> int:
        return self.offset


def _local_tar(src: CopyInfo, arcname: str, out: IO[bytes]) -> None:
    with _GoTarFile(fileobj=_Position(out), mode="w", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[arg-type]
        tar.add(src.path, arcname=arcname, filter=_whole_seconds)


def _whole_seconds(info: tarfile.TarInfo) -> tarfile.TarInfo:
    """go-archive truncates mtimes to the second (no PAX record for a fraction)."""
    info.mtime = int(info.mtime)
    return info


class _Counting:
    """A chunk iterator that counts what went by (the summary docker prints on a terminal)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self.chunks = chunks
        self.total = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.chunks:
            self.total += len(chunk)
            yield chunk


class _ChunkReader:
    """A file-like reader over a chunk iterator (the extractor reads from files)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._it = iter(chunks)
        self._buf = b""

    def read(self, n: int = -1) -> bytes:
        while n < 0 or len(self._buf) < n:
            chunk = next(self._it, None)
            if chunk is None:
                break
            self._buf += chunk
        if n < 0:
            data, self._buf = self._buf, b""
        else:
            data, self._buf = self._buf[:n], self._buf[n:]
        return data

    def readable(self) -> bool:
        return True


def _file_chunks(f: IO[bytes]) -> Iterator[bytes]:
    while True:
        chunk = f.read(CHUNK)
        if not chunk:
            return
        yield chunk


def stat_path(cli: Cli, container: str, path: str) -> dict[str, Any] | None:
    """The daemon's ``X-Docker-Container-Path-Stat`` for a path in the container, None when it cannot tell."""
    api = cli.client.api
    res = api.head(api._url("/containers/{0}/archive", container), params={"path": path})
    header = res.headers.get("X-Docker-Container-Path-Stat")
    if res.status_code != 200 or not header:
        return None
    return json.loads(base64.b64decode(header))


def split_cp_arg(arg: str) -> tuple[str, str]:
    """docker's splitCpArg: ``CONTAINER:PATH``, unless the argument is an explicit local path."""
    if arg.startswith("/"):
        return "", arg
    container, sep, path = arg.partition(":")
    if not sep or container.startswith("."):
        return "", arg
    return container, path


def _summary(cli: Cli, quiet: bool, total: int, dest: str) -> None:
    if not quiet:
        cli.err.write(f"Successfully copied {human_size(total, 3)} to {dest}\n")


def copy_from_container(cli: Cli, container: str, src_path: str, dst_path: str, follow: bool, quiet: bool) -> None:
    if dst_path != "-":
        dst_path = resolve_local_path(dst_path)
        validate_output_path(dst_path)
    rebase = ""
    if follow:
        link = stat_path(cli, container, src_path)
        if link and link.get("mode", 0) & MODE_SYMLINK:
            target = link.get("linkTarget", "")
            if not target.startswith("/"):
                target = os.path.join(split_path_dir_entry(src_path)[0], target)
            src_path, rebase = get_rebase_name(src_path, os.path.normpath(target))
    api = cli.client.api
    res = api._get(api._url("/containers/{0}/archive", container), params={"path": src_path}, stream=True)
    api._raise_for_status(res)
    chunks = _Counting(res.iter_content(chunk_size=CHUNK))
    if dst_path == "-":
        _write_stream(iter(chunks), sys.stdout.buffer)
        sys.stdout.buffer.flush()
        return
    header = res.headers.get("X-Docker-Container-Path-Stat")
    info = json.loads(base64.b64decode(header)) if header else {}
    src = CopyInfo(src_path, True, bool(info.get("mode", 0) & MODE_DIR), rebase)
    if rebase:
        src_base = split_path_dir_entry(src_path)[1]
        stream: Any = _rebased_reader(_ChunkReader(iter(chunks)), src_base, rebase)
    else:
        stream = _ChunkReader(iter(chunks))
    dst = copy_info_destination_path(dst_path)
    dst_dir, rename = prepare_archive_copy(src, dst)
    if rename is not None:
        stream = _rebased_reader(stream, *rename)
    try:
        safe_archive.extract(stream, dst_dir, devices=os.geteuid() == 0, same_owner=False)
    except safe_archive.UnsafeArchive as e:
        raise CliError(str(e)) from None
    _summary(cli, quiet, chunks.total, dst_path)


def _rebased_reader(src: Any, old: str, new: str) -> IO[bytes]:
    writer = _PipeWriter(lambda out: _rebased_tar(src, old, new, out))
    writer.start()
    return writer.reader


def copy_to_container(cli: Cli, container: str, src_path: str, dst_path: str, follow: bool, quiet: bool,
                      archive_mode: bool) -> None:
    if src_path != "-":
        src_path = resolve_local_path(src_path)
    dst = CopyInfo(dst_path)
    info = stat_path(cli, container, dst_path)
    if info is not None:
        if info.get("mode", 0) & MODE_SYMLINK:
            target = info.get("linkTarget", "")
            if not target.startswith("/"):
                target = os.path.join(split_path_dir_entry(dst_path)[0], target)
            dst.path = target
            info = stat_path(cli, container, target)
        if info is not None:
            mode = info.get("mode", 0)
            if mode & (MODE_DEVICE | MODE_IRREGULAR):
                why = "got a device" if mode & MODE_DEVICE else "got an irregular file"
                raise CliError(f'destination "{container}:{dst_path}" must be a directory or a regular file: {why}')
            dst.exists, dst.is_dir = True, bool(mode & MODE_DIR)
    writer: _PipeWriter | None = None
    if src_path == "-":
        if not dst.is_dir:
            raise CliError(f'destination "{container}:{dst_path}" must be a directory')
        body: Iterator[bytes] = _file_chunks(sys.stdin.buffer)
        target_dir = dst.path
    else:
        src = copy_info_source_path(src_path, follow)
        target_dir, rename = prepare_archive_copy(src, dst)
        arcname = rename[1] if rename is not None else (src.rebase_name or split_path_dir_entry(src.path)[1])
        writer = _PipeWriter(lambda out: _local_tar(src, arcname, out))
        writer.start()
        body = _file_chunks(writer.reader)
    counted = _Counting(body)
    params = {"path": target_dir, "noOverwriteDirNonDir": "true"}
    if archive_mode:
        params["copyUIDGID"] = "true"
    api = cli.client.api
    res = api._put(api._url("/containers/{0}/archive", container), params=params, data=iter(counted))
    if writer is not None:
        writer.join()
        if writer.error is not None:  # a local file could not be read: the archive sent is incomplete
            raise CliError(str(writer.error))
    api._raise_for_status(res)
    _summary(cli, quiet, counted.total, f"{container}:{dst.path}")


def cmd_cp(cli: Cli, ns: argparse.Namespace) -> None:
    source, destination = ns.args
    if not source:
        raise CliError("source can not be empty")
    if not destination:
        raise CliError("destination can not be empty")
    # progress and the summary only go to a terminal, unless -q was given either way
    quiet = ns.quiet if ns.quiet is not None else not sys.stdout.isatty()
    src_container, src_path = split_cp_arg(source)
    dst_container, dst_path = split_cp_arg(destination)
    if src_container and dst_container:
        raise CliError("copying between containers is not supported")
    if src_container:
        copy_from_container(cli, src_container, src_path, dst_path, ns.follow_link, quiet)
    elif dst_container:
        copy_to_container(cli, dst_container, src_path, dst_path, ns.follow_link, quiet, ns.archive)
    else:
        raise CliError("must specify at least one container source")


# ---------------------------------------------------------------- registration

def _export_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", default="", metavar="string", help="Write to a file, instead of STDOUT")


def _commit_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-a", "--author", default="", metavar="string",
                   help="Author (e.g., \"John Hannibal Smith <hannibal@a-team.com>\")")
    p.add_argument("-c", "--change", action="append", default=[], metavar="list",
                   help="Apply Dockerfile instruction to the created image")
    p.add_argument("-m", "--message", default="", metavar="string", help="Commit message")
    add_bool(p, "-p", "--pause", default=True, help="Pause container during commit (default true)")


def _cp_flags(p: argparse.ArgumentParser) -> None:
    add_bool(p, "-a", "--archive", help="Archive mode (copy all uid/gid information)")
    add_bool(p, "-L", "--follow-link", help="Always follow symbol link in SRC_PATH")
    p.add_argument("-q", "--quiet", dest="quiet", action="store_const", const=True, default=None,
                   help="Suppress progress output during copy")
    for v in ("true", "1", "t", "T", "TRUE", "True"):
        p.add_argument(f"-q={v}", f"--quiet={v}", dest="quiet", action="store_const", const=True,
                       help=argparse.SUPPRESS)
    for v in ("false", "0", "f", "F", "FALSE", "False"):
        p.add_argument(f"-q={v}", f"--quiet={v}", dest="quiet", action="store_const", const=False,
                       help=argparse.SUPPRESS)


def register(tree: CommandTree) -> None:
    tree.group("container", "Manage containers")
    tree.add(["diff", "container diff"], "CONTAINER",
             "Inspect changes to files or directories on a container's filesystem", cmd_diff, None, Arity(1, 1))
    tree.add(["export", "container export"], "[OPTIONS] CONTAINER",
             "Export a container's filesystem as a tar archive", cmd_export, _export_flags, Arity(1, 1))
    tree.add(["commit", "container commit"], "[OPTIONS] CONTAINER [REPOSITORY[:TAG]]",
             "Create a new image from a container's changes", cmd_commit, _commit_flags, Arity(1, 2))
    tree.add(["cp", "container cp"], "[OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n\t"
             "dockyard cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH",
             "Copy files/folders between a container and the local filesystem", cmd_cp, _cp_flags, Arity(2, 2))
