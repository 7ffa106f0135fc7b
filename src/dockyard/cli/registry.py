"""Registry commands: pull, push, login, logout.

Credentials live where the docker CLI keeps them, ``auths`` of
``$DOCKER_CONFIG/config.json`` with ``auth`` = base64(user:password) (or an
``identitytoken``), so either CLI can use what the other stored; docker-py
reads the same file to send ``X-Registry-Auth`` on pull and push.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import tempfile
from typing import Any, TextIO

import docker

from ..util import reference
from . import config, jsonmessage, progress
from .command import Arity, Cli, CliError, CommandTree, add_bool
from .common import parse_reference
from .connection import api_message, json_stream, raw_post

INDEX_SERVER = "https://index.docker.io/v1/"
UNENCRYPTED_WARNING = ("WARNING! Your credentials are stored unencrypted in '{path}'.\n"
                       "Configure a credential helper to remove this warning. See\n"
                       "https://docs.docker.com/go/credential-store/\n\n")


# ---------------------------------------------------------------- credentials

def _config_path() -> str:
    return os.path.join(config.config_dir(), "config.json")


def _save_config(data: dict[str, Any]) -> None:
    path = _config_path()
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="config.json", dir=os.path.dirname(path))
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f, indent="\t")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def registry_host(name: str) -> str:
    """The registry a reference lives on, as the key docker's config uses (``INDEX_SERVER`` for Docker Hub)."""
    domain = reference.parse(name, default_tag=False).domain
    return INDEX_SERVER if domain in ("docker.io", "index.docker.io") else domain


def convert_to_hostname(address: str) -> str:
    """docker's ConvertToHostname: strip the scheme and any path."""
    for scheme in ("http://", "https://"):
        if address.startswith(scheme):
            address = address[len(scheme):]
    return address.split("/", 1)[0]


def auth_header(server: str) -> str | None:
    """X-Registry-Auth for ``server`` from config.json, when logged in there."""
    auths = config.load().get("auths") or {}
    entry = auths.get(server) or auths.get(convert_to_hostname(server)) or auths.get(f"https://{server}") \
        or auths.get(f"http://{server}")
    if not entry:
        return None
    payload: dict[str, str] = {"serveraddress": server}
    if entry.get("auth"):
        user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
        payload.update(username=user, password=password)
    if entry.get("identitytoken"):
        payload["identitytoken"] = entry["identitytoken"]
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()


# ---------------------------------------------------------------- pull / push

def _show(cli: Cli, res: Any, out: TextIO, quiet: bool) -> None:
    messages = json_stream(res)
    if quiet:
        for msg in messages:
            if msg.get("error") or msg.get("errorDetail"):
                jsonmessage.display([msg], out)
        return
    if out.isatty():
        progress.display_terminal(messages, out)
    else:
        jsonmessage.display(messages, out, False)


def pull_image(cli: Cli, name: str, *, platform: str = "", all_tags: bool = False, quiet: bool = False,
               out: TextIO | None = None, print_name: bool = True) -> None:
    """``docker pull``'s output: "Using default tag", the stream, then the pulled name."""
    out = out or cli.out
    ref = parse_reference(name)
    if all_tags and (ref.tag or ref.digest):
        raise CliError("tag can't be used with --all-tags/-a")
    params: dict[str, Any] = {"fromImage": ref.name}
    if ref.digest:
        params["tag"] = ref.digest
    elif ref.tag:
        params["tag"] = ref.tag
    elif not all_tags:
        params["tag"] = reference.DEFAULT_TAG
        if not quiet and print_name:
            out.write(f"Using default tag: {reference.DEFAULT_TAG}\n")
    if platform:
        params["platform"] = platform
    headers = {}
    auth = auth_header(registry_host(ref.name))
    if auth:
        headers["X-Registry-Auth"] = auth
    res = raw_post(cli.client, "/images/create", params=params, headers=headers, stream=True)
    _show(cli, res, out, quiet)
    if print_name:
        if all_tags:
            cli.out.write(f"{ref.name}\n")
        elif ref.digest:
            cli.out.write(f"{ref.name}@{ref.digest}\n")
        else:
            cli.out.write(f"{ref.name}:{params['tag']}\n")


def cmd_pull(cli: Cli, ns: argparse.Namespace) -> None:
    pull_image(cli, ns.args[0], platform=ns.platform, all_tags=ns.all_tags, quiet=ns.quiet)


def cmd_push(cli: Cli, ns: argparse.Namespace) -> None:
    ref = parse_reference(ns.args[0])
    if ns.all_tags and (ref.tag or ref.digest):
        raise CliError("tag can't be used with --all-tags/-a")
    params: dict[str, Any] = {}
    if ref.tag and not ns.all_tags:
        params["tag"] = ref.tag
    elif not ns.all_tags and not ref.digest:
        params["tag"] = reference.DEFAULT_TAG
        if not ns.quiet:
            cli.out.write(f"Using default tag: {reference.DEFAULT_TAG}\n")
    if ns.platform:
        params["platform"] = json.dumps(_platform(ns.platform))
    auth = auth_header(registry_host(ref.name))
    # dockerd wants the header even when empty; docker sends "e30=" ({})
    headers = {"X-Registry-Auth": auth or base64.urlsafe_b64encode(b"{}").decode()}
    res = raw_post(cli.client, f"/images/{ref.name}/push", params=params, headers=headers, stream=True)
    _show(cli, res, cli.out, ns.quiet)
    if ns.quiet:
        cli.out.write(f"{ns.args[0]}\n")


