"""Tests of nimbus.db.api: SQLite set-up, deadlock retries, connection retries."""

from __future__ import annotations

import logging
import os
import socket
import sqlite3
import threading
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from oslo_config import cfg
from sqlalchemy import exc

from nimbus import exception
from nimbus.db import api
from nimbus.db.api import Database, connection_url, is_deadlock


class _FakeMySQLError(Exception):
    """Stands for a PyMySQL error: ``args`` is ``(errno, message)``."""


class _FakePsycopgError(Exception):
    """Stands for a psycopg error, which carries ``sqlstate``."""

    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"sqlstate {sqlstate}")
        self.sqlstate = sqlstate


def _dbapi_error(orig: BaseException) -> exc.DBAPIError:
    return exc.OperationalError("UPDATE t SET n = n + 1", {}, orig)


DEADLOCK = _dbapi_error(_FakeMySQLError(1213, "Deadlock found when trying to get lock"))


@pytest.fixture
def sleeps() -> list[float]:
    """What the Database under test slept for, instead of sleeping."""
    return []


@pytest.fixture
def db(conf: cfg.ConfigOpts, sleeps: list[float]) -> Iterator[Database]:
    """A Database on a SQLite file in the state dir, with a ``counter`` table."""
    conf.set_override("sqlite_busy_timeout", 10.0, group="database")
    database = Database(conf, sleep=sleeps.append)
    with database.engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)")
        conn.exec_driver_sql("INSERT INTO counter (id, n) VALUES (1, 0)")
    yield database
    database.dispose()


def _rows(database: Database) -> list[tuple[int, int]]:
    with database.reader() as session:
        return [tuple(row) for row in session.execute(sa.text("SELECT id, n FROM counter"))]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- connection URL and SQLite set-up ------------------------------------


def test_connection_url_defaults_to_sqlite_in_state_dir(conf: cfg.ConfigOpts) -> None:
    url = connection_url(conf)

    assert url == "sqlite:///" + os.path.join(conf.state_path, "nimbus.sqlite")


def test_connection_url_uses_configured_connection(conf: cfg.ConfigOpts) -> None:
    conf.set_override("connection", "postgresql+psycopg://u:p@db/nimbus", group="database")

    assert connection_url(conf) == "postgresql+psycopg://u:p@db/nimbus"


def test_state_directory_is_created(conf: cfg.ConfigOpts, tmp_path) -> None:
    state = tmp_path / "deep" / "state"
    conf.set_override("state_path", str(state))
    assert not state.exists()

    database = Database(conf)
    try:
        assert state.is_dir()
        assert database.dialect == "sqlite"
        assert database.url.database == str(state / "nimbus.sqlite")
    finally:
        database.dispose()


def test_sqlite_pragmas_are_in_effect(conf: cfg.ConfigOpts) -> None:
    conf.set_override("sqlite_busy_timeout", 2.5, group="database")
    database = Database(conf)
    try:
        with database.engine.connect() as conn:
            pragma = conn.exec_driver_sql
            assert pragma("PRAGMA journal_mode").scalar() == "wal"
            assert pragma("PRAGMA foreign_keys").scalar() == 1
            assert pragma("PRAGMA busy_timeout").scalar() == 2500
    finally:
        database.dispose()


def test_sqlite_enforces_foreign_keys(db: Database) -> None:
    with db.engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE child (id INTEGER PRIMARY KEY REFERENCES counter(id))")

    with pytest.raises(exc.IntegrityError), db.writer() as session:
        session.execute(sa.text("INSERT INTO child (id) VALUES (42)"))


def test_sqlite_memory_database_is_shared_by_sessions(conf: cfg.ConfigOpts) -> None:
    database = Database(conf, url="sqlite://")
    try:
        database.write(lambda s: s.execute(sa.text("CREATE TABLE t (x INTEGER)")))
        database.write(lambda s: s.execute(sa.text("INSERT INTO t VALUES (1)")))
        with database.reader() as session:
            assert session.execute(sa.text("SELECT x FROM t")).scalar() == 1
        assert not os.path.exists(conf.state_path)
    finally:
        database.dispose()


def test_writes_begin_immediate_and_reads_do_not(db: Database) -> None:
    statements: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:
        statements.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", record)
    db.write(lambda s: s.execute(sa.text("UPDATE counter SET n = 1")))
    with db.reader() as session:
        session.execute(sa.text("SELECT n FROM counter")).scalar()

    begins = [s for s in statements if s.startswith("BEGIN")]
    assert begins == ["BEGIN IMMEDIATE", "BEGIN"]


# --- is_deadlock -----------------------------------------------------------


@pytest.mark.parametrize(
    "orig",
    [
        _FakeMySQLError(1213, "Deadlock found when trying to get lock"),
        _FakeMySQLError(1205, "Lock wait timeout exceeded"),
        _FakePsycopgError("40P01"),
        _FakePsycopgError("40001"),
        sqlite3.OperationalError("database is locked"),
    ],
    ids=["mysql-1213", "mysql-1205", "pg-40P01", "pg-40001", "sqlite-locked"],
)
def test_is_deadlock_recognises_lock_conflicts(orig: BaseException) -> None:
    assert is_deadlock(_dbapi_error(orig))


@pytest.mark.parametrize(
    "error",
    [
        _dbapi_error(_FakeMySQLError(1062, "Duplicate entry 'x' for key 'name'")),
        _dbapi_error(_FakePsycopgError("23505")),
        _dbapi_error(sqlite3.OperationalError("no such table: counter")),
        _FakeMySQLError(1213, "not wrapped by SQLAlchemy"),
        ValueError("database is locked"),
    ],
    ids=["mysql-duplicate", "pg-unique", "sqlite-no-table", "raw-dbapi", "not-db"],
)
def test_is_deadlock_rejects_other_errors(error: BaseException) -> None:
    assert not is_deadlock(error)


