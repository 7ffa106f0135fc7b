"""ADD of an http(s) URL, and ``ADD --checksum``: the file fetched by the daemon, bounded, verified.

As dockerd's classic builder and BuildKit: the file is named after the last
part of the URL path (when the destination is a directory), gets mode 0600
and the ``Last-Modified`` time when the server sends one. ``--checksum``
(``sha256:<hex>``) is compared with what was received before anything is
written to a layer; a mismatch fails the step. Git URLs are gitsource.py's.
"""

from __future__ import annotations

import email.utils
import hashlib
import os
import posixpath
import re
import urllib.parse

import urllib3

from .copier import CopyError

MAX_BYTES = 8 << 30  # an upper bound on one download; the layer store bounds the rest
TIMEOUT = urllib3.Timeout(connect=10.0, read=60.0)
_DIGEST = re.compile(r"^sha256:([0-9a-f]{64})$")


def is_url(src: str) -> bool:
    return src.startswith("http://") or src.startswith("https://")


def parse_checksum(value: str) -> str:
    m = _DIGEST.match(value)
    if not m:
        raise CopyError(f"invalid checksum digest format {value!r}: expected sha256:<64 hex digits>")
    return m.group(1)


def fetch(url: str, directory: str, want_sha256: str | None) -> tuple[str, str]:
    """Download ``url`` into ``directory``; returns (host path, file name). Mode 0600, the server's mtime."""
    name = posixpath.basename(urllib.parse.urlsplit(url).path) or "__unnamed__"
    path = os.path.join(directory, "download-" + hashlib.sha256(url.encode()).hexdigest()[:16])
    http = urllib3.PoolManager(timeout=TIMEOUT, retries=urllib3.Retry(total=2, redirect=5))
    try:
        resp = http.request("GET", url, preload_content=False)
    except urllib3.exceptions.HTTPError as e:
        raise CopyError(f"ADD failed: fetching {url}: {e}") from None
    try:
        if resp.status != 200:
            raise CopyError(f"ADD failed: fetching {url}: invalid response status {resp.status}")
        digest = hashlib.sha256()
        size = 0
        with open(path, "wb") as f:
            for chunk in resp.stream(1 << 20):
                size += len(chunk)
                if size > MAX_BYTES:
                    raise CopyError(f"ADD failed: {url} is larger than {MAX_BYTES} bytes")
                digest.update(chunk)
                f.write(chunk)
        modified = resp.headers.get("Last-Modified")
    except urllib3.exceptions.HTTPError as e:
        raise CopyError(f"ADD failed: fetching {url}: {e}") from None
    finally:
        resp.release_conn()
    if want_sha256 is not None and digest.hexdigest() != want_sha256:
        raise CopyError(f"ADD failed: digest mismatch for {url}: sha256:{digest.hexdigest()} != "
                        f"sha256:{want_sha256}")
    os.chmod(path, 0o600)
    if modified:
        try:
            when = email.utils.parsedate_to_datetime(modified).timestamp()
        except (TypeError, ValueError):
            pass  # an unreadable Last-Modified leaves the download's own time, as dockerd
        else:
            os.utime(path, (when, when))
    return path, name
