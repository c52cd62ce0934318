"""Tests of nimbus.db.migration and the alembic environment on SQLite."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
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


def _scripts_with(tmp_path: Path, upgrade_body: str) -> list[str]:
    """Return an extra version location with a revision "test" on the identity branch."""
    location = tmp_path / "extra"
    location.mkdir()
    header = 'import sqlalchemy as sa\nfrom alembic import op\n\nrevision = "test"\n'
    header += 'down_revision = "identity_0004"\nbranch_labels = None\ndepends_on = None\n'
    (location / "9999_test.py").write_text(header + textwrap.dedent(upgrade_body))
    return [str(location)]


def _count(database: Database, table: str) -> int:
    with database.reader() as session:
        return session.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()


HEADS = "compute_0003,compute_hosts_0001,identity_0004,identity_sql_0001,image_0005"


def test_head_and_current(db: Database) -> None:
    assert migration.head() == HEADS
    assert migration.current(db) is None

    migration.upgrade(db)

    assert migration.current(db) == HEADS


def test_every_service_and_driver_branch_is_found() -> None:
    packages = {module.__name__ for module in migration.branches()}

    assert packages == {
        "nimbus.identity.migrations",
        "nimbus.image.migrations",
        "nimbus.compute.migrations",
        "nimbus.compute.scheduler.migrations",
        "nimbus.drivers.identity.sql.migrations",
    }


@pytest.mark.parametrize(
    ("legacy", "tables"),
    [("0001", {"users", "domains"}), ("0002", {"users", "domains", "images"})],
)
def test_a_database_of_the_single_history_moves_onto_the_branches(
    db: Database, legacy: str, tables: set[str]
) -> None:
    # What the pre-branch revision 0001 (identity) or 0002 (identity + image) left.
    migration.upgrade(db, "identity_0001,identity_sql@head")
    if legacy == "0002":
        migration.upgrade(db, "image_0001")
    with db.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM alembic_version"))
        conn.execute(sa.text("INSERT INTO alembic_version VALUES (:v)"), {"v": legacy})

    migration.upgrade(db)

    assert migration.current(db) == HEADS
    with db.engine.connect() as conn:
        assert tables <= set(sa.inspect(conn).get_table_names())


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
    extra = _scripts_with(tmp_path, _BATCH_ALTER_ROLES)
    migration.upgrade(db)
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

    migration.upgrade(db, extra=extra)

    assert (
        migration.current(db) == "compute_0003,compute_hosts_0001,identity_sql_0001,image_0005,test"
    )
    assert _count(db, "assignments") == 1
    assert _count(db, "implied_roles") == 1


def test_migration_leaving_dangling_references_is_rolled_back(db: Database, tmp_path: Path) -> None:
    extra = _scripts_with(tmp_path, _DANGLING_REFERENCE)
    migration.upgrade(db)

    with pytest.raises(CommandError, match="dangling foreign keys"):
        migration.upgrade(db, extra=extra)

    assert migration.current(db) == HEADS
    assert _count(db, "implied_roles") == 0


def test_image_locations_move_to_their_own_table_and_back(db: Database) -> None:
    migration.upgrade(db, "image@image_0004")
    insert = sa.text(
        "INSERT INTO images (id, status, visibility, min_disk, min_ram, protected, os_hidden,"
        " location, created_at, updated_at) VALUES (:id, 'active', 'private', 0, 0, 0, 0,"
        " :location, '2026-01-01 00:00:00', '2026-01-02 00:00:00')"
    )
    with db.engine.begin() as conn:
        conn.execute(insert, {"id": "with-data", "location": "file:///srv/images/with-data"})
        conn.execute(insert, {"id": "queued", "location": None})
    migration.upgrade(db)
    with db.reader() as session:
        rows = session.execute(
            sa.text("SELECT image_id, store, location FROM image_locations")
        ).all()
        columns = {c["name"] for c in sa.inspect(session.connection()).get_columns("images")}
    assert [tuple(r) for r in rows] == [("with-data", "file", "file:///srv/images/with-data")]
    assert "location" not in columns
    migration.downgrade(db, "image@image_0004")
    with db.reader() as session:
        kept = dict(session.execute(sa.text("SELECT id, location FROM images")).all())
    assert kept == {"with-data": "file:///srv/images/with-data", "queued": None}