# --- write() ---------------------------------------------------------------


def test_write_retries_a_deadlock_then_succeeds(db: Database, sleeps: list[float]) -> None:
    calls = 0

    def fn(session) -> str:
        nonlocal calls
        calls += 1
        session.execute(sa.text("UPDATE counter SET n = n + 1"))
        if calls < 3:
            raise DEADLOCK
        return "done"

    assert db.write(fn) == "done"

    assert calls == 3
    assert len(sleeps) == 2
    assert sleeps[0] < sleeps[1]  # backs off
    # The two failed attempts were rolled back: one increment only.
    assert _rows(db) == [(1, 1)]


def test_write_gives_up_after_max_deadlock_retries(
    conf: cfg.ConfigOpts, db: Database, sleeps: list[float]
) -> None:
    conf.set_override("max_deadlock_retries", 2, group="database")
    calls = 0

    def fn(session) -> None:
        nonlocal calls
        calls += 1
        session.execute(sa.text("UPDATE counter SET n = n + 1"))
        raise DEADLOCK

    with pytest.raises(exc.OperationalError) as info:
        db.write(fn)

    assert info.value is DEADLOCK
    assert calls == 3
    assert len(sleeps) == 2
    assert _rows(db) == [(1, 0)]


def test_write_does_not_retry_other_errors(db: Database, sleeps: list[float]) -> None:
    calls = 0
    duplicate = _dbapi_error(_FakeMySQLError(1062, "Duplicate entry"))

    def fn(session) -> None:
        nonlocal calls
        calls += 1
        raise duplicate

    with pytest.raises(exc.OperationalError):
        db.write(fn)

    assert calls == 1
    assert sleeps == []


def test_write_rolls_back_on_failure(db: Database) -> None:
    def fn(session) -> None:
        session.execute(sa.text("UPDATE counter SET n = 99"))
        session.execute(sa.text("INSERT INTO counter (id, n) VALUES (2, 99)"))
        raise RuntimeError("boom half-way")

    with pytest.raises(RuntimeError, match="half-way"):
        db.write(fn)

    assert _rows(db) == [(1, 0)]


def test_write_rolls_back_a_failing_statement(db: Database) -> None:
    def fn(session) -> None:
        session.execute(sa.text("INSERT INTO counter (id, n) VALUES (2, 5)"))
        session.execute(sa.text("INSERT INTO counter (id, n) VALUES (1, 5)"))  # duplicate key

    with pytest.raises(exc.IntegrityError):
        db.write(fn)

    assert _rows(db) == [(1, 0)]


def test_concurrent_writers_on_one_sqlite_file_all_succeed(
    conf: cfg.ConfigOpts, db: Database
) -> None:
    # No retries: a "database is locked" error must surface, not be retried away.
    conf.set_override("max_deadlock_retries", 0, group="database")
    threads, writes = 8, 15
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def increment(session) -> None:
        # Read-modify-write: lost updates would show if writers overlapped.
        n = session.execute(sa.text("SELECT n FROM counter WHERE id = 1")).scalar_one()
        session.execute(sa.text("UPDATE counter SET n = :n WHERE id = 1"), {"n": n + 1})

    def worker() -> None:
        try:
            start.wait(timeout=10)
            for _ in range(writes):
                db.write(increment)
        except Exception as ex:
            errors.append(ex)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=30)

    assert not any(thread.is_alive() for thread in pool)
    assert errors == []
    assert _rows(db) == [(1, threads * writes)]


# --- wait_for_connection() ---------------------------------------------------


def test_wait_for_connection_succeeds_at_once(db: Database, sleeps: list[float]) -> None:

    db.wait_for_connection()

    assert sleeps == []


def test_wait_for_connection_retries_until_reachable(conf: cfg.ConfigOpts, tmp_path) -> None:
    conf.set_override("max_retries", 5, group="database")
    conf.set_override("retry_interval", 0.25, group="database")
    path = tmp_path / "later"
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 2:
            # The "server" comes up: the directory now exists.
            path.unlink()
            path.mkdir()

    database = Database(conf, url=f"sqlite:///{path}/nimbus.sqlite", sleep=sleep)
    try:
        # Until then, a file stands where the directory should be.
        path.rmdir()
        path.write_text("")

        database.wait_for_connection()

        assert sleeps == [0.25, 0.25]
    finally:
        database.dispose()


def test_wait_for_connection_gives_up_without_leaking_password(
    conf: cfg.ConfigOpts, caplog: pytest.LogCaptureFixture
) -> None:
    conf.set_override("max_retries", 2, group="database")
    conf.set_override("retry_interval", 7.0, group="database")
    password = "s3cr3t-Pa55"
    url = f"mysql+pymysql://nimbus:{password}@127.0.0.1:{_closed_port()}/nimbus"
    sleeps: list[float] = []
    database = Database(conf, url=url, sleep=sleeps.append)
    caplog.set_level(logging.WARNING, logger=api.__name__)
    try:
        with pytest.raises(exception.DBConnectionError) as info:
            database.wait_for_connection()
    finally:
        database.dispose()

    assert sleeps == [7.0, 7.0]
    assert "after 3 attempts" in str(info.value)
    assert password not in str(info.value)
    assert password not in repr(info.value.kwargs)
    assert len(caplog.records) == 2
    assert password not in caplog.text
    assert "nimbus:***@127.0.0.1" in caplog.text
