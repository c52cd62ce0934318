"""Domains and projects: the containers that roles are assigned on."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa
from oslo_config import cfg
from sqlalchemy import orm

from nimbus import exception
from nimbus.context import RequestContext
from nimbus.db import Database
from nimbus.db.repository import Repository
from nimbus.identity import models
from nimbus.identity.common import Manager, Page, Revoke, caller_domain, new_id
from nimbus.policy import Enforcer

__all__ = ["ResourceManager"]

_COLUMNS = ("name", "description", "enabled")


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


def _duplicate_name(values: Any) -> str:
    return f"Duplicate entry found with name {values.get('name')}"


class ResourceManager(Manager):
    """Create, read, update and delete domains and projects.

    :param conf: the nimbus config (``[identity] default_domain_id``).
    :param database: nimbus's database.
    :param enforcer: checks the ``identity:*`` rules.
    :param revoke: records a revocation event (``revoke(project_id=...)``),
        called when disabling or deleting makes existing tokens invalid.
    :param on_delete_target: removes the role assignments on a deleted
        project or domain, inside the deleting transaction.
    :param has_users: tells whether users live in a domain (the identity
        back-end keeps them, so a domain with users is not deleted).
    """

    def __init__(
        self,
        conf: cfg.ConfigOpts,
        database: Database,
        enforcer: Enforcer,
        revoke: Revoke,
        *,
        on_delete_target: Callable[[orm.Session, str], None],
        has_users: Callable[[str], bool],
    ) -> None:
        super().__init__(enforcer)
        self.conf = conf
        self.db = database
        self.revoke = revoke
        self.on_delete_target = on_delete_target
        self.has_users = has_users
        self.domains = Repository(
            database, models.Domain, kind="domain", conflict_reason=_duplicate_name
        )
        self.projects = Repository(
            database, models.Project, kind="project", conflict_reason=_duplicate_name
        )

    # -- domains -----------------------------------------------------------

    def get_domain(self, ctx: RequestContext, domain_id: str) -> dict[str, Any]:
        """Return one domain. :raises NotFound: unknown id."""
        self.authorize(ctx, "identity:get_domain", {"target.domain.id": domain_id})
        return _domain_dict(self.domains.get(domain_id))

    def get_domain_by_name(self, name: str) -> dict[str, Any]:
        """Return the domain called *name* (for authentication). :raises NotFound: none."""
        row = self.domains.find(name=name)
        if row is None:
            raise exception.NotFound(kind="domain", id=name)
        return _domain_dict(row)

    def list_domains(
        self,
        ctx: RequestContext,
        *,
        name: str | None = None,
        enabled: bool | None = None,
        page: Page = Page(),
    ) -> list[dict[str, Any]]:
        """Return the domains matching the filters, sorted by id."""
        self.authorize(ctx, "identity:list_domains")
        rows = self.domains.list(filters={"name": name, "enabled": enabled}, page=page)
        return [_domain_dict(r) for r in rows]

    def create_domain(
        self,
        ctx: RequestContext,
        *,
        name: str,
        description: str | None = None,
        enabled: bool = True,
        domain_id: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Create a domain. :raises Conflict: the name is taken."""
        self.authorize(ctx, "identity:create_domain")
        row = self.domains.create(
            {
                "id": domain_id or new_id(),
                "name": name,
                "description": description,
                "enabled": enabled,
                "extra": extra or {},
            }
        )
        return _domain_dict(row)

    def update_domain(
        self, ctx: RequestContext, domain_id: str, changes: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Apply *changes* (name, description, enabled, extra keys) to a domain.

        Disabling it revokes the tokens scoped to it.
        """
        self.authorize(ctx, "identity:update_domain", {"target.domain.id": domain_id})
        return _domain_dict(self._update(self.domains, domain_id, changes))

    def _update(self, repo: Repository[Any], item_id: str, changes: Mapping[str, Any]) -> Any:
        """Update a domain or project; disabling it revokes the tokens scoped to it."""
        disabled = False

        def _update(session: orm.Session) -> Any:
            nonlocal disabled
            disabled = (
                repo.get(item_id, session=session).enabled and changes.get("enabled") is False
            )
            return repo.update(item_id, changes, columns=_COLUMNS, session=session)

        row = repo.write(_update, reason=_duplicate_name(changes))
        if disabled:
            self.revoke(**{f"{repo.kind}_id": item_id})
        return row

    def delete_domain(self, ctx: RequestContext, domain_id: str) -> None:
        """Delete a disabled, empty domain.

        :raises Forbidden: the domain is still enabled.
        :raises Conflict: projects or users still live in it.
        """
        self.authorize(ctx, "identity:delete_domain", {"target.domain.id": domain_id})

        def _delete(session: orm.Session) -> None:
            if self.domains.get(domain_id, session=session).enabled:
                raise exception.Forbidden(
                    "Cannot delete a domain that is enabled, please disable it first."
                )
            count = self.projects.count(filters={"domain_id": domain_id}, session=session)
            if count or self.has_users(domain_id):
                raise exception.Conflict(
                    kind="domain",
                    reason=f"domain {domain_id} still has projects or users; delete them first",
                )
            self.on_delete_target(session, domain_id)
            self.domains.delete(domain_id, session=session)

        self.db.write(_delete)
        self.revoke(domain_id=domain_id)

    # -- projects ----------------------------------------------------------

    def get_project(self, ctx: RequestContext, project_id: str) -> dict[str, Any]:
        """Return one project. :raises NotFound: unknown id."""
        self.authorize(ctx, "identity:get_project", {"target.project.id": project_id})
        return _project_dict(self.projects.get(project_id))

    def get_project_by_name(self, name: str, domain_id: str) -> dict[str, Any]:
        """Return the project called *name* in *domain_id* (for authentication).

        :raises NotFound: none.
        """
        row = self.projects.find(name=name, domain_id=domain_id)
        if row is None:
            raise exception.NotFound(kind="project", id=name)
        return _project_dict(row)

    def list_projects(
        self,
        ctx: RequestContext,
        *,
        name: str | None = None,
        domain_id: str | None = None,
        enabled: bool | None = None,
        parent_id: str | None = None,
        is_domain: bool | None = None,
        ids: set[str] | None = None,
        page: Page = Page(),
    ) -> list[dict[str, Any]]:
        """Return the projects matching every given filter, sorted by id.

        :param parent_id: children of this project, or the top-level
            projects of this domain.
        :param is_domain: True finds nothing (no project acts as a domain here).
        """
        self.authorize(ctx, "identity:list_projects")
        if is_domain:
            return []
        where = []
        if parent_id is not None:
            p = models.Project
            where.append(
                sa.or_(
                    p.parent_id == parent_id,
                    sa.and_(p.parent_id.is_(None), p.domain_id == parent_id),
                )
            )
        rows = self.projects.list(
            filters={"name": name, "domain_id": domain_id, "enabled": enabled},
            where=where,
            ids=ids,
            page=page,
        )
        return [_project_dict(r) for r in rows]

    def create_project(
        self,
        ctx: RequestContext,
        *,
        name: str,
        domain_id: str | None = None,
        description: str | None = None,
        enabled: bool = True,
        parent_id: str | None = None,
        project_id: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Create a project.

        :param domain_id: by default the parent's domain, else the caller's
            project's domain, else ``[identity] default_domain_id``.
        :raises ValidationError: the domain or parent does not exist, or the
            parent is in another domain.
        :raises Conflict: the name is taken in the domain.
        """
        self.authorize(ctx, "identity:create_project")
        if domain_id is None and parent_id is not None:
            parent = self.projects.find(id=parent_id)
            if parent is None:
                raise exception.ValidationError(
                    field="project/parent_id", reason=f"project {parent_id} does not exist"
                )
            domain_id = parent.domain_id
        domain_id = caller_domain(ctx, self.conf, domain_id)

        reason = f"Duplicate entry found with name {name} at domain ID {domain_id}"

        def _create(session: orm.Session) -> models.Project:
            if self.domains.find(id=domain_id, session=session) is None:
                raise exception.ValidationError(
                    field="domain_id", reason=f"domain {domain_id} does not exist"
                )
            parent = None
            if parent_id is not None and parent_id != domain_id:
                parent = self.projects.find(id=parent_id, session=session)
                if parent is None or parent.domain_id != domain_id:
                    raise exception.ValidationError(
                        field="parent_id",
                        reason=f"project {parent_id} does not exist in domain {domain_id}",
                    )
            values = {
                "id": project_id or new_id(),
                "name": name,
                "domain_id": domain_id,
                "parent_id": parent.id if parent is not None else None,
                "description": description,
                "enabled": enabled,
                "extra": extra or {},
            }
            return self.projects.create(values, reason=reason, session=session)

        return _project_dict(self.projects.write(_create, reason=reason))

    def update_project(
        self, ctx: RequestContext, project_id: str, changes: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Apply *changes* (name, description, enabled, extra keys) to a project.

        Disabling it revokes the tokens scoped to it.
        """
        self.authorize(ctx, "identity:update_project", {"target.project.id": project_id})
        return _project_dict(self._update(self.projects, project_id, changes))

    def delete_project(self, ctx: RequestContext, project_id: str) -> None:
        """Delete a project and every role assignment on it.

        :raises Conflict: other projects have it as their parent.
        """
        self.authorize(ctx, "identity:delete_project", {"target.project.id": project_id})

        def _delete(session: orm.Session) -> None:
            self.projects.get(project_id, session=session)
            if self.projects.count(filters={"parent_id": project_id}, session=session):
                raise exception.Conflict(
                    kind="project", reason=f"project {project_id} has child projects"
                )
            self.on_delete_target(session, project_id)
            self.projects.delete(project_id, session=session)

        self.db.write(_delete)
        self.revoke(project_id=project_id)
