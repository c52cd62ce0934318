"""The generic repository's tests against real MariaDB and PostgreSQL.

The same :class:`~tests.unit.db.test_repository.RepositoryContract` as on
SQLite, each test in a scratch database of its own on the server (the
``test`` databases are shared by concurrent and dead runs).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from oslo_config import cfg

from nimbus.db import Database
from tests.integration import test_identity_sql
from tests.unit.db.test_repository import RepositoryContract, drop_tables, make_tables

pytestmark = pytest.mark.services

#: A scratch database on each real server, as the identity back-end's tests use.
server_url = test_identity_sql.server_url


class TestRepositoryOnServers(RepositoryContract):
    @pytest.fixture
    def database(self, server_url: str, conf: cfg.ConfigOpts) -> Iterator[Database]:
        conf.set_override("max_retries", 0, group="database")
        db = Database(conf, url=server_url)
        make_tables(db)
        try:
            yield db
        finally:
            drop_tables(db)
            db.dispose()
