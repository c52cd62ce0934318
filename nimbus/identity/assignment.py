"""Roles, implied roles and role assignments.

An assignment gives a role to an actor (a user or a group) on a target (a
project or a domain).  An *inherited* assignment on a domain applies to every
project in it.  Effective roles also include the roles that assigned roles
imply (admin implies member, member implies reader).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypedDict, Unpack

import sqlalchemy as sa
from sqlalchemy import exc, orm

from nimbus import exception
from nimbus.context import RequestContext
from nimbus.db import Database
from nimbus.db.repository import Repository, row_dict
from nimbus.identity import models
from nimbus.identity.common import INTERNAL, Filters, Manager, Page, Revoke
from nimbus.policy import Enforcer

if TYPE_CHECKING:
    from nimbus.identity.resource import ResourceManager
    from nimbus.identity.users import UserManager

__all__ = [
    "AssignmentManager",
    "Grant",
    "RoleAssignment",
    "USER_PROJECT",
    "GROUP_PROJECT",
    "USER_DOMAIN",
    "GROUP_DOMAIN",
]

#: The assignment types: the actor's kind, then the target's ("UserProject").
USER_PROJECT, GROUP_PROJECT, USER_DOMAIN, GROUP_DOMAIN, USER_SYSTEM, GROUP_SYSTEM = _TYPES = tuple(
    actor + target for target in ("Project", "Domain", "System") for actor in ("User", "Group")
)
#: The one system there is: a system-scoped token and a system grant name it.
SYSTEM = "all"
#: The target id stored for a system assignment (Keystone's).
_SYSTEM_TARGET = "system"


class Parties(TypedDict, total=False):
    """An assignment's actor (a user or a group) and target (a project or a domain), by id."""

    user_id: str | None
    group_id: str | None
    project_id: str | None
    domain_id: str | None
    #: :data:`SYSTEM` for the system.
    system: str | None


@dataclasses.dataclass(frozen=True)
class Grant:
    """One role assignment, direct or derived; its target is a project, a domain or the system."""

    role_id: str
    user_id: str | None = None
    group_id: str | None = None
    project_id: str | None = None
    domain_id: str | None = None
    inherited: bool = False
    #: :data:`SYSTEM` for a grant on the system.
    system: str | None = None
    #: For effective listings: the group or inherited grant this one comes from.
    via_group_id: str | None = None

    def parties(self) -> Parties:
        """Return the actor and target ids by name (``user_id`` ... ``domain_id``)."""
        return Parties(
            user_id=self.user_id,
            group_id=self.group_id,
            project_id=self.project_id,
            domain_id=self.domain_id,
            system=self.system,
        )

    @property
    def target_kind(self) -> str:
        """Return ``project``, ``domain`` or ``system``."""
        if self.project_id is not None:
            return "project"
        return "domain" if self.system is None else "system"


@dataclasses.dataclass(frozen=True)
class RoleAssignment:
    """One entry of a role assignment listing.

    ``ref`` is the body Keystone shows without its links: ``role``, ``user``
    or ``group``, and ``scope``, with names when they were asked for.
    """

    grant: Grant
    ref: dict[str, Any]


#: (prior role, the roles it implies), each rendered as :func:`_role_dict`.
Inference = tuple[dict[str, Any], list[dict[str, Any]]]


def _type(grant: Grant) -> str:
    actor = "User" if grant.user_id is not None else "Group"
    return actor + grant.target_kind.capitalize()


def _role_dict(row: models.Role) -> dict[str, Any]:
    return row_dict(row, ("id", "name", "description", "domain_id"), options={})


def _key(grant: Grant) -> tuple[str, str, str, str, bool]:
    actor = grant.user_id or grant.group_id
    target = grant.project_id or grant.domain_id or (grant.system and _SYSTEM_TARGET)
    assert actor and target
    return (_type(grant), actor, target, grant.role_id, grant.inherited)


