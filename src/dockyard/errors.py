"""Error kinds shared by the engine and the API layer.

Like moby's errdefs, the engine raises errors that say what went wrong in
domain terms; only the API layer turns a kind into an HTTP status.
"""


class DockyardError(Exception):
    """Base of every error the engine reports to a client."""


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
