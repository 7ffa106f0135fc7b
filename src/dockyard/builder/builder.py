"""One classic (non-BuildKit) build: Dockerfile stages evaluated step by step into images.

Each step makes an image on top of the previous one: metadata steps change
only the config, RUN runs the command in a real container (created, started,
waited for and removed through the container service) and commits its rw
layer, COPY/ADD/WORKDIR write a layer tar straight from the sources. Every
step's image is recorded in the build cache under its parent and what the step
does. The output is dockerd's stream, line for line.
"""

from __future__ import annotations

import contextlib
import copy
import os
import secrets
import shutil
import stat
import tarfile
import threading
import time
from typing import IO, Any, Callable, Iterator

from .. import errors
from ..dockerfile.parser import Node, ParseError, flag, heredoc_only, parse
from ..dockerfile.shell import Lexer
from ..util import reference as refs
from ..util import timefmt
from ..util.iterio import IterReader
from . import copier, entitlements, platformargs, runmounts, runsetup
from .cache import BuildCache, step_key
from .context import Context
from .filesteps import FileSteps
from .metadata import MetadataSteps
from .options import (DEFAULT_PATH, DEFAULT_SHELL, MOUNTPOINTS, PREDEFINED_ARGS, Emit, Options, StageState, StepError,
                      full_config)
from .runstep import StepRunner
from .stages import Plan, Stage, plan


