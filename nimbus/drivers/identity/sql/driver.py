"""The ``sql`` identity back-end: users and groups in nimbus's SQL database."""

from __future__ import annotations

import contextlib
import dataclasses
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


def _from_row(cls: Callable[..., T], row: Any, **given: Any) -> T:
    """Build the value *cls* from the row's columns of the same names.

    *given* overrides columns; the caller gets its own copy of ``extra``.
    """
    names = [field.name for field in dataclasses.fields(cast(Any, cls)) if field.name not in given]
    values = {name: getattr(row, name) for name in names}
    values["extra"] = dict(values["extra"] or {})
    return cls(**values, **given)


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
        return _from_row(User, row, enabled=bool(row.enabled), password_expires_at=None)

    @staticmethod
    def _group(row: models.Group) -> Group:
        return _from_row(Group, row)

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

        With ``[identity] lockout_failure_attempts`` above 0, each check of a
        user's password first claims an attempt in one ``UPDATE``: once that
        many failures in a row were recorded, no claim succeeds and the user
        is refused with :class:`~nimbus.exception.UserLockedOut` until
        ``lockout_duration`` seconds after the last one, however many guesses
        arrive at once.  A success or a new password clears the count; users
        in ``lockout_ignored_user_ids`` are never locked.
        """
        identity = self.conf.identity
        limit = identity.lockout_failure_attempts
        user = hashed = None
        failures = 0
        with self._translated("user", "read failed"), self.database.reader() as session:
            row = session.get(models.User, user_id) if isinstance(user_id, str) else None
            if row is not None:
                user = self._user(row)
                hashed, failures = row.password_hash, row.failed_auth_count
        counting = (
            user is not None and limit > 0 and user.id not in identity.lockout_ignored_user_ids
        )
        if user is not None and counting and not self._claim_attempt(user.id, limit):
            raise exception.UserLockedOut(user_id=user.id)
        # The same work, and so about the same time, whether or not the user
        # exists and whether or not it has a password.
        candidate = password if isinstance(password, str) else ""
        too_long = len(candidate) > identity.max_password_length
        matched = passwords.verify_password(candidate, hashed, rounds=identity.password_hash_rounds)
        if user is None:
            raise exception.AuthenticationFailed()
        if matched and not too_long:
            if counting or failures:
                self._reset_failures(user.id)
            return user
        raise exception.AuthenticationFailed()

    def _claim_attempt(self, user_id: str, limit: int) -> bool:
        """Count one more failure in advance; False when the user is locked out.

        One statement, so that concurrent attempts from several processes
        never check more than *limit* passwords.  A lock-out older than
        ``lockout_duration`` starts a new count.  MySQL evaluates SET
        assignments left to right, so the count is computed before
        failed_auth_at is overwritten.
        """
        now = self._clock()
        cutoff = now - datetime.timedelta(seconds=self.conf.identity.lockout_duration)
        user = models.User
        count = user.failed_auth_count
        expired = sa.or_(user.failed_auth_at.is_(None), user.failed_auth_at <= cutoff)
        stmt = (
            sa.update(user)
            .where(user.id == user_id, sa.or_(count < limit, expired))
            .ordered_values(
                (count, sa.case((count >= limit, 1), else_=count + 1)),
                (user.failed_auth_at, now),
            )
        )
        with self._translated("user", "recording a login attempt failed"):
            return bool(self.database.write(lambda session: session.execute(stmt).rowcount == 1))

    def _reset_failures(self, user_id: str) -> None:
        stmt = (
            sa.update(models.User)
            .where(models.User.id == user_id, models.User.failed_auth_count != 0)
            .values(failed_auth_count=0, failed_auth_at=None)
        )
        with self._translated("user", "clearing failed logins failed"):
            self.database.write(lambda session: session.execute(stmt))

    def _check_changes(self, changes: dict[str, Any], allowed: frozenset[str], kind: str) -> None:
        """Check an update's *changes*, and copy the ``extra`` they give."""
        self._check_attrs(
            {key: value for key, value in changes.items() if key != "name"}, allowed, kind
        )
        if "name" in changes:
            self._check_name(changes["name"])
        if "extra" in changes:
            changes["extra"] = dict(changes["extra"] or {})

    def _insert_row(
        self, model: type, kind: str, values: dict[str, Any], convert: Callable[[Any], T]
    ) -> T:
        def _insert(session: orm.Session) -> T:
            row = model(**values)
            session.add(row)
            session.flush()
            return convert(row)

        what = f"a {kind} named {values['name']!r} already exists in domain {values['domain_id']!r}"
        with self._translated(kind, what):
            return cast(T, self.database.write(_insert))

    def _update_row(
        self,
        model: type,
        kind: str,
        row_id: str,
        changes: dict[str, Any],
        convert: Callable[[Any], T],
    ) -> T:
        def _update(session: orm.Session) -> T:
            row = self._get_row(session, model, kind, row_id)
            for key, value in changes.items():
                setattr(row, key, value)
            session.flush()
            return convert(row)

        what = f"a {kind} named {changes.get('name')!r} already exists in that domain"
        with self._translated(kind, what):
            return cast(T, self.database.write(_update))

    def _delete_row(self, model: type, kind: str, row_id: str, member_column: Any) -> None:
        def _delete(session: orm.Session) -> None:
            row = self._get_row(session, model, kind, row_id)
            # Explicitly, rather than trusting ON DELETE CASCADE to be enforced.
            session.execute(sa.delete(models.Membership).where(member_column == row.id))
            session.delete(row)

        with self._translated(kind, "delete failed"):
            self.database.write(_delete)

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

        return self._insert_row(models.User, "user", values, self._user)

    def update_user(self, user_id: str, **changes: Any) -> User:
        password_given = "password" in changes
        password = changes.pop("password", None)
        self._check_changes(changes, _USER_ATTRS, "user")
        if "enabled" in changes:
            changes["enabled"] = bool(changes["enabled"])
        if password_given:
            changes["password_hash"] = self._hash(password)
            changes["password_created_at"] = self._clock() if password is not None else None
            changes["failed_auth_count"] = 0
            changes["failed_auth_at"] = None

        return self._update_row(models.User, "user", user_id, changes, self._user)

    def delete_user(self, user_id: str) -> None:
        self._delete_row(models.User, "user", user_id, models.Membership.user_id)

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

        return self._insert_row(models.Group, "group", values, self._group)

    def update_group(self, group_id: str, **changes: Any) -> Group:
        """Change a group. :raises NotFound: unknown group. :raises Conflict: name taken."""
        self._check_changes(changes, _GROUP_ATTRS, "group")
        return self._update_row(models.Group, "group", group_id, changes, self._group)

    def delete_group(self, group_id: str) -> None:
        self._delete_row(models.Group, "group", group_id, models.Membership.group_id)

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
