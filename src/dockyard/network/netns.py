"""Named network namespaces under the exec root, and running code inside one.

A namespace is created by a short-lived thread that unshares its own network
namespace, bind-mounts it onto a file and returns to the daemon's (runtime/podns.py); code that
must act inside one (netlink sockets, the DNS listener) enters it on the calling
thread and always comes back. Sockets keep the namespace they were created in.
"""

from __future__ import annotations

import contextlib

from ..runtime import podns


def create(path: str) -> None:
    """A new, empty network namespace pinned at ``path``."""
    podns.hold({"net": path})


def pin(source: str, path: str) -> None:
    """Pin the namespace ``source`` (e.g. ``/proc/<pid>/ns/net``) at ``path``, so it outlives the process."""
    podns.pin(source, path)


def remove(path: str) -> None:
    podns.release(path)


def exists(path: str) -> bool:
    """A pinned namespace (a file that is a mount of nsfs), not a stale file."""
    return podns.held(path)


def entered(path: str) -> contextlib.AbstractContextManager[None]:
    """Run the body on this thread inside the network namespace at ``path``."""
    return podns.entered(path, "net")
