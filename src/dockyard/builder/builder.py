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
import datetime
import hashlib
import json
import os
import posixpath
import secrets
import shutil
import stat
import tarfile
import threading
import time
from dataclasses import dataclass, field
from typing import IO, Any, Callable, Iterator

from .. import errors
from ..containers.record import now_iso
from ..storage import rootpath
from ..util import reference as refs
from ..util.iterio import IterReader
from . import copier, copyflags, entitlements, gitsource, linkcopy, platformargs, remote, runmounts, runsetup
from .cache import BuildCache, step_key
from .context import Context
from .parser import Node, ParseError, heredoc_only, parse
from .runstep import StepRunner
from .shell import Lexer
from .stages import Plan, Stage, flag, plan

Emit = Callable[[dict[str, Any]], None]

PROXY_ARGS = frozenset({"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy",
                        "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"})
# args usable without an ARG line, and kept out of the image history
PREDEFINED_ARGS = PROXY_ARGS | {"SOURCE_DATE_EPOCH"}
DEFAULT_SHELL = ["/bin/sh", "-c"]
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# what runc creates in a rootfs to mount over; dockerd keeps them in an init layer, never in a step's diff
MOUNTPOINTS = ("proc", "sys", "dev", "etc/hosts", "etc/hostname", "etc/resolv.conf", ".dockerenv")


# read views of images for COPY/ADD; a daemon killed mid-COPY leaves one, removed at the next start
VIEW_PREFIX = "build-"


