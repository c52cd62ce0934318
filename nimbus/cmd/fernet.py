"""``nimbus fernet``: create and rotate the Fernet key repository.

``setup`` creates ``[fernet_tokens] key_repository`` with a staged and a
primary key when it holds none; ``rotate`` promotes the staged key and
stages a new one.  Run ``rotate`` on one node and copy the repository to the
others; API processes notice the change within a second.  Only key numbers
are printed, never key material.
"""

from __future__ import annotations

import argparse

from nimbus import conf as nimbus_conf
from nimbus.cmd import main
from nimbus.cmd._command import Command
from nimbus.identity.token.keys import KeyRepository

__all__ = ["register", "set_up"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``fernet`` sub-command and its ``setup`` and ``rotate`` actions.

    :param subparsers: the ``nimbus`` command's sub-parsers.
    """
    Command(
        "fernet",
        "manage the Fernet key repository",
        "Create and rotate the keys that encrypt identity tokens.",
        actions=(
            Command(
                "setup",
                "create the key repository with keys 0 and 1 (no-op if it has keys)",
                func=_setup,
            ),
            Command(
                "rotate",
                "make the staged key primary, stage a new key, drop the oldest",
                func=_rotate,
            ),
        ),
        action_dest="fernet_action",
    ).register(subparsers)


def _repository(args: argparse.Namespace) -> KeyRepository:
    conf = nimbus_conf.load_config(main.config_argv(args))
    return KeyRepository.from_conf(conf)


def _setup(args: argparse.Namespace) -> int:
    return set_up(_repository(args), "key repository")


def set_up(repository: KeyRepository, name: str) -> int:
    """Create *repository*'s first keys unless it has some; print which (numbers only).

    :param name: what the messages call it ("credential key repository").
    """
    created = repository.initialize()
    if created:
        print(
            f"Created the {name} {repository.path}: "
            f"staged key {created[0]}, primary key {created[-1]}."
        )
    else:
        numbers = ", ".join(str(n) for n in sorted(repository.load()))
        print(f"The {name} {repository.path} already holds keys {numbers}; left as is.")
    return 0


def _rotate(args: argparse.Namespace) -> int:
    repository = _repository(args)
    result = repository.rotate()
    removed = ", ".join(str(n) for n in result.removed) or "none"
    active = ", ".join(str(n) for n in sorted(result.active))
    print(
        f"Rotated the key repository {repository.path}: primary key is now {result.primary}, "
        f"new staged key 0, removed: {removed}; keys now {active}."
    )
    return 0
