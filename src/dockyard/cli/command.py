"""The command tree: argparse shaped like docker's cobra commands.

Each resource module registers its commands with :meth:`CommandTree.add`,
naming every path a command answers to (``images``, ``image ls``,
``image list``), its usage line and its argument count; flags are declared
in a ``setup`` function with plain argparse calls plus :func:`add_bool` for
cobra's booleans (``-H=false``). Usage errors print docker's text and exit
125, as the docker CLI does. :class:`Cli`, what every handler is given, lives
here too, so that command modules import it without importing ``main``
(which imports them all).
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from typing import Any, Callable, NoReturn, TextIO

import docker

from .connection import ConnectionOptions, connect, resolve_host

PROG = "dockyard"
USAGE_EXIT = 125


class Cli:
    """What a command handler gets: the output streams and a lazily made client."""

    def __init__(self, opts: ConnectionOptions) -> None:
        self.opts = opts
        self.out = sys.stdout
        self.err = sys.stderr
        self._client: docker.DockerClient | None = None

    @property
    def host(self) -> str:
        return resolve_host(self.opts)

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            self._client = connect(self.opts)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


Handler = Callable[[Cli, argparse.Namespace], "int | None"]
Setup = Callable[[argparse.ArgumentParser], None]


class CliError(Exception):
    """An error a command reports itself: printed as is, exit status 1 unless given."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


class UsageError(Exception):
    """Bad flags (exit 125, as cobra's flag errors) or a wrong argument count (exit 1)."""

    def __init__(self, message: str, parser: "Parser", flag_error: bool = True) -> None:
        super().__init__(message)
        self.parser = parser
        self.flag_error = flag_error
        self.show_usage = True
        self.exit_code = USAGE_EXIT if flag_error else 1

    @classmethod
    def run_error(cls, message: str, parser: "Parser") -> "UsageError":
        """The docker CLI's reportError for run/create option errors: '<prog>: message', no usage, 125."""
        err = cls(message, parser, flag_error=False)
        err.show_usage = False
        err.exit_code = USAGE_EXIT
        return err


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors read like cobra's and exit 125."""

    usage_line: str = ""
    command_path: str = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["allow_abbrev"] = False  # cobra takes no abbreviated flags
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        m = re.match(r"argument COMMAND: invalid choice: '([^']*)'", message)
        if m:
            err = UsageError(f"unknown command: {self.command_path or PROG} {m.group(1)}", self, flag_error=False)
            err.show_usage = False
            raise err
        if message.startswith("unrecognized arguments: "):
            first = message.split(": ", 1)[1].split()[0]
            message = f"unknown flag: {first}" if first.startswith("-") else message
        elif "expected one argument" in message:
            flag = message.split(" ", 1)[1].split(":")[0].split("/")[-1]
            message = f"flag needs an argument: {flag}"
        raise UsageError(message, self)

    def format_usage(self) -> str:
        return f"Usage:  {self.usage_line}\n" if self.usage_line else super().format_usage()


def fail_usage(err: UsageError) -> int:
    p = err.parser
    path = p.command_path or PROG
    if err.flag_error:
        sys.stderr.write(f"{err}\n\n")
    else:
        sys.stderr.write(f"{PROG}: {err}\n\n")
    if p.usage_line and err.show_usage:
        sys.stderr.write(f"Usage:  {p.usage_line}\n\n")
    hint = "Run"
    if not err.flag_error and err.show_usage:
        # docker 28's argument-count errors: RequiresMinArgs says "See", RequiresMaxArgs "SRun" (sic)
        text = str(err)
        hint = "Run" if " and at most " in text else "See" if "requires at least" in text \
            else "SRun" if "requires at most" in text else "Run"
    sys.stderr.write(f"{hint} '{path} --help' for more information\n")
    return err.exit_code


_TRUE = ("true", "1", "t", "T", "TRUE", "True")
_FALSE = ("false", "0", "f", "F", "FALSE", "False")


def add_bool(parser: argparse.ArgumentParser, *flags: str, default: bool = False, help: str = "",
             dest: str | None = None) -> None:
    """A cobra boolean: ``-x``, ``--xx``, and ``--xx=false`` / ``-x=true`` forms."""
    name = dest or max(flags, key=len).lstrip("-").replace("-", "_")
    parser.add_argument(*flags, dest=name, action="store_true", default=default, help=help)
    parser.add_argument(*[f"{f}={v}" for f in flags for v in _TRUE], dest=name, action="store_true",
                        help=argparse.SUPPRESS)
    parser.add_argument(*[f"{f}={v}" for f in flags for v in _FALSE], dest=name, action="store_false",
                        help=argparse.SUPPRESS)


