"""The scheduler's migration branch on MariaDB and PostgreSQL: up, as the models say, down."""

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

from nimbus.compute.scheduler import migrations as scheduler_migrations
from nimbus.compute.scheduler import models
from nimbus.db import Database
from nimbus.testing import services

pytestmark = [pytest.mark.services]


@contextlib.contextmanager
def _scratch(server_url: str) -> Iterator[str]:
    url = sa.make_url(server_url)
    name = f"nimbus_schedmig_{uuid.uuid4().hex[:12]}"
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


@pytest.mark.parametrize("server", ["mariadb", "postgresql"])
def test_up_matches_the_models_and_down_drops_all(server: str, conf: cfg.ConfigOpts) -> None:
    if server == "mariadb":
        base = services.require_service("MariaDB", services.MARIADB_URL, 3306)
    else:
        base = services.require_service("PostgreSQL", services.POSTGRESQL_URL, 5432)
    with _scratch(base) as url:
        database = Database(conf, url=url)
        try:
            scheduler_migrations.upgrade(database)
            with database.engine.connect() as conn:
                diff = compare_metadata(MigrationContext.configure(conn), models.Base.metadata)
            assert diff == []
            scheduler_migrations.downgrade(database)
            left = set(sa.inspect(database.engine).get_table_names()) - {"alembic_version"}
            assert left == set()
        finally:
            database.dispose()
