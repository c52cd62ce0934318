"""``nimbus credential``: create the key repository that encrypts credentials.

``setup`` creates ``[credential] key_repository`` with a staged and a
primary key when it holds none (``nimbus up`` and ``nimbus bootstrap`` do
the same on first start).  Every API process must see the same keys: copy
the directory to the other nodes.  Only key numbers are printed, never key
material.  There is no ``rotate``: stored credentials would first have to
be encrypted again with the new primary key.
"""

from __future__ import annotations

import argparse

from nimbus import conf as nimbus_conf
from nimbus.cmd import fernet, main
from nimbus.cmd._command import Command
from nimbus.identity.credentials import key_repository

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``credential`` sub-command and its ``setup`` action.

    :param subparsers: the ``nimbus`` command's sub-parsers.
    """
    Command(
        "credential",
        "manage the credential key repository",
        "Create the keys that encrypt the blobs of /v3/credentials.",
        actions=(
            Command(
                "setup",
                "create the key repository with keys 0 and 1 (no-op if it has keys)",
                func=_setup,
            ),
        ),
        action_dest="credential_action",
    ).register(subparsers)


def _setup(args: argparse.Namespace) -> int:
    repository = key_repository(nimbus_conf.load_config(main.config_argv(args)))
    return fernet.set_up(repository, "credential key repository")
