"""What the identity managers share: ids, pages, policy checks, default domains."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from oslo_config import cfg
from sqlalchemy import orm

from nimbus.context import RequestContext
from nimbus.db.repository import Kind, Page, Repository
from nimbus.policy import INTERNAL, Enforcer

__all__ = [
    "INTERNAL",
    "Manager",
    "Page",
    "Revoke",
    "caller_domain",
    "new_id",
]

M = TypeVar("M", bound=orm.DeclarativeBase)

#: Records a revocation event, e.g. ``revoke(user_id=...)``.
Revoke = Callable[..., None]


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
            **options,
        )
