"""Engines, sessions and retries for nimbus's SQL database.

One :class:`Database` per process wraps a SQLAlchemy engine.  SQLite gets WAL
mode, foreign keys and a busy timeout; every back-end gets connection retries
at start-up.  Writes go through :meth:`Database.write`, which retries the
whole transaction when the server reports a deadlock or a lock timeout.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import sqlalchemy as sa
from oslo_config import cfg
from sqlalchemy import event, exc, orm

from nimbus import exception
from nimbus.conf import state_path

__all__ = ["Database", "connection_url", "is_deadlock"]

LOG = logging.getLogger(__name__)
T = TypeVar("T")

# MySQL/MariaDB: 1213 deadlock, 1205 lock wait timeout.  PostgreSQL: 40P01
# deadlock, 40001 serialization failure.  SQLite: "database is locked".
_MYSQL_RETRY_CODES = {1205, 1213}
_PG_RETRY_CODES = {"40P01", "40001"}


def connection_url(conf: cfg.ConfigOpts) -> str:
    """Return the configured database URL, defaulting to SQLite in the state dir."""
    if conf.database.connection:
        return conf.database.connection
    return "sqlite:///" + state_path(conf, "nimbus.sqlite")


def is_deadlock(ex: BaseException) -> bool:
    """Tell whether *ex* is a transient lock conflict worth retrying."""
    if not isinstance(ex, exc.DBAPIError):
        return False
    orig = ex.orig
    args = getattr(orig, "args", ())
    if args and isinstance(args[0], int) and args[0] in _MYSQL_RETRY_CODES:
        return True
    if getattr(orig, "sqlstate", None) in _PG_RETRY_CODES:
        return True
    return "database is locked" in str(orig)


def _sqlite_pragmas(busy_timeout: float) -> Callable[..., None]:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # pysqlite's own transaction handling defers BEGIN; let SQLAlchemy
        # emit it so that the busy timeout covers the whole transaction.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    return on_connect


def _sqlite_begin(conn: Any) -> None:
    # IMMEDIATE takes the write lock up front, so two writers queue on the
    # busy timeout instead of one failing at commit time.
    write = conn.get_execution_options().get("nimbus_write")
    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


class Database:
    """A process's handle on the SQL database.

    :param conf: the nimbus config (``[database]`` group).
    :param url: overrides ``[database] connection``.
    :param sleep: injected for tests of the retry loops.
    """

    def __init__(
        self,
        conf: cfg.ConfigOpts,
        *,
        url: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.conf = conf
        self.url = sa.engine.make_url(url or connection_url(conf))
        self._sleep = sleep
        self.engine = self._create_engine()
        self._sessionmaker = orm.sessionmaker(bind=self.engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        """Return the back-end name: ``sqlite``, ``mysql`` or ``postgresql``."""
        return self.engine.dialect.name

    def _create_engine(self) -> sa.Engine:
        dbconf = self.conf.database
        # Statement parameters (password hashes, ...) never reach error messages or logs.
        kwargs: dict[str, Any] = {"future": True, "hide_parameters": True}
        if self.url.get_backend_name() == "sqlite":
            database = self.url.database
            if database and database != ":memory:":
                os.makedirs(os.path.dirname(os.path.abspath(database)), exist_ok=True)
            kwargs["connect_args"] = {"check_same_thread": False}
            if not database or database == ":memory:":
                kwargs["poolclass"] = sa.pool.StaticPool
        else:
            kwargs.update(
                pool_size=dbconf.pool_size,
                max_overflow=dbconf.max_overflow,
                pool_recycle=dbconf.pool_recycle,
                pool_pre_ping=True,
            )
        engine = sa.create_engine(self.url, **kwargs)
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _sqlite_pragmas(dbconf.sqlite_busy_timeout))
            event.listen(engine, "begin", _sqlite_begin)
        return engine

    def wait_for_connection(self) -> None:
        """Connect once, retrying per ``[database] max_retries`` and ``retry_interval``.

        :raises DBConnectionError: every attempt failed.
        """
        attempts = self.conf.database.max_retries + 1
        for attempt in range(1, attempts + 1):
            try:
                with self.engine.connect() as conn:
                    conn.execute(sa.text("SELECT 1"))
                return
            except exc.OperationalError as ex:
                if attempt == attempts:
                    raise exception.DBConnectionError(
                        attempts=attempts, reason=str(ex.orig)
                    ) from ex
                LOG.warning(
                    "Database %s not reachable (attempt %d of %d): %s",
                    self.url.render_as_string(hide_password=True),
                    attempt,
                    attempts,
                    ex.orig,
                )
                self._sleep(self.conf.database.retry_interval)

    @contextlib.contextmanager
    def reader(self) -> Iterator[orm.Session]:
        """Yield a session for reads.

        Closing it on exit ends the transaction but keeps the loaded objects
        usable (a rollback would expire them).
        """
        with self._sessionmaker() as session:
            yield session

    @contextlib.contextmanager
    def writer(self) -> Iterator[orm.Session]:
        """Yield a session inside one write transaction, committed on success.

        Prefer :meth:`write`, which also retries on deadlocks.
        """
        with self._sessionmaker() as session:
            if self.engine.dialect.name == "sqlite":
                session.connection(execution_options={"nimbus_write": True})
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def write(self, fn: Callable[[orm.Session], T]) -> T:
        """Run ``fn(session)`` in a write transaction, retrying on deadlocks.

        *fn* may run more than once, so it must not have side effects
        outside the session.
        """
        retries = self.conf.database.max_deadlock_retries
        delay = 0.05
        for attempt in range(retries + 1):
            try:
                with self.writer() as session:
                    return fn(session)
            except exc.DBAPIError as ex:
                if attempt >= retries or not is_deadlock(ex):
                    raise
                LOG.info("Deadlock on write, retrying (%d of %d)", attempt + 1, retries)
                self._sleep(delay)
                delay = min(delay * 2, 1.0)
        raise AssertionError("unreachable")  # pragma: no cover

    def dispose(self) -> None:
        """Close every pooled connection (call after fork and at shutdown)."""
        self.engine.dispose()
