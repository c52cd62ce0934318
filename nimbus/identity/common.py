"""What the identity managers share: ids, pages, policy checks, default domains."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, TypedDict, TypeVar

from oslo_config import cfg
from sqlalchemy import orm

from nimbus.context import RequestContext
from nimbus.db.repository import Kind, Page, Repository
from nimbus.policy import INTERNAL, Enforcer

__all__ = [
    "INTERNAL",
    "Filters",
    "Manager",
    "Page",
    "Revoke",
    "caller_domain",
    "new_id",
]

M = TypeVar("M", bound=orm.DeclarativeBase)

#: Records a revocation event, e.g. ``revoke(user_id=...)``.
Revoke = Callable[..., None]


class Filters(TypedDict, total=False):
    """The equality filters of the identity listings; ``None`` is no filter.

    One type serves every listing, as Keystone's driver hints do: each
    manager's list method reads the keys its kind has, and a key the kind's
    table lacks fails as a programming error (the API passes only the query
    parameters each collection declares).
    """

    name: str | None
    enabled: bool | None
    #: Roles: finds none, nimbus has no domain-specific roles.
    domain_id: str | None
    #: Projects: the children of this project, or the top-level projects of this domain.
    parent_id: str | None
    #: Projects: true lists the domains, as projects acting as domains.
    is_domain: bool | None
    #: Services.
    type: str | None
    #: Endpoints.
    service_id: str | None
    interface: str | None
    region_id: str | None
    #: Role assignments: the actor, the role and the scope.
    user_id: str | None
    group_id: str | None
    role_id: str | None
    project_id: str | None
    inherited_to: str | None
    #: ``"all"``: assignments on the system.
    system: str | None


def new_id() -> str:
    """Return a new resource id (32 hex characters, as Keystone's)."""
    return uuid.uuid4().hex


def caller_domain(ctx: RequestContext, conf: cfg.ConfigOpts, domain_id: str | None) -> str:
    """Return *domain_id*, else the caller's project's domain, else the default domain.

    Keystone's rule for a user, group or project created without a domain.
    """
    return domain_id or ctx.project_domain_id or conf.identity.default_domain_id


class Manager:
    """Base of the identity managers: the ``identity:*`` policy checks.

    Every method a caller reaches takes the caller's context first and
    checks its rule before it reads or writes anything; nimbus's own code
    passes :data:`~nimbus.policy.INTERNAL`.

    Each kind a manager keeps is a public :class:`~nimbus.db.repository.Kind`
    named by its plural (``catalog.services``), and reads go through it
    (``catalog.services.get(ctx, id)``, ``.list(ctx, filters=...)``).  Writes
    go through the manager's ``create_*``, ``update_*`` and ``delete_*``
    methods, which keep what spans kinds (cascades, revocations, caches); a
    manager without a ``create_<kind>`` adds nothing to the kind's own
    ``create``.

    :param enforcer: the policy enforcer.
    """

    def __init__(self, enforcer: Enforcer) -> None:
        self.enforcer = enforcer

    def authorize(
        self, ctx: RequestContext, action: str, target: dict[str, Any] | None = None
    ) -> None:
        """Check the rule *action* for *ctx* on *target* (raises PolicyNotAuthorized).

        :param action: the full rule name, ``identity:get_user``.
        :param target: the policy target, ``{"target.user.id": ...}``.
        """
        self.enforcer.authorize(ctx, action, target)

    def kind(
        self,
        repository: Repository[M],
        render: Callable[[M], dict[str, Any]],
        *,
        targeted: bool = True,
        **options: Any,
    ) -> Kind[M]:
        """Declare a kind whose ``identity:<verb>_<kind>`` rules this manager checks.

        :param targeted: the rules see the id as ``target.<kind>.id``.
        :param options: further :class:`~nimbus.db.repository.Kind` options.
        """
        target_key = f"target.{repository.kind}.id" if targeted else None
        return Kind(
            repository,
            authorize=self.authorize,
            render=render,
            service="identity",
            target_key=target_key,
            new_id=new_id,
            **options,
        )
