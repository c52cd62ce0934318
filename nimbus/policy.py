"""Policy enforcement with oslo.policy, rules registered from :mod:`nimbus.policies`.

Services check policy themselves: their caller-facing methods take the
caller's :class:`~nimbus.context.RequestContext` first and call
:meth:`Enforcer.authorize`.  Trusted in-process code (bootstrap, token
validation, one manager calling another) passes :data:`INTERNAL` instead,
which every rule lets through.  It is one object compared by identity: no
token, header or message on the bus can produce it (a context rebuilt with
:meth:`RequestContext.from_dict` is a new object).
"""

from __future__ import annotations

from typing import Any

from oslo_config import cfg
from oslo_policy import policy

from nimbus import exception, policies
from nimbus.context import RequestContext

__all__ = ["INTERNAL", "Enforcer"]

#: The context of nimbus's own work: not a caller, so not subject to policy.
INTERNAL = RequestContext(request_id="req-nimbus-internal", authenticated=True)


class Enforcer:
    """Check a caller's context against a named rule.

    Rules are the defaults from :mod:`nimbus.policies`, overridden by the
    operator's ``[oslo_policy] policy_file`` when it exists.
    """

    def __init__(self, conf: cfg.ConfigOpts) -> None:
        self._enforcer = policy.Enforcer(conf, use_conf=True)
        self._enforcer.register_defaults(policies.list_rules())

    def authorize(
        self, ctx: RequestContext, action: str, target: dict[str, Any] | None = None
    ) -> None:
        """Raise PolicyNotAuthorized unless *ctx* may perform *action* on *target*.

        :param target: attributes of the object acted on, e.g.
            ``{"target.user.id": ...}`` or ``{"project_id": ...}``.
        :raises PolicyNotAuthorized: the rule does not pass.
        """
        if ctx is INTERNAL:
            return
        credentials = ctx.to_policy_values()
        try:
            allowed = self._enforcer.authorize(action, target or {}, credentials, do_raise=False)
        except policy.PolicyNotRegistered as ex:
            raise exception.PolicyNotAuthorized(action=action) from ex
        if not allowed:
            raise exception.PolicyNotAuthorized(action=action)

    def check(self, ctx: RequestContext, action: str, target: dict[str, Any] | None = None) -> bool:
        """Return whether *ctx* may perform *action*, without raising."""
        try:
            self.authorize(ctx, action, target)
        except exception.PolicyNotAuthorized:
            return False
        return True