def _target(parties: Parties) -> dict[str, Any]:
    """Return the policy target of a grant: its project, domain, or actor on the system."""
    if (project_id := parties.get("project_id")) is not None:
        return {"target.project.id": project_id}
    if parties.get("system") is None:
        return {"target.domain.id": parties.get("domain_id")}
    if (user_id := parties.get("user_id")) is not None:
        return {"target.user.id": user_id}
    return {"target.group.id": parties.get("group_id")}


def _rule(verb: str, parties: Parties) -> str:
    """Return the rule of *verb* on a grant: Keystone's own names for system grants.

    :param verb: ``create``, ``check``, ``revoke`` or ``list``.
    """
    if parties.get("system") is None:
        return f"identity:{verb}_grant" if verb != "list" else "identity:list_grants"
    actor = "user" if parties.get("user_id") is not None else "group"
    noun = "grants" if verb == "list" else "grant"
    return f"identity:{verb}_system_{noun}_for_{actor}"


def _party(name: str, item_id: str) -> sa.ColumnElement[bool]:
    """Return the condition "the assignment's *name* party is *item_id*".

    :param name: an actor (``user_id``, ``group_id``) or a target
        (``project_id``, ``domain_id``); the types it takes part in are
        those whose name holds its kind.
    """
    kind = name.removesuffix("_id").capitalize()
    a = models.Assignment
    if kind == "System":
        item_id = _SYSTEM_TARGET
    column = a.actor_id if kind in ("User", "Group") else a.target_id
    return sa.and_(column == item_id, a.type.in_([t for t in _TYPES if kind in t]))


def _grant(row: models.Assignment) -> Grant:
    is_user = row.type.startswith("User")
    target = row.type.removeprefix("User").removeprefix("Group")
    return Grant(
        role_id=row.role_id,
        user_id=row.actor_id if is_user else None,
        group_id=None if is_user else row.actor_id,
        project_id=row.target_id if target == "Project" else None,
        domain_id=row.target_id if target == "Domain" else None,
        system=SYSTEM if target == "System" else None,
        inherited=row.inherited,
    )


