"""The instructions that write files into a layer: WORKDIR (the missing directories), COPY and ADD.

A part of ``Builder`` (builder.py): the methods use its state, its step bookkeeping (``_use_cache``,
``_step_container``, ``_commit_chunks``) and read views of images (``_mounted``).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import posixpath
import secrets
import shutil
import stat
from typing import Iterator

from .. import errors
from ..dockerfile.parser import Node, ParseError, flag
from ..storage import rootpath
from . import copier, copyflags, gitsource, linkcopy, remote
from .cache import step_key
from .options import DEFAULT_SHELL, VIEW_PREFIX, StageState, StepError, full_config

class FileSteps:
    def _i_workdir(self, state: StageState, node: Node) -> None:
        path = self._lexer(state).word(node.rest.strip())
        if not path.startswith("/"):
            path = posixpath.join(state.config.get("WorkingDir") or "/", path)
        state.config["WorkingDir"] = posixpath.normpath(path)
        shell = state.config.get("Shell") or DEFAULT_SHELL
        created_by = " ".join([*shell, "#(nop) ", f"WORKDIR {state.config['WorkingDir']}"])
        key = step_key(state.image_id or "", created_by, state.config)
        if self._use_cache(state, key, created_by):
            return
        with self._step_container(state, [*shell, "#(nop) ", f"WORKDIR {state.config['WorkingDir']}"]):
            chunks = None
            with self._mounted(state.image_id) as root:
                parents = _missing_dirs(root, state.config["WorkingDir"])
                if parents:
                    existing = [(p, _lstat(root, p)) for p in parents]
                    opts = copier.Options(epoch=self.epoch)
                    chunks = iter(list(copier.layer_tar([], "/", True, existing, opts)))
            self._commit_chunks(state, created_by, chunks, key)

    # COPY / ADD ---------------------------------------------------------------------------------
    def _i_copy(self, state: StageState, node: Node) -> None:
        self._copy(state, node, add=False)

    def _i_add(self, state: StageState, node: Node) -> None:
        self._copy(state, node, add=True)

    def _copy(self, state: StageState, node: Node, add: bool) -> None:
        instr = "ADD" if add else "COPY"
        lexer = self._lexer(state)
        args = node.json_args()
        words = [lexer.word(a) for a in args] if args is not None else lexer.words(node.rest)
        heredoc_dir = None
        try:
            if node.heredocs:
                heredoc_dir = os.path.join(self.workdir, "heredoc-" + secrets.token_hex(6))
                os.makedirs(heredoc_dir)
                names = {h.name for h in node.heredocs}
                for h in node.heredocs:
                    with open(os.path.join(heredoc_dir, h.name), "w", encoding="utf-8") as f:
                        f.write(lexer.expand(h.content) if h.expand else h.content)
                words = [w for w in words if w.lstrip("<-").strip("'\"") not in names]
            if len(words) < 1 or (len(words) < 2 and not node.heredocs):
                raise ParseError(node.line, f"{instr} requires at least two arguments")
            srcs, dest = words[:-1], words[-1]
            from_ = flag(node, "from")
            gits = [u for u in srcs if add and gitsource.is_git(u)] if not from_ else []
            urls = [u for u in srcs if add and remote.is_url(u) and u not in gits] if not from_ else []
            srcs = [u for u in srcs if u not in urls and u not in gits]
            checksum = flag(node, "checksum")
            if checksum is not None and not urls:
                raise StepError("checksum can't be specified for non-HTTP(S) sources")
            keep_git_dir = flag(node, "keep-git-dir") not in (None, "false")
            with contextlib.ExitStack() as stack:
                if not srcs:
                    sources = []
                elif from_:
                    root = stack.enter_context(self._mounted(self._from_image(lexer.word(from_), state)))
                    sources = copier.find_sources(instr, root, srcs, from_context=False, add=False)
                else:
                    sources = copier.find_sources(instr, self.ctx.root, srcs, from_context=True, add=add)
                excludes = [lexer.word(v or "") for k, v in node.flags if k == "exclude"]
                matcher = copyflags.exclude_matcher(excludes)
                if matcher is not None:
                    # as BuildKit: a source is matched by its name in the directory it was found in,
                    # what is below a directory source by its path in that directory
                    sources = [src for src in sources if not matcher.excluded(posixpath.basename(src.name))]
                if flag(node, "parents") not in (None, "false"):
                    for src in sources:
                        src.parents = True
                if heredoc_dir:
                    sources += [copier.Source(os.path.join(heredoc_dir, h.name), h.name, False)
                                for h in node.heredocs]
                if urls:
                    fetched = os.path.join(self.workdir, "fetch-" + secrets.token_hex(6))
                    os.makedirs(fetched)
                    stack.callback(shutil.rmtree, fetched, True)
                    want = remote.parse_checksum(lexer.word(checksum)) if checksum else None
                    for url in urls:
                        path, name = remote.fetch(url, fetched, want)
                        sources.append(copier.Source(path, name, False))
                commits = []
                for src in gits:
                    checkout = os.path.join(self.workdir, "git-" + secrets.token_hex(6))
                    stack.callback(shutil.rmtree, checkout, True)
                    path, commit = gitsource.fetch(src, checkout, keep_git_dir)
                    commits.append(f"{src}@{commit}")
                    sources.append(copier.Source(path, src, True))
                if not sources:
                    raise StepError(f"{instr} failed: no source files were specified")
                # a git source is compared by its commit: a checkout's own files (a kept .git) vary
                digest = copier.checksum([s for s in sources if s.name not in gits])
                if commits:
                    digest = hashlib.sha256("\0".join([digest, *commits]).encode()).hexdigest()
                kind = "multi" if len(sources) > 1 else ("dir" if sources[0].is_dir else "file")
                shell = state.config.get("Shell") or DEFAULT_SHELL
                created_by = " ".join([*shell, f"#(nop) {instr} {kind}:{digest} in {dest} "])
                flags_key = {"chown": flag(node, "chown"), "chmod": flag(node, "chmod")}
                if keep_git_dir:
                    flags_key["keep-git-dir"] = True
                if excludes or flag(node, "parents") is not None:
                    flags_key.update(exclude=excludes, parents=flag(node, "parents"))
                target = dest if dest.startswith("/") else posixpath.join(state.config.get("WorkingDir") or "/",
                                                                          dest)
                link = flag(node, "link") not in (None, "false")
                if link:
                    key = linkcopy.key(created_by, target, flags_key)
                    hit = None if self.opts.no_cache else self.cache.get(key)
                    if hit:
                        self.out(" ---> Using cache\n")
                        state.image_id = linkcopy.restack(self.images, hit, state.image_id,
                                                          full_config(state.config))
                        self.cache.put(key, state.image_id, "", created_by)
                        return
                else:
                    key = step_key(state.image_id or "", created_by, {**state.config, "_flags": flags_key})
                    if self._use_cache(state, key, created_by):
                        return
                many = len(sources) > 1 or any(src.parents for src in sources)
                if many and not dest.endswith("/"):
                    raise StepError(f"When using {instr} with more than one source file, the destination must be "
                                    f"a directory and end with a /")
                image_root = stack.enter_context(self._mounted(state.image_id))
                dest_is_dir = dest.endswith("/") or many or (
                    not link and os.path.isdir(rootpath.resolve_in_root(image_root, target)))
                opts = copier.Options(epoch=self.epoch, keep_owner=bool(from_), exclude=matcher)
                chown = flag(node, "chown")
                chmod = flag(node, "chmod")
                try:
                    if chown:
                        opts.uid, opts.gid = copyflags.lookup_chown(lexer.word(chown), image_root)
                    if chmod:
                        opts.mode = copyflags.parse_chmod(lexer.word(chmod))
                except copyflags.FlagError as e:
                    raise StepError(str(e)) from None
                base = posixpath.normpath(target)
                top = base if (dest_is_dir or any(s.is_dir or s.extract for s in sources)) \
                    else posixpath.dirname(base)
                # --link: the layer is made as if on an empty image, so it fits any parent
                parents = [(p, None if link else _lstat(image_root, p)) for p in _ancestors(top)]
                chunks = copier.layer_tar(sources, base, dest_is_dir, parents, opts)
                self._commit_chunks(state, created_by, chunks, key)
        finally:
            if heredoc_dir:
                shutil.rmtree(heredoc_dir, ignore_errors=True)

    def _from_image(self, name: str, state: StageState) -> str | None:
        names = self.stage_names
        lowered = name.lower()
        for idx, stage_name in names.items():
            if stage_name and stage_name == lowered:
                if idx >= state.stage.index:
                    raise StepError(f"invalid from flag value {name}: refers to current or later build stage")
                return self.stage_images.get(idx)
        if name.isdigit():
            idx = int(name)
            if idx >= state.stage.index:
                raise StepError(f"invalid from flag value {name}: refers to current or later build stage")
            return self.stage_images.get(idx)
        try:
            return self.images.resolve(name).id
        except errors.NotFound:
            pass
        try:
            return self._base_image(name).id
        except errors.DockyardError as e:
            raise StepError(f"invalid from flag value {name}: {e}") from None

    @contextlib.contextmanager
    def _mounted(self, image_id: str | None) -> Iterator[str]:
        """A read view of ``image_id``'s filesystem (an empty dir for scratch)."""
        snap = self.engine.snapshotter
        key = VIEW_PREFIX + secrets.token_hex(8)
        target = os.path.join(self.workdir, key)
        os.makedirs(target)
        top = self.images.store.get(image_id).top_layer if image_id else None
        try:
            snap.prepare(key, top)
            try:
                snap.mount(key, target)
                try:
                    yield target
                finally:
                    snap.unmount(target)
            finally:
                snap.remove(key)
        finally:
            shutil.rmtree(target, ignore_errors=True)


def _ancestors(path: str) -> list[str]:
    """``/a/b/c`` → ``/a``, ``/a/b``, ``/a/b/c``."""
    parts = [p for p in path.split("/") if p]
    return ["/" + "/".join(parts[:i + 1]) for i in range(len(parts))]


def _lstat(root: str, path: str) -> os.stat_result | None:
    try:
        st = os.stat(rootpath.resolve_in_root(root, path))
    except OSError:
        return None
    return st if stat.S_ISDIR(st.st_mode) else None


def _missing_dirs(root: str, path: str) -> list[str]:
    anc = _ancestors(path)
    if all(_lstat(root, p) for p in anc):
        return []
    return anc
