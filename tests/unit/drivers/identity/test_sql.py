"""The ``sql`` identity back-end against the contract, on SQLite."""

from __future__ import annotations

from collections.abc import Iterator

import bcrypt
import pytest
import sqlalchemy as sa
from oslo_config import cfg

import nimbus.db
import nimbus.db.migration
from nimbus import exception, registry
from nimbus.drivers.identity import IdentityDriver
from nimbus.drivers.identity.sql import models
from nimbus.drivers.identity.sql.driver import SqlIdentityDriver
from nimbus.testing.identity import FakeClock, IdentityDriverContract


@pytest.fixture
def database(conf: cfg.ConfigOpts) -> Iterator[nimbus.db.Database]:
    db = nimbus.db.Database(conf)
    nimbus.db.migration.upgrade(db)
    yield db
    db.dispose()


class TestSqlIdentityDriver(IdentityDriverContract):
    @pytest.fixture
    def driver(
        self, conf: cfg.ConfigOpts, database: nimbus.db.Database, clock: FakeClock
    ) -> SqlIdentityDriver:
        return SqlIdentityDriver(conf, database=database, now=clock)


def test_loads_through_its_entry_point(conf: cfg.ConfigOpts, database: nimbus.db.Database) -> None:
    driver = registry.load_driver(
        "nimbus.identity.backends", "sql", conf, database=database, expected=IdentityDriver
    )
    assert isinstance(driver, SqlIdentityDriver)


def test_needs_a_database(conf: cfg.ConfigOpts) -> None:
    with pytest.raises(exception.DriverError, match="SqlIdentityDriver"):
        SqlIdentityDriver(conf)


def test_stores_bcrypt_hashes_only(conf: cfg.ConfigOpts, database: nimbus.db.Database) -> None:
    driver = SqlIdentityDriver(conf, database=database)
    user = driver.create_user(name="u", domain_id="d", password="s3cret")
    with database.reader() as session:
        row = session.get(models.User, user.id)
        assert row.password_hash.startswith("$2b$04$")
        assert "s3cret" not in row.password_hash
        assert row.password_created_at is not None
        assert len(row.id) == 32 and int(row.id, 16) >= 0


def test_failures_are_counted_in_the_row(
    conf: cfg.ConfigOpts, database: nimbus.db.Database
) -> None:
    conf.set_override("lockout_failure_attempts", 10, group="identity")
    clock = FakeClock()
    driver = SqlIdentityDriver(conf, database=database, now=clock)
    user = driver.create_user(name="u", domain_id="d", password="pw")
    for _ in range(4):
        with pytest.raises(exception.AuthenticationFailed):
            driver.authenticate(user.id, "wrong")

    def counted() -> tuple[int, object]:
        with database.reader() as session:
            row = session.get(models.User, user.id)
            return row.failed_auth_count, row.failed_auth_at

    assert counted() == (4, clock().replace(tzinfo=None))
    driver.authenticate(user.id, "pw")
    assert counted() == (0, None)


def test_two_processes_share_the_count(conf: cfg.ConfigOpts, tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.sqlite'}"
    conf.set_override("lockout_failure_attempts", 4, group="identity")
    first_db = nimbus.db.Database(conf, url=url)
    second_db = nimbus.db.Database(conf, url=url)
    nimbus.db.migration.upgrade(first_db)
    first = SqlIdentityDriver(conf, database=first_db)
    second = SqlIdentityDriver(conf, database=second_db)
    user = first.create_user(name="u", domain_id="d", password="pw")
    for driver in (first, second, first, second):
        with pytest.raises(exception.AuthenticationFailed):
            driver.authenticate(user.id, "wrong")
    for driver in (first, second):
        with pytest.raises(exception.UserLockedOut):
            driver.authenticate(user.id, "pw")
    first_db.dispose()
    second_db.dispose()


def test_database_errors_name_the_driver(
    conf: cfg.ConfigOpts, database: nimbus.db.Database
) -> None:
    driver = SqlIdentityDriver(conf, database=database)
    with database.engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE user_group_membership"))
        conn.execute(sa.text("DROP TABLE users"))
    with pytest.raises(exception.DriverError, match="SqlIdentityDriver"):
        driver.get_user("x")


def test_unknown_users_cost_a_bcrypt_check(
    conf: cfg.ConfigOpts, database: nimbus.db.Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    driver = SqlIdentityDriver(conf, database=database)
    user = driver.create_user(name="u", domain_id="d", password="pw")
    calls = []
    real = bcrypt.checkpw

    def counting(password: bytes, hashed: bytes) -> bool:
        calls.append(hashed)
        return real(password, hashed)

    monkeypatch.setattr(bcrypt, "checkpw", counting)
    for user_id in (user.id, "no-such-user"):
        calls.clear()
        with pytest.raises(exception.AuthenticationFailed):
            driver.authenticate(user_id, "wrong")
        assert len(calls) == 1, user_id
