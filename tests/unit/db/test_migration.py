"""Tests of nimbus.db.migration and the alembic environment on SQLite."""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.util import CommandError
from oslo_config import cfg
from sqlalchemy import exc

from nimbus.db import migration
from nimbus.db.api import Database

_BATCH_ALTER_ROLES = """
    def upgrade():
        with op.batch_alter_table("roles", recreate="always") as batch:
            batch.add_column(sa.Column("options", sa.Text))
"""

_DANGLING_REFERENCE = """
    def upgrade():
        op.execute(
            "INSERT INTO implied_roles (prior_role_id, implied_role_id)"
            " VALUES ('no-such-role', 'nor-this-one')"
        )
"""


@pytest.fixture
def db(conf: cfg.ConfigOpts) -> Iterator[Database]:
    """A Database on a SQLite file in the state dir."""
    database = Database(conf)
    yield database
    database.dispose()


def _scripts_with(tmp_path: Path, database: Database, upgrade_body: str) -> Config:
    """Return an alembic config of nimbus's migrations plus a revision "test" on top."""
    location = tmp_path / "migrations"
    shutil.copytree(
        migration._SCRIPT_LOCATION, location, ignore=shutil.ignore_patterns("__pycache__")
    )
    header = 'import sqlalchemy as sa\nfrom alembic import op\n\nrevision = "test"\n'
    header += f'down_revision = "{migration.head()}"\nbranch_labels = None\ndepends_on = None\n'
    (location / "versions" / "9999_test.py").write_text(header + textwrap.dedent(upgrade_body))
    config = Config()
    config.set_main_option("script_location", str(location))
    config.attributes["database"] = database
    return config


def _count(database: Database, table: str) -> int:
    with database.reader() as session:
        return session.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()


def test_head_and_current(db: Database) -> None:
    assert migration.head() == "0002"
    assert migration.current(db) is None

    migration.upgrade(db)

    assert migration.current(db) == "0002"


def test_foreign_keys_are_back_on_after_migrating(conf: cfg.ConfigOpts) -> None:
    # One in-memory connection for everything: the one the migrations used.
    database = Database(conf, url="sqlite://")
    try:
        migration.upgrade(database)

        with database.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        with pytest.raises(exc.IntegrityError), database.writer() as session:
            session.execute(
                sa.text(
                    "INSERT INTO implied_roles (prior_role_id, implied_role_id)"
                    " VALUES ('no-such-role', 'nor-this-one')"
                )
            )
    finally:
        database.dispose()


def test_migrations_take_the_write_lock_up_front(db: Database) -> None:
    statements: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:
        statements.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", record)
    migration.upgrade(db)

    assert "BEGIN IMMEDIATE" in statements


def test_batch_migration_does_not_cascade_deletes(db: Database, tmp_path: Path) -> None:
    # Batch mode copies "roles" and drops the original: with foreign keys on,
    # that DROP would delete every assignment and implied role (ON DELETE CASCADE).
    config = _scripts_with(tmp_path, db, _BATCH_ALTER_ROLES)
    command.upgrade(config, migration.head())
    with db.writer() as session:
        session.execute(sa.text("INSERT INTO roles (id, name, extra) VALUES ('r1', 'a', '{}')"))
        session.execute(sa.text("INSERT INTO roles (id, name, extra) VALUES ('r2', 'b', '{}')"))
        session.execute(sa.text("INSERT INTO implied_roles VALUES ('r1', 'r2')"))
        session.execute(
            sa.text(
                "INSERT INTO assignments (type, actor_id, target_id, role_id, inherited)"
                " VALUES ('UserProject', 'u1', 'p1', 'r1', 0)"
            )
        )

    command.upgrade(config, "test")

    assert migration.current(db) == "test"
    assert _count(db, "assignments") == 1
    assert _count(db, "implied_roles") == 1


def test_migration_leaving_dangling_references_is_rolled_back(db: Database, tmp_path: Path) -> None:
    config = _scripts_with(tmp_path, db, _DANGLING_REFERENCE)
    command.upgrade(config, migration.head())

    with pytest.raises(CommandError, match="dangling foreign keys"):
        command.upgrade(config, "test")

    assert migration.current(db) == "0002"
    assert _count(db, "implied_roles") == 0