@dataclass
class Arity:
    """How many positional arguments a command takes (cobra's Args validators)."""

    min: int = 0
    max: int | None = None

    def check(self, n: int, path: str) -> str | None:
        if self.max == 0 and n:
            return f"'{path}' accepts no arguments"
        if self.max is not None and self.min == self.max and n != self.min:
            return f"'{path}' requires {self.min} argument{'s' if self.min != 1 else ''}"
        if self.min and self.max is not None and not self.min <= n <= self.max:
            # docker's RequiresRangeArgs
            return f"'{path}' requires at least {self.min} and at most {self.max} argument{'s' if self.max != 1 else ''}"
        if n < self.min:
            return f"'{path}' requires at least {self.min} argument{'s' if self.min != 1 else ''}"
        if self.max is not None and n > self.max:
            if self.max == 0:
                return f"'{path}' accepts no arguments"
            return f"'{path}' requires at most {self.max} argument{'s' if self.max != 1 else ''}"
        return None


class CommandTree:
    def __init__(self, root: Parser) -> None:
        self.root = root
        self._subs: dict[str, argparse._SubParsersAction] = {}
        self._groups: dict[str, Parser] = {"": root}

    def _subparsers(self, path: str) -> argparse._SubParsersAction:
        if path not in self._subs:
            parser = self._groups[path]
            self._subs[path] = parser.add_subparsers(dest=f"cmd_{len(self._subs)}", metavar="COMMAND",
                                                     parser_class=Parser)
        return self._subs[path]

    def group(self, name: str, help: str) -> None:
        """A management command (``image``, ``system``): a parent for subcommands."""
        if name in self._groups:
            return
        p = self._subparsers("").add_parser(name, help=help, prog=f"{PROG} {name}")
        p.usage_line = f"{PROG} {name} COMMAND"
        p.command_path = f"{PROG} {name}"
        p.set_defaults(handler=None, group_parser=p)
        self._groups[name] = p

    def add(self, paths: list[str], usage: str, help: str, handler: Handler,
            setup: Setup | None = None, arity: Arity = Arity(), metavar: str = "ARGS",
            interspersed: bool = True) -> None:
        """Register one command under each of ``paths`` (first one is canonical).

        ``interspersed=False`` ends flag parsing at the first argument, as cobra's
        ``SetInterspersed(false)`` (``run IMAGE CMD -c x``: ``-c`` belongs to CMD).
        """
        for path in paths:
            words = path.split()
            parent = " ".join(words[:-1])
            if parent and parent not in self._groups:
                raise ValueError(f"unknown command group {parent!r}")
            p = self._subparsers(parent).add_parser(words[-1], help=help, prog=f"{PROG} {path}",
                                                    description=help)
            p.usage_line = f"{PROG} {path} {usage}".rstrip()
            p.command_path = f"{PROG} {path}"
            if setup is not None:
                setup(p)
            p.add_argument("args", nargs="*" if interspersed else argparse.REMAINDER, metavar=metavar,
                           help=argparse.SUPPRESS)
            p.set_defaults(handler=handler, arity=arity, command_parser=p)


def parse(tree: CommandTree, argv: list[str]) -> argparse.Namespace:
    ns, extra = tree.root.parse_known_args(argv)
    parser: Parser = getattr(ns, "command_parser", None) or getattr(ns, "group_parser", None) or tree.root
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    arity: Arity | None = getattr(ns, "arity", None)
    if arity is not None:
        problem = arity.check(len(ns.args), parser.command_path)
        if problem:
            raise UsageError(problem, parser, flag_error=False)
    return ns



# ---------------------------------------------------------------- flags many commands share

def add_filter_flag(parser: argparse.ArgumentParser, help: str = "Filter output based on conditions provided") -> None:
    parser.add_argument("-f", "--filter", action="append", default=[], metavar="filter", help=help)


def add_format_flag(parser: argparse.ArgumentParser, help: str = "Format output using a custom template") -> None:
    parser.add_argument("--format", default="", metavar="string", help=help)


def filters_from(values: list[str], parser: argparse.ArgumentParser, flag: str = "-f, --filter") -> dict[str, list[str]]:
    """``-f key=value`` flags as docker's filters.Args, refusing a value without ``=``."""
    out: dict[str, list[str]] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep:
            raise UsageError(f'invalid argument "{item}" for "{flag}" flag: bad format of filter '
                             "(expected name=value)", parser)  # type: ignore[arg-type]
        out.setdefault(key.strip().lower(), []).append(value.strip())
    return out


def confirm(cli_out: TextIO, prompt: str) -> bool:
    """docker's ``[y/N]`` prompt, read from stdin."""
    cli_out.write(f"{prompt} [y/N] ")
    cli_out.flush()
    answer = sys.stdin.readline()
    return answer.strip().lower() in ("y", "yes")
