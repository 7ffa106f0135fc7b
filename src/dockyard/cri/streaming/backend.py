"""What the streaming server needs to run a session, as Protocols: the protocol code sees only these.

The byte streams are the client's (SPDY streams or WebSocket channels); the backend moves bytes
between them and a process or a socket, and knows nothing of the protocols.
"""

from __future__ import annotations

from typing import AsyncIterator, Protocol

# a terminal size as the kubelet's resize messages give it: (width, height)
Size = tuple[int, int]


class Reader(Protocol):
    async def read(self) -> bytes:
        """The next bytes from the client; b"" once it closed its side."""
        ...


class Writer(Protocol):
    async def write(self, data: bytes) -> None: ...


class Duplex(Reader, Writer, Protocol):
    async def close(self) -> None:
        """Our side is done: the client sees the end of the stream."""
        ...


class Sandboxes(Protocol):
    def sandbox_netns(self, sandbox_id: str) -> str:
        """The path of the pod's network namespace; "" for a pod on the host's network. Raises
        NotFound for an unknown pod, Conflict for one that is not ready."""
        ...


class Runtime(Protocol):
    # the pods port-forward reaches: the CRI's RuntimeService installs its own when it loads
    sandboxes: Sandboxes

    def check_container(self, container_id: str) -> None:
        """Before an Exec or Attach URL is given: NotFound for an unknown container, Conflict for one
        that is not running."""
        ...

    def check_sandbox(self, sandbox_id: str) -> None:
        """Before a PortForward URL is given: NotFound for an unknown pod."""
        ...

    async def exec(self, container_id: str, cmd: list[str], tty: bool, stdin: Reader | None,
                   stdout: Writer | None, stderr: Writer | None, resize: AsyncIterator[Size] | None) -> int:
        """Run ``cmd`` in the container with these streams until it exits; its exit code.

        A process that could not be started raises a ``DockyardError`` (told to the client as an
        internal error, as containerd's runtime failures are)."""
        ...

    async def attach(self, container_id: str, tty: bool, stdin: Reader | None, stdout: Writer | None,
                     stderr: Writer | None, resize: AsyncIterator[Size] | None) -> None:
        """The container's own stdio, until its output ends (it exited)."""
        ...

    async def port_forward(self, sandbox_id: str, port: int, stream: Duplex) -> None:
        """``stream`` joined to a connection to ``port`` on localhost in the pod's network namespace,
        until either side ends."""
        ...
