"""The ``nimbus`` command: one sub-command per module in :mod:`nimbus.cmd`.

Each sub-command module has ``register(subparsers)``, which adds its parser
and sets ``func`` to a callable taking the parsed arguments and returning
the exit status.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from nimbus import __version__, exception

__all__ = ["main"]

_COMMANDS = (
    "nimbus.cmd.up",
    "nimbus.cmd.bootstrap",
    "nimbus.cmd.db",
    "nimbus.cmd.fernet",
    "nimbus.cmd.credential",
    "nimbus.cmd.plugins",
    "nimbus.cmd.compute",
)


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser with every sub-command registered."""
    parser = argparse.ArgumentParser(prog="nimbus", description="Run and manage a nimbus cloud.")
    parser.add_argument("--version", action="version", version=f"nimbus {__version__}")
    _add_config_options(parser, "")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in _COMMANDS:
        importlib.import_module(name).register(subparsers)
    for sub in subparsers.choices.values():
        _add_config_options_to_leaves(sub)
    return parser


#: The oslo.config options every command accepts: (flag, dest, metavar, help).
_CONFIG_OPTIONS = (
    (
        "--config-file",
        "config_file",
        "PATH",
        "configuration file to read (repeatable); default: the usual places",
    ),
    ("--config-dir", "config_dir", "DIR", "directory of *.conf files (repeatable)"),
)


def _add_config_options(parser: argparse.ArgumentParser, prefix: str) -> None:
    for flag, dest, metavar, help_text in _CONFIG_OPTIONS:
        parser.add_argument(
            flag,
            action="append",
            default=[],
            dest=f"{prefix}{dest}",
            metavar=metavar,
            help=help_text,
        )


def _add_config_options_to_leaves(parser: argparse.ArgumentParser) -> None:
    """Accept the config options after the sub-command too (``nimbus db current --config-file``)."""
    nested = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not nested:
        _add_config_options(parser, "sub_")
        return
    for action in nested:
        for child in action.choices.values():
            _add_config_options_to_leaves(child)


def config_argv(args: argparse.Namespace) -> list[str]:
    """Return the oslo.config arguments that the global options stand for."""
    argv: list[str] = []
    for flag, dest, _metavar, _help in _CONFIG_OPTIONS:
        for path in [*getattr(args, dest), *getattr(args, f"sub_{dest}", [])]:
            argv += [flag, path]
    return argv


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``nimbus`` command line; return its exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except exception.NimbusException as ex:
        print(f"nimbus {args.command}: {ex}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