def _platform(text: str) -> dict[str, str]:
    parts = text.split("/")
    out = {"os": parts[0]}
    if len(parts) > 1:
        out["architecture"] = parts[1]
    if len(parts) > 2:
        out["variant"] = parts[2]
    return out


# ---------------------------------------------------------------- login / logout

def _read_password_stdin() -> str:
    data = sys.stdin.read()
    return data.rstrip("\r\n")


def cmd_login(cli: Cli, ns: argparse.Namespace) -> int:
    server = ns.args[0] if ns.args else INDEX_SERVER
    if ns.password and ns.password_stdin:
        raise CliError("--password and --password-stdin are mutually exclusive")
    password = ns.password
    if ns.password_stdin:
        if not ns.username:
            raise CliError("Must provide --username with --password-stdin")
        password = _read_password_stdin()
    elif ns.password:
        cli.err.write("WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n")
    username = ns.username
    if not username or not password:
        if not sys.stdin.isatty():
            raise CliError("Error: Cannot perform an interactive login from a non TTY device")
        if not username:
            cli.out.write("Username: ")
            cli.out.flush()
            username = sys.stdin.readline().strip()
        if not password:
            import getpass
            password = getpass.getpass("Password: ")
        if not username:
            raise CliError("Error: Non-null Username Required")
        if not password:
            raise CliError("Error: Password Required")
    body = {"username": username, "password": password, "serveraddress": server}
    try:
        res = raw_post(cli.client, "/auth", data=json.dumps(body), headers={"Content-Type": "application/json"})
    except docker.errors.APIError as e:
        raise CliError(f"Error response from daemon: {api_message(e)}") from None
    answer = res.json() if res.content else {}
    data = config.load()
    entry: dict[str, str] = {"auth": base64.b64encode(f"{username}:{password}".encode()).decode()}
    if answer.get("IdentityToken"):
        entry = {"auth": base64.b64encode(f"{username}:".encode()).decode(), "identitytoken": answer["IdentityToken"]}
    data.setdefault("auths", {})[server] = entry
    _save_config(data)
    cli.out.write(UNENCRYPTED_WARNING.format(path=_config_path()))
    cli.out.write("Login Succeeded\n")
    return 0


def cmd_logout(cli: Cli, ns: argparse.Namespace) -> int:
    server = ns.args[0] if ns.args else INDEX_SERVER
    hostname = server if server == INDEX_SERVER else convert_to_hostname(server)
    data = config.load()
    auths = data.get("auths") or {}
    keys = [k for k in dict.fromkeys([hostname, server, f"http://{hostname}", f"https://{hostname}"]) if k in auths]
    # docker 28 says this whether or not there was anything stored
    cli.out.write(f"Removing login credentials for {hostname}\n")
    for k in keys:
        del auths[k]
    if keys:
        _save_config(data)
    return 0


# ---------------------------------------------------------------- registration

def _pull_flags(p: argparse.ArgumentParser) -> None:
    add_bool(p, "-a", "--all-tags", help="Download all tagged images in the repository")
    add_bool(p, "--disable-content-trust", default=True, help="Skip image verification")
    p.add_argument("--platform", default="", metavar="string", help="Set platform if server is multi-platform capable")
    add_bool(p, "-q", "--quiet", help="Suppress verbose output")


def _push_flags(p: argparse.ArgumentParser) -> None:
    add_bool(p, "-a", "--all-tags", help="Push all tags of an image to the repository")
    add_bool(p, "--disable-content-trust", default=True, help="Skip image signing")
    p.add_argument("--platform", default="", metavar="string", help="Push a platform-specific manifest")
    add_bool(p, "-q", "--quiet", help="Suppress verbose output")


def _login_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-p", "--password", default="", metavar="string", help="Password or Personal Access Token (PAT)")
    add_bool(p, "--password-stdin", help="Take the Password or Personal Access Token (PAT) from stdin")
    p.add_argument("-u", "--username", default="", metavar="string", help="Username")


def register(tree: CommandTree) -> None:
    tree.add(["pull", "image pull"], "[OPTIONS] NAME[:TAG|@DIGEST]", "Download an image from a registry",
             cmd_pull, _pull_flags, Arity(1, 1))
    tree.add(["push", "image push"], "[OPTIONS] NAME[:TAG]", "Upload an image to a registry",
             cmd_push, _push_flags, Arity(1, 1))
    tree.add(["login"], "[OPTIONS] [SERVER]", "Authenticate to a registry", cmd_login, _login_flags, Arity(0, 1))
    tree.add(["logout"], "[SERVER]", "Log out from a registry", cmd_logout, None, Arity(0, 1))
