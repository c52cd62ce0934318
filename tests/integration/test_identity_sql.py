"""The ``sql`` identity back-end against the contract, on real MariaDB and PostgreSQL.

The ``test`` databases are shared: by several runs at once, and by runs
that died halfway.  So each test works in a scratch database of its own,
created on the same server and dropped afterwards (falling back to ``test``
itself where the account may not create databases); it starts by dropping
whatever tables are there, migrates up, and migrates back down to nothing
when it is done.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import threading
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from oslo_config import cfg

import nimbus.db
import nimbus.db.migration
from nimbus import exception
from nimbus.drivers.identity.sql import models
from nimbus.drivers.identity.sql.driver import SqlIdentityDriver
from nimbus.testing.identity import FakeClock, IdentityDriverContract

pytestmark = pytest.mark.services


def _drop_everything(db: nimbus.db.Database) -> None:
    metadata = sa.MetaData()
    metadata.reflect(db.engine)
    metadata.drop_all(db.engine)


@contextlib.contextmanager
def _scratch_database(url: str) -> Iterator[str]:
    """Yield the URL of a new empty database on *url*'s server, dropped afterwards."""
    server_url = sa.engine.make_url(url)
    name = f"nimbus_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql(f"CREATE DATABASE {name}")
        except sa.exc.DBAPIError:
            # No right to create databases: share the given one.
            yield url
            return
        try:
            yield server_url.set(database=name).render_as_string(hide_password=False)
        finally:
            with engine.connect() as conn:
                if engine.dialect.name == "postgresql":
                    conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
                else:
                    conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
    finally:
        engine.dispose()


@pytest.fixture(params=["mariadb", "postgresql"])
def server_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A scratch database on the real server."""
    url = request.getfixturevalue(f"{request.param}_url")
    with _scratch_database(url) as scratch:
        yield scratch


@pytest.fixture
def database(server_url: str, conf: cfg.ConfigOpts) -> Iterator[nimbus.db.Database]:
    conf.set_override("max_retries", 0, group="database")
    db = nimbus.db.Database(conf, url=server_url)
    _drop_everything(db)
    nimbus.db.migration.upgrade(db)
    try:
        yield db
    finally:
        nimbus.db.migration.downgrade(db, "base")
        db.dispose()


class TestSqlIdentityDriverOnServers(IdentityDriverContract):
    concurrent_threads = 10
    concurrent_attempts = 5

    @pytest.fixture
    def driver(
        self, conf: cfg.ConfigOpts, database: nimbus.db.Database, clock: FakeClock
    ) -> SqlIdentityDriver:
        return SqlIdentityDriver(conf, database=database, now=clock)


def _failed_auth_count(db: nimbus.db.Database, user_id: str) -> int:
    with db.reader() as session:
        return session.get(models.User, user_id).failed_auth_count


def test_processes_count_failures_together(
    conf: cfg.ConfigOpts, database: nimbus.db.Database
) -> None:
    """Two API processes (two engines, two pools) failing at once lose no count."""
    other = nimbus.db.Database(conf, url=database.url.render_as_string(hide_password=False))
    try:
        conf.set_override("lockout_failure_attempts", 1000, group="identity")
        drivers = [
            SqlIdentityDriver(conf, database=database),
            SqlIdentityDriver(conf, database=other),
        ]
        user = drivers[0].create_user(name="target", domain_id="default", password="pw")
        threads, attempts = 12, 5
        barrier = threading.Barrier(threads)

        def fail(index: int) -> None:
            driver = drivers[index % 2]
            barrier.wait(timeout=30)
            for _ in range(attempts):
                with pytest.raises(exception.AuthenticationFailed):
                    driver.authenticate(user.id, "wrong")

        with concurrent.futures.ThreadPoolExecutor(threads) as pool:
            for future in [pool.submit(fail, index) for index in range(threads)]:
                future.result(timeout=120)
        assert _failed_auth_count(database, user.id) == threads * attempts
        drivers[1].authenticate(user.id, "pw")
        assert _failed_auth_count(database, user.id) == 0
    finally:
        other.dispose()


def test_names_are_exact(conf: cfg.ConfigOpts, database: nimbus.db.Database) -> None:
    # MariaDB's default collation ignores case; the driver's filters do not.
    driver = SqlIdentityDriver(conf, database=database)
    driver.create_user(name="alice", domain_id="default")
    with pytest.raises(exception.NotFound):
        driver.get_user_by_name("ALICE", "default")
    assert [u.name for u in driver.list_users(nimbus.drivers.identity.ListQuery(name="alice"))] == [
        "alice"
    ]
    assert driver.list_users(nimbus.drivers.identity.ListQuery(name="Alice")) == []
