"""``nimbus db``: create, inspect and migrate the database schema.

``nimbus db sync`` (or ``upgrade [--revision R]``) brings every installed
branch (each service's and each SQL-backed driver's) to its newest (or the
given) revision, ``nimbus db current`` says which revision the database is at
and whether that is the newest this code ships, and ``nimbus db downgrade R``
takes it back (``base`` drops every nimbus table).  Output names the database
by its URL with the password masked.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from alembic.util import CommandError
from sqlalchemy import exc

from nimbus.cmd._command import Command, argument
from nimbus.cmd.main import config_argv
from nimbus.conf import load_config
from nimbus.db import migration
from nimbus.db.api import Database

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``db`` sub-command and its actions to *subparsers*."""
    upgrade, current, downgrade = _run(_upgrade), _run(_current), _run(_downgrade)
    actions = (
        Command(
            "upgrade",
            "bring the schema up to date",
            "Apply pending migrations.",
            upgrade,
            arguments=(
                argument(
                    "--revision",
                    default="heads",
                    metavar="R",
                    help="revision to upgrade to (default: the newest)",
                ),
            ),
        ),
        Command(
            "sync",
            "bring every installed branch up to date",
            "Apply the pending migrations of every installed service and SQL-backed driver.",
            upgrade,
            defaults={"revision": "heads"},
        ),
        Command(
            "current",
            "show the schema revision",
            "Print the database's schema revision and whether it is the newest.",
            current,
        ),
        Command(
            "downgrade",
            "take the schema back to an older revision",
            "Revert migrations down to REVISION; 'base' drops every nimbus table.",
            downgrade,
            arguments=(argument("revision", metavar="REVISION", help="revision to go back to"),),
        ),
    )
    Command(
        "db",
        "manage the database schema",
        "Create, inspect and migrate nimbus's database schema.",
        actions=actions,
        action_dest="db_action",
    ).register(subparsers)


def _run(action: Callable[[Database, argparse.Namespace], int]) -> Callable[..., int]:
    """Wrap *action* with config loading, engine disposal and error reporting."""

    def func(args: argparse.Namespace) -> int:
        conf = load_config(config_argv(args))
        database = Database(conf)
        try:
            return action(database, args)
        except CommandError as ex:
            # alembic's own errors: unknown revision, multiple heads, ...
            print(f"nimbus db {args.db_action}: {ex}", file=sys.stderr)
            return 1
        except exc.DBAPIError as ex:
            # The driver's message, never the SQLAlchemy one with the URL or
            # statement parameters in it.
            print(f"nimbus db {args.db_action}: {_safe_url(database)}: {ex.orig}", file=sys.stderr)
            return 1
        finally:
            database.dispose()

    return func


def _safe_url(database: Database) -> str:
    return database.url.render_as_string(hide_password=True)


def _describe(revision: str | None, head: str | None) -> str:
    name = revision or "base (empty)"
    if revision == head:
        return f"{name} (head)"
    return f"{name} (not the head: {head}; run 'nimbus db upgrade')"


def _upgrade(database: Database, args: argparse.Namespace) -> int:
    target = "the head" if args.revision == "heads" else args.revision
    print(f"Upgrading {_safe_url(database)} to {target}")
    migration.upgrade(database, args.revision)
    print(f"Database is at revision {_describe(migration.current(database), migration.head())}")
    return 0


def _current(database: Database, args: argparse.Namespace) -> int:
    database.wait_for_connection()
    print(f"Database: {_safe_url(database)}")
    print(f"Revision: {_describe(migration.current(database), migration.head())}")
    return 0


def _downgrade(database: Database, args: argparse.Namespace) -> int:
    print(f"Downgrading {_safe_url(database)} to {args.revision}")
    migration.downgrade(database, args.revision)
    print(f"Database is at revision {_describe(migration.current(database), migration.head())}")
    return 0
