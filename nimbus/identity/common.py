"""Helpers shared by the identity managers: ids, pagination, row rendering."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import exc

from nimbus import exception
from nimbus.db.repository import Page

T = TypeVar("T")

__all__ = [
    "Page",
    "apply_changes",
    "apply_page",
    "filter_equal",
    "integrity_conflict",
    "new_id",
    "write_unique",
]


def new_id() -> str:
    """Return a new resource id (32 hex characters, as Keystone's)."""
    return uuid.uuid4().hex


def filter_equal(stmt: sa.Select, model: Any, **filters: Any) -> sa.Select:
    """Add ``model.<name> == value`` to *stmt* for every filter that is not None."""
    for name, value in filters.items():
        if value is not None:
            stmt = stmt.where(getattr(model, name) == value)
    return stmt


def apply_page(stmt: sa.Select, id_column: Any, page: Page) -> sa.Select:
    """Order *stmt* by id and cut it to the page window."""
    stmt = stmt.order_by(id_column)
    if page.marker is not None:
        stmt = stmt.where(id_column > page.marker)
    if page.limit is not None:
        stmt = stmt.limit(page.limit)
    return stmt


def integrity_conflict(ex: exc.IntegrityError, kind: str, reason: str) -> exception.NimbusException:
    """Turn a unique-constraint violation into Conflict, a foreign-key one into NotFound-ish."""
    text = str(ex.orig).lower()
    if "foreign key" in text or "violates foreign key" in text:
        return exception.ValidationError(
            field=kind, reason="refers to something that does not exist"
        )
    return exception.Conflict(kind=kind, reason=reason)


def write_unique(database: Any, fn: Callable[[Any], T], kind: str, reason: str) -> T:
    """Run ``database.write(fn)``, turning a constraint violation into Conflict.

    :param kind: what was being stored, for the message.
    :param reason: why it collides, for the message.
    """
    try:
        return database.write(fn)
    except exc.IntegrityError as ex:
        raise integrity_conflict(ex, kind, reason) from ex


def apply_changes(row: Any, changes: dict[str, Any], columns: tuple[str, ...]) -> None:
    """Set the known *columns* on *row* and keep every other key in its ``extra``."""
    extra = dict(row.extra or {})
    for key, value in changes.items():
        if key in columns:
            setattr(row, key, value)
        else:
            extra[key] = value
    row.extra = extra
