"""Real registries for the tests: Debian's docker-registry (open, htpasswd, token auth), a token server, a proxy.

Everything listens on 127.0.0.1 only. Each helper is a context manager that
stops what it started.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import http.client
import http.server
import json
import socket
import subprocess
import threading
import time
import urllib.parse
import uuid
from pathlib import Path

REGISTRY_BIN = "/usr/bin/docker-registry"
SKOPEO = "/usr/bin/skopeo"
USER, PASSWORD = "tester", "s3cret-pw"
SERVICE = "dockyard-test-registry"
ISSUER = "dockyard-test-issuer"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


class Registry:
    """docker-registry serving from ``base``; ``auth`` is None, "htpasswd" or a TokenServer."""

    def __init__(self, base: Path, auth: "str | TokenServer | None" = None,
                 tls: "tuple[Path, Path, Path] | None" = None) -> None:
        """``tls``: (certificate, key, CA its clients' certificates must chain to) to serve HTTPS only."""
        self.base = base
        self.auth = auth
        self.tls = tls
        self.port = free_port()
        self.storage = base / "storage"
        self.proc: subprocess.Popen | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> "Registry":
        self.base.mkdir(parents=True, exist_ok=True)
        self.storage.mkdir(exist_ok=True)
        lines = ["version: 0.1", "log:", "  level: warn", "storage:", "  filesystem:",
                 f"    rootdirectory: {self.storage}", "  delete:", "    enabled: true",
                 "http:", f"  addr: 127.0.0.1:{self.port}", "  headers:",
                 "    X-Content-Type-Options: [nosniff]"]
        if self.tls:
            cert, key, client_ca = self.tls
            lines += ["  tls:", f"    certificate: {cert}", f"    key: {key}", "    clientcas:", f"      - {client_ca}"]
        if self.auth == "htpasswd":
            import bcrypt
            htpasswd = self.base / "htpasswd"
            hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=5)).decode()
            htpasswd.write_text(f"{USER}:{hashed}\n")
            lines += ["auth:", "  htpasswd:", "    realm: dockyard-test", f"    path: {htpasswd}"]
        elif isinstance(self.auth, TokenServer):
            lines += ["auth:", "  token:", f"    realm: {self.auth.url}/token", f"    service: {SERVICE}",
                      f"    issuer: {ISSUER}", f"    rootcertbundle: {self.auth.cert_path}"]
        config = self.base / "config.yml"
        config.write_text("\n".join(lines) + "\n")
        log = open(self.base / "registry.log", "ab")
        self.proc = subprocess.Popen([REGISTRY_BIN, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)
        log.close()
        wait_port(self.port)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def __enter__(self) -> "Registry":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def blob_path(self, digest: str) -> Path:
        hexd = digest.split(":", 1)[1]
        return self.storage / "docker/registry/v2/blobs/sha256" / hexd[:2] / hexd / "data"

    def skopeo_copy(self, src: str, dest_ref: str, extra: list[str] | None = None) -> None:
        """Copy ``src`` (a skopeo transport:path) into this registry as ``repo:tag``."""
        args = [SKOPEO, "copy", "--dest-tls-verify=false", *(extra or [])]
        if self.auth:
            args.append(f"--dest-creds={USER}:{PASSWORD}")
        subprocess.run([*args, src, f"docker://{self.host}/{dest_ref}"], check=True, capture_output=True,
                       timeout=120)

    def skopeo_inspect(self, ref: str, raw: bool = False) -> dict:
        args = [SKOPEO, "inspect", "--tls-verify=false"]
        if self.auth:
            args.append(f"--creds={USER}:{PASSWORD}")
        if raw:
            args.append("--raw")
        out = subprocess.run([*args, f"docker://{self.host}/{ref}"], check=True, capture_output=True,
                             timeout=60).stdout
        return json.loads(out)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenServer:
    """A Bearer token server of the tests' own (the Docker registry token spec, RS256 JWTs).

    Anonymous callers get pull access; ``USER``/``PASSWORD`` (or a refresh token
    it handed out) get what they ask for; wrong credentials get 401.
    """

    def __init__(self, base: Path) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID

        base.mkdir(parents=True, exist_ok=True)
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dockyard test token signer")])
        now = datetime.datetime.now(datetime.timezone.utc)
        self.cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - datetime.timedelta(days=1))
                     .not_valid_after(now + datetime.timedelta(days=2))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                     .sign(self.key, hashes.SHA256()))
        self.cert_path = base / "token-signer.pem"
        self.cert_path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        self._der = self.cert.public_bytes(serialization.Encoding.DER)
        self.refresh_tokens: set[str] = set()
        self.requests: list[dict] = []
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: http.server.ThreadingHTTPServer | None = None

    def sign(self, claims: dict) -> str:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(self._der).decode()]}
        signing_input = _b64url(json.dumps(header).encode()) + "." + _b64url(json.dumps(claims).encode())
        sig = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return signing_input + "." + _b64url(sig)

    def issue(self, subject: str, scopes: list[str], authenticated: bool) -> str:
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            granted = [a for a in actions.split(",") if a and (authenticated or a == "pull")]
            access.append({"type": kind, "name": name, "actions": granted})
        now = int(time.time())
        return self.sign({"iss": ISSUER, "sub": subject, "aud": SERVICE, "exp": now + 300, "nbf": now - 10,
                          "iat": now, "jti": uuid.uuid4().hex, "access": access})

    def __enter__(self) -> "TokenServer":
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _answer(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                q = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
                server.requests.append({"method": "GET", "query": q})
                auth = self.headers.get("Authorization", "")
                authenticated = False
                if auth.startswith("Basic "):
                    user, _, pw = base64.b64decode(auth[6:]).decode().partition(":")
                    if (user, pw) != (USER, PASSWORD):
                        return self._answer(401, {"details": "incorrect username or password"})
                    authenticated = True
                body = {"token": server.issue(USER if authenticated else "", q.get("scope", []), authenticated),
                        "expires_in": 300}
                if authenticated and q.get("offline_token") == ["true"]:
                    refresh = uuid.uuid4().hex
                    server.refresh_tokens.add(refresh)
                    body["refresh_token"] = refresh
                self._answer(200, body)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = urllib.parse.parse_qs(self.rfile.read(length).decode())
                server.requests.append({"method": "POST", "form": form})
                if form.get("grant_type") != ["refresh_token"] or \
                        form.get("refresh_token", [""])[0] not in server.refresh_tokens:
                    return self._answer(401, {"details": "invalid refresh token"})
                scopes = form.get("scope", [])
                self._answer(200, {"access_token": server.issue(USER, scopes, True), "expires_in": 300})

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


class FaultyProxy:
    """An HTTP proxy of the tests' own in front of a registry that can break answers on purpose.

    ``fault`` is one of None, "close-mid-blob" (send half of a layer blob, then close),
    "bad-manifest" (a manifest body that is not JSON). ``faults_left`` counts how many
    times the fault fires; after that the proxy passes everything through.
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = free_port()
        self.fault: str | None = None
        self.faults_left = 0
        self._server: http.server.ThreadingHTTPServer | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def arm(self, fault: str, times: int = 1) -> None:
        self.fault, self.faults_left = fault, times

    def _take(self, fault: str) -> bool:
        if self.fault == fault and self.faults_left > 0:
            self.faults_left -= 1
            return True
        return False

    def __enter__(self) -> "FaultyProxy":
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *args: object) -> None:
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                conn = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                headers["Host"] = proxy.host
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                conn.close()
                is_blob = "/blobs/sha256:" in self.path and self.command == "GET" and resp.status == 200
                is_manifest = "/manifests/" in self.path and self.command == "GET" and resp.status == 200
                if is_blob and len(data) > 1024 and proxy._take("close-mid-blob"):
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(data)))
                    self.send_header("Content-Type", "application/octet-stream")
                    self.end_headers()
                    self.wfile.write(data[:len(data) // 2])
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if is_manifest and proxy._take("bad-manifest"):
                    data = b"<html>this is not a manifest</html>"
                    fake_headers = [("Content-Type", "application/vnd.docker.distribution.manifest.v2+json")]
                else:
                    fake_headers = None
                self.send_response(resp.status)
                for k, v in (fake_headers or resp.getheaders()):
                    if k.lower() in ("content-length", "connection", "transfer-encoding"):
                        continue
                    if fake_headers is None and k.lower() == "location" and str(proxy.upstream_port) in v:
                        v = v.replace(f"127.0.0.1:{proxy.upstream_port}", proxy.host)
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def corrupt_blob(registry: Registry, digest: str) -> bytes:
    """Flip bytes of a stored blob (same size); returns the original to restore it."""
    path = registry.blob_path(digest)
    original = path.read_bytes()
    data = bytearray(original)
    mid = len(data) // 2
    data[mid:mid + 16] = bytes(b ^ 0xFF for b in data[mid:mid + 16])
    path.write_bytes(bytes(data))
    return original
