"""A Distribution API v2 client for one repository on one registry endpoint, on urllib3.

Blocking by design: the engine runs it in worker threads. Every request carries
the Authorization the endpoint's challenge asks for; a 401 mid-session (token
expired) refreshes the token once and retries when the body can be re-sent.
"""

from __future__ import annotations

import json
import logging
import os
import ssl
import threading
import urllib.parse
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import urllib3

from .. import __version__
from ..errors import Unavailable
from ..util.iterio import IterReader
from .auth import AuthConfig, Authorizer, parse_challenge
from .registries import Endpoint

log = logging.getLogger("dockyard.distribution")

USER_AGENT = f"dockyard/{__version__} (docker-compatible)"
CONNECT_TIMEOUT = 15.0
READ_TIMEOUT = 120.0
# bytes per send() of a streamed upload body (urllib3's default of 16 KiB costs CPU)
UPLOAD_BLOCK = 1024 * 1024
# pools for hosts.toml certificate sets kept at once
_MAX_CUSTOM_POOLS = 16


class RegistryError(Exception):
    """The registry answered with an error status (its ``errors`` list, when it sent one)."""

    def __init__(self, status: int, code: str, message: str, detail: Any = None) -> None:
        super().__init__(f"{code.lower().replace('_', ' ')}: {message}" if code else message)
        self.status = status
        self.code = code
        self.detail = detail


class RegistryUnreachable(Exception):
    """The endpoint could not be talked to at all (refused, reset, TLS, timeout)."""


class Transport:
    """Connection pools shared by all sessions: one verifying TLS, one that does not (insecure registries),
    and one per set of CA and client certificate files a hosts.toml names."""

    def __init__(self, pool_size: int = 8) -> None:
        timeout = urllib3.Timeout(connect=CONNECT_TIMEOUT, read=READ_TIMEOUT)
        self._common: dict[str, Any] = dict(num_pools=16, maxsize=pool_size, timeout=timeout, retries=False,
                                            headers={"User-Agent": USER_AGENT}, blocksize=UPLOAD_BLOCK)
        self.verified = urllib3.PoolManager(**self._common)
        self.unverified = urllib3.PoolManager(**self._common, cert_reqs="CERT_NONE")
        self._custom: dict[tuple[Any, ...], urllib3.PoolManager] = {}
        self._lock = threading.Lock()

    def pool(self, endpoint: Endpoint) -> urllib3.PoolManager:
        """The pool for ``endpoint``'s TLS settings; RegistryUnreachable if its certificate files are unusable."""
        if not endpoint.ca and not endpoint.client:
            return self.verified if endpoint.verify_tls else self.unverified
        files = [*endpoint.ca, *(p for pair in endpoint.client for p in pair if p)]
        try:
            # the files' mtimes are in the key so a renewed certificate is picked up without a restart
            key = (endpoint.verify_tls, endpoint.ca, endpoint.client,
                   tuple(os.stat(f).st_mtime_ns for f in files))
        except OSError as e:
            raise RegistryUnreachable(f"{endpoint.url}: certificate file: {e}") from None
        with self._lock:
            pool = self._custom.get(key)
            if pool is None:
                pool = urllib3.PoolManager(**self._common, ssl_context=_ssl_context(endpoint))
                if len(self._custom) >= _MAX_CUSTOM_POOLS:
                    # the oldest, most likely an edited configuration's; a pull still on it keeps its reference
                    self._custom.pop(next(iter(self._custom)))
                self._custom[key] = pool
            return pool

    def close(self) -> None:
        self.verified.clear()
        self.unverified.clear()
        with self._lock:
            for pool in self._custom.values():
                pool.clear()
            self._custom.clear()


def _ssl_context(endpoint: Endpoint) -> ssl.SSLContext:
    """The system's trust plus the endpoint's CA files, with its client certificates."""
    ctx = ssl.create_default_context()
    if not endpoint.verify_tls:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    try:
        for ca in endpoint.ca:
            ctx.load_verify_locations(cafile=ca)
        for cert, key in endpoint.client:
            ctx.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as e:
        raise RegistryUnreachable(f"{endpoint.url}: certificate file: {e}") from None
    return ctx


@dataclass
class Manifest:
    data: bytes
    media_type: str
    digest: str  # as the registry named it (Docker-Content-Digest), verified by the caller


