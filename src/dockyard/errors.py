"""Error kinds shared by the engine and the API layer.

Like moby's errdefs, the engine raises errors that say what went wrong in
domain terms; only the API layer turns a kind into an HTTP status.
"""

from typing import TypeVar


class DockyardError(Exception):
    """Base of every error the engine reports to a client.

    dockerd before 25.0 (API 1.44) worded some errors differently; a client asking for an
    older API version is told ``before_1_44`` when one is set (see ``legacy``).
    """

    before_1_44: str | None = None


E = TypeVar("E", bound=DockyardError)


def legacy(err: E, text: str) -> E:
    """``err``, told as ``text`` to clients of API versions before 1.44 (dockerd 20.10's words)."""
    err.before_1_44 = text
    return err


def wrap(err: E, prefix: str) -> E:
    """``err`` of the same kind, told as "prefix: err" (Go's errors.Wrap, as dockerd words it)."""
    wrapped = type(err)(f"{prefix}: {err}")
    if err.before_1_44 is not None:
        wrapped.before_1_44 = f"{prefix}: {err.before_1_44}"
    return wrapped


class NotFound(DockyardError):
    pass


class Conflict(DockyardError):
    pass


class InvalidParameter(DockyardError):
    pass


class NotModified(DockyardError):
    pass


class Forbidden(DockyardError):
    pass


class Unauthorized(DockyardError):
    pass


class Unavailable(DockyardError):
    pass


class NotImplementedYet(DockyardError):
    """A request for a feature dockyard does not provide (yet)."""


class SystemError_(DockyardError):
    """An unexpected failure of the host or the runtime."""
