"""Fixtures of the integration tests: scratch databases on the real servers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa


@pytest.fixture
def scratch_url(mariadb_url: str) -> Iterator[str]:
    """A new empty database on the MariaDB server, dropped afterwards."""
    server_url = sa.engine.make_url(mariadb_url)
    name = f"nimbus_test_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
        try:
            yield server_url.set(database=name).render_as_string(hide_password=False)
        finally:
            with engine.connect() as conn:
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
    finally:
        engine.dispose()
