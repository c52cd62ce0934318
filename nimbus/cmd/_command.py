"""Sub-commands as data: a name, its help, its arguments and what runs it.

Each module of :mod:`nimbus.cmd` describes its sub-command with a
:class:`Command` (and, for ``nimbus db ACTION``-style commands, one nested
:class:`Command` per action); :meth:`Command.register` turns the
description into an ``argparse`` parser, so that every command is built the
same way.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["Argument", "Command", "argument"]


@dataclasses.dataclass(frozen=True)
class Argument:
    """The positional and keyword arguments of one ``add_argument`` call."""

    flags: tuple[str, ...]
    options: Mapping[str, Any]


def argument(*flags: str, **options: Any) -> Argument:
    """Describe an argument as ``parser.add_argument(*flags, **options)`` would."""
    return Argument(flags, options)


@dataclasses.dataclass(frozen=True)
class Command:
    """One sub-command, or one action of a sub-command.

    :param name: what the user types.
    :param help: the one-line summary the parent's ``--help`` lists.
    :param description: the text of this command's own ``--help``.
    :param func: runs the command with the parsed arguments and returns the
        exit status; unset for a command made of *actions*.
    :param arguments: the command's own arguments.
    :param defaults: further values set on the parsed arguments.
    :param actions: sub-commands of this command, one of which is required.
    :param action_dest: the attribute that names the chosen action.
    """

    name: str
    help: str
    description: str | None = None
    func: Callable[[argparse.Namespace], int] | None = None
    arguments: Sequence[Argument] = ()
    defaults: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    actions: Sequence[Command] = ()
    action_dest: str | None = None

    def register(self, subparsers: Any) -> argparse.ArgumentParser:
        """Add this command's parser, and its actions' parsers, to *subparsers*.

        :param subparsers: what ``add_subparsers`` returned on the parent.
        :returns: the command's parser.
        """
        parser: argparse.ArgumentParser = subparsers.add_parser(
            self.name, help=self.help, description=self.description
        )
        for arg in self.arguments:
            parser.add_argument(*arg.flags, **arg.options)
        if self.actions:
            actions = parser.add_subparsers(dest=self.action_dest, metavar="ACTION", required=True)
            for action in self.actions:
                action.register(actions)
        defaults = dict(self.defaults)
        if self.func is not None:
            defaults["func"] = self.func
        if defaults:
            parser.set_defaults(**defaults)
        return parser
