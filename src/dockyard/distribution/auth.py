"""Registry credentials and the two auth schemes registries speak: Basic and Bearer tokens.

A registry answers an unauthenticated request with 401 and a
``WWW-Authenticate`` challenge. For Basic the credentials go on every
request; for Bearer the client fetches a token for the scopes it needs from
the challenge's realm (anonymously, with Basic credentials, or by trading an
identity/refresh token), then sends it as ``Authorization: Bearer``.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

import urllib3

from ..errors import InvalidParameter, Unauthorized, Unavailable

log = logging.getLogger("dockyard.distribution")

# The OAuth client id dockerd sends; token servers may key refresh tokens on it.
CLIENT_ID = "docker"
DEFAULT_TOKEN_LIFETIME = 60
_CHALLENGE_PARAM = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


@dataclass
class AuthConfig:
    """What a client sends in ``X-Registry-Auth`` or the body of ``POST /auth``."""

    username: str = ""
    password: str = ""
    server_address: str = ""
    identity_token: str = ""
    registry_token: str = ""

    @property
    def has_credentials(self) -> bool:
        return bool(self.username or self.identity_token or self.registry_token)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "AuthConfig":
        if not isinstance(raw, dict):
            raise InvalidParameter("invalid auth configuration: not a JSON object")
        low = {str(k).lower(): v for k, v in raw.items()}
        username, password = str(low.get("username") or ""), str(low.get("password") or "")
        if not username and low.get("auth"):
            # the CLI's config.json form: base64("user:pass")
            try:
                username, _, password = base64.b64decode(str(low["auth"])).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                raise InvalidParameter("invalid auth configuration: bad auth field") from None
        return cls(username=username, password=password,
                   server_address=str(low.get("serveraddress") or ""),
                   identity_token=str(low.get("identitytoken") or ""),
                   registry_token=str(low.get("registrytoken") or ""))

    @classmethod
    def from_header(cls, value: str | None) -> "AuthConfig":
        """Decode ``X-Registry-Auth``: base64url JSON, padding optional (as dockerd accepts it)."""
        if not value:
            return cls()
        text = value.strip()
        padded = text + "=" * (-len(text) % 4)
        for decode in (base64.urlsafe_b64decode, base64.b64decode):
            try:
                raw = json.loads(decode(padded))
            except (binascii.Error, ValueError):
                continue
            # clients send "{}" or "null" when they have nothing
            return cls.from_dict(raw) if isinstance(raw, dict) else cls()
        raise InvalidParameter("invalid X-Registry-Auth header: not base64url-encoded JSON")


@dataclass(frozen=True)
class Challenge:
    scheme: str  # "basic" or "bearer", lower-case
    params: dict[str, str] = field(default_factory=dict)


def parse_challenge(header: str | None) -> Challenge | None:
    if not header:
        return None
    scheme, _, rest = header.strip().partition(" ")
    params = {m.group(1).lower(): (m.group(2) if m.group(2) is not None else m.group(3)).replace('\\"', '"')
              for m in _CHALLENGE_PARAM.finditer(rest)}
    return Challenge(scheme.lower(), params)


@dataclass
class _Token:
    value: str
    expires: float


class Authorizer:
    """Produces the Authorization header for one registry endpoint and one set of credentials."""

    def __init__(self, pool: urllib3.PoolManager, auth: AuthConfig) -> None:
        self.pool = pool
        self.auth = auth
        self.challenge: Challenge | None = None
        self.refresh_token = ""  # handed out by the token server on login (offline_token)
        self._tokens: dict[tuple[str, ...], _Token] = {}
        self._lock = threading.Lock()

    def header(self, scopes: list[str]) -> str | None:
        ch = self.challenge
        if ch is None:
            return None
        if ch.scheme == "basic":
            if not self.auth.username:
                return None
            creds = f"{self.auth.username}:{self.auth.password}".encode()
            return "Basic " + base64.b64encode(creds).decode()
        if ch.scheme == "bearer":
            if self.auth.registry_token:
                return "Bearer " + self.auth.registry_token
            return "Bearer " + self.token(scopes)
        return None

    def invalidate(self, scopes: list[str]) -> None:
        with self._lock:
            self._tokens.pop(tuple(sorted(scopes)), None)

    def token(self, scopes: list[str], offline: bool = False) -> str:
        key = tuple(sorted(scopes))
        with self._lock:
            cached = self._tokens.get(key)
            if cached and cached.expires > time.time() + 5:
                return cached.value
        token = self._fetch(list(key), offline)
        with self._lock:
            self._tokens[key] = token
        return token.value

    def _fetch(self, scopes: list[str], offline: bool) -> _Token:
        assert self.challenge is not None
        realm = self.challenge.params.get("realm", "")
        if not realm.startswith(("http://", "https://")):
            raise Unavailable(f"registry token realm {realm!r} is not an http(s) URL")
        service = self.challenge.params.get("service", "")
        fields: list[tuple[str, str]] = []
        if service:
            fields.append(("service", service))
        fields.extend(("scope", s) for s in scopes)
        try:
            if self.auth.identity_token:
                body = urllib.parse.urlencode([("grant_type", "refresh_token"),
                                               ("refresh_token", self.auth.identity_token),
                                               ("client_id", CLIENT_ID), *fields])
                resp = self.pool.request("POST", realm, body=body.encode(), headers={
                    "Content-Type": "application/x-www-form-urlencoded"}, retries=False)
            else:
                headers = {}
                if self.auth.username:
                    creds = f"{self.auth.username}:{self.auth.password}".encode()
                    headers["Authorization"] = "Basic " + base64.b64encode(creds).decode()
                    if offline:
                        fields += [("offline_token", "true"), ("client_id", CLIENT_ID)]
                sep = "&" if "?" in realm else "?"
                url = realm + (sep + urllib.parse.urlencode(fields) if fields else "")
                resp = self.pool.request("GET", url, headers=headers, retries=False)
        except urllib3.exceptions.HTTPError as e:
            raise Unavailable(f"error fetching registry token from {realm}: {_reason(e)}") from None
        if resp.status in (401, 403):
            if self.auth.has_credentials:
                raise Unauthorized("unauthorized: incorrect username or password")
            raise Unauthorized(f"unauthorized: the token server at {realm} refused anonymous access")
        if resp.status != 200:
            raise Unavailable(f"token server at {realm} answered {resp.status}: "
                              f"{resp.data[:200].decode(errors='replace').strip()}")
        try:
            doc = json.loads(resp.data)
            value = doc.get("token") or doc.get("access_token")
        except (ValueError, AttributeError):
            value, doc = None, {}
        if not value:
            raise Unavailable(f"token server at {realm} sent no token")
        if doc.get("refresh_token"):
            self.refresh_token = str(doc["refresh_token"])
        lifetime = doc.get("expires_in") if isinstance(doc.get("expires_in"), int) else DEFAULT_TOKEN_LIFETIME
        return _Token(str(value), time.time() + max(lifetime, DEFAULT_TOKEN_LIFETIME))


def _reason(e: Exception) -> str:
    reason = getattr(e, "reason", None)
    return str(reason or e)
