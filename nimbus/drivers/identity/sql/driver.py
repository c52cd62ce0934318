"""The ``sql`` identity back-end: users and groups in nimbus's SQL database."""

from __future__ import annotations

import contextlib
import datetime
import uuid
from collections.abc import Callable, Iterator
from typing import Any, ClassVar, TypeVar, cast

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy import orm

from nimbus import exception
from nimbus.common import passwords
from nimbus.drivers.identity.base import IdentityDriver
from nimbus.drivers.identity.sql import models
from nimbus.drivers.identity.types import Capability, Group, ListQuery, User

__all__ = ["SqlIdentityDriver"]

T = TypeVar("T")

_USER_ATTRS = frozenset({"enabled", "default_project_id", "description", "email", "extra"})
_GROUP_ATTRS = frozenset({"description", "extra"})


def _naive_utc(moment: datetime.datetime) -> datetime.datetime:
    # The tables hold naive UTC timestamps.
    if moment.tzinfo is not None:
        moment = moment.astimezone(datetime.UTC).replace(tzinfo=None)
    return moment


class SqlIdentityDriver(IdentityDriver):
    """Users and groups in nimbus's SQL database.

    Passwords are stored as bcrypt hashes.  Failed logins are counted in the
    ``users`` row with one atomic ``UPDATE``, so every API process sharing
    the database sees the same count.
    """

    capabilities: ClassVar[frozenset[Capability]] = frozenset(Capability)
    needs_database = True

    # -- helpers ------------------------------------------------------------

    @contextlib.contextmanager
    def _translated(self, kind: str, what: str) -> Iterator[None]:
        """Turn SQLAlchemy errors raised inside the block into nimbus errors."""
        try:
            yield
        except sa_exc.IntegrityError as ex:
            raise exception.Conflict(
                kind=kind, reason=f"{what} (rejected by the database, {self.name})"
            ) from ex
        except sa_exc.SQLAlchemyError as ex:
            # The DB-API's own message, without SQLAlchemy's copy of the statement.
            detail = getattr(ex, "orig", None) or ex
            raise exception.DriverError(
                driver=self.name, reason=f"{type(ex).__name__}: {detail}"
            ) from ex

    def _clock(self) -> datetime.datetime:
        return _naive_utc(self._now())

    @staticmethod
    def _check_attrs(changes: dict[str, Any], allowed: frozenset[str], kind: str) -> None:
        for key in changes:
            if key in ("id", "domain_id"):
                raise exception.ValidationError(field=key, reason=f"a {kind}'s {key} is fixed")
            if key not in allowed:
                raise exception.ValidationError(field=key, reason=f"not a {kind} attribute")

    @staticmethod
    def _check_name(name: Any) -> None:
        if not isinstance(name, str) or not name.strip():
            raise exception.ValidationError(field="name", reason="must be a non-empty string")

    @staticmethod
    def _user(row: models.User) -> User:
        return User(
            id=row.id,
            name=row.name,
            domain_id=row.domain_id,
            enabled=bool(row.enabled),
            default_project_id=row.default_project_id,
            description=row.description,
            email=row.email,
            extra=dict(row.extra or {}),
            password_expires_at=None,
        )

    @staticmethod
    def _group(row: models.Group) -> Group:
        return Group(
            id=row.id,
            name=row.name,
            domain_id=row.domain_id,
            description=row.description,
            extra=dict(row.extra or {}),
        )

    @staticmethod
    def _page(stmt: sa.Select, column: Any, query: ListQuery) -> sa.Select:
        if query.ids is not None:
            stmt = stmt.where(column.in_(sorted(query.ids)))
        if query.marker is not None:
            stmt = stmt.where(column > query.marker)
        return stmt.order_by(column)

    def _list(
        self, stmt: sa.Select, name_column: Any, query: ListQuery, convert: Callable[[Any], T]
    ) -> list[T]:
        """Run a listing; the name filter is applied again in Python.

        MySQL and MariaDB compare strings case-insensitively by default, but
        the filters are exact: so with a name filter (which matches a handful
        of rows at most) the limit is applied after the exact check.
        """
        if query.name is not None:
            stmt = stmt.where(name_column == query.name)
        elif query.limit is not None:
            stmt = stmt.limit(query.limit)
        with self._translated("listing", "listing failed"), self.database.reader() as session:
            rows = list(session.scalars(stmt))
            if query.name is not None:
                rows = [row for row in rows if row.name == query.name]
                if query.limit is not None:
                    rows = rows[: query.limit]
            return [convert(row) for row in rows]

    def _user_filters(self, stmt: sa.Select, query: ListQuery) -> sa.Select:
        if query.domain_id is not None:
            stmt = stmt.where(models.User.domain_id == query.domain_id)
        if query.enabled is not None:
            stmt = stmt.where(models.User.enabled == query.enabled)
        return self._page(stmt, models.User.id, query)

    @staticmethod
    def _get_row(session: orm.Session, model: type, kind: str, row_id: str) -> Any:
        row = session.get(model, row_id) if isinstance(row_id, str) else None
        if row is None:
            raise exception.NotFound(kind=kind, id=row_id)
        return row

    # -- reading users and authenticating -----------------------------------

    def get_user(self, user_id: str) -> User:
        with self._translated("user", "read failed"), self.database.reader() as session:
            return self._user(self._get_row(session, models.User, "user", user_id))

    def get_user_by_name(self, name: str, domain_id: str) -> User:
        stmt = sa.select(models.User).where(
            models.User.domain_id == domain_id, models.User.name == name
        )
        with self._translated("user", "read failed"), self.database.reader() as session:
            for row in session.scalars(stmt):
                if row.name == name:
                    return self._user(row)
        raise exception.NotFound(kind="user", id=name)

    def list_users(self, query: ListQuery) -> list[User]:
        stmt = self._user_filters(sa.select(models.User), query)
        return self._list(stmt, models.User.name, query, self._user)

    def authenticate(self, user_id: str, password: str) -> User:
        """Check *password* for *user_id* and return the user.

        With ``[identity] lockout_failure_attempts`` above 0, a user is refused
        with :class:`~nimbus.exception.UserLockedOut` once that many failures
        in a row were recorded, until ``lockout_duration`` seconds after the
        last one; a success or a new password clears the count.
        """
        identity = self.conf.identity
        limit = identity.lockout_failure_attempts
        user = hashed = failed_at = None
        failures = 0
        with self._translated("user", "read failed"), self.database.reader() as session:
            row = session.get(models.User, user_id) if isinstance(user_id, str) else None
            if row is not None:
                user = self._user(row)
                hashed, failures, failed_at = (
                    row.password_hash,
                    row.failed_auth_count,
                    row.failed_auth_at,
                )
        now = self._clock()
        cutoff = now - datetime.timedelta(seconds=identity.lockout_duration)
        if user is not None and limit > 0 and failures >= limit and failed_at is not None:
            if failed_at > cutoff:
                raise exception.UserLockedOut(user_id=user.id)
        # The same work, and so about the same time, whether or not the user
        # exists and whether or not it has a password.
        candidate = password if isinstance(password, str) else ""
        too_long = len(candidate) > identity.max_password_length
        matched = passwords.verify_password(candidate, hashed, rounds=identity.password_hash_rounds)
        if user is None:
            raise exception.AuthenticationFailed()
        if matched and not too_long:
            if failures:
                self._reset_failures(user.id)
            return user
        if limit > 0:
            self._record_failure(user.id, now, cutoff, limit)
        raise exception.AuthenticationFailed()

    def _record_failure(
        self, user_id: str, now: datetime.datetime, cutoff: datetime.datetime, limit: int
    ) -> None:
        count = models.User.failed_auth_count
        expired = sa.and_(count >= limit, models.User.failed_auth_at <= cutoff)
        # One statement, so that concurrent failures from several processes
        # all count.  MySQL evaluates SET assignments left to right, so the
        # count must be computed before failed_auth_at is overwritten.
        stmt = (
            sa.update(models.User)
            .where(models.User.id == user_id)
            .ordered_values(
                (count, sa.case((expired, 1), else_=count + 1)),
                (models.User.failed_auth_at, now),
            )
        )
        with self._translated("user", "recording a failed login failed"):
            self.database.write(lambda session: session.execute(stmt))

    def _reset_failures(self, user_id: str) -> None:
        stmt = (
            sa.update(models.User)
            .where(models.User.id == user_id, models.User.failed_auth_count != 0)
            .values(failed_auth_count=0, failed_auth_at=None)
        )
        with self._translated("user", "clearing failed logins failed"):
            self.database.write(lambda session: session.execute(stmt))

    # -- writing users --------------------------------------------------------

    def create_user(
        self, *, name: str, domain_id: str, password: str | None = None, **attrs: Any
    ) -> User:
        self._check_name(name)
        self._check_attrs(attrs, _USER_ATTRS, "user")
        password_hash = self._hash(password)
        now = self._clock()
        values = {
            "id": uuid.uuid4().hex,
            "name": name,
            "domain_id": domain_id,
            "enabled": bool(attrs.get("enabled", True)),
            "default_project_id": attrs.get("default_project_id"),
            "description": attrs.get("description"),
            "email": attrs.get("email"),
            "extra": dict(attrs.get("extra") or {}),
            "password_hash": password_hash,
            "password_created_at": now if password_hash else None,
            "failed_auth_count": 0,
            "failed_auth_at": None,
            "created_at": now,
        }

        def _insert(session: orm.Session) -> User:
            row = models.User(**values)
            session.add(row)
            session.flush()
            return self._user(row)

        what = f"a user named {name!r} already exists in domain {domain_id!r}"
        with self._translated("user", what):
            return self.database.write(_insert)

    def update_user(self, user_id: str, **changes: Any) -> User:
        password_given = "password" in changes
        password = changes.pop("password", None)
        self._check_attrs(
            {key: value for key, value in changes.items() if key != "name"}, _USER_ATTRS, "user"
        )
        if "name" in changes:
            self._check_name(changes["name"])
        if "extra" in changes:
            changes["extra"] = dict(changes["extra"] or {})
        if "enabled" in changes:
            changes["enabled"] = bool(changes["enabled"])
        if password_given:
            changes["password_hash"] = self._hash(password)
            changes["password_created_at"] = self._clock() if password is not None else None
            changes["failed_auth_count"] = 0
            changes["failed_auth_at"] = None

        def _update(session: orm.Session) -> User:
            row = self._get_row(session, models.User, "user", user_id)
            for key, value in changes.items():
                setattr(row, key, value)
            session.flush()
            return self._user(row)

        what = f"a user named {changes.get('name')!r} already exists in that domain"
        with self._translated("user", what):
            return self.database.write(_update)

    def delete_user(self, user_id: str) -> None:
        def _delete(session: orm.Session) -> None:
            row = self._get_row(session, models.User, "user", user_id)
            # Explicitly, rather than trusting ON DELETE CASCADE to be enforced.
            session.execute(sa.delete(models.Membership).where(models.Membership.user_id == row.id))
            session.delete(row)

        with self._translated("user", "delete failed"):
            self.database.write(_delete)

    # -- groups ---------------------------------------------------------------

    def get_group(self, group_id: str) -> Group:
        with self._translated("group", "read failed"), self.database.reader() as session:
            return self._group(self._get_row(session, models.Group, "group", group_id))

    def list_groups(self, query: ListQuery) -> list[Group]:
        """Return the groups matching *query*, sorted by id; ``enabled`` is ignored."""
        stmt = sa.select(models.Group)
        if query.domain_id is not None:
            stmt = stmt.where(models.Group.domain_id == query.domain_id)
        stmt = self._page(stmt, models.Group.id, query)
        return self._list(stmt, models.Group.name, query, self._group)

    def list_groups_for_user(self, user_id: str) -> list[Group]:
        """Return the groups *user_id* belongs to. :raises NotFound: unknown user."""
        stmt = (
            sa.select(models.Group)
            .join(models.Membership, models.Membership.group_id == models.Group.id)
            .where(models.Membership.user_id == user_id)
            .order_by(models.Group.id)
        )
        with self._translated("group", "read failed"), self.database.reader() as session:
            self._get_row(session, models.User, "user", user_id)
            return [self._group(row) for row in session.scalars(stmt)]

    def list_users_in_group(self, group_id: str, query: ListQuery) -> list[User]:
        with self._translated("group", "read failed"), self.database.reader() as session:
            self._get_row(session, models.Group, "group", group_id)
        stmt = sa.select(models.User).join(
            models.Membership, models.Membership.user_id == models.User.id
        )
        stmt = self._user_filters(stmt.where(models.Membership.group_id == group_id), query)
        return self._list(stmt, models.User.name, query, self._user)

    def create_group(self, *, name: str, domain_id: str, **attrs: Any) -> Group:
        self._check_name(name)
        self._check_attrs(attrs, _GROUP_ATTRS, "group")
        values = {
            "id": uuid.uuid4().hex,
            "name": name,
            "domain_id": domain_id,
            "description": attrs.get("description"),
            "extra": dict(attrs.get("extra") or {}),
        }

        def _insert(session: orm.Session) -> Group:
            row = models.Group(**values)
            session.add(row)
            session.flush()
            return self._group(row)

        what = f"a group named {name!r} already exists in domain {domain_id!r}"
        with self._translated("group", what):
            return self.database.write(_insert)

    def update_group(self, group_id: str, **changes: Any) -> Group:
        """Change a group. :raises NotFound: unknown group. :raises Conflict: name taken."""
        self._check_attrs(
            {key: value for key, value in changes.items() if key != "name"}, _GROUP_ATTRS, "group"
        )
        if "name" in changes:
            self._check_name(changes["name"])
        if "extra" in changes:
            changes["extra"] = dict(changes["extra"] or {})

        def _update(session: orm.Session) -> Group:
            row = self._get_row(session, models.Group, "group", group_id)
            for key, value in changes.items():
                setattr(row, key, value)
            session.flush()
            return self._group(row)

        what = f"a group named {changes.get('name')!r} already exists in that domain"
        with self._translated("group", what):
            return self.database.write(_update)

    def delete_group(self, group_id: str) -> None:
        def _delete(session: orm.Session) -> None:
            row = self._get_row(session, models.Group, "group", group_id)
            session.execute(
                sa.delete(models.Membership).where(models.Membership.group_id == row.id)
            )
            session.delete(row)

        with self._translated("group", "delete failed"):
            self.database.write(_delete)

    def add_user_to_group(self, user_id: str, group_id: str) -> None:
        def _add(session: orm.Session) -> None:
            self._get_row(session, models.User, "user", user_id)
            self._get_row(session, models.Group, "group", group_id)
            if session.get(models.Membership, (user_id, group_id)) is None:
                session.add(models.Membership(user_id=user_id, group_id=group_id))

        try:
            with self._translated("membership", "add failed"):
                self.database.write(_add)
        except exception.Conflict:
            # Lost a race: another request added the same membership (fine:
            # adding is idempotent) or deleted the user or the group.
            with self._translated("membership", "read failed"), self.database.reader() as session:
                self._get_row(session, models.User, "user", user_id)
                self._get_row(session, models.Group, "group", group_id)

    def remove_user_from_group(self, user_id: str, group_id: str) -> None:
        def _remove(session: orm.Session) -> None:
            statement = sa.delete(models.Membership).where(
                models.Membership.user_id == user_id,
                models.Membership.group_id == group_id,
            )
            # A DML statement's result is a CursorResult, which has the rowcount.
            result = cast(sa.CursorResult[Any], session.execute(statement))
            if result.rowcount == 0:
                raise exception.NotFound(kind="membership", id=f"{user_id} in {group_id}")

        with self._translated("membership", "remove failed"):
            self.database.write(_remove)
