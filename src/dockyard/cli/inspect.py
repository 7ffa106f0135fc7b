"""``docker inspect``: any object by name or ID, the first kind that has it.

The kinds are tried in docker's order; each is a docker-py inspect call.
Objects whose endpoints the daemon does not serve simply answer 404 and the
next kind is tried.
"""

from __future__ import annotations

import argparse
from typing import Any, Callable

import docker

from .command import Arity, Cli, CommandTree, add_bool
from .common import print_inspect

Inspector = Callable[[docker.APIClient, str, bool], Any]

KINDS: list[tuple[str, Inspector]] = [
    ("container", lambda api, name, size: api.inspect_container(name) if not size
     else api._result(api._get(api._url("/containers/{0}/json", name), params={"size": 1}), True)),
    ("image", lambda api, name, size: api.inspect_image(name)),
    ("network", lambda api, name, size: api.inspect_network(name)),
    ("volume", lambda api, name, size: api.inspect_volume(name)),
]


def cmd_inspect(cli: Cli, ns: argparse.Namespace) -> int:
    kinds = [(k, f) for k, f in KINDS if not ns.type or k == ns.type]
    if ns.type and not kinds:
        cli.err.write(f'"{ns.type}" is not a valid value for --type\n')
        return 1
    found: list[Any] = []
    missing: list[str] = []
    for name in ns.args:
        for _, inspect in kinds:
            try:
                found.append(inspect(cli.client.api, name, ns.size))
                break
            except docker.errors.NotFound:
                continue
        else:
            missing.append(name)
    print_inspect(cli, found, ns.format)
    for name in missing:
        cli.err.write(f"Error: No such object: {name}\n")
    return 1 if missing else 0


def _flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--format", default="", metavar="string", help="Format output using a custom template")
    add_bool(p, "-s", "--size", help="Display total file sizes if the type is container")
    p.add_argument("--type", default="", metavar="string", help="Return JSON for specified type")


def register(tree: CommandTree) -> None:
    tree.add(["inspect"], "[OPTIONS] NAME|ID [NAME|ID...]", "Return low-level information on Docker objects",
             cmd_inspect, _flags, Arity(1))
