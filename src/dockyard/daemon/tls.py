"""The daemon's TLS server context, checked the way dockerd checks it.

Every file is read and parsed here before the context is built, so that a bad
file stops the daemon with a message naming it instead of OpenSSL's terse
error codes.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from . import config as cfg

log = logging.getLogger("dockyard.daemon")


def _default_cert_dir() -> Path:
    # dockerd's --tlscacert/--tlscert/--tlskey default to these names in $DOCKER_CERT_PATH or ~/.docker
    return Path(os.environ.get("DOCKER_CERT_PATH") or Path.home() / ".docker")


def _read(path: str, flag: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise cfg.ConfigError(f"could not load {flag} file {path}: no such file or directory") from None
    except OSError as e:
        raise cfg.ConfigError(f"could not read {flag} file {path}: {e.strerror or e}") from None


def _certificates(path: str, flag: str) -> list[x509.Certificate]:
    data = _read(path, flag)
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        certs = []
    if not certs:
        raise cfg.ConfigError(f"{flag} file {path} holds no PEM certificate")
    return certs


def _check_key_pair(cert_path: str, key_path: str) -> None:
    cert = _certificates(cert_path, "--tlscert")[0]
    data = _read(key_path, "--tlskey")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise cfg.ConfigError(f"--tlskey file {key_path} is encrypted; the daemon needs it unencrypted") from None
    except (ValueError, UnsupportedAlgorithm) as e:
        raise cfg.ConfigError(f"--tlskey file {key_path} holds no usable PEM private key: {e}") from None
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    if key.public_key().public_bytes(der, spki) != cert.public_key().public_bytes(der, spki):
        raise cfg.ConfigError(f"could not load X509 key pair (cert: {cert_path!r}, key: {key_path!r}): "
                              f"the private key in {key_path} does not match the certificate in {cert_path}")
    now = dt.datetime.now(dt.timezone.utc)
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        log.warning("the server certificate %s is not valid now (valid from %s to %s): clients will refuse it",
                    cert_path, cert.not_valid_before_utc, cert.not_valid_after_utc)


def server_context(c: cfg.DaemonConfig) -> ssl.SSLContext | None:
    """The context for tcp:// listeners, or None when TLS is off.

    ``--tls`` encrypts without asking for a client certificate (as dockerd's
    ClientAuth NoClientCert: the CA file is not used); ``--tlsverify``
    requires a client certificate signed by ``--tlscacert``.
    """
    if not c.tls:
        return None
    certs = _default_cert_dir()
    cert_path = c.tlscert or str(certs / "cert.pem")
    key_path = c.tlskey or str(certs / "key.pem")
    _check_key_pair(cert_path, key_path)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    # No TLS 1.3 session tickets (OpenSSL makes two per handshake): a docker CLI is a new process each
    # time and never resumes, so they would only cost every `docker ...` command a little time.
    ctx.num_tickets = 0
    try:
        ctx.load_cert_chain(cert_path, key_path)
    except (ssl.SSLError, OSError) as e:
        raise cfg.ConfigError(f"could not load X509 key pair (cert: {cert_path!r}, key: {key_path!r}): {e}") from None
    if c.tlsverify:
        ca_path = c.tlscacert or str(certs / "ca.pem")
        _certificates(ca_path, "--tlscacert")
        try:
            ctx.load_verify_locations(ca_path)
        except (ssl.SSLError, OSError) as e:
            raise cfg.ConfigError(f"could not read CA certificate {ca_path}: {e}") from None
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx
