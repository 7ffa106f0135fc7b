"""``ADD <git URL>[#ref[:subdir]] <dest>`` (as BuildKit's Dockerfile frontend): the repository fetched by the
daemon into a private directory, then copied like a directory source of the context.

git runs with a bounded time per command, no terminal prompts, no system or user configuration, hooks
disabled and only network transports allowed (``file://``, ``ext::`` and local paths are not URLs here:
a build must not read the daemon's own files through them). Only the ref is fetched (``--depth=1``);
a commit ID that the server will not serve that way is fetched with the full history. Submodules are not
fetched.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

from .copier import CopyError

TIMEOUT = 120.0  # seconds, per git command
_PROTOCOLS = "git:http:https:ssh"
_SCP_LIKE = re.compile(r"^[\w.-]+@[\w.-]+:")  # git@host:owner/repo.git


def is_git(src: str) -> bool:
    """What BuildKit's frontend takes for a git source (it checks this before plain URLs)."""
    bare = src.partition("#")[0]
    if src.startswith(("git://", "git@", "ssh://", "github.com/")) or _SCP_LIKE.match(src):
        return True
    return src.startswith(("http://", "https://")) and bare.endswith(".git")


def split(src: str) -> tuple[str, str, str]:
    """(url, ref, subdir) of ``url#ref:subdir``; ref and subdir may be empty."""
    url, _, fragment = src.partition("#")
    ref, _, subdir = fragment.partition(":")
    if url.startswith("github.com/"):
        url = "https://" + url
    return url, ref, subdir


def _env(home: str) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": home, "GIT_TERMINAL_PROMPT": "0",
            "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_ALLOW_PROTOCOL": _PROTOCOLS,
            "GIT_SSH_COMMAND": "ssh -o BatchMode=yes -o StrictHostKeyChecking=yes", "LC_ALL": "C"}


def _git(args: list[str], cwd: str, home: str, src: str) -> str:
    cmd = ["git", "-c", "core.hooksPath=" + os.devnull, "-c", "protocol.allow=never",
           *(arg for p in _PROTOCOLS.split(":") for arg in ("-c", f"protocol.{p}.allow=always")), *args]
    try:
        res = subprocess.run(cmd, cwd=cwd, env=_env(home), capture_output=True, timeout=TIMEOUT,
                             stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise CopyError(f"ADD failed: fetching {src}: git {args[0]} took longer than {TIMEOUT:.0f}s") from None
    except FileNotFoundError:
        raise CopyError("ADD failed: git sources need git on the daemon's host") from None
    if res.returncode != 0:
        why = res.stderr.decode(errors="replace").strip().splitlines()
        raise CopyError(f"ADD failed: fetching {src}: {why[-1] if why else f'git {args[0]} failed'}")
    return res.stdout.decode(errors="replace").strip()


def fetch(src: str, directory: str, keep_git_dir: bool) -> tuple[str, str]:
    """Check ``src`` out under ``directory``; returns the directory to copy (the subdir when one is named)
    and the commit ID (what the build cache compares, as BuildKit: a kept .git differs on every fetch)."""
    url, ref, subdir = split(src)
    if url.startswith("-"):
        raise CopyError(f"ADD failed: invalid git URL {src}")
    home = os.path.join(directory, "home")
    repo = os.path.join(directory, "repo")
    os.makedirs(home, mode=0o700)
    os.makedirs(repo, mode=0o700)
    _git(["init", "-q", "."], repo, home, src)
    _git(["remote", "add", "origin", "--", url], repo, home, src)
    try:
        _git(["fetch", "-q", "--depth=1", "--no-tags", "origin", "--", ref or "HEAD"], repo, home, src)
    except CopyError:
        if not re.fullmatch(r"[0-9a-f]{7,40}", ref):
            raise
        _git(["fetch", "-q", "--tags", "origin", "--", "+refs/heads/*:refs/remotes/origin/*"], repo, home, src)
        _git(["checkout", "-q", "--detach", ref], repo, home, src)
    else:
        _git(["checkout", "-q", "--detach", "FETCH_HEAD"], repo, home, src)
    commit = _git(["rev-parse", "HEAD"], repo, home, src)
    if not keep_git_dir:
        shutil.rmtree(os.path.join(repo, ".git"))
    top = os.path.realpath(repo)
    path = os.path.realpath(os.path.join(repo, subdir.strip("/"))) if subdir else top
    # a subdir (or a symlink in the repository) must not lead out of the checkout
    if path != top and not path.startswith(top + os.sep):
        raise CopyError(f"ADD failed: {subdir} is outside the repository {url}")
    if not os.path.isdir(path):
        raise CopyError(f"ADD failed: {subdir} is not a directory in {src}")
    return path, commit
