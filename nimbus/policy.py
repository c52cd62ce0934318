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

import time
from collections.abc import Callable
from typing import Any

from oslo_config import cfg
from oslo_policy import policy

from nimbus import exception, policies
from nimbus.context import RequestContext

__all__ = ["INTERNAL", "Enforcer"]

#: The context of nimbus's own work: not a caller, so not subject to policy.
INTERNAL = RequestContext(request_id="req-nimbus-internal", authenticated=True)


#: Seconds between two looks for a new or changed policy file.
RELOAD_INTERVAL = 1.0


class _Enforcer(policy.Enforcer):
    """oslo.policy's enforcer, looking at the policy files at most once a :data:`RELOAD_INTERVAL`.

    oslo.policy looks before every check; when no policy file exists (the
    usual case) it searches every configuration directory for one each time,
    which was most of the cost of a check.  A file written or changed now
    takes effect within the interval instead of at the next request.
    """

    def __init__(
        self, conf: cfg.ConfigOpts, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__(conf, use_conf=True)
        self._clock = clock
        self._looked_at: float | None = None

    def load_rules(self, force_reload: bool = False) -> None:
        now = self._clock()
        looked_at = self._looked_at
        if not force_reload and looked_at is not None and now - looked_at < RELOAD_INTERVAL:
            return
        super().load_rules(force_reload)
        self._looked_at = now


class Enforcer:
    """Check a caller's context against a named rule.

    Rules are the defaults from :mod:`nimbus.policies`, overridden by the
    operator's ``[oslo_policy] policy_file`` when it exists (looked for at
    most once a second: see :class:`_Enforcer`).

    :param clock: monotonic seconds, injected for tests.
    """

    def __init__(
        self, conf: cfg.ConfigOpts, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._enforcer = _Enforcer(conf, clock=clock)
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
