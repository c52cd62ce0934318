"""The migrations against SQLite, MariaDB and PostgreSQL.

Each server test runs in a database of its own, created for the test and
dropped after it, so that runs sharing the servers' ``test`` databases
neither see nor disturb one another.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from oslo_config import cfg
from sqlalchemy import exc

from nimbus.compute import models as compute_models
from nimbus.compute.scheduler import models as scheduler_models
from nimbus.conf import database as database_opts
from nimbus.db import migration
from nimbus.db.api import Database
from nimbus.drivers.identity.sql import models as identity_sql_models
from nimbus.identity import models as identity_models
from nimbus.image import models as image_models
from nimbus.testing import services

METADATA = [
    identity_models.Base.metadata,
    image_models.Base.metadata,
    compute_models.Base.metadata,
    scheduler_models.Base.metadata,
    identity_sql_models.Base.metadata,
]
NIMBUS_TABLES = {name for metadata in METADATA for name in metadata.tables}


@contextlib.contextmanager
def scratch_database(server_url: str) -> Iterator[str]:
    """Create an empty database on the server; yield its URL, then drop it.

    :param server_url: URL of any database the user may create databases from.
    """
    url = sa.make_url(server_url)
    name = f"nimbus_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    try:
        try:
            with admin.connect() as conn:
                conn.exec_driver_sql(f"CREATE DATABASE {name}")
        except exc.DBAPIError as ex:
            message = f"cannot create a scratch database on {url!r}: {ex.orig}"
            if services.services_required():
                pytest.fail(message)
            pytest.skip(message)
        try:
            yield url.set(database=name).render_as_string(hide_password=False)
        finally:
            force = " WITH (FORCE)" if admin.dialect.name == "postgresql" else ""
            with admin.connect() as conn:
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}{force}")
    finally:
        admin.dispose()


def _clean_up(database: Database) -> None:
    # Best effort: the test may have failed half-way through a migration.
    with contextlib.suppress(Exception):
        migration.downgrade(database, "base")
    with contextlib.suppress(Exception), database.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
    database.dispose()


@pytest.fixture(params=["sqlite", "mariadb", "postgresql"])
def database(request: pytest.FixtureRequest, conf: cfg.ConfigOpts) -> Iterator[Database]:
    """An empty database on each back-end, cleaned up even when the test fails."""
    # oslo.config shares a group's option state between ConfigOpts objects;
    # make sure no other test's [database] override reaches this one.
    for opt in database_opts.OPTS:
        conf.clear_override(opt.dest, group="database")
    conf.set_override("max_retries", 0, group="database")
    with contextlib.ExitStack() as stack:
        if request.param == "sqlite":
            url = None  # the default: a file under the state dir
        else:
            server_url = request.getfixturevalue(f"{request.param}_url")
            url = stack.enter_context(scratch_database(server_url))
        db = Database(conf, url=url)
        stack.callback(_clean_up, db)
        yield db


def _tables(database: Database) -> set[str]:
    with database.engine.connect() as conn:
        return set(sa.inspect(conn).get_table_names())


def _schema_differences(database: Database) -> list[object]:
    with database.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(context, METADATA)


def test_upgrade_from_empty_reaches_head(database: Database) -> None:
    assert migration.current(database) is None

    migration.upgrade(database)

    assert migration.head() is not None
    assert migration.current(database) == migration.head()
    assert _tables(database) == NIMBUS_TABLES | {"alembic_version"}


def test_every_branch_declares_its_models() -> None:
    assert {id(m) for m in migration.target_metadata()} == {id(m) for m in METADATA}


def test_schema_matches_models(database: Database) -> None:
    migration.upgrade(database)

    assert _schema_differences(database) == []


def test_downgrade_to_base_and_upgrade_again(database: Database) -> None:
    migration.upgrade(database)
    migration.downgrade(database, "base")

    assert migration.current(database) is None
    assert _tables(database) <= {"alembic_version"}

    migration.upgrade(database)

    assert migration.current(database) == migration.head()
    assert _schema_differences(database) == []
    # Upgrading a database already at the head changes nothing.
    migration.upgrade(database)
    assert migration.current(database) == migration.head()
