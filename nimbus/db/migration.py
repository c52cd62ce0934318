"""Schema migrations with alembic: ``nimbus db sync``, ``upgrade``, ``current``, ``downgrade``.

The schema is the union of independent alembic branches, one per owner of
tables: each installed service names its migration packages in its
descriptor (:attr:`nimbus.descriptor.ServiceDescriptor.migrations`), and a
SQL-backed driver registers its own in the ``nimbus.db.migrations``
entry-point namespace (``identity_sql = nimbus.drivers.identity.sql.migrations``).
A migration package is a directory of alembic scripts; its root revision
has ``down_revision = None`` and a branch label of its own, so that a
service or a driver adds tables without touching anyone else's history.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.dialects import mysql

from nimbus.db.api import Database

__all__ = [
    "DRIVER_NAMESPACE",
    "ID",
    "TIMESTAMP",
    "flag_column",
    "branches",
    "current",
    "downgrade",
    "head",
    "target_metadata",
    "upgrade",
]

#: Entry points naming the migration packages of SQL-backed drivers.
DRIVER_NAMESPACE = "nimbus.db.migrations"

#: Column types shared by the migration scripts: ids, and microsecond
#: timestamps (MySQL's DATETIME keeps whole seconds by default).
ID = sa.String(64)
TIMESTAMP = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def flag_column(name: str, default: bool) -> sa.Column[bool]:
    """Return a non-null boolean column with a server-side *default*."""
    return sa.Column(
        name, sa.Boolean, nullable=False, server_default=sa.true() if default else sa.false()
    )


_SCRIPT_LOCATION = os.path.join(os.path.dirname(__file__), "migrations")

#: Revisions of the single history nimbus had before branches, and the
#: branch revisions whose schema is exactly theirs.
_LEGACY = {
    "0001": ("identity_0001", "identity_sql_0001"),
    "0002": ("identity_0001", "identity_sql_0001", "image_0001"),
}


def branches() -> list[ModuleType]:
    """Return every installed migration package: the services' then the drivers'."""
    from nimbus import descriptor

    names: list[str] = []
    for service in descriptor.descriptors():
        names.extend(service.migrations)
    drivers = importlib.metadata.entry_points(group=DRIVER_NAMESPACE)
    names.extend(ep.value for ep in sorted(drivers, key=lambda ep: ep.name))
    modules: list[ModuleType] = []
    for name in dict.fromkeys(names):
        modules.append(importlib.import_module(name))
    return modules


def _locations(packages: Sequence[ModuleType]) -> list[str]:
    return [os.path.dirname(os.path.abspath(str(module.__file__))) for module in packages]


def target_metadata() -> list[Any]:
    """Return the metadata of every branch that declares its models."""
    found: list[Any] = []
    for module in branches():
        get = getattr(module, "metadata", None)
        if get is not None:
            metadata = get()
            if all(metadata is not m for m in found):
                found.append(metadata)
    return found


def _config(database: Database | None = None, extra: Sequence[str] = ()) -> Config:
    config = Config()
    config.set_main_option("script_location", _SCRIPT_LOCATION)
    locations = [*_locations(branches()), *extra]
    # alembic splits this option on the separator it is told of.
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_locations", os.pathsep.join(locations))
    if database is not None:
        config.attributes["database"] = database
    return config


def _stored(database: Database) -> tuple[str, ...]:
    with database.engine.connect() as conn:
        return tuple(MigrationContext.configure(conn).get_current_heads())


def _adopt_legacy(database: Database, config: Config) -> None:
    """Move a database migrated by the single pre-branch history onto the branches."""
    stored = _stored(database)
    if len(stored) != 1 or stored[0] not in _LEGACY:
        return
    with database.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM alembic_version"))
        for revision in _LEGACY[stored[0]]:
            conn.execute(
                sa.text("INSERT INTO alembic_version (version_num) VALUES (:rev)"),
                {"rev": revision},
            )


def upgrade(database: Database, revision: str = "heads", *, extra: Sequence[str] = ()) -> None:
    """Bring every branch up to date, or to *revision* (comma-separated for several).

    :param extra: more version locations (tests add scripts this way).
    """
    database.wait_for_connection()
    config = _config(database, extra)
    _adopt_legacy(database, config)
    for target in revision.split(","):
        command.upgrade(config, target.strip())


def downgrade(database: Database, revision: str, *, extra: Sequence[str] = ()) -> None:
    """Take the schema back to *revision* (``base`` drops every table)."""
    database.wait_for_connection()
    config = _config(database, extra)
    _adopt_legacy(database, config)
    command.downgrade(config, revision)


def current(database: Database) -> str | None:
    """Return the revisions the database is at (sorted, comma-separated), or ``None``."""
    heads = sorted(_stored(database))
    return ",".join(heads) if heads else None


def head(extra: Sequence[str] = ()) -> str | None:
    """Return the newest revisions this code ships (sorted, comma-separated)."""
    heads = sorted(ScriptDirectory.from_config(_config(extra=extra)).get_heads())
    return ",".join(heads) if heads else None
