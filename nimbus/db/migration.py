"""Schema migrations with alembic: ``nimbus db upgrade``, ``current`` and ``downgrade``."""

from __future__ import annotations

import os

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from nimbus.db.api import Database

__all__ = ["current", "downgrade", "head", "upgrade"]

_SCRIPT_LOCATION = os.path.join(os.path.dirname(__file__), "migrations")


def _config(database: Database) -> Config:
    config = Config()
    config.set_main_option("script_location", _SCRIPT_LOCATION)
    config.attributes["database"] = database
    return config


def upgrade(database: Database, revision: str = "heads") -> None:
    """Bring the schema up to *revision* (the newest by default)."""
    database.wait_for_connection()
    command.upgrade(_config(database), revision)


def downgrade(database: Database, revision: str) -> None:
    """Take the schema back to *revision* (``base`` drops every table)."""
    database.wait_for_connection()
    command.downgrade(_config(database), revision)


def current(database: Database) -> str | None:
    """Return the revision the database is at, or ``None`` when it has none."""
    with database.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head() -> str | None:
    """Return the newest revision that this code ships."""
    config = Config()
    config.set_main_option("script_location", _SCRIPT_LOCATION)
    return ScriptDirectory.from_config(config).get_current_head()
