"""What a RUN step needs beyond its command under the current Dockerfile syntax: its ``--mount``s,
its ``--network`` and ``--security``, and a shebang here-document run as a file.

Kept apart from builder.py: the builder asks ``setup`` for the OCI mounts and
cache-key parts of a step inside the step's ExitStack (every view, descriptor
and copy lives until the step ends) and ``step_network`` for the network mode.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import secrets
from typing import Any

from ..dockerfile.parser import Heredoc, Node, ParseError
from . import copier, entitlements, runmounts
from .runmounts import Prepared

NETWORKS = ("default", "none", "host")
# where BuildKit puts a here-document it runs as a file (its first line is a #! line)
PIPES = "/dev/pipes"


MAX_MOUNTS = 64  # per RUN step: each is a mount runc makes and, for a cache, a directory kept


def check(node: Node, insecure_allowed: bool = False) -> None:
    """The RUN flags as the frontend checks them, before any step runs (``insecure_allowed``: the daemon
    grants the security.insecure entitlement)."""
    if sum(1 for name, _ in node.flags if name == "mount") > MAX_MOUNTS:
        raise ParseError(node.line, f"too many --mount flags (at most {MAX_MOUNTS})")
    for name, value in node.flags:
        if name == "mount":
            runmounts.parse(value or "", node.line)
        elif name == "network":
            if value not in NETWORKS:
                raise ParseError(node.line, f"unsupported network mode {value!r}: expected one of "
                                            f"{', '.join(NETWORKS)}")
        elif name == "security":
            if value == "sandbox" or (value == "insecure" and insecure_allowed):
                continue
            if value != "insecure":
                raise ParseError(node.line, f"unsupported security mode {value!r}: expected sandbox or insecure")
            raise ParseError(node.line, "RUN --security=insecure needs the security.insecure entitlement, which "
                                        "this daemon does not grant (daemon.json: "
                                        "{\"builder\": {\"entitlements\": {\"security-insecure\": true}}})")


def step_network(node: Node, build_network: str) -> str:
    """The network a step runs in: its ``--network`` (``default``: the build's own), else the build's."""
    mode = None
    for name, value in node.flags:
        if name == "network":
            mode = value
    if mode is None or mode == "default":
        return build_network
    return mode


def insecure(node: Node) -> bool:
    """RUN --security=insecure (checked against the daemon's entitlements when the build was planned)."""
    return any(name == "security" and value == "insecure" for name, value in node.flags)


def shebang_script(heredoc: Heredoc) -> bool:
    return heredoc.content.startswith("#!")


def setup(builder: Any, state: Any, node: Node, stack: contextlib.ExitStack, scratch: str) -> Prepared:
    """The step's mounts (``--mount`` flags expanded with the stage's args and env), set up until
    ``stack`` closes; ``scratch`` is a directory of the step's own for copies and scripts, made when
    one is needed (a cached step makes none)."""
    # again here: an ONBUILD trigger of the base image is dispatched without the planning checks
    check(node, entitlements.security_insecure(builder.engine.config))
    out = Prepared()
    lexer = builder._lexer(state)
    workdir = state.config.get("WorkingDir") or "/"
    for name, value in node.flags:
        if name != "mount":
            continue
        m = runmounts.parse(lexer.expand(value or ""), node.line)
        target = posixpath.normpath(posixpath.join(workdir, m.target))
        out.targets.append(target)
        if m.type == "tmpfs":
            options = ["nosuid", "nodev"] + ([f"size={m.size}"] if m.size else [])
            out.oci.append({"destination": target, "type": "tmpfs", "source": "tmpfs", "options": options})
            out.key.append(["tmpfs", target, m.size])
            continue
        root, from_key = _source_root(builder, state, m, stack)
        if m.type == "cache":
            seed = None
            if m.from_:
                seed = runmounts.resolve(root, m.source or "/")
            cache_id = m.id or target
            description = f"cached mount {target} from exec {node.rest[:80]}"
            data = stack.enter_context(builder.engine.builds.cache_mounts.acquire(
                cache_id, m.sharing, description, m.mode, m.uid, m.gid, seed))
            out.oci.append({"destination": target, "type": "bind", "source": data,
                            "options": ["rbind", "rprivate", "ro" if m.readonly else "rw"]})
            out.key.append(["cache", target, cache_id, m.sharing, m.mode, m.uid, m.gid, m.readonly, from_key])
            continue
        # bind
        try:
            src = runmounts.resolve(root, m.source or "/")
        except FileNotFoundError as e:
            raise copier.CopyError(f"RUN --mount source {m.source or '/'}: not found ({e})") from None
        if from_key:
            digest = from_key
        else:
            sources = copier.find_sources("RUN --mount", root, [m.source or "."], from_context=True, add=False)
            digest = copier.checksum(sources)
        if not m.readonly:
            os.makedirs(scratch, exist_ok=True)
            src = runmounts.copy_for_rw(src, os.path.join(scratch, "rw-" + secrets.token_hex(6)))
        out.oci.append({"destination": target, "type": "bind", "source": src,
                        "options": ["rbind", "rprivate", "ro" if m.readonly else "rw"]})
        out.key.append(["bind", target, m.source, digest, m.readonly])
    return out


def _source_root(builder: Any, state: Any, m: runmounts.Mount, stack: contextlib.ExitStack) -> tuple[str, str]:
    """The root a mount's ``source`` is below (the context, or a read view of ``from``) and the key part
    naming it ('' for the context, whose content is checksummed instead)."""
    if not m.from_:
        return builder.ctx.root, ""
    image_id = builder._from_image(builder._lexer(state).word(m.from_), state)
    root = stack.enter_context(builder._mounted(image_id))
    return root, f"{image_id or 'scratch'}:{m.source}"


def script_mount(heredoc: Heredoc, scratch: str) -> tuple[dict[str, Any], str]:
    """A shebang here-document as an executable file mounted at /dev/pipes/<name>, as BuildKit runs it."""
    os.makedirs(scratch, exist_ok=True)
    path = os.path.join(scratch, "heredoc-" + secrets.token_hex(6))
    with open(path, "w", encoding="utf-8") as f:
        f.write(heredoc.content)
    os.chmod(path, 0o755)
    inside = f"{PIPES}/{heredoc.name}"
    return {"destination": inside, "type": "bind", "source": path, "options": ["bind", "ro", "rprivate"]}, inside
