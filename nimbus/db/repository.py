"""One table's get, list, create, update and delete, the same for every kind.

A :class:`Repository` wraps one SQLAlchemy model on a :class:`~nimbus.db.Database`
and turns the database's answers into nimbus errors: a missing row is the
kind's :class:`~nimbus.exception.NotFound`, a unique-constraint violation a
:class:`~nimbus.exception.Conflict` with a reason the caller chose, a
foreign-key violation a :class:`~nimbus.exception.ValidationError`.

Every method runs in a transaction of its own by default (writes through
:meth:`Database.write`, so they are retried on deadlocks) or, given
``session=``, inside the caller's, so that a service can compose several
steps in one transaction::

    def _delete(session):
        if children.list(filters={"parent_id": item_id}, session=session):
            raise exception.Conflict(...)
        items.delete(item_id, session=session)

    database.write(_delete)

Rows are returned as model instances; sessions are made with
``expire_on_commit=False``, so their loaded columns stay readable after the
transaction ends.

A :class:`Kind` puts a service's policy on top: one declaration per kind
gives the caller-facing get/list/create/update/delete (rule check, lookup,
not-found and conflict mapping, rendering and cache invalidation), so that
a manager writes only what is special about the kind.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy import exc, orm

from nimbus import exception
from nimbus.db.api import Database

__all__ = ["Authorize", "Kind", "Page", "Repository", "integrity_error", "row_dict"]

M = TypeVar("M", bound=orm.DeclarativeBase)
T = TypeVar("T")

#: Checks a policy rule: ``authorize(ctx, "identity:get_domain", target)``.
Authorize = Callable[[Any, str, "dict[str, Any] | None"], None]
#: A step run inside a write transaction before the write itself.
Check = Callable[[orm.Session], None]


@dataclasses.dataclass(frozen=True)
class Page:
    """A page window: at most ``limit`` rows whose id sorts after ``marker``.

    A marker that names no row is not an error: the page starts after where
    that id would sort (what nimbus has always answered, and harmless, since
    ids are opaque).
    """

    limit: int | None = None
    marker: str | None = None


def integrity_error(ex: exc.IntegrityError, kind: str, reason: str) -> exception.NimbusException:
    """Return the nimbus error for a constraint violation while storing *kind*.

    :param reason: why a unique violation collides, for the Conflict message.
    :returns: ValidationError for a foreign-key violation, else Conflict.
    """
    text = str(ex.orig).lower()
    if "foreign key" in text:
        return exception.ValidationError(
            field=kind, reason="refers to something that does not exist"
        )
    return exception.Conflict(kind=kind, reason=reason)


def row_dict(
    row: Any, columns: Iterable[str], *, extra_column: str | None = "extra", **values: Any
) -> dict[str, Any]:
    """Return a row as callers see it: its extra keys, its *columns*, then *values*.

    :param columns: the attribute names copied as they are.
    :param extra_column: the column of free-form keys (``None``: none).
    :param values: computed keys; they and the columns win over extra keys.
    """
    extra = (getattr(row, extra_column) or {}) if extra_column else {}
    return {**extra, **{name: getattr(row, name) for name in columns}, **values}


def _not_found(kind: str) -> Callable[[str], exception.NimbusException]:
    def make(item_id: str) -> exception.NimbusException:
        return exception.NotFound(kind=kind, id=item_id)

    return make


def _duplicate(values: Mapping[str, Any]) -> str:
    return f"Duplicate ID, {values.get('id')}"


class Repository(Generic[M]):
    """Rows of one model, keyed by a single string ``id`` column.

    :param database: nimbus's database.
    :param model: the mapped class; its primary key must be one string column.
    :param kind: what one row is, in messages (``"domain"``).
    :param not_found: builds the error for a missing id; by default
        ``NotFound(kind=kind, id=...)``.
    :param conflict_reason: builds a Conflict's reason from the values that
        collided (on update, the changes plus ``id``); by default
        ``"Duplicate ID, <id>"``.
    :param extra_column: where :meth:`update` keeps keys that are not in
        its ``columns`` (``None``: the model has no such column).
    """

    def __init__(
        self,
        database: Database,
        model: type[M],
        *,
        kind: str,
        not_found: Callable[[str], exception.NimbusException] | None = None,
        conflict_reason: Callable[[Mapping[str, Any]], str] = _duplicate,
        extra_column: str | None = "extra",
    ) -> None:
        self.db = database
        self.model = model
        self.kind = kind
        self.not_found = not_found or _not_found(kind)
        self.conflict_reason = conflict_reason
        self.extra_column = extra_column
        (self._id,) = sa.inspect(model).primary_key

    # -- transactions ----------------------------------------------------------

    def read(self, fn: Callable[[orm.Session], T], session: orm.Session | None = None) -> T:
        """Run ``fn(session)`` in *session*, or in a new read session."""
        if session is not None:
            return fn(session)
        with self.db.reader() as own:
            return fn(own)

    def write(
        self,
        fn: Callable[[orm.Session], T],
        session: orm.Session | None = None,
        *,
        reason: str | None = None,
    ) -> T:
        """Run ``fn(session)`` in *session*, or in a new write transaction.

        A constraint violation becomes Conflict (with *reason*, by default
        the ``conflict_reason`` of nothing) or ValidationError.
        """
        try:
            if session is not None:
                result = fn(session)
                session.flush()
                return result
            return self.db.write(fn)
        except exc.IntegrityError as ex:
            raise integrity_error(ex, self.kind, reason or self.conflict_reason({})) from ex

    # -- reading -----------------------------------------------------------------

    def get(self, item_id: str, *, session: orm.Session | None = None) -> M:
        """Return the row with *item_id*.

        :raises NotFound: no such row (the kind's error, naming the id).
        """

        def _get(s: orm.Session) -> M:
            row = s.get(self.model, item_id)
            if row is None:
                raise self.not_found(item_id)
            return row

        return self.read(_get, session)

    def find(self, *, session: orm.Session | None = None, **filters: Any) -> M | None:
        """Return the first row whose columns equal *filters*, or None."""
        rows = self.list(filters=filters, page=Page(limit=1), session=session)
        return rows[0] if rows else None

    def select(
        self,
        *,
        filters: Mapping[str, Any] | None = None,
        where: Iterable[sa.ColumnElement[bool]] = (),
    ) -> sa.Select[Any]:
        """Return a SELECT of the rows matching *filters* and *where*.

        :param filters: column name to value; a None value is no filter.
        :param where: further conditions, all of which must hold.
        """
        stmt = sa.select(self.model)
        for name, value in (filters or {}).items():
            if value is not None:
                stmt = stmt.where(getattr(self.model, name) == value)
        for condition in where:
            stmt = stmt.where(condition)
        return stmt

    def list(
        self,
        *,
        filters: Mapping[str, Any] | None = None,
        where: Iterable[sa.ColumnElement[bool]] = (),
        ids: Collection[str] | None = None,
        page: Page = Page(),
        order: Sequence[Any] | None = None,
        session: orm.Session | None = None,
    ) -> list[M]:
        """Return the rows matching every filter, one page of them.

        :param filters: column name to value; a None value is no filter.
        :param where: further SQL conditions.
        :param ids: only rows with one of these ids (none for an empty set).
        :param page: the window; paging follows the id, so it needs the
            default *order*.
        :param order: columns to sort by; by default the id.
        """
        if ids is not None and not ids:
            return []
        stmt = self.select(filters=filters, where=where)
        if ids is not None:
            stmt = stmt.where(self._id.in_(sorted(ids)))
        stmt = stmt.order_by(*(order if order is not None else (self._id,)))
        if page.marker is not None:
            stmt = stmt.where(self._id > page.marker)
        if page.limit is not None:
            stmt = stmt.limit(page.limit)
        return self.read(lambda s: list(s.scalars(stmt)), session)

    def count(
        self,
        *,
        filters: Mapping[str, Any] | None = None,
        where: Iterable[sa.ColumnElement[bool]] = (),
        session: orm.Session | None = None,
    ) -> int:
        """Return how many rows match every filter."""
        stmt = sa.select(sa.func.count()).select_from(
            self.select(filters=filters, where=where).subquery()
        )
        return self.read(lambda s: int(s.scalar(stmt) or 0), session)

    # -- writing -----------------------------------------------------------------

    def create(
        self,
        values: Mapping[str, Any],
        *,
        reason: str | None = None,
        session: orm.Session | None = None,
    ) -> M:
        """Insert a row made from *values* and return it.

        :param reason: the Conflict reason; by default ``conflict_reason(values)``.
        :raises Conflict: a unique column is taken.
        :raises ValidationError: a foreign key names nothing.
        """

        def _create(s: orm.Session) -> M:
            row = self.model(**values)
            s.add(row)
            s.flush()
            return row

        return self.write(_create, session, reason=reason or self.conflict_reason(values))

    def update(
        self,
        item_id: str,
        changes: Mapping[str, Any],
        *,
        columns: Collection[str] | None = None,
        reason: str | None = None,
        session: orm.Session | None = None,
    ) -> M:
        """Apply *changes* to the row with *item_id* and return it.

        :param columns: the keys set as columns; every other key is kept in
            the ``extra`` column.  ``None``: every key is a column.
        :param reason: the Conflict reason; by default
            ``conflict_reason({**changes, "id": item_id})``.
        :raises NotFound: no such row.
        :raises Conflict: the changes collide with another row.
        """

        def _update(s: orm.Session) -> M:
            row = self.get(item_id, session=s)
            extra = dict(getattr(row, self.extra_column) or {}) if self.extra_column else {}
            for key, value in changes.items():
                if columns is None or key in columns:
                    setattr(row, key, value)
                elif self.extra_column:
                    extra[key] = value
                else:
                    raise exception.ValidationError(field=key, reason="is not a known attribute")
            if self.extra_column and columns is not None:
                setattr(row, self.extra_column, extra)
            s.flush()
            return row

        why = reason or self.conflict_reason({**changes, "id": item_id})
        return self.write(_update, session, reason=why)

    def delete(self, item_id: str, *, session: orm.Session | None = None) -> None:
        """Delete the row with *item_id*.

        :raises NotFound: no such row.
        """

        def _delete(s: orm.Session) -> None:
            s.delete(self.get(item_id, session=s))

        self.write(_delete, session)

    def delete_where(
        self, *conditions: sa.ColumnElement[bool], session: orm.Session | None = None
    ) -> int:
        """Delete every row matching all *conditions*; return how many went."""
        stmt = sa.delete(self.model)
        for condition in conditions:
            stmt = stmt.where(condition)
        return self.write(lambda s: _rowcount(s.execute(stmt)), session)

    def update_where(
        self,
        item_id: str,
        *,
        expected: Mapping[str, Collection[Any]],
        values: Mapping[str, Any],
        session: orm.Session | None = None,
    ) -> bool:
        """Change the row only while its columns hold one of the expected values.

        One ``UPDATE ... WHERE id = ? AND status IN (...)``: of two callers
        racing to move a row out of the same state, exactly one wins.

        :param expected: column name to the values it may have now, e.g.
            ``{"status": ("queued", "saving")}``.
        :param values: the new column values.
        :returns: whether the row was changed (False: it is missing or in
            another state; :meth:`get` tells which).
        """
        stmt = sa.update(self.model).where(self._id == item_id)
        for name, allowed in expected.items():
            stmt = stmt.where(getattr(self.model, name).in_(list(allowed)))
        stmt = stmt.values(dict(values)).execution_options(synchronize_session=False)
        return self.write(lambda s: _rowcount(s.execute(stmt)) == 1, session)


def _rowcount(result: Any) -> int:
    # CursorResult.rowcount: rows matched (MySQL is told to count matched,
    # not changed, rows by SQLAlchemy's default client flag).
    return int(result.rowcount)


@dataclasses.dataclass(eq=False)
class Kind(Generic[M]):
    """One kind's caller-facing reads and writes, policy-checked and rendered.

    The rule of a verb is ``<service>:<verb>_<kind>`` (``identity:get_domain``;
    ``list`` takes the plural), checked before anything is read or written;
    the policy target of a call naming an id is ``{target_key: id}``.  Rows
    leave as dicts made by *render*; *on_change* runs after every write
    that succeeded (a cache to drop, say).

    :param repository: the rows.
    :param authorize: checks a rule for a caller.
    :param render: turns a row into what callers see.
    :param service: the rules' prefix.
    :param target_key: the policy target's key for the id; ``None``: the
        rules of this kind take no target.
    :param columns: the keys :meth:`update` sets as columns; the others go
        to the extra column.
    :param plural: the kind's plural in the list rule; by default ``kind + "s"``.
    :param on_change: called after each successful write.
    :param unmatched: list filters no item here matches (an upstream feature
        this kind lacks, such as domain-specific roles): a true value of one
        lists nothing.
    :param new_id: makes the id of an item created without one.
    """

    repository: Repository[M]
    _: dataclasses.KW_ONLY
    authorize: Authorize
    render: Callable[[M], dict[str, Any]]
    service: str
    target_key: str | None = None
    columns: Collection[str] | None = None
    plural: str | None = None
    on_change: Callable[[], None] | None = None
    unmatched: Collection[str] = ()
    new_id: Callable[[], str] | None = None

    def rule(self, verb: str) -> str:
        """Return the rule name of *verb* on this kind (``identity:update_domain``)."""
        noun = (
            (self.plural or f"{self.repository.kind}s") if verb == "list" else self.repository.kind
        )
        return f"{self.service}:{verb}_{noun}"

    def check(self, ctx: Any, verb: str, item_id: str | None = None) -> None:
        """Check the rule of *verb*, with *item_id* as target when given.

        :raises PolicyNotAuthorized: the caller may not.
        """
        target = None
        if item_id is not None and self.target_key is not None:
            target = {self.target_key: item_id}
        self.authorize(ctx, self.rule(verb), target)

    def write(self, fn: Callable[[orm.Session], T], *, reason: str | None = None) -> T:
        """Run *fn* in a write transaction, then :attr:`on_change`."""
        result = self.repository.write(fn, reason=reason)
        if self.on_change is not None:
            self.on_change()
        return result

    # -- reading -----------------------------------------------------------------

    def get(self, ctx: Any, item_id: str) -> dict[str, Any]:
        """Return one item. :raises NotFound: unknown id."""
        self.check(ctx, "get", item_id)
        return self.render(self.repository.get(item_id))

    def get_by(self, **filters: Any) -> dict[str, Any]:
        """Return the item whose columns equal *filters* (no policy check).

        :raises NotFound: there is none; the error names the ``name`` filter
            if there is one.
        """
        row = self.repository.find(**filters)
        if row is None:
            raise exception.NotFound(kind=self.repository.kind, id=filters.get("name"))
        return self.render(row)

    def list(
        self,
        ctx: Any,
        *,
        filters: Mapping[str, Any] | None = None,
        where: Iterable[sa.ColumnElement[bool]] = (),
        ids: Collection[str] | None = None,
        page: Page = Page(),
    ) -> list[dict[str, Any]]:
        """Return one page of the items matching the filters (as :meth:`Repository.list`)."""
        self.check(ctx, "list")
        filters = dict(filters or {})
        if any([filters.pop(name, None) for name in self.unmatched]):
            return []
        rows = self.repository.list(filters=filters, where=where, ids=ids, page=page)
        return [self.render(row) for row in rows]

    # -- writing -----------------------------------------------------------------

    def create(
        self,
        ctx: Any,
        values: Mapping[str, Any],
        *,
        check: Check | None = None,
        reason: str | None = None,
        target_id: str | None = None,
    ) -> dict[str, Any]:
        """Store a new item made of *values* and return it.

        :param values: its columns (those left out take the table's defaults)
            and its id, made by :attr:`new_id` when *values* has none.
        :param check: run first, in the same transaction (a reference to check).
        :param reason: the Conflict reason, as for :meth:`Repository.create`.
        :param target_id: the id the policy target carries (an id the caller chose).
        :raises Conflict: a unique column is taken.
        """
        self.check(ctx, "create", target_id)
        if values.get("id") is None and self.new_id is not None:
            values = {**values, "id": self.new_id()}
        reason = reason or self.repository.conflict_reason(values)

        def _create(session: orm.Session) -> M:
            if check is not None:
                check(session)
            return self.repository.create(values, reason=reason, session=session)

        return self.render(self.write(_create, reason=reason))

    def update(
        self,
        ctx: Any,
        item_id: str,
        changes: Mapping[str, Any],
        *,
        check: Callable[[orm.Session, M], None] | None = None,
        reason: str | None = None,
    ) -> dict[str, Any]:
        """Apply *changes* to an item and return it.

        :param check: ``check(session, row_before)``, run first in the same
            transaction.
        :raises NotFound: unknown id.
        :raises Conflict: the changes collide with another item.
        """
        self.check(ctx, "update", item_id)
        reason = reason or self.repository.conflict_reason({**changes, "id": item_id})

        def _update(session: orm.Session) -> M:
            row = self.repository.get(item_id, session=session)
            if check is not None:
                check(session, row)
            return self.repository.update(
                item_id, changes, columns=self.columns, reason=reason, session=session
            )

        return self.render(self.write(_update, reason=reason))

    def delete(
        self,
        ctx: Any,
        item_id: str,
        *,
        check: Callable[[orm.Session, M], None] | None = None,
    ) -> None:
        """Delete an item.

        :param check: ``check(session, row)``, run after the lookup in the
            same transaction; it may refuse (raise) or remove what depends
            on the item.
        :raises NotFound: unknown id.
        """
        self.check(ctx, "delete", item_id)

        def _delete(session: orm.Session) -> None:
            row = self.repository.get(item_id, session=session)
            if check is not None:
                check(session, row)
            session.delete(row)
            session.flush()

        self.write(_delete, reason=item_id)
