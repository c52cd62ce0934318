"""Roles, implied roles and role assignments.

An assignment gives a role to an actor (a user or a group) on a target (a
project or a domain).  An *inherited* assignment on a domain applies to every
project in it.  Effective roles also include the roles that assigned roles
imply (admin implies member, member implies reader).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc

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

__all__ = [
    "AssignmentManager",
    "Grant",
    "USER_PROJECT",
    "GROUP_PROJECT",
    "USER_DOMAIN",
    "GROUP_DOMAIN",
]

USER_PROJECT = "UserProject"
GROUP_PROJECT = "GroupProject"
USER_DOMAIN = "UserDomain"
GROUP_DOMAIN = "GroupDomain"


@dataclasses.dataclass(frozen=True)
class Grant:
    """One role assignment, direct or derived."""

    role_id: str
    user_id: str | None = None
    group_id: str | None = None
    project_id: str | None = None
    domain_id: str | None = None
    inherited: bool = False
    #: For effective listings: the group or inherited grant this one comes from.
    via_group_id: str | None = None


def _type(user_id: str | None, project_id: str | None) -> str:
    if user_id is not None:
        return USER_PROJECT if project_id is not None else USER_DOMAIN
    return GROUP_PROJECT if project_id is not None else GROUP_DOMAIN


def _role_dict(row: models.Role) -> dict[str, Any]:
    return {
        **(row.extra or {}),
        "id": row.id,
        "name": row.name,
        "description": row.description,
        "domain_id": None,
        "options": {},
    }


def _grant(row: models.Assignment) -> Grant:
    is_user = row.type in (USER_PROJECT, USER_DOMAIN)
    is_project = row.type in (USER_PROJECT, GROUP_PROJECT)
    return Grant(
        role_id=row.role_id,
        user_id=row.actor_id if is_user else None,
        group_id=None if is_user else row.actor_id,
        project_id=row.target_id if is_project else None,
        domain_id=None if is_project else row.target_id,
        inherited=row.inherited,
    )


class AssignmentManager:
    """Roles and who holds them where.

    :param database: nimbus's database.
    :param revoke: records a revocation event.
    :param groups_for_user: returns the group ids of a user (the identity back-end).
    :param users_in_group: returns the user ids of a group's members.
    """

    def __init__(
        self,
        database: Database,
        revoke: Callable[..., None],
        groups_for_user: Callable[[str], list[str]],
        users_in_group: Callable[[str], list[str]],
    ) -> None:
        self.db = database
        self.revoke = revoke
        self.groups_for_user = groups_for_user
        self.users_in_group = users_in_group

    # -- roles -------------------------------------------------------------

    def _role_row(self, session: Any, role_id: str) -> models.Role:
        row = session.get(models.Role, role_id)
        if row is None:
            raise exception.NotFound(kind="role", id=role_id)
        return row

    def get_role(self, role_id: str) -> dict[str, Any]:
        """Return one role. :raises NotFound: unknown id."""
        with self.db.reader() as session:
            return _role_dict(self._role_row(session, role_id))

    def get_role_by_name(self, name: str) -> dict[str, Any]:
        """Return the role called *name*. :raises NotFound: none."""
        roles = self.list_roles(name=name)
        if not roles:
            raise exception.NotFound(kind="role", id=name)
        return roles[0]

    def list_roles(
        self, *, name: str | None = None, ids: Iterable[str] | None = None, page: Page = Page()
    ) -> list[dict[str, Any]]:
        """Return the roles matching the filters, sorted by id."""
        stmt = filter_equal(sa.select(models.Role), models.Role, name=name)
        if ids is not None:
            stmt = stmt.where(models.Role.id.in_(sorted(set(ids))))
        with self.db.reader() as session:
            return [_role_dict(r) for r in session.scalars(apply_page(stmt, models.Role.id, page))]

    def create_role(
        self,
        *,
        name: str,
        description: str | None = None,
        role_id: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Create a role. :raises Conflict: the name is taken."""
        row = models.Role(
            id=role_id or new_id(), name=name, description=description, extra=extra or {}
        )

        def _create(session: Any) -> dict[str, Any]:
            session.add(row)
            session.flush()
            return _role_dict(row)

        return write_unique(self.db, _create, "role", f"Duplicate entry found with name {name}")

    def update_role(self, role_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Rename a role or change its description."""

        def _update(session: Any) -> dict[str, Any]:
            row = self._role_row(session, role_id)
            apply_changes(row, changes, ("name", "description"))
            session.flush()
            return _role_dict(row)

        return write_unique(
            self.db, _update, "role", f"Duplicate entry found with name {changes.get('name')}"
        )

    def delete_role(self, role_id: str) -> None:
        """Delete a role, its assignments and implications; revoke tokens holding it."""

        def _delete(session: Any) -> None:
            row = self._role_row(session, role_id)
            session.execute(
                sa.delete(models.Assignment).where(models.Assignment.role_id == role_id)
            )
            session.execute(
                sa.delete(models.ImpliedRole).where(
                    sa.or_(
                        models.ImpliedRole.prior_role_id == role_id,
                        models.ImpliedRole.implied_role_id == role_id,
                    )
                )
            )
            session.delete(row)

        self.db.write(_delete)
        self.revoke(role_id=role_id)

    # -- implied roles -----------------------------------------------------

    def _implications(self, session: Any) -> dict[str, set[str]]:
        rules: dict[str, set[str]] = {}
        for prior, implied in session.execute(
            sa.select(models.ImpliedRole.prior_role_id, models.ImpliedRole.implied_role_id)
        ):
            rules.setdefault(prior, set()).add(implied)
        return rules

    def list_implied_roles(self, prior_role_id: str | None = None) -> list[tuple[str, str]]:
        """Return (prior, implied) pairs, all or for one prior role."""
        stmt = sa.select(models.ImpliedRole.prior_role_id, models.ImpliedRole.implied_role_id)
        if prior_role_id is not None:
            stmt = stmt.where(models.ImpliedRole.prior_role_id == prior_role_id)
        with self.db.reader() as session:
            if prior_role_id is not None:
                self._role_row(session, prior_role_id)
            return [tuple(r) for r in session.execute(stmt.order_by(*stmt.selected_columns))]

    def create_implied_role(self, prior_role_id: str, implied_role_id: str) -> None:
        """Make *prior_role_id* imply *implied_role_id* (idempotent).

        :raises ValidationError: the implication would make a cycle.
        """

        def _create(session: Any) -> None:
            self._role_row(session, prior_role_id)
            self._role_row(session, implied_role_id)
            closure = _closure({implied_role_id}, self._implications(session))
            if prior_role_id in closure:
                raise exception.ValidationError(
                    field="implied_role_id",
                    reason=f"role {implied_role_id} already implies {prior_role_id}",
                )
            if session.get(models.ImpliedRole, (prior_role_id, implied_role_id)) is None:
                session.add(
                    models.ImpliedRole(prior_role_id=prior_role_id, implied_role_id=implied_role_id)
                )

        self.db.write(_create)

    def delete_implied_role(self, prior_role_id: str, implied_role_id: str) -> None:
        """Remove an implication. :raises NotFound: it did not exist."""

        def _delete(session: Any) -> None:
            row = session.get(models.ImpliedRole, (prior_role_id, implied_role_id))
            if row is None:
                raise exception.NotFound(
                    kind="implied role", id=f"{prior_role_id} -> {implied_role_id}"
                )
            session.delete(row)

        self.db.write(_delete)
        self.revoke(role_id=prior_role_id)

    # -- grants ------------------------------------------------------------

    def create_grant(self, grant: Grant) -> None:
        """Store an assignment (idempotent).

        The caller has checked that the role, actor and target exist.
        """
        actor = grant.user_id or grant.group_id
        target = grant.project_id or grant.domain_id
        assert actor and target

        def _create(session: Any) -> None:
            self._role_row(session, grant.role_id)
            key = (
                _type(grant.user_id, grant.project_id),
                actor,
                target,
                grant.role_id,
                grant.inherited,
            )
            if session.get(models.Assignment, key) is None:
                session.add(
                    models.Assignment(
                        type=key[0],
                        actor_id=actor,
                        target_id=target,
                        role_id=grant.role_id,
                        inherited=grant.inherited,
                    )
                )

        try:
            self.db.write(_create)
        except exc.IntegrityError:
            # A concurrent request stored the same assignment first.
            pass

    def check_grant(self, grant: Grant) -> bool:
        """Tell whether exactly this assignment exists."""
        key = (
            _type(grant.user_id, grant.project_id),
            grant.user_id or grant.group_id,
            grant.project_id or grant.domain_id,
            grant.role_id,
            grant.inherited,
        )
        with self.db.reader() as session:
            return session.get(models.Assignment, key) is not None

    def delete_grant(self, grant: Grant) -> None:
        """Remove an assignment and revoke the tokens that relied on it.

        :raises NotFound: the assignment did not exist.
        """
        key = (
            _type(grant.user_id, grant.project_id),
            grant.user_id or grant.group_id,
            grant.project_id or grant.domain_id,
            grant.role_id,
            grant.inherited,
        )

        def _delete(session: Any) -> None:
            row = session.get(models.Assignment, key)
            if row is None:
                raise exception.NotFound(kind="role assignment", id=grant.role_id)
            session.delete(row)

        self.db.write(_delete)
        users = [grant.user_id] if grant.user_id else self.users_in_group(grant.group_id or "")
        for user_id in users:
            if grant.inherited or grant.domain_id:
                self.revoke(user_id=user_id)
            else:
                self.revoke(user_id=user_id, project_id=grant.project_id)

    def list_grants(
        self,
        *,
        user_id: str | None = None,
        group_id: str | None = None,
        project_id: str | None = None,
        domain_id: str | None = None,
        role_id: str | None = None,
        inherited: bool | None = None,
    ) -> list[Grant]:
        """Return stored assignments matching every given filter."""
        stmt = sa.select(models.Assignment)
        a = models.Assignment
        if user_id is not None:
            stmt = stmt.where(a.actor_id == user_id, a.type.in_((USER_PROJECT, USER_DOMAIN)))
        if group_id is not None:
            stmt = stmt.where(a.actor_id == group_id, a.type.in_((GROUP_PROJECT, GROUP_DOMAIN)))
        if project_id is not None:
            stmt = stmt.where(a.target_id == project_id, a.type.in_((USER_PROJECT, GROUP_PROJECT)))
        if domain_id is not None:
            stmt = stmt.where(a.target_id == domain_id, a.type.in_((USER_DOMAIN, GROUP_DOMAIN)))
        stmt = filter_equal(stmt, a, role_id=role_id, inherited=inherited)
        stmt = stmt.order_by(a.type, a.actor_id, a.target_id, a.role_id)
        with self.db.reader() as session:
            return [_grant(r) for r in session.scalars(stmt)]

    def delete_target(self, session: Any, target_id: str) -> None:
        """Delete every assignment on a project or domain (inside the caller's transaction)."""
        session.execute(
            sa.delete(models.Assignment).where(models.Assignment.target_id == target_id)
        )

    def delete_actor(self, actor_id: str) -> None:
        """Delete every assignment of a deleted user or group."""
        self.db.write(
            lambda session: session.execute(
                sa.delete(models.Assignment).where(models.Assignment.actor_id == actor_id)
            )
        )

    # -- effective roles ----------------------------------------------------

    def effective_role_ids(
        self,
        user_id: str,
        *,
        project_id: str | None = None,
        project_domain_id: str | None = None,
        domain_id: str | None = None,
    ) -> set[str]:
        """Return the ids of every role *user_id* holds on the target, implied ones included.

        :param project_id: the project target (give ``project_domain_id`` too,
            for roles inherited from the domain).
        :param domain_id: the domain target.
        """
        actors = [user_id, *self.groups_for_user(user_id)]
        a = models.Assignment
        if project_id is not None:
            condition = sa.and_(
                a.target_id == project_id,
                a.type.in_((USER_PROJECT, GROUP_PROJECT)),
            )
            if project_domain_id is not None:
                condition = sa.or_(
                    condition,
                    sa.and_(
                        a.target_id == project_domain_id,
                        a.type.in_((USER_DOMAIN, GROUP_DOMAIN)),
                        a.inherited.is_(True),
                    ),
                )
        elif domain_id is not None:
            condition = sa.and_(
                a.target_id == domain_id,
                a.type.in_((USER_DOMAIN, GROUP_DOMAIN)),
                a.inherited.is_(False),
            )
        else:
            return set()
        stmt = sa.select(a.role_id).where(a.actor_id.in_(actors), condition)
        with self.db.reader() as session:
            direct = set(session.scalars(stmt))
            if not direct:
                return set()
            return _closure(direct, self._implications(session))

    def expand_implied(self, role_ids: Iterable[str]) -> set[str]:
        """Return *role_ids* with every role they imply."""
        with self.db.reader() as session:
            return _closure(set(role_ids), self._implications(session))

    def targets_for_user(self, user_id: str) -> tuple[set[str], set[str], set[str]]:
        """Return (project ids, domain ids, inherited domain ids) where *user_id* has roles."""
        actors = [user_id, *self.groups_for_user(user_id)]
        a = models.Assignment
        projects: set[str] = set()
        domains: set[str] = set()
        inherited: set[str] = set()
        with self.db.reader() as session:
            for type_, target, inh in session.execute(
                sa.select(a.type, a.target_id, a.inherited).where(a.actor_id.in_(actors))
            ):
                if type_ in (USER_PROJECT, GROUP_PROJECT):
                    projects.add(target)
                elif inh:
                    inherited.add(target)
                else:
                    domains.add(target)
        return projects, domains, inherited


def _closure(roles: set[str], rules: dict[str, set[str]]) -> set[str]:
    result = set(roles)
    stack = list(roles)
    while stack:
        for implied in rules.get(stack.pop(), ()):
            if implied not in result:
                result.add(implied)
                stack.append(implied)
    return result
