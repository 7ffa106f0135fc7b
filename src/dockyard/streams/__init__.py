"""A container's stdio as byte streams, whatever carries them to the client.

The Docker API hijacks an HTTP connection (or speaks WebSocket), the CRI streams over SPDY or
WebSocket: each front-end hands over a ``Duplex`` and an ``Encoder``, and these modules do the rest
(conmon's attach socket, exec pipes and PTYs, detach keys, half-close)."""
