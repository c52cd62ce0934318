"""alembic environment: runs migrations on the connection of a nimbus Database."""

from __future__ import annotations

from typing import Any

from alembic import context
from alembic.util import CommandError

from nimbus.db import migration

target_metadata = migration.target_metadata()


def _sqlite_pragma(connection: Any, pragma: str) -> None:
    # Straight on the DB-API connection: going through SQLAlchemy would
    # autobegin a transaction, inside which SQLite ignores PRAGMA foreign_keys.
    cursor = connection.connection.cursor()
    try:
        cursor.execute(f"PRAGMA {pragma}")
    finally:
        cursor.close()


def _check_foreign_keys(connection: Any) -> None:
    violations = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if violations:
        raise CommandError(f"migration left rows with dangling foreign keys: {violations[:10]}")


def run_migrations() -> None:
    """Run the migrations in one transaction on the nimbus Database's engine."""
    database = context.config.attributes["database"]
    with database.engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # Batch mode rebuilds a table by copy, drop and rename; with
            # foreign keys on, the DROP would cascade into (and empty) every
            # table that references it.  The check below replaces the pragma.
            _sqlite_pragma(connection, "foreign_keys=OFF")
        try:
            # nimbus_write: BEGIN IMMEDIATE on SQLite, so that two upgrades
            # queue on the lock instead of both reading the old revision.
            connection.execution_options(nimbus_write=True)
            with connection.begin():
                context.configure(
                    connection=connection,
                    target_metadata=target_metadata,
                    render_as_batch=sqlite,
                    compare_type=True,
                )
                with context.begin_transaction():
                    context.run_migrations()
                if sqlite:
                    _check_foreign_keys(connection)
        finally:
            if sqlite:
                _sqlite_pragma(connection, "foreign_keys=ON")


run_migrations()