class Builder(MetadataSteps, FileSteps):
    """A build: the plan and the stage loop, RUN steps and the step bookkeeping (cache, step containers,
    commits). The metadata instructions (metadata.py) and the file-writing ones (filesteps.py) are its
    parts, kept in their own modules for size; they share its state."""

    def __init__(self, engine: Any, cache: BuildCache, workdir: str, ctx: Context, opts: Options, emit: Emit,
                 cancel: threading.Event) -> None:
        self.engine = engine
        self.images = engine.images
        self.cache = cache
        self.workdir = workdir
        self.ctx = ctx
        self.opts = opts
        self._emit = emit
        self.cancel = cancel
        self.epoch = _epoch(opts.build_args.get("SOURCE_DATE_EPOCH"))
        # the automatic platform args are global-scope args from the start (a --build-arg overrides them)
        self.meta_args: dict[str, str | None] = {
            k: opts.build_args.get(k) or v for k, v in platformargs.values(opts.platform).items()}
        self.used_args: set[str] = set()
        self.stage_images: dict[int, str | None] = {}
        self.stage_names: dict[int, str] = {}
        self.step = 0
        self.total = 0
        self.escape = "\\"
        self.quiet_buffer: list[dict[str, Any]] = []
        self._runner: StepRunner | None = None
        self._step_runners: dict[str, StepRunner] = {}
        self._sources: list[Any] | None = None

    # -- output --------------------------------------------------------------------------
    def out(self, text: str) -> None:
        msg = {"stream": text}
        if self.opts.quiet:
            self.quiet_buffer.append(msg)
        else:
            self._emit(msg)

    def _header(self, node: Node) -> None:
        self.step += 1
        self.out(f"Step {self.step}/{self.total} : {node.original}")
        self.out("\n")

    # -- the build -------------------------------------------------------------------------
    def prepare(self) -> tuple[Plan, list[Stage]]:
        """Everything dockerd checks before the first step; errors here are the request's status."""
        for tag in self.opts.tags:
            refs.parse_repo_tag(tag, None)
        if self.opts.platform and self.opts.platform.split("/")[0] != "linux":
            raise errors.InvalidParameter(f'"{self.opts.platform}": unsupported platform')
        df = parse(self.ctx.dockerfile)
        self.escape = df.escape
        p = plan(df, self.opts.dockerfile, entitlements.security_insecure(self.engine.config))
        self.stage_names = {s.index: s.name for s in p.stages}
        if self.opts.target:
            names = [s.name for s in p.stages]
            if self.opts.target.lower() not in names:
                raise errors.InvalidParameter(f"failed to reach build target {self.opts.target} in Dockerfile")
            last = names.index(self.opts.target.lower())
        else:
            last = len(p.stages) - 1
        if self.opts.labels:
            words = " ".join(f'"{k}"="{v}"' for k, v in sorted(self.opts.labels.items()))
            p.stages[last].nodes.append(Node("label", f"LABEL {words}", words, line=0))
        needed = self._needed(p, last)
        self.total = len(p.meta_args) + sum(1 + len(s.nodes) for s in needed)
        return p, needed

    def _needed(self, p: Plan, last: int) -> list[Stage]:
        """The target stage and the stages it takes files or its base from, in Dockerfile order."""
        by_name = {s.name: s.index for s in p.stages if s.name}
        meta = Lexer(self._meta_defaults(p), self.escape)
        want = {last}
        todo = [last]
        while todo:
            st = p.stages[todo.pop()]
            base = meta.word(st.from_node.rest.split()[0]).lower()
            refs_ = [base, *self._stage_refs(st.nodes, meta)]
            refs_ += self._stage_refs(self._triggers(p, by_name.get(base), base, st.index), meta)
            for r in refs_:
                idx = by_name.get(r)
                if idx is None and r.isdigit() and int(r) < st.index:
                    idx = int(r)
                if idx is not None and idx < st.index and idx not in want:
                    want.add(idx)
                    todo.append(idx)
        return [s for s in p.stages if s.index in want]

    @staticmethod
    def _stage_refs(nodes: list[Node], meta: Lexer) -> list[str]:
        """The stage names or indexes ``nodes`` take files from (COPY --from, RUN --mount=from=)."""
        out = [(flag(n, "from") or "").lower() for n in nodes if n.cmd == "copy" and flag(n, "from")]
        out += [meta.word(runmounts.parse(v or "", n.line).from_).lower()
                for n in nodes if n.cmd == "run" for k, v in n.flags if k == "mount"]
        return out

    def _triggers(self, p: Plan, base_stage: int | None, base: str, index: int) -> list[Node]:
        """The ONBUILD triggers a stage's FROM will run: its base stage's ONBUILD lines, or those of a base
        image already here (one still to be pulled is read only when pulled: its triggers cannot make
        a skipped stage needed)."""
        if base_stage is not None and base_stage < index:
            texts = [n.rest for n in p.stages[base_stage].nodes if n.cmd == "onbuild"]
        else:
            try:
                texts = list((self.images.resolve(base).config.get("config") or {}).get("OnBuild") or [])
            except errors.DockyardError:
                return []
        nodes: list[Node] = []
        for text in texts:
            try:
                nodes += parse(text).nodes
            except ParseError:
                continue  # reported with its line when the trigger runs
        return nodes

    def _meta_defaults(self, p: Plan) -> dict[str, str]:
        env: dict[str, str] = self._known(self.meta_args)
        for node in p.meta_args:
            for w in node.rest.split():
                name, sep, default = w.partition("=")
                value = self.opts.build_args.get(name) if name in self.opts.build_args else (default if sep else None)
                if value is not None:
                    env[name] = value
        return env

    def run(self, p: Plan, needed: list[Stage]) -> str:
        for node in p.meta_args:
            self._header(node)
            self._meta_arg(node)
        state: StageState | None = None
        for st in needed:
            state = StageState(st)
            self._from(state)
            for node in st.nodes:
                if self.cancel.is_set():
                    raise errors.InvalidParameter("build cancelled")
                self._header(node)
                self._dispatch(state, node)
                self.out(f" ---> {_short(state.image_id)}\n")
            self.stage_images[st.index] = state.image_id
        assert state is not None
        if not state.image_id:
            raise errors.InvalidParameter("No image was generated. Is your Dockerfile empty?")
        unused = sorted(k for k in self.opts.build_args if k not in self.used_args and k not in PREDEFINED_ARGS
                        and k not in platformargs.NAMES)
        if unused:
            self.out(f"[Warning] One or more build-args [{' '.join(unused)}] were not consumed\n")
        image_id = state.image_id
        if self.opts.quiet:
            self._emit({"stream": image_id + "\n"})
        else:
            self._emit({"aux": {"ID": image_id}})
            self.out(f"Successfully built {_short(image_id)}\n")
        for tag in self.opts.tags:
            ref = refs.parse_repo_tag(tag, None)
            self.images.tag(image_id, ref.familiar_name, ref.tag or "latest")
            if not self.opts.quiet:
                self.out(f"Successfully tagged {ref.familiar_name}:{ref.tag or 'latest'}\n")
        return image_id

    # -- args and expansion --------------------------------------------------------------------
    def _meta_arg(self, node: Node) -> None:
        lexer = Lexer(self._known(self.meta_args), self.escape)
        for w in lexer.words(node.rest):
            name, sep, default = w.partition("=")
            self.used_args.add(name)
            automatic = self.meta_args.get(name) if name in platformargs.NAMES else None
            self.meta_args[name] = self.opts.build_args[name] if self.opts.build_args.get(name) is not None \
                else (default if sep else automatic)

    @staticmethod
    def _known(args: dict[str, str | None]) -> dict[str, str]:
        return {k: v for k, v in args.items() if v is not None}

    def _env(self, state: StageState) -> dict[str, str]:
        """What ``$VAR`` sees in a stage: its args, overridden by its ENV."""
        env = self._known(state.args)
        for k in PREDEFINED_ARGS:
            if self.opts.build_args.get(k) is not None and k not in state.args:
                env[k] = self.opts.build_args[k]  # type: ignore[assignment]
        for item in state.config.get("Env") or []:
            k, _, v = item.partition("=")
            env[k] = v
        return env

    def _lexer(self, state: StageState) -> Lexer:
        return Lexer(self._env(state), self.escape)

    def _run_args(self, state: StageState) -> list[str]:
        """Build args a RUN sees in its environment (those ENV does not override), sorted."""
        env_keys = {e.partition("=")[0] for e in state.config.get("Env") or []}
        out = [f"{k}={v}" for k, v in state.args.items() if v is not None and k not in env_keys]
        for k in PREDEFINED_ARGS:
            if k not in state.args and k not in env_keys and self.opts.build_args.get(k) is not None:
                out.append(f"{k}={self.opts.build_args[k]}")
        return sorted(out)

    # -- steps ---------------------------------------------------------------------------------
    def _from(self, state: StageState) -> None:
        node = state.stage.from_node
        self._header(node)
        platform = flag(node, "platform")
        if platform is not None:
            platform = Lexer(self._known(self.meta_args), self.escape).word(platform)
            if platform and platform.split("/")[0] != "linux":
                raise errors.InvalidParameter(f'"{platform}": unsupported platform')
        raw = node.rest.split()[0]
        name = Lexer(self._known(self.meta_args), self.escape).word(raw)
        if not name:
            raise StepError(f"base name ({raw}) should not be blank")
        by_name = {n: i for i, n in self.stage_names.items() if n and i < state.stage.index}
        if name.lower() in by_name:
            state.image_id = self.stage_images[by_name[name.lower()]]
        elif name.lower() == "scratch":
            state.image_id = None
        else:
            state.image_id = self._base_image(name).id
        if state.image_id:
            image = self.images.store.get(state.image_id)
            state.config = copy.deepcopy(image.config.get("config") or {})
        else:
            state.config = {"Env": [DEFAULT_PATH]}
        if not state.config.get("Env"):
            state.config["Env"] = [DEFAULT_PATH]
        self._onbuild(state)
        if state.image_id:
            self.out(f" ---> {_short(state.image_id)}\n")

    def _base_image(self, name: str) -> Any:
        ref = refs.parse(name)
        if not self.opts.pull:
            try:
                return self.images.resolve(name)
            except errors.NotFound:
                pass
        self.engine.pull_image(str(ref), self.opts.platform or None, None, self._emit_progress)
        return self.images.resolve(name)

    def _emit_progress(self, msg: dict[str, Any]) -> None:
        if not self.opts.quiet:
            self._emit(msg)

    def _onbuild(self, state: StageState) -> None:
        triggers = list(state.config.get("OnBuild") or [])
        if not triggers:
            return
        state.config["OnBuild"] = None
        self.out(f"# Executing {len(triggers)} build trigger{'s' if len(triggers) > 1 else ''}\n")
        for text in triggers:
            for node in parse(text).nodes:
                self._dispatch(state, node)

    def _dispatch(self, state: StageState, node: Node) -> None:
        getattr(self, f"_i_{node.cmd}")(state, node)

    def _meta_step(self, state: StageState, comment: str) -> None:
        """Commit a config-only step (as dockerd, an image with an empty layer)."""
        cmd = [*(state.config.get("Shell") or DEFAULT_SHELL), "#(nop) ", comment]
        created_by = " ".join(cmd)
        key = step_key(state.image_id or "", created_by, state.config)
        if self._use_cache(state, key, created_by):
            return
        with self._step_container(state, cmd):
            self._commit_chunks(state, created_by, None, key)

    def _use_cache(self, state: StageState, key: str, created_by: str) -> bool:
        """Take the step's image from the cache when it is there, saying so as dockerd does."""
        if self.opts.no_cache:
            return False
        hit = self._cached(state, key, created_by)
        if not hit:
            return False
        self.out(" ---> Using cache\n")
        state.image_id = hit
        return True

    @contextlib.contextmanager
    def _step_container(self, state: StageState, cmd: list[str]) -> Iterator[None]:
        """The container dockerd creates from the parent to commit a config-only step (or WORKDIR):
        shown, then removed after the commit; with --rm=false it stays, created and never started."""
        container_id = secrets.token_hex(32)
        if not (self.opts.remove or self.opts.force_remove) and state.image_id:
            container_id = self.engine.containers.create(None, self._container_body(state, cmd)).id
        self.out(f" ---> Running in {container_id[:12]}\n")
        yield
        if self.opts.remove or self.opts.force_remove:
            self.out(f"Removing intermediate container {container_id[:12]}\n")

    def _container_body(self, state: StageState, cmd: list[str], env: list[str] | None = None,
                        image: str | None = None) -> dict[str, Any]:
        """A step's container as dockerd's builder creates it: from the parent image, the stage's config
        with the step's command, no entrypoint or healthcheck, the build's network."""
        body: dict[str, Any] = {**full_config(state.config), "Image": image or state.image_id, "Cmd": cmd,
                                "Entrypoint": [""], "Healthcheck": {"Test": ["NONE"]}, "OnBuild": None}
        if env is not None:
            body["Env"] = env
        if self.opts.network:
            body["HostConfig"] = {"NetworkMode": self.opts.network}
        return body

    def _cached(self, state: StageState, key: str, created_by: str) -> str | None:
        """The image a step can reuse: from the build cache, else restored from a ``--cache-from`` image."""
        hit = self.cache.get(key)
        if not self.opts.cache_from:
            return hit
        # as dockerd's image cache with sources: a local hit counts only inside a --cache-from image's chain
        if hit and self._in_source_chain(hit):
            return hit
        parent = self.images.store.get(state.image_id) if state.image_id else None
        base = parent.config if parent else {}
        history = list(base.get("history") or [])
        diff_ids = list((base.get("rootfs") or {}).get("diff_ids") or [])
        for source in self._cache_sources():
            theirs = list(source.config.get("history") or [])
            their_ids = list((source.config.get("rootfs") or {}).get("diff_ids") or [])
            # as dockerd's image cache: the source's history and layers start with the parent's, then this step
            if len(theirs) <= len(history) or theirs[:len(history)] != history or \
                    their_ids[:len(diff_ids)] != diff_ids or theirs[len(history)].get("created_by") != created_by:
                continue
            if len(theirs) == len(history) + 1:
                self.cache.put(key, source.id, state.image_id or "", created_by)
                return str(source.id)
            entry = theirs[len(history)]
            config = {**{k: v for k, v in source.config.items() if k in ("architecture", "os", "author")},
                      "config": full_config(state.config), "created": entry.get("created"),
                      "docker_version": source.config.get("docker_version", ""),
                      "history": history + [entry],
                      "rootfs": {"type": "layers", "diff_ids": diff_ids + (
                          [] if entry.get("empty_layer") else [their_ids[len(diff_ids)]])}}
            image = self.images.create_image_from_config(config, state.image_id)
            self.cache.put(key, image.id, state.image_id or "", created_by)
            return image.id
        return None

    def _in_source_chain(self, image_id: str) -> bool:
        for source in self._cache_sources():
            current = str(source.id)
            while current:
                if current == image_id:
                    return True
                image = self.images.store.images.get(current)
                current = image.parent if image is not None else ""
        return False

    def _cache_sources(self) -> list[Any]:
        if self._sources is None:
            self._sources = []
            for name in self.opts.cache_from:
                try:
                    self._sources.append(self.images.resolve(name))
                except errors.DockyardError:
                    pass  # as dockerd: a cache source that is not here is skipped
        return self._sources

    def _commit_chunks(self, state: StageState, created_by: str, chunks: Iterator[bytes] | None, key: str) -> None:
        parent = state.image_id
        layer = IterReader(self._until_cancelled(chunks)) if chunks is not None else None
        image = self.images.create_image_from_layer(
            parent, layer, [], created_by=created_by,
            author=state.maintainer, config_overrides=full_config(state.config), created=self._created())
        self.cache.put(key, image.id, parent or "", created_by)
        state.image_id = image.id

    def _until_cancelled(self, chunks: Iterator[bytes]) -> Iterator[bytes]:
        """A layer's chunks, cut short when the client goes: a COPY of gigabytes stops with it."""
        for chunk in chunks:
            if self.cancel.is_set():
                raise errors.InvalidParameter("build cancelled")
            yield chunk

    def _created(self) -> str | None:
        if self.epoch is None:
            return None
        return timefmt.rfc3339(self.epoch)

    # -- RUN ------------------------------------------------------------------------------------------
    def _i_run(self, state: StageState, node: Node) -> None:
        if not state.image_id:
            raise StepError("Please provide a source image with `from` prior to run")
        args = node.json_args()
        shell = state.config.get("Shell") or DEFAULT_SHELL
        if args is not None:
            cmd = args
        elif len(node.heredocs) == 1 and heredoc_only(node):
            # the here-document is the script; with a #! line it is run as a file, as BuildKit does
            doc = node.heredocs[0]
            cmd = [f"{runsetup.PIPES}/{doc.name}"] if runsetup.shebang_script(doc) else [*shell, doc.content]
        elif node.heredocs:
            script = node.rest + "\n" + "".join(f"{h.content}{h.name}\n" for h in node.heredocs)
            cmd = [*shell, script]
        else:
            cmd = [*shell, node.rest]
        run_args = self._run_args(state)
        shown = [a for a in run_args if a.partition("=")[0] in state.args]
        created_by = " ".join(cmd)
        if shown:
            created_by = f"|{len(shown)} {' '.join(shown)} {created_by}"
        network = runsetup.step_network(node, self.opts.network)
        step_dir = os.path.join(self.workdir, "step-" + secrets.token_hex(6))  # made by what needs it
        with contextlib.ExitStack() as stack:
            stack.callback(shutil.rmtree, step_dir, True)
            mounts = runsetup.setup(self, state, node, stack, step_dir)
            if cmd[0].startswith(runsetup.PIPES + "/"):
                script, _ = runsetup.script_mount(node.heredocs[0], step_dir)
                mounts.oci.append(script)
            extra: dict[str, Any] = {"_network": network}
            if runsetup.insecure(node):
                extra["_security"] = "insecure"
            if mounts.key:
                extra["_mounts"] = mounts.key
            if cmd[0].startswith(runsetup.PIPES + "/"):
                extra["_script"] = node.heredocs[0].content
            key = step_key(state.image_id, created_by, {**state.config, **extra})
            if self._use_cache(state, key, created_by):
                return
            self._run_step(state, cmd, created_by, key, run_args, network, mounts, runsetup.insecure(node))

    def _run_step(self, state: StageState, cmd: list[str], created_by: str, key: str, run_args: list[str],
                  network: str, mounts: runsetup.Prepared, privileged: bool) -> None:
        env = list(state.config.get("Env") or []) + run_args
        # the snapshot is keyed as a container's, so that a step kept as dockerd keeps it becomes one as is
        container_id = secrets.token_hex(32)
        parent = state.image_id
        top = self.images.store.get(parent).top_layer
        self.engine.snapshotter.prepare(container_id, top)
        self.out(f" ---> Running in {container_id[:12]}\n")
        code: int | None = None
        kept = False
        started = timefmt.now_fixed()
        # the output is also kept in the shim's journal format, to be the log of a container that stays
        journal = None if self.opts.force_remove else os.path.join(self.workdir, "journal-" + container_id[:12])
        try:
            with open(journal, "wb") if journal else contextlib.nullcontext() as record:
                code = self._steps(network).run(container_id, container_id, cmd, env,
                                                state.config.get("WorkingDir") or "", state.config.get("User") or "",
                                                _recording(self.out, record), self.cancel, mounts.oci,
                                                privileged)
            finished = timefmt.now_fixed()
            if code != 0:
                raise StepError(f"The command '{' '.join(cmd)}' returned a non-zero code: {code}", code)
            runmounts.drop_mountpoints(self.engine.snapshotter.snapshot(container_id).upperdir, mounts.targets)
            self._commit_chunks(state, created_by, self._diff(container_id), key)
        finally:
            # as dockerd: a step's container goes with --force-rm, or with --rm (the default) once it
            # succeeded; a failed one stays, exited, for the user to look into
            if self.opts.force_remove or (self.opts.remove and code == 0):
                self.out(f"Removing intermediate container {container_id[:12]}\n")
            elif code is not None:
                kept = self._keep_container(self._container_body(state, cmd, env, parent), container_id, code,
                                            started, finished, journal)
            if not kept:
                with contextlib.suppress(errors.NotFound):
                    self.engine.snapshotter.remove(container_id)
            if journal:
                with contextlib.suppress(OSError):
                    os.unlink(journal)

    def _keep_container(self, body: dict[str, Any], container_id: str, code: int, started: str,
                        finished: str, journal: str | None) -> bool:
        try:
            self.engine.containers.adopt_exited(container_id, body, code, started, finished, journal)
        except errors.DockyardError:
            return False
        return True

    def _steps(self, network: str) -> StepRunner:
        """The runner of the build's network, or of a step's own ``RUN --network`` (one per mode)."""
        if network != self.opts.network:
            if network not in self._step_runners:
                self._step_runners[network] = StepRunner(
                    self.engine, os.path.join(self.workdir, "steps-" + secrets.token_hex(6)), network,
                    self.opts.extra_hosts)
            return self._step_runners[network]
        if self._runner is None:
            self._runner = StepRunner(self.engine, os.path.join(self.workdir, "steps-" + secrets.token_hex(6)),
                                      self.opts.network, self.opts.extra_hosts)
        return self._runner

    def close(self) -> None:
        """Release what the build's steps shared (its network, its working directory)."""
        for runner in [self._runner, *self._step_runners.values()]:
            if runner is not None:
                runner.close()
                shutil.rmtree(runner.workdir, ignore_errors=True)
        self._runner = None
        self._step_runners = {}

    def _diff(self, snap_key: str) -> Iterator[bytes] | None:
        """The container's changes as a layer tar, without runc's mount points; None when nothing changed."""
        snap = self.engine.snapshotter.snapshot(snap_key)
        upper = snap.upperdir
        for rel in MOUNTPOINTS:
            path = os.path.join(upper, rel)
            with contextlib.suppress(OSError):
                st = os.lstat(path)
                if stat.S_ISDIR(st.st_mode):
                    if not os.listdir(path) or rel == "dev":
                        shutil.rmtree(path)
                elif st.st_size == 0:
                    os.unlink(path)
        etc = os.path.join(upper, "etc")
        with contextlib.suppress(OSError):
            if not os.listdir(etc):
                os.rmdir(etc)
        if not os.listdir(upper):
            return None
        chunks = self.engine.snapshotter.diff(snap_key)
        if self.epoch is None:
            return chunks
        return _clamp_tar(chunks, self.epoch)


def _recording(out: Callable[[str], None], journal: IO[bytes] | None) -> Callable[[str], None]:
    """``out`` that also appends each piece of output to ``journal`` as conmon writes its journal
    (``<RFC3339Nano+00:00> stdout F|P <payload>``; the step's stdout and stderr share one pipe)."""
    if journal is None:
        return out

    def both(text: str) -> None:
        out(text)
        ns = time.time_ns()
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 1_000_000_000)) + \
            f".{ns % 1_000_000_000:09d}+00:00"
        data = text.encode()
        full = data.endswith(b"\n")
        journal.write(f"{stamp} stdout {'F' if full else 'P'} ".encode() + (data[:-1] if full else data) + b"\n")

    return both


def _clamp_tar(chunks: Iterator[bytes], epoch: int) -> Iterator[bytes]:
    """The tar with every time clamped to ``epoch`` and no atime/ctime records."""
    sink = copier._Sink()
    out = tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT)  # type: ignore[call-overload]
    with tarfile.open(fileobj=IterReader(chunks), mode="r|") as src:  # type: ignore[call-overload]
        for m in src:
            m.mtime = min(int(m.mtime), epoch)
            m.pax_headers = {k: v for k, v in m.pax_headers.items() if k not in ("atime", "ctime", "mtime")}
            if m.isreg():
                out.addfile(m, src.extractfile(m))
            else:
                out.addfile(m)
            if sink.size >= copier.CHUNK:
                yield sink.take()
    out.close()
    yield sink.take()


def _epoch(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise errors.InvalidParameter(f"invalid SOURCE_DATE_EPOCH: {value}") from None


def _short(image_id: str | None) -> str:
    return (image_id or "").removeprefix("sha256:")[:12]
