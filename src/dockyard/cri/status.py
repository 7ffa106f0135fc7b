"""The engine's error kinds as gRPC status codes, the way containerd's errdefs.ToGRPC maps its own."""

from __future__ import annotations

import functools
from typing import Any, Awaitable, Callable, TypeVar

import grpc

from .. import errors

CODES: dict[type[errors.DockyardError], grpc.StatusCode] = {
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.InvalidParameter: grpc.StatusCode.INVALID_ARGUMENT,
    # what dockyard calls a conflict (in use, wrong state) is a precondition to gRPC; a name already
    # taken is raised as AlreadyExists below
    errors.Conflict: grpc.StatusCode.FAILED_PRECONDITION,
    errors.Unauthorized: grpc.StatusCode.UNAUTHENTICATED,
    errors.Forbidden: grpc.StatusCode.PERMISSION_DENIED,
    errors.Unavailable: grpc.StatusCode.UNAVAILABLE,
    errors.NotImplementedYet: grpc.StatusCode.UNIMPLEMENTED,
}


class AlreadyExists(errors.Conflict):
    """A conflict on a name or ID that is already taken: gRPC's ALREADY_EXISTS."""


class DeadlineExceeded(errors.DockyardError):
    """The caller's own timeout ran out (ExecSync's): gRPC's DEADLINE_EXCEEDED."""


def code_of(err: errors.DockyardError) -> grpc.StatusCode:
    if isinstance(err, AlreadyExists):
        return grpc.StatusCode.ALREADY_EXISTS
    if isinstance(err, DeadlineExceeded):
        return grpc.StatusCode.DEADLINE_EXCEEDED
    for kind in type(err).__mro__:
        if kind in CODES:
            return CODES[kind]
    return grpc.StatusCode.UNKNOWN


Req = TypeVar("Req")
Resp = TypeVar("Resp")
Method = Callable[[Any, Req, grpc.aio.ServicerContext], Awaitable[Resp]]
Servicer = TypeVar("Servicer", bound=type)


def rpc(method: Method[Req, Resp]) -> Method[Req, Resp]:
    """An RPC whose engine errors reach the client as their gRPC codes, never as UNKNOWN tracebacks."""

    @functools.wraps(method)
    async def call(self: Any, request: Req, context: grpc.aio.ServicerContext) -> Resp:
        try:
            return await method(self, request, context)
        except errors.DockyardError as e:
            await context.abort(code_of(e), str(e))
            raise  # abort raises; this keeps type checkers aware that nothing is returned

    return call



def unimplemented_answered(base: type) -> Callable[[Servicer], Servicer]:
    """A class decorator: every RPC of the generated servicer ``base`` that the class does not define
    answers UNIMPLEMENTED, naming the RPC.

    The generated default sets that code too, but then raises NotImplementedError, which gRPC logs with
    a traceback at every call; a kubelet asks for what a runtime may not serve (metrics, checkpoints,
    UpdatePodSandboxResources) as a matter of course, and that is no failure of the daemon's."""
    service = base.__name__.removesuffix("Servicer")

    def decorate(cls: Servicer) -> Servicer:
        for name, default in vars(base).items():
            if callable(default) and not name.startswith("_") and getattr(cls, name) is default:
                setattr(cls, name, _unimplemented(f"{service}.{name}"))
        return cls

    return decorate


def _unimplemented(what: str) -> Callable[[Any, Any, grpc.aio.ServicerContext], Awaitable[None]]:
    # a coroutine, not an async generator: gRPC takes it for a streaming RPC as well (one that
    # writes through the context), and aborting before any write is the same answer either way
    async def answer(self: Any, request: Any, context: grpc.aio.ServicerContext) -> None:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{what} is not implemented by dockyard")

    answer.__name__ = answer.__qualname__ = what.rpartition(".")[2]
    return answer
