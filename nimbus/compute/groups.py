"""Server groups: servers the scheduler keeps on one host (affinity) or on different ones.

A server joins a group when it is created with the ``group`` scheduler
hint; the scheduler then reads the group's members and where they are
claimed.  A group belongs to a project; ``server_groups`` limits how many
a project has, ``server_group_members`` how many servers one holds.
"""

from __future__ import annotations

import uuid as uuidlib
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from oslo_config import cfg
from sqlalchemy import orm

from nimbus import exception
from nimbus.compute.models import InstanceGroup, InstanceGroupMember
from nimbus.compute.quotas import QuotaService
from nimbus.context import RequestContext
from nimbus.db import Database
from nimbus.policy import Enforcer

__all__ = ["POLICIES", "ServerGroupService"]

_RULE = "os_compute_api:os-server-groups"
#: The policies a group may have (the soft ones from microversion 2.15).
POLICIES = ("affinity", "anti-affinity")


def render(row: InstanceGroup) -> dict[str, Any]:
    """Return a server group as the service hands it out."""
    return {
        "id": row.uuid,
        "name": row.name,
        "project_id": row.project_id,
        "user_id": row.user_id,
        "policy": row.policy,
        "members": sorted(m.instance_uuid for m in row.members),
    }


class ServerGroupService:
    """Create, list, show and delete server groups; add servers to them.

    :param conf: the nimbus config.
    :param database: where groups are kept.
    :param enforcer: the policy.
    :param quotas: the compute quotas (``server_groups``, ``server_group_members``).
    """

    def __init__(
        self, conf: cfg.ConfigOpts, database: Database, enforcer: Enforcer, quotas: QuotaService
    ) -> None:
        self.conf = conf
        self.db = database
        self.enforcer = enforcer
        self.quotas = quotas
        quotas.register_counter("server_groups", lambda ctx, p: self._count(p))

    def _count(self, project_id: str) -> int:
        with self.db.reader() as session:
            statement = sa.select(sa.func.count()).select_from(InstanceGroup)
            return int(session.scalar(statement.where(InstanceGroup.project_id == project_id)) or 0)

    def _load(self, session: orm.Session, ctx: RequestContext, group_id: str) -> InstanceGroup:
        row = session.get(InstanceGroup, group_id)
        admin = self.enforcer.check(ctx, "admin_required")
        if row is None or (row.project_id != ctx.project_id and not admin):
            raise exception.NotFound(
                f"Instance group {group_id} could not be found.", kind="server group", id=group_id
            )
        return row

    def create(self, ctx: RequestContext, name: str, policy: str) -> dict[str, Any]:
        """Create a group. :raises ComputeQuotaExceeded: the project has as many as it may."""
        project_id = ctx.project_id or ""
        self.enforcer.authorize(ctx, f"{_RULE}:create", {"project_id": project_id})
        limit = self.quotas.limit_of(project_id, "server_groups")

        def _create(session: orm.Session) -> dict[str, Any]:
            row = InstanceGroup(
                uuid=str(uuidlib.uuid4()),
                name=name,
                project_id=project_id,
                user_id=ctx.user_id or "",
                policy=policy,
            )
            session.add(row)
            session.flush()
            count = session.scalar(
                sa.select(sa.func.count())
                .select_from(InstanceGroup)
                .where(InstanceGroup.project_id == project_id)
            )
            if 0 <= limit < int(count or 0):
                raise exception.ComputeQuotaExceeded(
                    reason="Quota exceeded, too many server groups."
                )
            return render(row)

        return self.db.write(_create)

    def list(self, ctx: RequestContext, *, all_projects: bool = False) -> list[dict[str, Any]]:
        """Return the caller's project's groups (every project's, for admins who ask)."""
        self.enforcer.authorize(ctx, f"{_RULE}:index", {"project_id": ctx.project_id})
        statement = sa.select(InstanceGroup).order_by(InstanceGroup.created_at)
        if not (all_projects and self.enforcer.check(ctx, "admin_required")):
            statement = statement.where(InstanceGroup.project_id == (ctx.project_id or ""))
        with self.db.reader() as session:
            return [render(row) for row in session.scalars(statement)]

    def get(self, ctx: RequestContext, group_id: str) -> dict[str, Any]:
        """Return one group. :raises NotFound: none the caller may see has that id."""
        with self.db.reader() as session:
            row = self._load(session, ctx, group_id)
            self.enforcer.authorize(ctx, f"{_RULE}:show", {"project_id": row.project_id})
            return render(row)

    def delete(self, ctx: RequestContext, group_id: str) -> None:
        """Delete a group (its servers stay, in no group)."""

        def _delete(session: orm.Session) -> None:
            row = self._load(session, ctx, group_id)
            self.enforcer.authorize(ctx, f"{_RULE}:delete", {"project_id": row.project_id})
            session.delete(row)

        self.db.write(_delete)

    def join(
        self, session: orm.Session, ctx: RequestContext, group_id: str, members: Sequence[str]
    ) -> dict[str, Any]:
        """Add new servers to a group in the caller's transaction; return the group as it was.

        :raises BadRequest: no group of that id the caller may use.
        :raises ComputeQuotaExceeded: the group would hold more than
            ``server_group_members`` servers.
        """
        try:
            row = self._load(session, ctx, group_id)
        except exception.NotFound:
            raise exception.BadRequest(reason=f"Invalid server group {group_id}") from None
        before = render(row)
        limit = self.quotas.limit_of(row.project_id, "server_group_members")
        if 0 <= limit < len(row.members) + len(members):
            raise exception.ComputeQuotaExceeded(reason="Quota exceeded, too many servers in group")
        for member in members:
            row.members.append(InstanceGroupMember(instance_uuid=member))
        session.flush()
        return before

    def leave(self, session: orm.Session, instance_uuid: str) -> None:
        """Take a deleted server out of its group (in the caller's transaction)."""
        session.execute(
            sa.delete(InstanceGroupMember).where(InstanceGroupMember.instance_uuid == instance_uuid)
        )
