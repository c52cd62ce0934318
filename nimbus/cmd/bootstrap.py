"""``nimbus bootstrap``: create the Default domain, the admin, the roles and the catalog."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from typing import Any

from nimbus.cmd.main import config_argv
from nimbus.conf import load_config


def register(subparsers: Any) -> None:
    """Add the ``bootstrap`` sub-command."""
    parser = subparsers.add_parser(
        "bootstrap",
        help="create the admin project, user, roles and catalog (idempotent)",
        description=(
            "Create the Default domain, the admin project and user, the roles admin, "
            "member and reader, and the catalog entries of every nimbus service. "
            "Safe to run again."
        ),
    )
    parser.add_argument(
        "--bootstrap-password",
        metavar="PASSWORD",
        help="the admin's password (default: $OS_BOOTSTRAP_PASSWORD, or asked for)",
    )
    parser.add_argument("--region-id", default=None, help="region of the catalog endpoints")
    parser.set_defaults(func=run)


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
