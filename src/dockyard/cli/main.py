"""``dockyard``: docker's command line re-made on docker-py.

The global flags and the command tree are assembled here, and errors mapped to exit
statuses; each resource module (``images``, ``system``, ``inspect``) registers its
commands on the shared :class:`~.command.CommandTree`, and no module imports this one. Errors end as the docker CLI ends them:
daemon errors print ``Error response from daemon: ...`` and exit 1, usage
errors exit 125.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Callable

import docker
import requests

from .. import __version__
from . import (build, container_fs, containers_list, containers_manage, containers_run, fromrootfs, images, inspect,
               networks, prune, registry, remote, stats, system, volumes)
from .command import PROG, Cli, CliError, CommandTree, Parser, UsageError, add_bool, fail_usage, parse
from .connection import ConnectionError_, ConnectionOptions, StreamError, api_message, cannot_connect
from .gotemplate import TemplateError

# Each module's ``register(tree)``, in the order ``--help`` lists the commands.
MODULES: list[Callable[[CommandTree], None]] = [images.register, inspect.register, system.register, remote.register,
                                                containers_list.register, containers_run.register,
                                                containers_manage.register, registry.register, build.register,
                                                volumes.register, networks.register,
                                                container_fs.register, stats.register,
                                                prune.register, fromrootfs.register]


def build_parser() -> CommandTree:
    root = Parser(prog=PROG, description="A self-sufficient runtime for containers", add_help=True)
    root.usage_line = f"{PROG} [OPTIONS] COMMAND"
    root.command_path = PROG
    root.add_argument("-H", "--host", help="Daemon socket to connect to")
    add_bool(root, "--tls", help="Use TLS; implied by --tlsverify")
    root.add_argument("--tlsverify", dest="tlsverify", action="store_const", const=True, default=None,
                      help="Use TLS and verify the remote")
    root.add_argument("--tlsverify=true", dest="tlsverify", action="store_const", const=True,
                      help=argparse.SUPPRESS)
    root.add_argument("--tlsverify=false", dest="tlsverify", action="store_const", const=False,
                      help=argparse.SUPPRESS)
    root.add_argument("--tlscacert", help="Trust certs signed only by this CA")
    root.add_argument("--tlscert", help="Path to TLS certificate file")
    root.add_argument("--tlskey", help="Path to TLS key file")
    root.add_argument("--config", help="Location of client config files")
    add_bool(root, "-D", "--debug", help="Enable debug mode")
    root.add_argument("-l", "--log-level", default="info", choices=["debug", "info", "warn", "error", "fatal"],
                      help="Set the logging level")
    root.add_argument("-v", "--version", action="version", version=f"Dockyard version {__version__}",
                      help="Print version information and quit")
    root.set_defaults(handler=None)
    tree = CommandTree(root)
    for register in MODULES:
        register(tree)
    return tree


def main(argv: list[str] | None = None) -> int:
    tree = build_parser()
    try:
        ns = parse(tree, list(sys.argv[1:] if argv is None else argv))
    except UsageError as e:
        return fail_usage(e)
    if ns.config:
        os.environ["DOCKER_CONFIG"] = ns.config
    if ns.handler is None:
        parser = getattr(ns, "group_parser", None) or tree.root
        parser.print_help()
        return 0
    cli = Cli(ConnectionOptions(host=ns.host, tls=ns.tls, tlsverify=ns.tlsverify, tlscacert=ns.tlscacert,
                                tlscert=ns.tlscert, tlskey=ns.tlskey))
    try:
        return ns.handler(cli, ns) or 0
    except UsageError as e:
        return fail_usage(e)
    except docker.errors.APIError as e:
        sys.stderr.write(f"Error response from daemon: {api_message(e)}\n")
        return 1
    except (ConnectionError_, CliError, StreamError, TemplateError) as e:
        message = str(e)
        if isinstance(e, TemplateError):
            message = f"template parsing error: {message}"
        sys.stderr.write(message + "\n")
        return getattr(e, "status", 1)
    except requests.exceptions.ConnectionError:
        sys.stderr.write(cannot_connect(cli.host) + "\n")
        return 1
    except docker.errors.DockerException as e:
        sys.stderr.write(f"{e}\n")
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # the reader went away (`| head`); nothing more to say
        sys.stderr.close()
        return 0
    finally:
        cli.close()


if __name__ == "__main__":
    sys.exit(main())
