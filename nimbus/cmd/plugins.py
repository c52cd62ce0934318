"""``nimbus plugins``: list the installed drivers, filters and other plugins."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

from nimbus import registry
from nimbus.cmd._command import Command, argument

__all__ = ["register", "run"]


def register(subparsers: Any) -> None:
    """Add the ``plugins`` sub-command to the ``nimbus`` parser."""
    Command(
        "plugins",
        "list installed plugins (drivers, filters, ...)",
        "List every plugin installed in nimbus's entry-point namespaces: "
        "its name (what the configuration refers to), the distribution "
        "that provides it and what it is.",
        run,
        arguments=(
            argument(
                "--namespace",
                action="append",
                choices=sorted(registry.NAMESPACES),
                metavar="NAMESPACE",
                help="list only this namespace (repeatable); one of: %(choices)s",
            ),
            argument(
                "--format",
                choices=("table", "json"),
                default="table",
                help="output format (default: %(default)s)",
            ),
        ),
    ).register(subparsers)


def _grouped(namespaces: list[str]) -> dict[str, list[registry.PluginInfo]]:
    grouped: dict[str, list[registry.PluginInfo]] = {namespace: [] for namespace in namespaces}
    for info in registry.list_plugins(namespaces):
        grouped[info.namespace].append(info)
    return grouped


def _write_json(grouped: dict[str, list[registry.PluginInfo]], out: TextIO) -> None:
    document = {
        namespace: [
            {
                "name": info.name,
                "distribution": info.distribution,
                "target": info.target,
                "summary": info.summary,
            }
            for info in infos
        ]
        for namespace, infos in grouped.items()
    }
    json.dump(document, out, indent=2)
    out.write("\n")


def _write_table(grouped: dict[str, list[registry.PluginInfo]], out: TextIO) -> None:
    everything = [info for infos in grouped.values() for info in infos]
    name_width = max([len("NAME"), *(len(info.name) for info in everything)])
    dist_width = max([len("DISTRIBUTION"), *(len(info.distribution) for info in everything)])
    blocks = []
    for namespace, infos in grouped.items():
        lines = [f"{namespace}: {registry.NAMESPACES.get(namespace, '')}".rstrip(": ")]
        if not infos:
            lines.append("  (none installed)")
        else:
            lines.append(f"  {'NAME':<{name_width}}  {'DISTRIBUTION':<{dist_width}}  DESCRIPTION")
            for info in infos:
                lines.append(
                    f"  {info.name:<{name_width}}  {info.distribution:<{dist_width}}  "
                    f"{info.summary}".rstrip()
                )
        blocks.append("\n".join(lines))
    out.write("\n\n".join(blocks) + "\n")


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """List the plugins as *args* asks; return the exit status.

    :param args: parsed arguments with ``namespace`` and ``format``.
    :param out: where to write (standard output by default).
    """
    out = out or sys.stdout
    namespaces = (
        list(dict.fromkeys(args.namespace)) if args.namespace else list(registry.NAMESPACES)
    )
    grouped = _grouped(namespaces)
    if args.format == "json":
        _write_json(grouped, out)
    else:
        _write_table(grouped, out)
    return 0
