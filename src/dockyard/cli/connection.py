"""How the CLI reaches the daemon: host and TLS settings resolved as the docker CLI does.

Flags win over the environment (``DOCKER_HOST``, ``DOCKER_TLS_VERIFY``,
``DOCKER_CERT_PATH``); with neither, the daemon's own default socket
``unix:///run/dockyard.sock``. TLS material defaults to ``ca.pem``,
``cert.pem`` and ``key.pem`` in the cert path (``~/.docker`` unless
``DOCKER_CERT_PATH`` or ``DOCKER_CONFIG`` says otherwise).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Iterator

import docker
import requests
from docker.tls import TLSConfig

DEFAULT_HOST = "unix:///run/dockyard.sock"
DEFAULT_TLS_PORT = 2376


@dataclass
class ConnectionOptions:
    host: str | None = None
    tls: bool = False
    tlsverify: bool | None = None
    tlscacert: str | None = None
    tlscert: str | None = None
    tlskey: str | None = None


class ConnectionError_(Exception):
    """The daemon could not be reached; worded like the docker CLI's message."""


def cert_dir() -> str:
    path = os.environ.get("DOCKER_CERT_PATH")
    if path:
        return path
    return os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")


def resolve_host(opts: ConnectionOptions) -> str:
    host = opts.host or os.environ.get("DOCKER_HOST") or DEFAULT_HOST
    if host.startswith("tcp://") and host.count(":") == 1 and tls_config(opts) is not None:
        host += f":{DEFAULT_TLS_PORT}"
    return host


def tls_config(opts: ConnectionOptions) -> TLSConfig | None:
    verify = opts.tlsverify if opts.tlsverify is not None else bool(os.environ.get("DOCKER_TLS_VERIFY"))
    if not (opts.tls or verify):
        return None
    base = cert_dir()

    def pick(flag: str | None, name: str) -> str | None:
        if flag:
            return os.path.expanduser(flag)
        path = os.path.join(base, name)
        return path if os.path.exists(path) else None

    ca = pick(opts.tlscacert, "ca.pem")
    cert = pick(opts.tlscert, "cert.pem")
    key = pick(opts.tlskey, "key.pem")
    client_cert = (cert, key) if cert and key else None
    return TLSConfig(client_cert=client_cert, ca_cert=ca if verify else None, verify=(ca or True) if verify else False)


def connect(opts: ConnectionOptions) -> docker.DockerClient:
    host = resolve_host(opts)
    tls = tls_config(opts)
    if tls is not None and tls.verify:
        # requests lets these replace the CA it is given (psf/requests#3829); the docker CLI
        # trusts only --tlscacert, and this process is the CLI, so they go.
        os.environ.pop("REQUESTS_CA_BUNDLE", None)
        os.environ.pop("CURL_CA_BUNDLE", None)
    try:
        return docker.DockerClient(base_url=host, version="auto", tls=tls or False, timeout=None)
    except docker.errors.TLSParameterError as e:
        raise ConnectionError_(str(e)) from None
    except docker.errors.DockerException as e:
        raise ConnectionError_(cannot_connect(host, e)) from None


def cannot_connect(host: str, err: BaseException | None = None) -> str:
    if host.startswith("unix://") or host.startswith("/"):
        return f"Cannot connect to the Docker daemon at {host}. Is the docker daemon running?"
    return f"error during connect: {err}" if err else f"Cannot connect to the Docker daemon at {host}."


# ---------------------------------------------------------------- raw calls
# docker-py has no call for a few things the CLI does (several images in one
# `save`, `import` with a message, JSON-stream errors on load); these go
# through its own session and URL building so that host, TLS and version
# negotiation stay docker-py's.

def raw_get(client: docker.DockerClient, path: str, params: Any = None, stream: bool = False) -> requests.Response:
    api = client.api
    res = api._get(api._url(path), params=params, stream=stream)
    api._raise_for_status(res)
    return res


def raw_post(client: docker.DockerClient, path: str, params: Any = None, data: Any = None,
             headers: dict[str, str] | None = None, stream: bool = False) -> requests.Response:
    api = client.api
    res = api._post(api._url(path), params=params, data=data, headers=headers, stream=stream)
    api._raise_for_status(res)
    return res


class StreamError(Exception):
    """An ``error`` message inside a JSON stream (load, import)."""


def json_stream(res: requests.Response) -> Iterator[dict[str, Any]]:
    """The objects of a JSON-lines response, as they arrive."""
    buf = b""
    for chunk in res.iter_content(chunk_size=None):
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            if line.strip():
                yield json.loads(line)
    if buf.strip():
        # dockerd's streams are newline-separated, but tolerate concatenated objects
        decoder = json.JSONDecoder()
        text = buf.decode().strip()
        while text:
            obj, end = decoder.raw_decode(text)
            yield obj
            text = text[end:].lstrip()


def api_message(e: docker.errors.APIError) -> str:
    """The daemon's own message (its JSON ``message``), as docker prints it."""
    explanation = e.explanation
    if isinstance(explanation, bytes):
        explanation = explanation.decode(errors="replace")
    if explanation:
        return str(explanation).strip()
    return e.response.reason if e.response is not None else str(e)
