"""The certificate directory in docker's layout, written safely.

One directory holds the set a provisioning tool makes (docker's "Protect the
Docker daemon socket" names): ``ca.pem`` + ``ca-key.pem`` (the CA),
``cert.pem`` + ``key.pem`` (the client's, what ``DOCKER_CERT_PATH`` points at)
and ``server-cert.pem`` + ``server-key.pem`` (the daemon's). Private keys are
created mode 0600 and every file is replaced atomically, so a reader never
sees half a key and a key is never readable by others, even for a moment.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from ..atomic import write_atomic
from . import pki

CA_CERT, CA_KEY = "ca.pem", "ca-key.pem"
CLIENT_CERT, CLIENT_KEY = "cert.pem", "key.pem"
SERVER_CERT, SERVER_KEY = "server-cert.pem", "server-key.pem"


def default_dir() -> Path:
    """Where docker's client looks: $DOCKER_CERT_PATH, else ~/.docker."""
    return Path(os.environ.get("DOCKER_CERT_PATH") or Path.home() / ".docker")


def write_file(path: Path, data: bytes, private: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, data, mode=0o600 if private else 0o644)


def write_pair(directory: Path, cert_name: str, key_name: str, issued: pki.Issued) -> None:
    # key first: a cert.pem that exists always has its key beside it
    write_file(directory / key_name, issued.key_pem(), private=True)
    write_file(directory / cert_name, issued.cert_pem(), private=False)


class CertDirError(Exception):
    pass


@dataclass
class CertDir:
    path: Path

    def file(self, name: str) -> Path:
        return self.path / name

    def exists(self, name: str) -> bool:
        return self.file(name).exists()

    def load_ca(self) -> pki.Issued:
        try:
            return pki.Issued.from_pem(self.file(CA_CERT).read_bytes(), self.file(CA_KEY).read_bytes())
        except FileNotFoundError as e:
            raise CertDirError(f"no CA in {self.path}: {e.filename} is missing "
                               "(make the whole set first)") from None
        except ValueError as e:
            raise CertDirError(f"cannot load the CA from {self.path}: {e}") from None

    def create(self, names: Iterable[str], addresses: Iterable[pki.IPAddress], *,
               client_name: str = "client", days: int = pki.DEFAULT_DAYS, force: bool = False) -> list[Path]:
        """Make a CA, a server certificate and a client certificate; returns the files written.

        Refuses to overwrite an existing set unless ``force``: a new CA orphans
        every certificate the old one signed.
        """
        if not force:
            present = [n for n in (CA_CERT, CA_KEY, CLIENT_CERT, CLIENT_KEY, SERVER_CERT, SERVER_KEY)
                       if self.exists(n)]
            if present:
                raise CertDirError(f"{self.path} already holds {', '.join(present)}; pass --force to replace "
                                   "them (every certificate signed by the old CA stops working)")
        ca = pki.make_ca()
        write_pair(self.path, CA_CERT, CA_KEY, ca)
        write_pair(self.path, CLIENT_CERT, CLIENT_KEY, pki.issue_client(ca, client_name, days))
        write_pair(self.path, SERVER_CERT, SERVER_KEY, pki.issue_server(ca, names, addresses, days))
        return [self.file(n) for n in (CA_CERT, CA_KEY, CLIENT_CERT, CLIENT_KEY, SERVER_CERT, SERVER_KEY)]

    def renew_server(self, names: Iterable[str], addresses: Iterable[pki.IPAddress], *,
                     days: int = pki.DEFAULT_DAYS) -> list[Path]:
        """A new server certificate from the existing CA; CA and client files stay as they are."""
        ca = self.load_ca()
        write_pair(self.path, SERVER_CERT, SERVER_KEY, pki.issue_server(ca, names, addresses, days))
        return [self.file(SERVER_CERT), self.file(SERVER_KEY)]

    def issue_client(self, common_name: str, out: Path, *, days: int = pki.DEFAULT_DAYS) -> list[Path]:
        """Another client's certificate, signed by this CA, into ``out`` as cert.pem/key.pem/ca.pem."""
        ca = self.load_ca()
        write_pair(out, CLIENT_CERT, CLIENT_KEY, pki.issue_client(ca, common_name, days))
        write_file(out / CA_CERT, ca.cert_pem(), private=False)
        return [out / CLIENT_CERT, out / CLIENT_KEY, out / CA_CERT]