@dataclasses.dataclass(eq=False)
class AssignmentManager(Manager):
    """Roles and who holds them where.

    :param database: nimbus's database.
    :param enforcer: checks the ``identity:*`` rules.
    :param revoke: records a revocation event.
    :param resources: domains and projects (grants name them).
    :param users: users and groups (grants name them; group members).
    :param forget_tokens: drops the cached token validations, called after
        every change to roles, implications or grants.
    """

    database: Database
    enforcer: Enforcer
    revoke: Revoke
    _: dataclasses.KW_ONLY
    resources: ResourceManager
    users: UserManager
    forget_tokens: Callable[[], None]

    def __post_init__(self) -> None:
        roles = Repository(
            self.database,
            models.Role,
            kind="role",
            conflict_reason=lambda values: f"Duplicate entry found with name {values.get('name')}",
        )
        # Roles' rules take no target; cached validations hold role names.
        self.roles = self.kind(
            roles,
            _role_dict,
            targeted=False,
            columns=("name", "description"),
        )

    # -- roles -------------------------------------------------------------

    def list_roles(
        self, ctx: RequestContext, *, page: Page = Page(), **filters: Unpack[Filters]
    ) -> list[dict[str, Any]]:
        """Return the global roles, or with ``domain_id`` the roles of that domain (Keystone's)."""
        domain_id = filters.pop("domain_id", None)
        r = models.Role
        where = [r.domain_id.is_(None) if domain_id is None else r.domain_id == domain_id]
        return self.roles.list(ctx, filters=filters, where=where, page=page)

    def create_role(self, ctx: RequestContext, values: Mapping[str, Any]) -> dict[str, Any]:
        """Create a role, global or of the domain ``values["domain_id"]`` names.

        :raises NotFound: that domain does not exist.
        :raises Conflict: the name is taken.
        """
        self.roles.check(ctx, "create")
        if (domain_id := values.get("domain_id")) is not None:
            self.resources.domains.get(INTERNAL, domain_id)
        return self.roles.create(INTERNAL, values)

    def update_role(
        self, ctx: RequestContext, role_id: str, changes: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Rename a role or change its description."""
        ref = self.roles.update(ctx, role_id, changes)
        self.forget_tokens()
        return ref

    def delete_role(self, ctx: RequestContext, role_id: str) -> None:
        """Delete a role, its assignments and implications; revoke tokens holding it."""

        def _check(session: orm.Session, row: models.Role) -> None:
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

        self.roles.delete(ctx, role_id, check=_check)
        self.revoke(role_id=role_id)
        self.forget_tokens()

    # -- implied roles -----------------------------------------------------

    def _implications(self, session: orm.Session) -> dict[str, set[str]]:
        rules: dict[str, set[str]] = {}
        for prior, implied in session.execute(
            sa.select(models.ImpliedRole.prior_role_id, models.ImpliedRole.implied_role_id)
        ):
            rules.setdefault(prior, set()).add(implied)
        return rules

    def _token_roles(self, session: orm.Session) -> tuple[dict[str, set[str]], set[str]]:
        """Return the implication rules and the domain-specific role ids, in one query.

        A domain-specific role is never in a token (Keystone's rule), so the
        callers drop those ids after expanding the implied roles.
        """
        ir, r = models.ImpliedRole, models.Role
        stmt: sa.CompoundSelect[tuple[str, str | None]] = sa.union_all(
            sa.select(ir.prior_role_id, ir.implied_role_id),
            sa.select(r.id, sa.null()).where(r.domain_id.is_not(None)),
        )
        rules: dict[str, set[str]] = {}
        local: set[str] = set()
        for first, implied in session.execute(stmt):
            if implied is None:
                local.add(first)
            else:
                rules.setdefault(first, set()).add(implied)
        return rules, local

    def _implied_pairs(self, prior_role_id: str | None = None) -> list[tuple[str, str]]:
        """Return (prior, implied) pairs, all or for one (existing) prior role."""
        stmt = sa.select(models.ImpliedRole.prior_role_id, models.ImpliedRole.implied_role_id)
        if prior_role_id is not None:
            stmt = stmt.where(models.ImpliedRole.prior_role_id == prior_role_id)
        with self.database.reader() as session:
            if prior_role_id is not None:
                self.roles.repository.get(prior_role_id, session=session)
            return [(p, i) for p, i in session.execute(stmt.order_by(*stmt.selected_columns))]

    def list_implied_roles(self, ctx: RequestContext, prior_role_id: str) -> Inference:
        """Return a role and the roles it implies directly, sorted by id.

        :raises NotFound: the prior role does not exist.
        """
        self.authorize(ctx, "identity:list_implied_roles")
        pairs = self._implied_pairs(prior_role_id)
        prior = self.roles.get(INTERNAL, prior_role_id)
        implied = self.roles.list(INTERNAL, ids=[i for _, i in pairs]) if pairs else []
        return prior, implied

    def get_implied_role(
        self, ctx: RequestContext, prior_role_id: str, implied_role_id: str
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Return the prior and the implied role of one implication.

        :raises NotFound: either role or the implication does not exist.
        """
        self.authorize(ctx, "identity:list_implied_roles")
        if (prior_role_id, implied_role_id) not in self._implied_pairs(prior_role_id):
            raise exception.NotFound(
                kind="implied role", id=f"{prior_role_id} -> {implied_role_id}"
            )
        return self.roles.get(INTERNAL, prior_role_id), self.roles.get(INTERNAL, implied_role_id)

    def list_role_inferences(self, ctx: RequestContext) -> list[Inference]:
        """Return every implication, grouped by prior role, sorted by ids."""
        self.authorize(ctx, "identity:list_role_inference_rules")
        pairs = self._implied_pairs()
        roles = {r["id"]: r for r in self.roles.list(INTERNAL)}
        grouped: dict[str, list[dict[str, Any]]] = {}
        for prior, implied in pairs:
            grouped.setdefault(prior, []).append(roles[implied])
        return [(roles[prior], implied) for prior, implied in grouped.items()]

    def create_implied_role(
        self, ctx: RequestContext, prior_role_id: str, implied_role_id: str
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Make *prior_role_id* imply *implied_role_id* (idempotent).

        :returns: the prior and the implied role.
        :raises ValidationError: the implication would make a cycle.
        """
        self.authorize(ctx, "identity:create_implied_role")

        def _create(session: orm.Session) -> None:
            prior = self.roles.repository.get(prior_role_id, session=session)
            implied = self.roles.repository.get(implied_role_id, session=session)
            if prior.domain_id is None and implied.domain_id is not None:
                raise exception.Forbidden("A global role cannot imply a domain-specific role.")
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

        self.database.write(_create)
        self.forget_tokens()
        return self.roles.get(INTERNAL, prior_role_id), self.roles.get(INTERNAL, implied_role_id)

    def delete_implied_role(
        self, ctx: RequestContext, prior_role_id: str, implied_role_id: str
    ) -> None:
        """Remove an implication. :raises NotFound: it did not exist."""
        self.authorize(ctx, "identity:delete_implied_role")

        def _delete(session: orm.Session) -> None:
            row = session.get(models.ImpliedRole, (prior_role_id, implied_role_id))
            if row is None:
                raise exception.NotFound(
                    kind="implied role", id=f"{prior_role_id} -> {implied_role_id}"
                )
            session.delete(row)

        self.database.write(_delete)
        self.revoke(role_id=prior_role_id)
        self.forget_tokens()

    # -- grants ------------------------------------------------------------

    def _check_parties(self, **parties: Unpack[Parties]) -> None:
        """Raise NotFound unless the target and the actor exist (in that order)."""
        if (project_id := parties.get("project_id")) is not None:
            self.resources.projects.get(INTERNAL, project_id)
        elif parties.get("system") is None:
            self.resources.domains.get(INTERNAL, parties.get("domain_id") or "")
        if (user_id := parties.get("user_id")) is not None:
            self.users.get_user(INTERNAL, user_id)
        else:
            self.users.get_group(INTERNAL, parties.get("group_id") or "")

    def _check_grant(self, grant: Grant) -> None:
        self._check_parties(**grant.parties())
        self.roles.repository.get(grant.role_id)

    def _check_domain_role(self, grant: Grant) -> None:
        """A domain-specific role is given on that domain's projects only, never on the system."""
        domain_id = self.roles.repository.get(grant.role_id).domain_id
        if domain_id is None:
            return
        if grant.system is not None:
            raise exception.ValidationError(
                field="role_id",
                reason=f"role {grant.role_id} is domain-specific: not for the system",
            )
        if grant.project_id is not None:
            project = self.resources.projects.get(INTERNAL, grant.project_id)
            if project["domain_id"] != domain_id:
                raise exception.Forbidden(
                    f"Role {grant.role_id} belongs to another domain than project"
                    f" {grant.project_id}."
                )

    def create_grant(self, ctx: RequestContext, grant: Grant) -> None:
        """Store an assignment (idempotent).

        :raises NotFound: the role, the actor or the target does not exist.
        """
        self.authorize(ctx, _rule("create", grant.parties()), _target(grant.parties()))
        self._check_grant(grant)
        self._check_domain_role(grant)
        key = _key(grant)

        def _create(session: orm.Session) -> None:
            self.roles.repository.get(grant.role_id, session=session)
            if session.get(models.Assignment, key) is None:
                session.add(
                    models.Assignment(
                        type=key[0],
                        actor_id=key[1],
                        target_id=key[2],
                        role_id=grant.role_id,
                        inherited=grant.inherited,
                    )
                )

        try:
            self.database.write(_create)
        except exc.IntegrityError:
            # A concurrent request stored the same assignment first.
            pass
        self.forget_tokens()

    def check_grant(self, ctx: RequestContext, grant: Grant) -> None:
        """Return if exactly this assignment exists.

        :raises NotFound: it does not, or its role, actor or target does not.
        """
        self.authorize(ctx, _rule("check", grant.parties()), _target(grant.parties()))
        self._check_grant(grant)
        with self.database.reader() as session:
            if session.get(models.Assignment, _key(grant)) is None:
                raise exception.NotFound(kind="role assignment", id=grant.role_id)

    def delete_grant(self, ctx: RequestContext, grant: Grant) -> None:
        """Remove an assignment and revoke the tokens that relied on it.

        :raises NotFound: the assignment, or its role, actor or target, does not exist.
        """
        self.authorize(ctx, _rule("revoke", grant.parties()), _target(grant.parties()))
        self._check_grant(grant)
        key = _key(grant)

        def _delete(session: orm.Session) -> None:
            row = session.get(models.Assignment, key)
            if row is None:
                raise exception.NotFound(kind="role assignment", id=grant.role_id)
            session.delete(row)

        self.database.write(_delete)
        users = (
            [grant.user_id] if grant.user_id else self.users.user_ids_in_group(grant.group_id or "")
        )
        for user_id in users:
            if grant.inherited or grant.domain_id or grant.system:
                self.revoke(user_id=user_id)
            else:
                self.revoke(user_id=user_id, project_id=grant.project_id)
        self.forget_tokens()

    def list_grant_roles(
        self, ctx: RequestContext, *, inherited: bool = False, **parties: Unpack[Parties]
    ) -> list[dict[str, Any]]:
        """Return the roles one actor holds on one target, sorted by id.

        :raises NotFound: the target or the actor does not exist.
        """
        self.authorize(ctx, _rule("list", parties), _target(parties))
        self._check_parties(**parties)
        ids = {g.role_id for g in self.list_grants(**parties, inherited=inherited)}
        return self.roles.list(INTERNAL, ids=ids) if ids else []

    def list_grants(
        self,
        *,
        role_id: str | None = None,
        inherited: bool | None = None,
        **parties: Unpack[Parties],
    ) -> list[Grant]:
        """Return stored assignments matching every given filter (no policy check)."""
        a = models.Assignment
        given = {n: v for n, v in parties.items() if isinstance(v, str)}
        stmt = sa.select(a).where(*(_party(n, v) for n, v in given.items()))
        for name, value in (("role_id", role_id), ("inherited", inherited)):
            if value is not None:
                stmt = stmt.where(getattr(a, name) == value)
        stmt = stmt.order_by(a.type, a.actor_id, a.target_id, a.role_id)
        with self.database.reader() as session:
            return [_grant(r) for r in session.scalars(stmt)]

    def delete_target(self, session: orm.Session, target_id: str) -> None:
        """Delete every assignment on a project or domain (inside the caller's transaction)."""
        session.execute(
            sa.delete(models.Assignment).where(models.Assignment.target_id == target_id)
        )

    def delete_actor(self, actor_id: str) -> None:
        """Delete every assignment of a deleted user or group."""
        self.database.write(
            lambda session: session.execute(
                sa.delete(models.Assignment).where(models.Assignment.actor_id == actor_id)
            )
        )

    # -- role assignment listings -------------------------------------------

    def list_role_assignments(
        self,
        ctx: RequestContext,
        *,
        effective: bool = False,
        include_names: bool = False,
        **filters: Unpack[Filters],
    ) -> list[RoleAssignment]:
        """Return role assignments with Keystone's filters (``GET /v3/role_assignments``).

        ``effective`` expands group grants to their members, inherited
        domain grants to the domain's projects, and roles to the roles they
        imply.

        :param include_names: also give the names of roles, actors and
            targets, with their domains.
        :param filters: ``user_id``, ``group_id``, ``role_id``, and the scope:
            ``project_id`` or ``domain_id``, ``inherited_to="projects"`` for
            inherited assignments only.
        :raises ValidationError: the filters cannot be combined.
        """
        user_id, group_id, role_id = (
            filters.get("user_id"),
            filters.get("group_id"),
            filters.get("role_id"),
        )
        project_id, domain_id = filters.get("project_id"), filters.get("domain_id")
        inherited_to, system = filters.get("inherited_to"), filters.get("system")
        self.authorize(ctx, "identity:list_role_assignments", {"target.user.id": user_id})
        if sum(x is not None for x in (project_id, domain_id, system)) > 1:
            raise exception.ValidationError(
                field="scope",
                reason="give one of scope.project.id, scope.domain.id and scope.system",
            )
        if system is not None and system != SYSTEM:
            raise exception.ValidationError(
                field="scope.system", reason=f"the only system is {SYSTEM!r}"
            )
        if effective and group_id:
            raise exception.ValidationError(
                field="group.id", reason="cannot be combined with effective"
            )
        if inherited_to is not None and inherited_to != "projects":
            raise exception.ValidationError(
                field="scope.OS-INHERIT:inherited_to", reason="the only value is 'projects'"
            )
        if effective:
            grants = self._effective(user_id, project_id, domain_id, system)
        else:
            grants = self.list_grants(
                user_id=user_id,
                group_id=group_id,
                project_id=project_id,
                domain_id=domain_id,
                system=system,
                inherited=True if inherited_to else None,
            )
        if role_id is not None:
            grants = [g for g in grants if g.role_id == role_id]
        if effective:
            grants = [g for g in grants if not g.inherited]
        names = _Names(self) if include_names else None
        return [RoleAssignment(g, _assignment_ref(g, names)) for g in _unique(grants)]

    def _effective(
        self,
        user_id: str | None,
        project_id: str | None,
        domain_id: str | None,
        system: str | None = None,
    ) -> list[Grant]:
        """Expand the stored grants of *user_id* (or everyone's) as tokens see them.

        *project_id*, *domain_id* or *system* keeps the grants on that target only.
        """
        stored: list[Grant] = []
        if user_id is not None:
            stored += self.list_grants(user_id=user_id)
            for gid in self.users.group_ids_for_user(user_id):
                stored += self.list_grants(group_id=gid)
        else:
            stored = self.list_grants()
        with self.database.reader() as session:
            rules, local = self._token_roles(session)
        result: list[Grant] = []
        for grant in stored:
            users = (
                [grant.user_id]
                if grant.user_id
                else [
                    uid
                    for uid in self.users.user_ids_in_group(grant.group_id or "")
                    if user_id is None or uid == user_id
                ]
            )
            if grant.inherited and grant.domain_id:
                targets = [
                    ("project", p["id"])
                    for p in self.resources.list_projects(INTERNAL, domain_id=grant.domain_id)
                ]
            else:
                targets = [(grant.target_kind, grant.project_id or grant.domain_id or SYSTEM)]
            wanted = {"project": project_id, "domain": domain_id, "system": system}
            if any(v is not None for v in wanted.values()):
                targets = [(k, t) for k, t in targets if wanted[k] == t]
            roles = _closure({grant.role_id}, rules) - local
            for uid in users:
                for kind, target in targets:
                    for rid in sorted(roles):
                        result.append(
                            Grant(
                                role_id=rid,
                                user_id=uid,
                                project_id=target if kind == "project" else None,
                                domain_id=target if kind == "domain" else None,
                                system=target if kind == "system" else None,
                                via_group_id=grant.group_id,
                            )
                        )
        return result

    # -- effective roles ----------------------------------------------------

    def effective_role_ids(
        self,
        user_id: str,
        *,
        project_id: str | None = None,
        project_domain_id: str | None = None,
        domain_id: str | None = None,
        system: str | None = None,
    ) -> set[str]:
        """Return the ids of every role *user_id* holds on the target, implied ones included.

        :param project_id: the project target (give ``project_domain_id`` too,
            for roles inherited from the domain).
        :param domain_id: the domain target.
        :param system: :data:`SYSTEM`, the system target.
        """
        actors = [user_id, *self.users.group_ids_for_user(user_id)]
        a = models.Assignment
        if project_id is not None:
            condition = _party("project_id", project_id)
            if project_domain_id is not None:
                from_domain = sa.and_(_party("domain_id", project_domain_id), a.inherited.is_(True))
                condition = sa.or_(condition, from_domain)
        elif domain_id is not None:
            condition = sa.and_(_party("domain_id", domain_id), a.inherited.is_(False))
        elif system == SYSTEM:
            condition = _party("system", system)
        else:
            return set()
        stmt = sa.select(a.role_id).where(a.actor_id.in_(actors), condition)
        with self.database.reader() as session:
            direct = set(session.scalars(stmt))
            if not direct:
                return set()
            rules, local = self._token_roles(session)
        return _closure(direct, rules) - local

    def expand_implied(self, role_ids: Iterable[str]) -> set[str]:
        """Return *role_ids* with every role they imply."""
        with self.database.reader() as session:
            return _closure(set(role_ids), self._implications(session))

    def targets_for_user(self, user_id: str) -> tuple[set[str], set[str], set[str]]:
        """Return (project ids, domain ids, inherited domain ids) where *user_id* has roles."""
        actors = [user_id, *self.users.group_ids_for_user(user_id)]
        a = models.Assignment
        projects: set[str] = set()
        domains: set[str] = set()
        inherited: set[str] = set()
        with self.database.reader() as session:
            for type_, target, inh in session.execute(
                sa.select(a.type, a.target_id, a.inherited).where(a.actor_id.in_(actors))
            ):
                if type_.endswith("Project"):
                    projects.add(target)
                elif type_.endswith("System"):
                    continue
                elif inh:
                    inherited.add(target)
                else:
                    domains.add(target)
        return projects, domains, inherited

    # -- where a user may scope ---------------------------------------------

    def _user_projects(self, user_id: str, *, enabled_only: bool = False) -> list[dict[str, Any]]:
        """Return the projects *user_id* has a role on, directly, by group or inherited."""
        projects, _, inherited_domains = self.targets_for_user(user_id)
        refs = self.resources.list_projects(INTERNAL, ids=projects) if projects else []
        for domain_id in sorted(inherited_domains):
            refs += [
                p
                for p in self.resources.list_projects(INTERNAL, domain_id=domain_id)
                if p["id"] not in projects
            ]
        if enabled_only:
            refs = [p for p in refs if p["enabled"]]
        return sorted(refs, key=lambda p: p["id"])

    def list_user_projects(
        self, ctx: RequestContext, user_id: str, **filters: Unpack[Filters]
    ) -> list[dict[str, Any]]:
        """Return the projects a user has roles on (``GET /v3/users/{id}/projects``).

        :param filters: project attributes to match (``enabled``, ``name``).
        :raises NotFound: the user does not exist.
        """
        self.authorize(ctx, "identity:list_user_projects", {"target.user.id": user_id})
        self.users.get_user(INTERNAL, user_id)
        wanted = [(k, v) for k, v in filters.items() if v is not None]
        return [p for p in self._user_projects(user_id) if all(p[k] == v for k, v in wanted)]

    def list_caller_projects(self, ctx: RequestContext) -> list[dict[str, Any]]:
        """Return the enabled projects the caller may scope a token to."""
        return self._user_projects(ctx.user_id or "", enabled_only=True)

    def caller_has_system_roles(self, ctx: RequestContext) -> bool:
        """Tell whether the caller may scope a token to the system (``GET /v3/auth/system``)."""
        return bool(self.effective_role_ids(ctx.user_id or "", system=SYSTEM))

    def list_caller_domains(self, ctx: RequestContext) -> list[dict[str, Any]]:
        """Return the enabled domains the caller may scope a token to."""
        _, domains, _ = self.targets_for_user(ctx.user_id or "")
        return [
            d
            for d in self.resources.domains.list(INTERNAL, filters={"enabled": True})
            if d["id"] in domains
        ]


class _Names:
    """Look up, once each, the names a role assignment listing shows."""

    def __init__(self, manager: AssignmentManager) -> None:
        self.manager = manager
        self._seen: dict[tuple[str, str], Any] = {}

    def _once(self, kind: str, item_id: str, fetch: Callable[[str], Any]) -> Any:
        key = (kind, item_id)
        if key not in self._seen:
            self._seen[key] = fetch(item_id)
        return self._seen[key]

    def role(self, role_id: str) -> str:
        return self._once("role", role_id, lambda i: self.manager.roles.get(INTERNAL, i))["name"]

    def domain(self, domain_id: str) -> dict[str, Any]:
        domain = self._once(
            "domain", domain_id, lambda i: self.manager.resources.domains.get(INTERNAL, i)
        )
        return {"id": domain["id"], "name": domain["name"]}

    def user(self, user_id: str) -> dict[str, Any]:
        user = self._once("user", user_id, lambda i: self.manager.users.get_user(INTERNAL, i))
        return {"name": user.name, "domain": self.domain(user.domain_id)}

    def group(self, group_id: str) -> dict[str, Any]:
        group = self._once("group", group_id, lambda i: self.manager.users.get_group(INTERNAL, i))
        return {"name": group.name, "domain": self.domain(group.domain_id)}

    def project(self, project_id: str) -> dict[str, Any]:
        project = self._once(
            "project", project_id, lambda i: self.manager.resources.projects.get(INTERNAL, i)
        )
        return {"name": project["name"], "domain": self.domain(project["domain_id"])}


def _assignment_ref(grant: Grant, names: _Names | None) -> dict[str, Any]:
    """Return an assignment as Keystone lists it, without links."""
    ref: dict[str, Any] = {"role": {"id": grant.role_id}}
    if names is not None:
        ref["role"]["name"] = names.role(grant.role_id)
    if grant.user_id is not None:
        ref["user"] = {"id": grant.user_id, **(names.user(grant.user_id) if names else {})}
    else:
        ref["group"] = {
            "id": grant.group_id,
            **(names.group(grant.group_id or "") if names else {}),
        }
    if grant.project_id is not None:
        project = names.project(grant.project_id) if names else {}
        scope: dict[str, Any] = {"project": {"id": grant.project_id, **project}}
    elif grant.system is not None:
        scope = {"system": {grant.system: True}}
    else:
        scope = {"domain": {"id": grant.domain_id}}
        if names is not None:
            scope["domain"]["name"] = names.domain(grant.domain_id or "")["name"]
    if grant.inherited:
        scope["OS-INHERIT:inherited_to"] = "projects"
    ref["scope"] = scope
    return ref


def _unique(grants: list[Grant]) -> list[Grant]:
    """Drop repeats, keeping the first; one reached through a group repeats a direct one."""
    seen: dict[tuple[Any, ...], Grant] = {}
    for grant in grants:
        key = dataclasses.astuple(dataclasses.replace(grant, via_group_id=None))
        seen.setdefault(key, grant)
    return list(seen.values())


def _closure(roles: set[str], rules: dict[str, set[str]]) -> set[str]:
    result = set(roles)
    stack = list(roles)
    while stack:
        for implied in rules.get(stack.pop(), ()):
            if implied not in result:
                result.add(implied)
                stack.append(implied)
    return result
