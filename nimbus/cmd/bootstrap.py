"""``nimbus bootstrap``: create the Default domain, the admin, the roles and the catalog."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from typing import Any

from nimbus.cmd._command import Command, argument
from nimbus.cmd.main import config_argv
from nimbus.conf import load_config


def register(subparsers: Any) -> None:
    """Add the ``bootstrap`` sub-command."""
    Command(
        "bootstrap",
        "create the admin project, user, roles and catalog (idempotent)",
        "Create the Default domain, the admin project and user, the roles admin, "
        "member and reader, and the catalog entries of every nimbus service. "
        "Safe to run again.",
        run,
        arguments=(
            argument(
                "--bootstrap-password",
                metavar="PASSWORD",
                help="the admin's password (default: $OS_BOOTSTRAP_PASSWORD, or asked for)",
            ),
            argument("--region-id", default=None, help="region of the catalog endpoints"),
        ),
    ).register(subparsers)


def run(args: argparse.Namespace) -> int:
    """Migrate the schema and run every installed service's set-up."""
    from nimbus.cmd.up import setup_services

    conf = load_config(config_argv(args))
    password = args.bootstrap_password or os.environ.get("OS_BOOTSTRAP_PASSWORD")
    if password is None and sys.stdin.isatty():
        password = getpass.getpass("Password for the admin user: ") or None
    results = setup_services(
        conf, password, embedded=False, region_id=args.region_id or conf.region_name
    )
    for said in results:
        if said is not None:
            print(said)
    return 0