class Session:
    """Talks to ``endpoint`` about the repository ``path`` with the given credentials."""

    def __init__(self, transport: Transport, endpoint: Endpoint, path: str, auth: AuthConfig,
                 actions: tuple[str, ...] = ("pull",)) -> None:
        self.endpoint = endpoint
        self.path = path
        self.pool = transport.pool(endpoint)
        self.authorizer = Authorizer(self.pool, auth)
        self.scopes = [f"repository:{path}:{','.join(actions)}"]
        self._lock = threading.Lock()

    # -- plumbing --------------------------------------------------------------
    def url(self, suffix: str) -> str:
        root = self.endpoint.api_root
        return f"{root}/{self.path}/{suffix}" if suffix else f"{root}/"

    def ping(self) -> None:
        """GET /v2/: learn the auth challenge; raises RegistryUnreachable if nothing speaks v2 there."""
        resp = self._raw("GET", self.url(""), {})
        if resp.status == 401:
            self.authorizer.challenge = parse_challenge(resp.headers.get("WWW-Authenticate"))
        elif resp.status != 200:
            raise RegistryUnreachable(f"{self.url('')} answered {resp.status}")

    def add_scope(self, scope: str) -> None:
        if scope not in self.scopes:
            self.scopes.append(scope)

    def _raw(self, method: str, url: str, headers: dict[str, str], body: Any = None,
             preload: bool = True) -> urllib3.BaseHTTPResponse:
        if self.endpoint.headers:
            headers = {**dict(self.endpoint.headers), **headers}
        try:
            return self.pool.request(method, url, headers=headers, body=body, preload_content=preload,
                                     redirect=method in ("GET", "HEAD"), retries=False,
                                     chunked=body is not None and not isinstance(body, bytes)
                                     and not hasattr(body, "read"))
        except urllib3.exceptions.HTTPError as e:
            raise RegistryUnreachable(f"{method} {url}: {getattr(e, 'reason', None) or e}") from None

    def request(self, method: str, suffix_or_url: str, headers: dict[str, str] | None = None, body: Any = None,
                preload: bool = True, ok: tuple[int, ...] = (200,)) -> urllib3.BaseHTTPResponse:
        url = suffix_or_url if "://" in suffix_or_url else self.url(suffix_or_url)
        hdrs = dict(headers or {})
        for attempt in (0, 1):
            auth = self.authorizer.header(self.scopes)
            if auth:
                hdrs["Authorization"] = auth
            resp = self._raw(method, url, hdrs, body, preload)
            if resp.status == 401 and attempt == 0 and isinstance(body, (bytes, type(None))):
                challenge = parse_challenge(resp.headers.get("WWW-Authenticate"))
                if challenge is not None:
                    resp.drain_conn()
                    self.authorizer.challenge = challenge
                    self.authorizer.invalidate(self.scopes)
                    continue
            if resp.status not in ok:
                raise _registry_error(resp)
            return resp
        raise AssertionError("unreachable")

    # -- operations --------------------------------------------------------------
    def get_manifest(self, tag_or_digest: str, accept: list[str]) -> Manifest:
        resp = self.request("GET", f"manifests/{tag_or_digest}", {"Accept": ", ".join(accept)})
        return Manifest(resp.data, resp.headers.get("Content-Type", "").split(";")[0].strip(),
                        resp.headers.get("Docker-Content-Digest", ""))

    def head_manifest(self, tag_or_digest: str, accept: list[str]) -> tuple[str, str, int] | None:
        """(media type, digest, size) of a manifest without fetching it, or None when unknown."""
        resp = self.request("HEAD", f"manifests/{tag_or_digest}", {"Accept": ", ".join(accept)}, ok=(200, 404))
        if resp.status == 404:
            return None
        return (resp.headers.get("Content-Type", "").split(";")[0].strip(),
                resp.headers.get("Docker-Content-Digest", ""), int(resp.headers.get("Content-Length") or 0))

    def put_manifest(self, tag_or_digest: str, media_type: str, data: bytes) -> str:
        resp = self.request("PUT", f"manifests/{tag_or_digest}", {"Content-Type": media_type}, body=data,
                            ok=(200, 201, 202))
        return resp.headers.get("Docker-Content-Digest", "")

    def tags(self) -> list[str]:
        resp = self.request("GET", "tags/list")
        try:
            return list(json.loads(resp.data).get("tags") or [])
        except (ValueError, AttributeError):
            raise Unavailable(f"registry sent an invalid tag list for {self.path}") from None

    def open_blob(self, digest: str) -> urllib3.BaseHTTPResponse:
        """A streaming response for the blob; the caller reads and releases it."""
        return self.request("GET", f"blobs/{digest}", preload=False)

    def blob_size(self, digest: str) -> int | None:
        """The blob's size if the repository has it, else None."""
        resp = self.request("HEAD", f"blobs/{digest}", ok=(200, 404))
        if resp.status == 404:
            return None
        return int(resp.headers.get("Content-Length") or 0)

    def mount_blob(self, digest: str, from_path: str) -> bool:
        """Cross-repository mount; True if the registry mounted it, False if it opened an upload instead."""
        resp = self.request("POST", f"blobs/uploads/?mount={digest}&from={from_path}", ok=(201, 202))
        if resp.status == 202:
            location = resp.headers.get("Location", "")
            if location:
                try:  # abandon the upload the registry opened instead
                    self.request("DELETE", self._absolute(location), ok=(200, 202, 204, 404))
                except (RegistryError, RegistryUnreachable):
                    pass
            return False
        return True

    def upload_blob(self, digest: str, chunks: Iterator[bytes], size: int, chunk_size: int = 0) -> None:
        """Upload a blob: monolithically (one PUT with the body) or, with chunk_size, PATCH by PATCH."""
        resp = self.request("POST", "blobs/uploads/", {"Content-Length": "0"}, ok=(202,))
        location = self._absolute(resp.headers.get("Location", ""))
        if chunk_size <= 0:
            body = IterReader(chunks)
            resp = self.request("PUT", _with_query(location, "digest", digest),
                                {"Content-Type": "application/octet-stream", "Content-Length": str(size)},
                                body=body, ok=(201,))
            return
        offset = 0
        for chunk in _rechunk(chunks, chunk_size):
            resp = self.request("PATCH", location, {
                "Content-Type": "application/octet-stream", "Content-Length": str(len(chunk)),
                "Content-Range": f"{offset}-{offset + len(chunk) - 1}"}, body=chunk, ok=(202,))
            offset += len(chunk)
            location = self._absolute(resp.headers.get("Location", "")) or location
        self.request("PUT", _with_query(location, "digest", digest), {"Content-Length": "0"}, ok=(201,))

    def upload_stream(self, chunks: Iterator[bytes], digest_of: "Callable[[], str]") -> str:
        """Upload a blob whose digest is known only at the end: one streamed (chunked) PATCH, then PUT."""
        resp = self.request("POST", "blobs/uploads/", {"Content-Length": "0"}, ok=(202,))
        location = self._absolute(resp.headers.get("Location", ""))
        resp = self.request("PATCH", location, {"Content-Type": "application/octet-stream"}, body=chunks,
                            ok=(202,))
        location = self._absolute(resp.headers.get("Location", "")) or location
        digest = digest_of()
        self.request("PUT", _with_query(location, "digest", digest), {"Content-Length": "0"}, ok=(201,))
        return digest

    def _absolute(self, location: str) -> str:
        if not location or "://" in location:
            return location
        # relative to the host's root, even when a hosts.toml URL carries a path of its own
        return urllib.parse.urljoin(self.endpoint.url, location if location.startswith("/") else "/" + location)


def _rechunk(chunks: Iterator[bytes], size: int) -> Iterator[bytes]:
    buf = bytearray()
    for chunk in chunks:
        buf += chunk
        while len(buf) >= size:
            yield bytes(buf[:size])
            del buf[:size]
    if buf:
        yield bytes(buf)


def _with_query(url: str, key: str, value: str) -> str:
    return url + ("&" if "?" in url else "?") + f"{key}={value}"


def _registry_error(resp: urllib3.BaseHTTPResponse) -> RegistryError:
    data = resp.data if resp.data is not None else b""
    try:
        errs = json.loads(data).get("errors") or []
        first = errs[0]
        return RegistryError(resp.status, str(first.get("code", "")), str(first.get("message", "")),
                             first.get("detail"))
    except (ValueError, AttributeError, IndexError, TypeError):
        text = data[:200].decode(errors="replace").strip()
        return RegistryError(resp.status, "", f"registry answered {resp.status}" + (f": {text}" if text else ""))
