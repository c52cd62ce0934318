"""A real deadlock on MariaDB and PostgreSQL, resolved by ``Database.write``.

Two threads update the same two rows in opposite orders; the server kills
one transaction as the deadlock victim, and ``write`` runs it again.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from oslo_config import cfg
from sqlalchemy import orm

from nimbus.conf import database as database_opts
from nimbus.db.api import Database

# Bounds: a stuck test fails within these instead of hanging.
LOCK_WAIT_SECONDS = 10
JOIN_SECONDS = 30


@pytest.fixture
def retries() -> list[float]:
    """The delays that ``Database.write`` slept for: one per deadlock retry."""
    return []


@pytest.fixture(params=["mariadb", "postgresql"])
def database(
    request: pytest.FixtureRequest, conf: cfg.ConfigOpts, retries: list[float]
) -> Iterator[Database]:
    """A Database on each server, which records its retries instead of sleeping."""
    # oslo.config shares a group's option state between ConfigOpts objects;
    # make sure no other test's [database] override reaches this one.
    for opt in database_opts.OPTS:
        conf.clear_override(opt.dest, group="database")
    conf.set_override("max_retries", 0, group="database")
    conf.set_override("max_deadlock_retries", 3, group="database")
    url = request.getfixturevalue(f"{request.param}_url")
    db = Database(conf, url=url, sleep=retries.append)
    yield db
    db.dispose()


@pytest.fixture
def table(database: Database) -> Iterator[str]:
    """A two-row table of this test's own in the shared database, dropped after."""
    name = f"nimbus_deadlock_{uuid.uuid4().hex[:12]}"
    with database.engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE TABLE {name} (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)")
        conn.exec_driver_sql(f"INSERT INTO {name} (id, n) VALUES (1, 0), (2, 0)")
    try:
        yield name
    finally:
        with database.engine.begin() as conn:
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")


def _bound_lock_waits(session: orm.Session) -> None:
    # Should deadlock detection be off, a lock wait ends in an error (MySQL's
    # 1205 is retried too) rather than a hung test.
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.text(f"SET LOCAL lock_timeout = '{LOCK_WAIT_SECONDS}s'"))
    else:
        session.execute(sa.text(f"SET SESSION innodb_lock_wait_timeout = {LOCK_WAIT_SECONDS}"))


def test_opposite_order_updates_deadlock_and_both_commit(
    database: Database, table: str, retries: list[float]
) -> None:
    both_hold_first_row = threading.Barrier(2, timeout=LOCK_WAIT_SECONDS)
    errors: list[BaseException] = []
    attempts = {"forward": 0, "backward": 0}
    committed = {"forward": threading.Event(), "backward": threading.Event()}

    def transfer(name: str, other: str, first: int, second: int) -> None:
        def fn(session: orm.Session) -> None:
            attempts[name] += 1
            if attempts[name] > 1:
                # The victim's retry waits for the winner to commit. Run at
                # once, it could take its first row before the winner, woken
                # from its lock wait, takes it (PostgreSQL does not queue row
                # locks in order): a second deadlock, about once in 27 runs.
                assert committed[other].wait(LOCK_WAIT_SECONDS)
            _bound_lock_waits(session)
            session.execute(sa.text(f"UPDATE {table} SET n = n + 1 WHERE id = {first}"))
            if attempts[name] == 1:
                # Only the first attempt waits for the other thread: the
                # deadlock needs each to hold one row before asking for the other.
                both_hold_first_row.wait()
            session.execute(sa.text(f"UPDATE {table} SET n = n + 10 WHERE id = {second}"))

        try:
            database.write(fn)
            committed[name].set()
        except Exception as ex:
            errors.append(ex)

    threads = [
        threading.Thread(target=transfer, args=("forward", "backward", 1, 2)),
        threading.Thread(target=transfer, args=("backward", "forward", 2, 1)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=JOIN_SECONDS)

    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    # One victim, retried once: three attempts in all.
    assert len(retries) == 1
    assert sorted(attempts.values()) == [1, 2]
    # Both transactions committed, each exactly once.
    with database.reader() as session:
        rows = session.execute(sa.text(f"SELECT id, n FROM {table} ORDER BY id")).all()
    assert [tuple(row) for row in rows] == [(1, 11), (2, 11)]
