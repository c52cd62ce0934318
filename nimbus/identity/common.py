"""Helpers shared by the identity managers: ids, pagination, row rendering."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc

from nimbus import exception

__all__ = ["Page", "apply_page", "new_id", "integrity_conflict"]


def new_id() -> str:
    """Return a new resource id (32 hex characters, as Keystone's)."""
    return uuid.uuid4().hex


@dataclasses.dataclass(frozen=True)
class Page:
    """A page window: at most ``limit`` rows whose id sorts after ``marker``."""

    limit: int | None = None
    marker: str | None = None


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
