"""Compute quotas: per-project limits, the configured defaults, and what is in use.

A project's limit on a resource is its own row in ``compute_quotas`` or,
without one, ``[quota] <resource>``; -1 means no limit.  What is in use is
counted where the resource lives (servers, cores and RAM from the
servers, key pairs from the caller's key pairs), by the counters other
parts of the service register.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa
from oslo_config import cfg
from sqlalchemy import orm

from nimbus import exception
from nimbus.compute.models import Quota
from nimbus.conf.compute import QUOTAS
from nimbus.context import RequestContext
from nimbus.db import Database
from nimbus.policy import Enforcer

__all__ = ["RESOURCES", "QuotaService"]

_RULE = "os_compute_api:os-quota-sets"
#: Every compute quota, in Nova's order.
RESOURCES = tuple(QUOTAS)
#: Counts what a project (and, for key pairs, the caller) uses of a resource.
Counter = Callable[[RequestContext, str], int]


class QuotaService:
    """Show, set and reset compute quotas; report limits and usage.

    :param conf: the nimbus config (``[quota]`` holds the defaults).
    :param database: where per-project limits are kept.
    :param enforcer: the policy.
    """

    def __init__(self, conf: cfg.ConfigOpts, database: Database, enforcer: Enforcer) -> None:
        self.conf = conf
        self.db = database
        self.enforcer = enforcer
        self._counters: dict[str, Counter] = {}

    def register_counter(self, resource: str, counter: Counter) -> None:
        """Count *resource* in use with *counter* (``counter(ctx, project_id)``)."""
        self._counters[resource] = counter

    def defaults(self) -> dict[str, int]:
        """Return the configured default of every quota."""
        return {name: int(getattr(self.conf.quota, name)) for name in RESOURCES}

    def limits_of(self, project_id: str | None) -> dict[str, int]:
        """Return a project's limits (no policy check: for the service's own use)."""
        limits = self.defaults()
        if project_id:
            with self.db.reader() as session:
                for row in session.scalars(sa.select(Quota).where(Quota.project_id == project_id)):
                    if row.resource in limits:
                        limits[row.resource] = row.hard_limit
        return limits

    def limit_of(self, project_id: str | None, resource: str) -> int:
        """Return a project's limit on one resource."""
        return self.limits_of(project_id)[resource]

    def usage(self, ctx: RequestContext, project_id: str) -> dict[str, int]:
        """Return what *project_id* uses of each resource (0 where nothing counts it)."""
        return {
            name: (self._counters[name](ctx, project_id) if name in self._counters else 0)
            for name in RESOURCES
        }

    def show(self, ctx: RequestContext, project_id: str) -> dict[str, int]:
        """Return a project's limits. :raises PolicyNotAuthorized: not the caller's project."""
        self.enforcer.authorize(ctx, f"{_RULE}:show", {"project_id": project_id})
        return self.limits_of(project_id)

    def detail(self, ctx: RequestContext, project_id: str) -> dict[str, dict[str, int]]:
        """Return a project's limits with what is in use (``limit``, ``in_use``, ``reserved``)."""
        self.enforcer.authorize(ctx, f"{_RULE}:detail", {"project_id": project_id})
        limits = self.limits_of(project_id)
        used = self.usage(ctx, project_id)
        return {
            name: {"limit": limits[name], "in_use": used[name], "reserved": 0} for name in RESOURCES
        }

    def show_defaults(self, ctx: RequestContext, project_id: str) -> dict[str, int]:
        """Return the defaults (as Nova, any project's reader may read them)."""
        self.enforcer.authorize(ctx, f"{_RULE}:defaults", {"project_id": project_id})
        return self.defaults()

    def update(
        self, ctx: RequestContext, project_id: str, changes: Mapping[str, int], *, force: bool
    ) -> dict[str, int]:
        """Set some of a project's limits; return all of them.

        :param force: set a limit even below what the project uses now.
        :raises ValidationError: a limit below what is in use, without *force*.
        """
        self.enforcer.authorize(ctx, f"{_RULE}:update", {"project_id": project_id})
        unknown = set(changes) - set(RESOURCES)
        if unknown:
            raise exception.BadRequest(
                reason=f"Bad key(s) {', '.join(sorted(unknown))} in quota_set"
            )
        if not force:
            used = self.usage(ctx, project_id)
            for name, value in changes.items():
                if value != -1 and value < used[name]:
                    raise exception.BadRequest(
                        reason=f"Quota limit {value} for {name} must be greater than or equal"
                        f" to already used and reserved {used[name]}."
                    )

        def _set(session: orm.Session) -> None:
            for name, value in changes.items():
                row = session.get(Quota, (project_id, name))
                if row is None:
                    session.add(Quota(project_id=project_id, resource=name, hard_limit=value))
                else:
                    row.hard_limit = value
            session.flush()

        self.db.write(_set)
        return self.limits_of(project_id)

    def delete(self, ctx: RequestContext, project_id: str) -> None:
        """Put every limit of a project back to the defaults."""
        self.enforcer.authorize(ctx, f"{_RULE}:delete", {"project_id": project_id})

        def _delete(session: orm.Session) -> None:
            session.execute(sa.delete(Quota).where(Quota.project_id == project_id))

        self.db.write(_delete)

    def absolute_limits(self, ctx: RequestContext) -> dict[str, Any]:
        """Return the caller's project's limits and usage, as ``GET /limits`` shows them."""
        self.enforcer.authorize(ctx, "os_compute_api:limits")
        project_id = ctx.project_id or ""
        limits = self.limits_of(project_id)
        used = self.usage(ctx, project_id)
        return {"limits": limits, "used": used}
