"""``system prune``: docker's pruners run in its order, each report printed as its own prune command would."""

from __future__ import annotations

import argparse
from typing import Callable

import docker

from .command import Arity, Cli, CliError, CommandTree, add_bool, confirm, filters_from
from .common import natural_key
from .connection import raw_post
from .networks import prune_networks
from .output import human_size

Filters = dict[str, list[str]]
# (space reclaimed, report text or "")
Pruner = Callable[[Cli, Filters, bool], tuple[int, str]]


def _listing(title: str, items: list[str]) -> str:
    return title + "\n" + "".join(f"{i}\n" for i in items) if items else ""


def prune_containers(cli: Cli, filters: Filters, _all: bool) -> tuple[int, str]:
    report = cli.client.api.prune_containers(filters=filters or None)
    deleted = report.get("ContainersDeleted") or []
    return (report.get("SpaceReclaimed") or 0) if deleted else 0, _listing("Deleted Containers:", deleted)


def prune_network_report(cli: Cli, filters: Filters, _all: bool) -> tuple[int, str]:
    return 0, prune_networks(cli, filters)


def prune_volumes(cli: Cli, filters: Filters, _all: bool) -> tuple[int, str]:
    # system prune --volumes removes anonymous volumes only, whatever -a says about images
    report = cli.client.api.prune_volumes(filters=filters or None)
    deleted = report.get("VolumesDeleted") or []
    return (report.get("SpaceReclaimed") or 0) if deleted else 0, _listing("Deleted Volumes:", deleted)


def prune_images(cli: Cli, filters: Filters, all_images: bool) -> tuple[int, str]:
    report = cli.client.api.prune_images(filters={**filters, "dangling": ["false" if all_images else "true"]})
    deleted = report.get("ImagesDeleted") or []
    lines = [f"untagged: {d['Untagged']}" if d.get("Untagged") else f"deleted: {d.get('Deleted')}" for d in deleted]
    return (report.get("SpaceReclaimed") or 0) if deleted else 0, _listing("Deleted Images:", lines)


def prune_build_cache(cli: Cli, filters: Filters, all_cache: bool) -> tuple[int, str]:
    params: dict[str, str] = {}
    if all_cache:
        params["all"] = "1"
    if filters:
        params["filters"] = docker.utils.convert_filters(filters)
    report = raw_post(cli.client, "/build/prune", params=params).json() or {}
    return report.get("SpaceReclaimed") or 0, _listing("Deleted build cache objects:", report.get("CachesDeleted") or [])


def confirmation(all_images: bool, volumes: bool, filters: Filters) -> str:
    """docker's confirmationTemplate, rendered."""
    warnings = ["all stopped containers", "all networks not used by at least one container"]
    if volumes:
        warnings.append("all anonymous volumes not used by at least one container")
    warnings.append("all images without at least one container associated to them" if all_images
                    else "all dangling images")
    warnings.append("all build cache" if all_images else "unused build cache")
    text = "WARNING! This will remove:" + "".join(f"\n  - {w}" for w in warnings) + "\n"
    shown = sorted((f"{name}={v}" for name in ("label", "label!", "until") for v in filters.get(name, [])),
                   key=natural_key)
    if shown:
        text += "\n  Items to be pruned will be filtered with:" + "".join(f"\n  - {f}" for f in shown) + "\n"
    return text + "\nAre you sure you want to continue?"


def cmd_system_prune(cli: Cli, ns: argparse.Namespace) -> int:
    filters = filters_from(ns.filter, ns.command_parser, "--filter")
    if ns.volumes and "until" in filters:
        raise CliError('ERROR: The "until" filter is not supported with "--volumes"')
    if not ns.force and not confirm(cli.out, confirmation(ns.all, ns.volumes, filters)):
        return 0
    pruners: list[Pruner] = [prune_containers, prune_network_report]
    if ns.volumes:
        pruners.append(prune_volumes)
    pruners += [prune_images, prune_build_cache]
    reclaimed = 0
    for prune in pruners:
        space, output = prune(cli, filters, ns.all)
        reclaimed += space
        if output:
            cli.out.write(output + "\n")
    cli.out.write(f"Total reclaimed space: {human_size(reclaimed)}\n")
    return 0


def _flags(p: argparse.ArgumentParser) -> None:
    add_bool(p, "-a", "--all", help="Remove all unused images not just dangling ones")
    p.add_argument("--filter", action="append", default=[], metavar="filter",
                   help="Provide filter values (e.g. \"label=<key>=<value>\")")
    add_bool(p, "-f", "--force", help="Do not prompt for confirmation")
    add_bool(p, "--volumes", help="Prune anonymous volumes")


def register(tree: CommandTree) -> None:
    tree.group("system", "Manage Docker")
    tree.add(["system prune"], "[OPTIONS]", "Remove unused data", cmd_system_prune, _flags, Arity(0, 0))
