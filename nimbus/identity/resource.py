"""Domains and projects: the containers that roles are assigned on."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Mapping
from typing import Any, Unpack

import sqlalchemy as sa
from oslo_config import cfg
from sqlalchemy import orm

from nimbus import exception
from nimbus.context import RequestContext
from nimbus.db import Database
from nimbus.db.repository import Kind, Repository, row_dict
from nimbus.identity import models
from nimbus.identity.common import INTERNAL, Filters, Manager, Page, Revoke, caller_domain, new_id
from nimbus.policy import Enforcer

__all__ = ["ResourceManager"]

_COLUMNS = ("name", "description", "enabled")
#: The most tags a project has (Keystone's limit).
MAX_TAGS = 80


def _domain_dict(row: models.Domain) -> dict[str, Any]:
    return row_dict(
        row, ("id", "name", "enabled"), description=row.description or "", tags=[], options={}
    )


def _project_dict(row: models.Project) -> dict[str, Any]:
    return row_dict(
        row,
        ("id", "name", "domain_id", "enabled"),
        description=row.description or "",
        # Keystone shows a top-level project's domain as its parent.
        parent_id=row.parent_id or row.domain_id,
        is_domain=False,
        tags=list(row.tags or []),
        options={},
    )


def _as_project(domain: dict[str, Any]) -> dict[str, Any]:
    """Return a domain as the projects API shows it: a root project acting as a domain.

    Keystone keeps domains as projects with ``is_domain`` set; nimbus keeps
    them apart, and shows them through ``/v3/projects`` the way Keystone does.
    """
    return {**domain, "domain_id": None, "parent_id": None, "is_domain": True}


def _duplicate_name(values: Any) -> str:
    return f"Duplicate entry found with name {values.get('name')}"


@dataclasses.dataclass(eq=False)
class ResourceManager(Manager):
    """Create, read, update and delete domains and projects.

    :param conf: the nimbus config (``[identity] default_domain_id``).
    :param database: nimbus's database.
    :param enforcer: checks the ``identity:*`` rules.
    :param revoke: records a revocation event (``revoke(project_id=...)``),
        called when disabling or deleting makes existing tokens invalid.
    :param on_delete_target: removes the role assignments on a deleted
        project or domain, inside the deleting transaction.
    :param delete_actors: deletes the users and groups of a domain (the
        identity back-end keeps them), when the domain is deleted.
    """

    conf: cfg.ConfigOpts
    database: Database
    enforcer: Enforcer
    revoke: Revoke
    _: dataclasses.KW_ONLY
    on_delete_target: Callable[[orm.Session, str], None]
    delete_actors: Callable[[str], None]

    def __post_init__(self) -> None:
        domains = Repository(
            self.database, models.Domain, kind="domain", conflict_reason=_duplicate_name
        )
        projects = Repository(
            self.database, models.Project, kind="project", conflict_reason=_duplicate_name
        )
        self.domains = self.kind(domains, _domain_dict, columns=_COLUMNS)
        self.projects = self.kind(projects, _project_dict, columns=(*_COLUMNS, "tags"))

    # -- domains -----------------------------------------------------------

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
        values = {
            "id": domain_id or new_id(),
            "name": name,
            "description": description,
            "enabled": enabled,
            "extra": extra or {},
        }

        def _check(session: orm.Session) -> None:
            # A domain is a project too (through /v3/projects): one id names one of them.
            if self.projects.repository.find(id=values["id"], session=session) is not None:
                raise exception.Conflict(kind="domain", reason=f"Duplicate ID, {values['id']}")

        return self.domains.create(ctx, values, check=_check)

    def update_domain(
        self, ctx: RequestContext, domain_id: str, changes: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Apply *changes* (name, description, enabled, extra keys) to a domain.

        Disabling it revokes the tokens scoped to it.
        """
        return self._update(self.domains, ctx, domain_id, changes)

    def _update(
        self, kind: Kind[Any], ctx: RequestContext, item_id: str, changes: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Update a domain or project; disabling it revokes the tokens scoped to it."""
        disabled = []

        def _check(session: orm.Session, row: Any) -> None:
            if row.enabled and changes.get("enabled") is False:
                disabled.append(item_id)

        ref = kind.update(ctx, item_id, changes, check=_check)
        if disabled:
            self.revoke(**{f"{kind.repository.kind}_id": item_id})
        return ref

    def delete_domain(self, ctx: RequestContext, domain_id: str) -> None:
        """Delete a disabled domain with everything in it, as Keystone does.

        Its projects go first (children before parents), then its users and
        groups, then the domain.  A failure half-way leaves a disabled domain
        with less in it; deleting it again finishes the work.

        :raises Forbidden: the domain is still enabled.
        """
        self.domains.check(ctx, "delete", domain_id)
        if self.domains.get(INTERNAL, domain_id)["enabled"]:
            raise exception.Forbidden(
                "Cannot delete a domain that is enabled, please disable it first."
            )
        projects = self.projects.list(INTERNAL, filters={"domain_id": domain_id})
        while projects:
            parents = {p["parent_id"] for p in projects}
            for project in [p for p in projects if p["id"] not in parents]:
                self.delete_project(INTERNAL, project["id"])
            projects = [p for p in projects if p["id"] in parents]
        self.delete_actors(domain_id)

        def _check(session: orm.Session, domain: models.Domain) -> None:
            if domain.enabled:
                raise exception.Forbidden(
                    "Cannot delete a domain that is enabled, please disable it first."
                )
            count = self.projects.repository.count(
                filters={"domain_id": domain_id}, session=session
            )
            if count:
                raise exception.Conflict(
                    kind="domain", reason=f"projects were created in domain {domain_id} meanwhile"
                )
            self.on_delete_target(session, domain_id)

        self.domains.delete(ctx, domain_id, check=_check)
        self.revoke(domain_id=domain_id)

    # -- projects ----------------------------------------------------------

    def list_projects(
        self,
        ctx: RequestContext,
        *,
        ids: Collection[str] | None = None,
        page: Page = Page(),
        **filters: Unpack[Filters],
    ) -> list[dict[str, Any]]:
        """Return the projects matching every given filter, sorted by id.

        ``is_domain`` true lists the domains, as projects acting as domains
        (they have no domain and no parent); otherwise only projects.
        """
        if filters.pop("is_domain", None):
            self.projects.check(ctx, "list")
            if filters.get("domain_id") is not None or filters.get("parent_id") is not None:
                return []
            named = {k: filters.get(k) for k in ("name", "enabled")}
            domains = self.domains.list(INTERNAL, filters=named, ids=ids, page=page)
            return [_as_project(domain) for domain in domains]
        where = []
        if (parent_id := filters.pop("parent_id", None)) is not None:
            p = models.Project
            where.append(
                sa.or_(
                    p.parent_id == parent_id,
                    sa.and_(p.parent_id.is_(None), p.domain_id == parent_id),
                )
            )
        return self.projects.list(ctx, filters=filters, where=where, ids=ids, page=page)

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
        tags: list[str] | None = None,
        is_domain: bool = False,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Create a project, or with *is_domain* a domain (shown as a project).

        :param domain_id: by default the parent's domain, else the caller's
            project's domain, else ``[identity] default_domain_id``.
        :param is_domain: create a project acting as a domain, as Keystone:
            a root project (no domain, no parent) that is a domain too; it
            keeps no tags (domains have none here).
        :raises ValidationError: the domain or parent does not exist, or the
            parent is in another domain, or a domain is given a parent or a
            domain.
        :raises Conflict: the name is taken in the domain (among domains for
            a domain).
        """
        self.projects.check(ctx, "create")
        if is_domain:
            if domain_id is not None or parent_id is not None:
                raise exception.ValidationError("only root projects are allowed to act as domains.")
            try:
                domain = self.create_domain(
                    INTERNAL,
                    name=name,
                    description=description,
                    enabled=enabled,
                    domain_id=project_id,
                    extra=extra,
                )
            except exception.Conflict as ex:
                raise exception.Conflict(
                    kind="project",
                    reason="it is not permitted to have two projects acting as domains "
                    f"with the same name: {name}",
                ) from ex
            return _as_project(domain)
        if domain_id is None and parent_id is not None:
            parent = self.projects.repository.find(id=parent_id)
            if parent is None:
                raise exception.ValidationError(
                    field="project/parent_id", reason=f"project {parent_id} does not exist"
                )
            domain_id = parent.domain_id
        domain_id = caller_domain(ctx, self.conf, domain_id)
        values = {
            "id": project_id or new_id(),
            "name": name,
            "domain_id": domain_id,
            "parent_id": None,
            "description": description,
            "enabled": enabled,
            "tags": list(tags) if tags else None,
            "extra": extra or {},
        }

        def _check(session: orm.Session) -> None:
            if self.domains.repository.find(id=domain_id, session=session) is None:
                raise exception.ValidationError(
                    field="domain_id", reason=f"domain {domain_id} does not exist"
                )
            if parent_id is not None and parent_id != domain_id:
                parent = self.projects.repository.find(id=parent_id, session=session)
                if parent is None or parent.domain_id != domain_id:
                    raise exception.ValidationError(
                        field="parent_id",
                        reason=f"project {parent_id} does not exist in domain {domain_id}",
                    )
                values["parent_id"] = parent.id

        reason = f"Duplicate entry found with name {name} at domain ID {domain_id}"
        return self.projects.create(INTERNAL, values, check=_check, reason=reason)

    def update_project(
        self, ctx: RequestContext, project_id: str, changes: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Apply *changes* (name, description, enabled, tags, extra keys) to a project.

        Disabling it revokes the tokens scoped to it.  A domain (a project
        acting as a domain) takes the same changes but tags.
        """
        if not self._is_domain(project_id):
            return self._update(self.projects, ctx, project_id, changes)
        self.projects.check(ctx, "update", project_id)
        changes = {k: v for k, v in changes.items() if k != "tags"}
        return _as_project(self._update(self.domains, INTERNAL, project_id, changes))

    def get_project(self, ctx: RequestContext, project_id: str) -> dict[str, Any]:
        """Return a project, or a domain as a project acting as a domain.

        :raises NotFound: neither a project nor a domain has the id.
        """
        self.projects.check(ctx, "get", project_id)
        try:
            return self.projects.get(INTERNAL, project_id)
        except exception.NotFound:
            if not self._is_domain(project_id):
                raise
        return _as_project(self.domains.get(INTERNAL, project_id))

    def _is_domain(self, project_id: str) -> bool:
        """Tell whether *project_id* names a domain rather than a project."""
        if self.projects.repository.find(id=project_id) is not None:
            return False
        return self.domains.repository.find(id=project_id) is not None

    # -- project tags --------------------------------------------------------

    def list_project_tags(self, ctx: RequestContext, project_id: str) -> list[str]:
        """Return a project's tags. :raises NotFound: no such project."""
        self.authorize(ctx, "identity:list_project_tags", {"target.project.id": project_id})
        return list(self.projects.repository.get(project_id).tags or [])

    def check_project_tag(self, ctx: RequestContext, project_id: str, tag: str) -> None:
        """Return if the project has *tag*. :raises NotFound: no such project or tag."""
        self.authorize(ctx, "identity:get_project_tag", {"target.project.id": project_id})
        if tag not in (self.projects.repository.get(project_id).tags or []):
            raise exception.NotFound(kind="tag", id=tag)

    def set_project_tags(self, ctx: RequestContext, project_id: str, tags: list[str]) -> list[str]:
        """Replace a project's tags with *tags*; return them."""
        return self._change_tags(ctx, "update_project_tags", project_id, lambda _: list(tags))

    def add_project_tag(self, ctx: RequestContext, project_id: str, tag: str) -> list[str]:
        """Add *tag* unless the project has it; return the tags.

        :raises ValidationError: the project would have more than :data:`MAX_TAGS`.
        """

        def add(tags: list[str]) -> list[str]:
            if tag in tags:
                return tags
            if len(tags) >= MAX_TAGS:
                raise exception.ValidationError(
                    field="tags", reason=f"a project has at most {MAX_TAGS} tags"
                )
            return [*tags, tag]

        return self._change_tags(ctx, "create_project_tag", project_id, add)

    def delete_project_tag(self, ctx: RequestContext, project_id: str, tag: str) -> None:
        """Remove *tag*. :raises NotFound: the project does not have it."""

        def remove(tags: list[str]) -> list[str]:
            if tag not in tags:
                raise exception.NotFound(kind="tag", id=tag)
            return [t for t in tags if t != tag]

        self._change_tags(ctx, "delete_project_tag", project_id, remove)

    def clear_project_tags(self, ctx: RequestContext, project_id: str) -> None:
        """Remove every tag of a project."""
        self._change_tags(ctx, "delete_project_tags", project_id, lambda _: [])

    def _change_tags(
        self,
        ctx: RequestContext,
        rule: str,
        project_id: str,
        change: Callable[[list[str]], list[str]],
    ) -> list[str]:
        self.authorize(ctx, f"identity:{rule}", {"target.project.id": project_id})

        def _write(session: orm.Session) -> list[str]:
            # Locked where the database can: two changes never lose one another.
            row = session.get(models.Project, project_id, with_for_update=True)
            if row is None:
                raise exception.NotFound(kind="project", id=project_id)
            tags = change(list(row.tags or []))
            row.tags = tags or None
            return tags

        return self.projects.write(_write)

    def delete_project(self, ctx: RequestContext, project_id: str) -> None:
        """Delete a project and every role assignment on it.

        A domain (a project acting as a domain) is deleted as
        :meth:`delete_domain` does, with everything in it.

        :raises Conflict: other projects have it as their parent.
        :raises Forbidden: it is an enabled domain.
        """
        if self._is_domain(project_id):
            self.projects.check(ctx, "delete", project_id)
            self.delete_domain(INTERNAL, project_id)
            return

        def _check(session: orm.Session, project: models.Project) -> None:
            if self.projects.repository.count(filters={"parent_id": project_id}, session=session):
                raise exception.Conflict(
                    kind="project", reason=f"project {project_id} has child projects"
                )
            self.on_delete_target(session, project_id)

        self.projects.delete(ctx, project_id, check=_check)
        self.revoke(project_id=project_id)
