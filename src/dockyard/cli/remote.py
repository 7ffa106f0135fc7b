"""Remote access from the command line: ``dockyard certs`` makes the TLS set,
``dockyard env HOST`` prints the environment that points docker at a host.

``certs`` rather than a docker command name because docker has none for this
(it sends users to openssl); the name says what it makes.
"""

from __future__ import annotations

import argparse
import ipaddress
import shlex
from pathlib import Path

from ..util.tlscerts import hostaddrs, pki
from ..util.tlscerts.layout import CertDir, CertDirError, default_dir
from .command import Arity, Cli, CliError, CommandTree, add_bool

DEFAULT_TLS_PORT = 2376


def register(tree: CommandTree) -> None:
    tree.group("certs", "Make the certificates for remote access over mutual TLS")
    tree.add(["certs create"], "[OPTIONS]",
             "Make a CA, a server certificate for this host and a client certificate", _create,
             setup=_create_flags, arity=Arity(0, 0))
    tree.add(["certs server"], "[OPTIONS]",
             "Make a new server certificate (new names or addresses); the CA and clients stay valid",
             _server, setup=_server_flags, arity=Arity(0, 0))
    tree.add(["certs client"], "[OPTIONS] OUTPUT-DIR",
             "Make another client certificate signed by the CA, with ca.pem, into OUTPUT-DIR", _client,
             setup=_client_flags, arity=Arity(1, 1), metavar="OUTPUT-DIR")
    tree.add(["env"], "[OPTIONS] HOST",
             "Print the shell commands that point docker at HOST over mutual TLS", _env,
             setup=_env_flags, arity=Arity(1, 1), metavar="HOST")


# -- flags ------------------------------------------------------------------------------

def _dir_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dir", type=Path, default=None,
                   help="Certificate directory (default $DOCKER_CERT_PATH, else ~/.docker)")


def _san_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", dest="san", action="append", default=[], metavar="NAME|IP",
                   help="A name or address clients use for this host (repeatable)")
    add_bool(p, "--no-detect", help="Only the --host values, not this host's detected names and addresses")
    p.add_argument("--days", type=int, default=pki.DEFAULT_DAYS, help="Validity in days")


def _create_flags(p: argparse.ArgumentParser) -> None:
    _dir_flag(p)
    _san_flags(p)
    p.add_argument("--client-name", default="client", help="Common name of the client certificate")
    add_bool(p, "-f", "--force", help="Replace an existing set (a new CA: old certificates stop working)")


def _server_flags(p: argparse.ArgumentParser) -> None:
    _dir_flag(p)
    _san_flags(p)


def _client_flags(p: argparse.ArgumentParser) -> None:
    _dir_flag(p)
    p.add_argument("--name", default="client", help="Common name of the client certificate")
    p.add_argument("--days", type=int, default=pki.DEFAULT_DAYS, help="Validity in days")


def _env_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cert-path", type=Path, default=None,
                   help="Directory with ca.pem, cert.pem, key.pem (default $DOCKER_CERT_PATH, else ~/.docker)")
    p.add_argument("--shell", choices=["sh", "fish"], default="sh", help="Syntax of the output")
    add_bool(p, "-u", "--unset", help="Print the commands that unset the variables instead")


# -- commands ---------------------------------------------------------------------------

def _sans(ns: argparse.Namespace) -> tuple[list[str], list[pki.IPAddress]]:
    names: list[str] = []
    addresses: list[pki.IPAddress] = []
    for value in ns.san:
        try:
            addresses.append(ipaddress.ip_address(value.strip("[]")))
        except ValueError:
            names.append(value)
    if not ns.no_detect:
        names += hostaddrs.names()
        addresses += hostaddrs.addresses()
    if not names and not addresses:
        raise CliError("no names or addresses for the server certificate: give --host")
    if ns.days < 1:
        raise CliError("--days must be at least 1")
    return list(dict.fromkeys(names)), list(dict.fromkeys(addresses))


def _certdir(ns: argparse.Namespace) -> CertDir:
    return CertDir((ns.dir or default_dir()).expanduser())


