"""Domains and projects: the containers that roles are assigned on."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from nimbus import exception
from nimbus.db import Database, models
from nimbus.identity.common import (
    Page,
    apply_changes,
    apply_page,
    filter_equal,
    new_id,
    write_unique,
)

__all__ = ["ResourceManager"]

Revoke = Callable[..., None]


def _domain_dict(row: models.Domain) -> dict[str, Any]:
    return {
        **(row.extra or {}),
        "id": row.id,
        "name": row.name,
        "description": row.description or "",
        "enabled": row.enabled,
        "tags": [],
        "options": {},
    }


def _project_dict(row: models.Project) -> dict[str, Any]:
    return {
        **(row.extra or {}),
        "id": row.id,
        "name": row.name,
        "domain_id": row.domain_id,
        "description": row.description or "",
        "enabled": row.enabled,
        # Keystone shows a top-level project's domain as its parent.
        "parent_id": row.parent_id or row.domain_id,
        "is_domain": False,
        "tags": [],
        "options": {},
    }


class ResourceManager:
    """Create, read, update and delete domains and projects.

    :param database: nimbus's database.
    :param revoke: records a revocation event (``revoke(project_id=...)``),
        called when disabling or deleting makes existing tokens invalid.
    :param on_delete_target: removes the role assignments on a deleted
        project or domain.
    """

    def __init__(
        self,
        database: Database,
        revoke: Revoke,
        on_delete_target: Callable[[Any, str], None],
    ) -> None:
        self.db = database
        self.revoke = revoke
        self.on_delete_target = on_delete_target

    # -- domains -----------------------------------------------------------

    def _domain_row(self, session: Any, domain_id: str) -> models.Domain:
        row = session.get(models.Domain, domain_id)
        if row is None:
            raise exception.NotFound(kind="domain", id=domain_id)
        return row

    def get_domain(self, domain_id: str) -> dict[str, Any]:
        """Return one domain. :raises NotFound: unknown id."""
        with self.db.reader() as session:
            return _domain_dict(self._domain_row(session, domain_id))

    def get_domain_by_name(self, name: str) -> dict[str, Any]:
        """Return the domain called *name*. :raises NotFound: no such domain."""
        with self.db.reader() as session:
            row = session.scalars(
                sa.select(models.Domain).where(models.Domain.name == name)
            ).first()
            if row is None:
                raise exception.NotFound(kind="domain", id=name)
            return _domain_dict(row)

    def list_domains(
        self, *, name: str | None = None, enabled: bool | None = None, page: Page = Page()
    ) -> list[dict[str, Any]]:
        """Return the domains matching the filters, sorted by id."""
        stmt = filter_equal(sa.select(models.Domain), models.Domain, name=name, enabled=enabled)
        with self.db.reader() as session:
            return [
                _domain_dict(r) for r in session.scalars(apply_page(stmt, models.Domain.id, page))
            ]

    def create_domain(
        self,
        *,
        name: str,
        description: str | None = None,
        enabled: bool = True,
        domain_id: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Create a domain. :raises Conflict: the name is taken."""
        row = models.Domain(
            id=domain_id or new_id(),
            name=name,
            description=description,
            enabled=enabled,
            extra=extra or {},
        )

        def _create(session: Any) -> dict[str, Any]:
            session.add(row)
            session.flush()
            return _domain_dict(row)

        return write_unique(self.db, _create, "domain", f"Duplicate entry found with name {name}")

    def update_domain(self, domain_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Apply *changes* (name, description, enabled, extra keys) to a domain."""
        return self._update("domain", self._domain_row, _domain_dict, domain_id, changes)

    def _update(
        self,
        kind: str,
        get_row: Callable[[Any, str], Any],
        render: Callable[[Any], dict[str, Any]],
        item_id: str,
        changes: dict[str, Any],
    ) -> dict[str, Any]:
        """Update a domain or project; disabling it revokes the tokens scoped to it."""
        disabled = False

        def _update(session: Any) -> dict[str, Any]:
            nonlocal disabled
            row = get_row(session, item_id)
            disabled = row.enabled and changes.get("enabled") is False
            apply_changes(row, changes, ("name", "description", "enabled"))
            session.flush()
            return render(row)

        result = write_unique(
            self.db, _update, kind, f"Duplicate entry found with name {changes.get('name')}"
        )
        if disabled:
            self.revoke(**{f"{kind}_id": item_id})
        return result

    def delete_domain(self, domain_id: str, *, has_users: Callable[[str], bool]) -> None:
        """Delete a disabled, empty domain.

        :raises Forbidden: the domain is still enabled.
        :raises Conflict: projects or users still live in it.
        """

        def _delete(session: Any) -> None:
            row = self._domain_row(session, domain_id)
            if row.enabled:
                raise exception.Forbidden(
                    "Cannot delete a domain that is enabled, please disable it first."
                )
            count = session.scalar(
                sa.select(sa.func.count())
                .select_from(models.Project)
                .where(models.Project.domain_id == domain_id)
            )
            if count or has_users(domain_id):
                raise exception.Conflict(
                    kind="domain",
                    reason=f"domain {domain_id} still has projects or users; delete them first",
                )
            self.on_delete_target(session, domain_id)
            session.delete(row)

        self.db.write(_delete)
        self.revoke(domain_id=domain_id)

    # -- projects ----------------------------------------------------------

    def _project_row(self, session: Any, project_id: str) -> models.Project:
        row = session.get(models.Project, project_id)
        if row is None:
            raise exception.NotFound(kind="project", id=project_id)
        return row

    def get_project(self, project_id: str) -> dict[str, Any]:
        """Return one project. :raises NotFound: unknown id."""
        with self.db.reader() as session:
            return _project_dict(self._project_row(session, project_id))

    def get_project_by_name(self, name: str, domain_id: str) -> dict[str, Any]:
        """Return the project called *name* in *domain_id*. :raises NotFound: none."""
        with self.db.reader() as session:
            row = session.scalars(
                sa.select(models.Project).where(
                    models.Project.name == name, models.Project.domain_id == domain_id
                )
            ).first()
            if row is None:
                raise exception.NotFound(kind="project", id=name)
            return _project_dict(row)

    def list_projects(
        self,
        *,
        name: str | None = None,
        domain_id: str | None = None,
        enabled: bool | None = None,
        parent_id: str | None = None,
        ids: set[str] | None = None,
        page: Page = Page(),
    ) -> list[dict[str, Any]]:
        """Return the projects matching every given filter, sorted by id."""
        stmt = filter_equal(
            sa.select(models.Project),
            models.Project,
            name=name,
            domain_id=domain_id,
            enabled=enabled,
        )
        if parent_id is not None:
            stmt = stmt.where(
                sa.or_(
                    models.Project.parent_id == parent_id,
                    sa.and_(
                        models.Project.parent_id.is_(None), models.Project.domain_id == parent_id
                    ),
                )
            )
        if ids is not None:
            if not ids:
                return []
            stmt = stmt.where(models.Project.id.in_(sorted(ids)))
        with self.db.reader() as session:
            return [
                _project_dict(r) for r in session.scalars(apply_page(stmt, models.Project.id, page))
            ]

    def create_project(
        self,
        *,
        name: str,
        domain_id: str,
        description: str | None = None,
        enabled: bool = True,
        parent_id: str | None = None,
        project_id: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Create a project.

        :raises ValidationError: the domain or parent does not exist, or the
            parent is in another domain.
        :raises Conflict: the name is taken in the domain.
        """

        def _create(session: Any) -> dict[str, Any]:
            if session.get(models.Domain, domain_id) is None:
                raise exception.ValidationError(
                    field="domain_id", reason=f"domain {domain_id} does not exist"
                )
            parent = None
            if parent_id is not None and parent_id != domain_id:
                parent = session.get(models.Project, parent_id)
                if parent is None or parent.domain_id != domain_id:
                    raise exception.ValidationError(
                        field="parent_id",
                        reason=f"project {parent_id} does not exist in domain {domain_id}",
                    )
            row = models.Project(
                id=project_id or new_id(),
                name=name,
                domain_id=domain_id,
                parent_id=parent.id if parent is not None else None,
                description=description,
                enabled=enabled,
                extra=extra or {},
            )
            session.add(row)
            session.flush()
            return _project_dict(row)

        return write_unique(
            self.db,
            _create,
            "project",
            f"Duplicate entry found with name {name} at domain ID {domain_id}",
        )

    def update_project(self, project_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Apply *changes* (name, description, enabled, extra keys) to a project."""
        return self._update("project", self._project_row, _project_dict, project_id, changes)

    def delete_project(self, project_id: str) -> None:
        """Delete a project and every role assignment on it.

        :raises Conflict: other projects have it as their parent.
        """

        def _delete(session: Any) -> None:
            row = self._project_row(session, project_id)
            children = session.scalar(
                sa.select(sa.func.count())
                .select_from(models.Project)
                .where(models.Project.parent_id == project_id)
            )
            if children:
                raise exception.Conflict(
                    kind="project", reason=f"project {project_id} has child projects"
                )
            self.on_delete_target(session, project_id)
            session.delete(row)

        self.db.write(_delete)
        self.revoke(project_id=project_id)
