"""Issuing X.509 certificates with `cryptography`: a CA and what it signs.

Keys are ECDSA P-256: every client that matters here (Go's crypto/tls in the
docker CLI, OpenSSL under docker-py) takes them, and they are made in
microseconds where RSA-4096 takes a second or more.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from typing import Iterable

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEFAULT_DAYS = 365
CA_DAYS = 3650
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass
class Issued:
    """A certificate and its private key."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        # Traditional "EC PRIVATE KEY" PEM: what openssl-made docker keys look like
        # and what both Go's tls.X509KeyPair and OpenSSL read.
        return self.key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.TraditionalOpenSSL,
                                      serialization.NoEncryption())

    @classmethod
    def from_pem(cls, cert_pem: bytes, key_pem: bytes) -> "Issued":
        key = serialization.load_pem_private_key(key_pem, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError("only EC private keys are supported for signing")
        return cls(x509.load_pem_x509_certificate(cert_pem), key)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _validity(days: int, not_before: dt.datetime | None, not_after: dt.datetime | None
              ) -> tuple[dt.datetime, dt.datetime]:
    # Backdated a little so that a client whose clock lags the issuer's accepts it.
    start = not_before or _now() - dt.timedelta(minutes=5)
    return start, not_after or start + dt.timedelta(days=days)


def make_ca(common_name: str = "dockyard CA", days: int = CA_DAYS) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "dockyard"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    start, end = _validity(days, None, None)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (x509.CertificateBuilder()
            .subject_name(name).issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(ski, critical=False)
            .sign(key, hashes.SHA256()))
    return Issued(cert, key)


def _issue(ca: Issued, common_name: str, usage: x509.ObjectIdentifier,
           san: list[x509.GeneralName], days: int,
           not_before: dt.datetime | None, not_after: dt.datetime | None) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    start, end = _validity(days, not_before, not_after)
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
               .issuer_name(ca.cert.subject)
               .public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(start).not_valid_after(end)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=False,
                                            content_commitment=False, data_encipherment=False,
                                            key_agreement=False, key_cert_sign=False, crl_sign=False,
                                            encipher_only=False, decipher_only=False), critical=True)
               .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
                              critical=False))
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    return Issued(builder.sign(ca.key, hashes.SHA256()), key)


def issue_server(ca: Issued, names: Iterable[str], addresses: Iterable[IPAddress],
                 days: int = DEFAULT_DAYS, not_before: dt.datetime | None = None,
                 not_after: dt.datetime | None = None) -> Issued:
    """A serving certificate valid for exactly these DNS names and IP addresses."""
    names = list(dict.fromkeys(names))
    addresses = list(dict.fromkeys(addresses))
    san: list[x509.GeneralName] = [x509.DNSName(n) for n in names]
    san += [x509.IPAddress(a) for a in addresses]
    common_name = names[0] if names else str(addresses[0]) if addresses else "dockyardd"
    return _issue(ca, common_name, ExtendedKeyUsageOID.SERVER_AUTH, san, days, not_before, not_after)


def issue_client(ca: Issued, common_name: str = "client", days: int = DEFAULT_DAYS,
                 not_before: dt.datetime | None = None, not_after: dt.datetime | None = None) -> Issued:
    """A client certificate (extendedKeyUsage clientAuth), as dockerd's --tlsverify demands."""
    return _issue(ca, common_name, ExtendedKeyUsageOID.CLIENT_AUTH, [], days, not_before, not_after)


def san_of(cert: x509.Certificate) -> tuple[list[str], list[IPAddress]]:
    """The DNS names and IP addresses a certificate is valid for."""
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [], []
    return ext.get_values_for_type(x509.DNSName), ext.get_values_for_type(x509.IPAddress)