def _print_sans(cli: Cli, names: list[str], addresses: list[pki.IPAddress]) -> None:
    cli.out.write(f"server certificate valid for: {', '.join([*names, *map(str, addresses)])}\n")


def _create(cli: Cli, ns: argparse.Namespace) -> int:
    names, addresses = _sans(ns)
    d = _certdir(ns)
    try:
        written = d.create(names, addresses, client_name=ns.client_name, days=ns.days, force=ns.force)
    except CertDirError as e:
        raise CliError(str(e)) from None
    for path in written:
        cli.out.write(f"{path}\n")
    _print_sans(cli, names, addresses)
    cli.out.write(
        "\nthe daemon:  dockyardd -H tcp://0.0.0.0:2376 --tlsverify "
        f"--tlscacert {shlex.quote(str(d.file('ca.pem')))} "
        f"--tlscert {shlex.quote(str(d.file('server-cert.pem')))} "
        f"--tlskey {shlex.quote(str(d.file('server-key.pem')))}\n"
        f"a client:    eval \"$(dockyard env --cert-path {shlex.quote(str(d.path))} HOST)\"\n")
    return 0


def _server(cli: Cli, ns: argparse.Namespace) -> int:
    names, addresses = _sans(ns)
    try:
        written = _certdir(ns).renew_server(names, addresses, days=ns.days)
    except CertDirError as e:
        raise CliError(str(e)) from None
    for path in written:
        cli.out.write(f"{path}\n")
    _print_sans(cli, names, addresses)
    cli.out.write("restart the daemon (or send it the new files) for it to serve the new certificate\n")
    return 0


def _client(cli: Cli, ns: argparse.Namespace) -> int:
    if ns.days < 1:
        raise CliError("--days must be at least 1")
    try:
        written = _certdir(ns).issue_client(ns.name, Path(ns.args[0]).expanduser(), days=ns.days)
    except CertDirError as e:
        raise CliError(str(e)) from None
    for path in written:
        cli.out.write(f"{path}\n")
    return 0


def docker_host(host: str, port: int = DEFAULT_TLS_PORT) -> str:
    """``tcp://HOST:PORT`` from a bare name or address, ``HOST:PORT`` or a tcp:// URL."""
    rest = host[len("tcp://"):] if host.startswith("tcp://") else host
    if "://" in rest or not rest:
        raise CliError(f"invalid host {host!r}: expected NAME, ADDRESS, NAME:PORT or tcp://NAME:PORT")
    try:
        if isinstance(ipaddress.ip_address(rest.strip("[]")), ipaddress.IPv6Address):
            return f"tcp://[{rest.strip('[]')}]:{port}"
    except ValueError:
        pass
    if rest.rsplit(":", 1)[-1].isdigit() and (rest.count(":") == 1 or rest.startswith("[")):
        return f"tcp://{rest}"
    return f"tcp://{rest}:{port}"


def _env(cli: Cli, ns: argparse.Namespace) -> int:
    names = ("DOCKER_HOST", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH")
    if ns.unset:
        lines = [f"set -e {n}" for n in names] if ns.shell == "fish" else [f"unset {' '.join(names)}"]
        cli.out.write("\n".join(lines) + "\n")
        return 0
    cert_path = (ns.cert_path or default_dir()).expanduser().resolve()
    missing = [n for n in ("ca.pem", "cert.pem", "key.pem") if not (cert_path / n).is_file()]
    if missing:
        raise CliError(f"{cert_path} has no {', '.join(missing)}: make them with `dockyard certs create` "
                       "or give --cert-path")
    values = dict(zip(names, (docker_host(ns.args[0]), "1", str(cert_path))))
    if ns.shell == "fish":
        lines = [f"set -gx {k} {shlex.quote(v)};" for k, v in values.items()]
        hint = f"# eval (dockyard env --shell fish {shlex.quote(ns.args[0])})"
    else:
        lines = [f"export {k}={shlex.quote(v)}" for k, v in values.items()]
        hint = f"# eval \"$(dockyard env {shlex.quote(ns.args[0])})\""
    cli.out.write("\n".join([*lines, "# Run this command to configure your shell:", hint]) + "\n")
    return 0