class StepError(errors.InvalidParameter):
    """A step failed; ``code`` is the RUN command's exit status when it has one."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Options:
    dockerfile: str = "Dockerfile"
    tags: list[str] = field(default_factory=list)
    build_args: dict[str, str | None] = field(default_factory=dict)
    target: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    no_cache: bool = False
    pull: bool = False
    remove: bool = True
    force_remove: bool = False
    quiet: bool = False
    network: str = ""
    platform: str = ""
    cache_from: list[str] = field(default_factory=list)
    extra_hosts: list[tuple[str, str]] = field(default_factory=list)  # (host, ip), from --add-host


@dataclass
class StageState:
    stage: Stage
    image_id: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    args: dict[str, str | None] = field(default_factory=dict)  # declared in this stage
    cmd_set: bool = False
    maintainer: str = ""


class Builder:
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
        body: dict[str, Any] = {**_full_config(state.config), "Image": image or state.image_id, "Cmd": cmd,
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
                      "config": _full_config(state.config), "created": entry.get("created"),
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
            author=state.maintainer, config_overrides=_full_config(state.config), created=self._created())
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
        return datetime.datetime.fromtimestamp(self.epoch, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

    # -- metadata instructions ------------------------------------------------------------------
    def _pairs(self, state: StageState, node: Node, what: str) -> list[tuple[str, str]]:
        lexer = self._lexer(state)
        words = lexer.words(node.rest)
        if words and "=" not in words[0]:
            key, _, value = node.rest.strip().partition(" ")
            if not value.strip():
                raise ParseError(node.line, f"{what} must have two arguments")
            return [(lexer.word(key), lexer.word(value.strip()))]
        out = []
        for w in words:
            k, sep, v = w.partition("=")
            if not sep or not k:
                raise ParseError(node.line, f"Syntax error - can't find = in \"{w}\". Must be of the form: "
                                            f"name=value")
            out.append((k, v))
        return out

    def _i_env(self, state: StageState, node: Node) -> None:
        pairs = self._pairs(state, node, "ENV")
        env = list(state.config.get("Env") or [])
        for k, v in pairs:
            env = [e for e in env if e.partition("=")[0] != k] + [f"{k}={v}"]
        state.config["Env"] = env
        self._meta_step(state, "ENV " + " ".join(f"{k}={v}" for k, v in pairs))

    def _i_label(self, state: StageState, node: Node) -> None:
        pairs = self._pairs(state, node, "LABEL")
        labels = dict(state.config.get("Labels") or {})
        labels.update(pairs)
        state.config["Labels"] = labels
        self._meta_step(state, "LABEL " + " ".join(f"{k}={v}" for k, v in pairs))

    def _i_arg(self, state: StageState, node: Node) -> None:
        lexer = self._lexer(state)
        shown = []
        for w in lexer.words(node.rest):
            name, sep, default = w.partition("=")
            if not name:
                raise ParseError(node.line, "ARG names can not be blank")
            self.used_args.add(name)
            if self.opts.build_args.get(name) is not None:
                value: str | None = self.opts.build_args[name]
            elif sep:
                value = default
            else:
                value = self.meta_args.get(name)
            state.args[name] = value
            shown.append(w)
        self._meta_step(state, "ARG " + " ".join(shown))

    def _exec_or_shell(self, state: StageState, node: Node) -> list[str]:
        args = node.json_args()
        if args is not None:
            return args
        return [*(state.config.get("Shell") or DEFAULT_SHELL), node.rest]

    def _i_cmd(self, state: StageState, node: Node) -> None:
        state.config["Cmd"] = self._exec_or_shell(state, node)
        state.cmd_set = True
        self._meta_step(state, f"CMD {_goq(state.config['Cmd'])}")

    def _i_entrypoint(self, state: StageState, node: Node) -> None:
        state.config["Entrypoint"] = self._exec_or_shell(state, node)
        if not state.cmd_set:
            state.config["Cmd"] = None  # as dockerd: a new ENTRYPOINT drops the base image's CMD
        self._meta_step(state, f"ENTRYPOINT {_goq(state.config['Entrypoint'])}")

    def _i_expose(self, state: StageState, node: Node) -> None:
        ports = dict(state.config.get("ExposedPorts") or {})
        words = self._lexer(state).words(node.rest)
        for w in words:
            port, _, proto = w.partition("/")
            if not port.replace("-", "").isdigit():
                raise StepError(f"invalid containerPort: {port}")
            ports[f"{port}/{proto or 'tcp'}"] = {}
        state.config["ExposedPorts"] = ports
        self._meta_step(state, "EXPOSE " + " ".join(words))

    def _i_volume(self, state: StageState, node: Node) -> None:
        lexer = self._lexer(state)
        vols = node.json_args()
        vols = [lexer.word(v) for v in vols] if vols is not None else lexer.words(node.rest)
        current = dict(state.config.get("Volumes") or {})
        for v in vols:
            if not v.strip():
                raise StepError("VOLUME specified can not be an empty string")
            current[v] = {}
        state.config["Volumes"] = current
        self._meta_step(state, f"VOLUME [{' '.join(vols)}]")

    def _i_user(self, state: StageState, node: Node) -> None:
        state.config["User"] = self._lexer(state).word(node.rest.strip())
        self._meta_step(state, f"USER {state.config['User']}")

    def _i_stopsignal(self, state: StageState, node: Node) -> None:
        state.config["StopSignal"] = self._lexer(state).word(node.rest.strip())
        self._meta_step(state, f"STOPSIGNAL {state.config['StopSignal']}")

    def _i_maintainer(self, state: StageState, node: Node) -> None:
        state.maintainer = node.rest.strip()
        self._meta_step(state, f"MAINTAINER {state.maintainer}")

    def _i_shell(self, state: StageState, node: Node) -> None:
        state.config["Shell"] = node.json_args()
        self._meta_step(state, f"SHELL [{' '.join(state.config['Shell'])}]")

    def _i_onbuild(self, state: StageState, node: Node) -> None:
        trigger = node.rest.strip()
        word, _, rest = trigger.partition(" ")
        trigger = f"{word.upper()} {rest}".strip()
        state.config["OnBuild"] = list(state.config.get("OnBuild") or []) + [trigger]
        self._meta_step(state, f"ONBUILD {trigger}")

    def _i_healthcheck(self, state: StageState, node: Node) -> None:
        word, _, rest = node.rest.strip().partition(" ")
        if word.upper() == "NONE":
            if rest.strip() or node.flags:
                raise ParseError(node.line, "HEALTHCHECK NONE takes no arguments")
            state.config["Healthcheck"] = {"Test": ["NONE"]}
        elif word.upper() == "CMD":
            sub = Node("cmd", rest, rest.strip(), line=node.line)
            args = sub.json_args()
            test = ["CMD", *args] if args is not None else ["CMD-SHELL", rest.strip()]
            hc: dict[str, Any] = {"Test": test}
            for name, key in (("interval", "Interval"), ("timeout", "Timeout"), ("start-period", "StartPeriod"),
                              ("start-interval", "StartInterval")):
                value = flag(node, name)
                if value:
                    hc[key] = _duration_ns(value, node.line)
            retries = flag(node, "retries")
            if retries:
                if not retries.isdigit() or int(retries) < 1:
                    raise ParseError(node.line, "--retries must be at least 1")
                hc["Retries"] = int(retries)
            state.config["Healthcheck"] = hc
        else:
            raise ParseError(node.line, "Unknown type \"" + word.upper() + "\" in HEALTHCHECK (try CMD)")
        self._meta_step(state, f"HEALTHCHECK {node.rest.strip()}")

    # -- WORKDIR ----------------------------------------------------------------------------------
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

    # -- COPY / ADD ---------------------------------------------------------------------------------
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
                                                          _full_config(state.config))
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
        started = now_iso()
        # the output is also kept in the shim's journal format, to be the log of a container that stays
        journal = None if self.opts.force_remove else os.path.join(self.workdir, "journal-" + container_id[:12])
        try:
            with open(journal, "wb") if journal else contextlib.nullcontext() as record:
                code = self._steps(network).run(container_id, container_id, cmd, env,
                                                state.config.get("WorkingDir") or "", state.config.get("User") or "",
                                                _recording(self.out, record), self.cancel, mounts.oci,
                                                privileged)
            finished = now_iso()
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


def _goq(items: list[str] | None) -> str:
    """A string slice as Go's %q prints it."""
    return "[" + " ".join(json.dumps(i) for i in (items or [])) + "]"


def _full_config(config: dict[str, Any]) -> dict[str, Any]:
    out = dict(config)
    for key in ("Cmd", "Entrypoint", "Env", "WorkingDir", "User", "Labels", "ExposedPorts", "Volumes",
                "OnBuild", "StopSignal", "Healthcheck", "Shell"):
        out.setdefault(key, None)
    return {k: v for k, v in out.items() if not k.startswith("_")}


def _duration_ns(value: str, line: int) -> int:
    units = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000}
    total, num = 0.0, ""
    i = 0
    while i < len(value):
        ch = value[i]
        if ch.isdigit() or ch == ".":
            num += ch
            i += 1
            continue
        unit = value[i:i + 2] if value[i:i + 2] in units else value[i]
        if unit not in units or not num:
            raise ParseError(line, f"time: invalid duration \"{value}\"")
        total += float(num) * units[unit]
        num = ""
        i += len(unit)
    if num:
        if float(num) != 0:
            raise ParseError(line, f"time: missing unit in duration \"{value}\"")
    return int(total)


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

