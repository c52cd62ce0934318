"""The conductor: builds servers, and is the compute agents' only way to the database.

Builds go API -> conductor (``build_instances``) -> scheduler (a call that
also claims) -> compute agent of the chosen host (``build_and_run_instance``).
An agent reports every change through :meth:`Conductor.instance_update`,
a compare-and-swap on the task state, so that a late or repeated message
never overwrites a newer state.  Every handler is idempotent: casts are
delivered at least once.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from nimbus import exception
from nimbus.compute import states
from nimbus.compute.models import (
    Instance,
    InstanceAction,
    InstanceActionEvent,
    InstanceFault,
    InstanceGroupMember,
)
from nimbus.compute.scheduler.inventory import HostInventory
from nimbus.compute.states import Task
from nimbus.context import RequestContext
from nimbus.db import Database
from nimbus.db.models import utcnow

__all__ = ["Conductor", "instance_record"]

LOG = logging.getLogger(__name__)

#: Columns an agent may set through instance_update.
_UPDATABLE = frozenset(
    {"vm_state", "task_state", "power_state", "launched_at", "host", "node", "task_started_at"}
)


def instance_record(row: Instance) -> dict[str, Any]:
    """Return what an agent needs of an instance, as plain JSON for the bus."""
    return {
        "uuid": row.uuid,
        "name": row.name,
        "project_id": row.project_id,
        "user_id": row.user_id,
        "image_ref": row.image_ref,
        "flavor": dict(row.flavor),
        "key_data": row.key_data,
        "user_data": row.user_data,
        "metadata": {item.key: item.value for item in row.metadata_items},
        "host": row.host,
        "node": row.node,
        "vm_state": row.vm_state,
        "task_state": row.task_state,
        "power_state": row.power_state,
        "deleted": row.deleted,
        "request": dict(row.request),
    }


class Conductor:
    """RPC endpoint of the ``conductor`` topic.

    :param database: nimbus's database.
    :param inventory: services and compute nodes (agents' reports).
    :param scheduler: calls the scheduler: ``scheduler(ctx, method, **kwargs)``.
    :param agent: casts to a compute agent: ``agent(ctx, host, method, **kwargs)``.
    :param clock: the naive UTC now.
    """

    def __init__(
        self,
        database: Database,
        inventory: HostInventory,
        *,
        scheduler: Callable[..., Any],
        agent: Callable[..., Any],
        clock: Callable[[], datetime.datetime] = utcnow,
    ) -> None:
        self._db = database
        self._inventory = inventory
        self._scheduler = scheduler
        self._agent = agent
        self._clock = clock

    # -- builds ------------------------------------------------------------------

    def build_instances(
        self, ctx: RequestContext, instance_uuids: Sequence[str], spec: Mapping[str, Any]
    ) -> None:
        """Schedule the instances of one create and send each to its host."""
        pending = [u for u in instance_uuids if self._in_task(u, Task.SCHEDULING)]
        if not pending:
            return  # a redelivery of a build already sent on
        try:
            selections = self._scheduler(
                ctx, "select_destinations", spec=dict(spec), instance_uuids=pending
            )
        except exception.NoValidHost as ex:
            for server_id in pending:
                self._fail(ctx, server_id, 500, str(ex), event="conductor_schedule_and_build")
            return
        for selection in selections:
            server_id = selection["instance_uuid"]
            placed = self._cas(
                server_id,
                {
                    "host": selection["host"],
                    "node": selection["nodename"],
                    "task_state": Task.NETWORKING,
                    "task_started_at": self._clock(),
                },
                expected_tasks=(Task.SCHEDULING,),
            )
            if not placed:
                # Deleted while being scheduled: give the room back.
                self._scheduler(ctx, "release", instance_uuid=server_id)
                continue
            self._agent(
                ctx,
                selection["host"],
                "build_and_run_instance",
                instance_uuid=server_id,
                alternates=selection.get("alternates", []),
                spec=dict(spec),
            )

    def build_failed(
        self,
        ctx: RequestContext,
        instance_uuid: str,
        host: str,
        reason: str,
        alternates: Sequence[Mapping[str, str]],
        spec: Mapping[str, Any],
    ) -> None:
        """Move a build that failed on *host* to an alternate, or end it in error."""
        if not self._cas(
            instance_uuid,
            {"task_state": Task.SCHEDULING, "host": None, "node": None},
            expected_tasks=(Task.SPAWNING, Task.NETWORKING),
        ):
            return
        try:
            selection = self._scheduler(
                ctx,
                "reschedule",
                spec=dict(spec),
                instance_uuid=instance_uuid,
                alternates=list(alternates),
            )
        except exception.NoValidHost:
            self._fail(
                ctx,
                instance_uuid,
                500,
                f"Build of instance {instance_uuid} aborted: {reason} (no alternate host left"
                f" after {host} failed)",
                event="compute_build_and_run_instance",
            )
            self._scheduler(ctx, "release", instance_uuid=instance_uuid)
            return
        if self._cas(
            instance_uuid,
            {
                "host": selection["host"],
                "node": selection["nodename"],
                "task_state": Task.NETWORKING,
            },  # fmt: skip
            expected_tasks=(Task.SCHEDULING,),
        ):
            self._agent(
                ctx,
                selection["host"],
                "build_and_run_instance",
                instance_uuid=instance_uuid,
                alternates=selection.get("alternates", []),
                spec=dict(spec),
            )

    # -- deletes -----------------------------------------------------------------

    def delete_instance(self, ctx: RequestContext, instance_uuid: str, host: str | None) -> None:
        """Finish a delete: on its host, or here for a server whose host has no live agent.

        A server that never reached a host goes at once; one whose host's
        agent is down too (Nova's local delete): that agent names the guest
        left behind when it comes back.
        """
        if host and self._agent_is_up(host):
            self._agent(ctx, host, "terminate_instance", instance_uuid=instance_uuid)
        else:
            self.instance_destroyed(ctx, instance_uuid)

    def _agent_is_up(self, host: str) -> bool:
        from nimbus.compute.agent import BINARY

        found = self._inventory.list_services(host=host, binary=BINARY)
        return bool(found) and bool(found[0]["up"])

    def instance_destroyed(self, ctx: RequestContext, instance_uuid: str) -> None:
        """Record that a server's guest is gone: it is deleted, its claim given back."""
        now = self._clock()

        def _gone(session: orm.Session) -> bool:
            row = session.get(Instance, instance_uuid)
            if row is None or row.deleted:
                return False
            row.deleted = True
            row.deleted_at = now
            row.terminated_at = now
            row.vm_state = states.DELETED
            row.task_state = None
            row.task_started_at = None
            row.updated_at = now
            _finish_actions(session, instance_uuid, now)
            session.execute(
                sa.delete(InstanceGroupMember).where(
                    InstanceGroupMember.instance_uuid == instance_uuid
                )
            )
            return True

        self._db.write(_gone)
        self._scheduler(ctx, "release", instance_uuid=instance_uuid)

    # -- what agents report ------------------------------------------------------

    def instance_get(self, ctx: RequestContext, instance_uuid: str) -> dict[str, Any] | None:
        """Return an instance for an agent, or ``None`` if it is gone."""
        with self._db.reader() as session:
            row = session.get(Instance, instance_uuid)
            return None if row is None else instance_record(row)

    def instances_on_host(self, ctx: RequestContext, host: str) -> list[dict[str, Any]]:
        """Return the live instances placed on *host* (for an agent's start-up check)."""
        with self._db.reader() as session:
            rows = session.scalars(
                sa.select(Instance).where(Instance.host == host, Instance.deleted.is_(False))
            )
            return [instance_record(row) for row in rows]

    def instance_update(
        self,
        ctx: RequestContext,
        instance_uuid: str,
        values: Mapping[str, Any],
        expected_tasks: Sequence[str | None] | None = None,
        event: str | None = None,
        fault: str | None = None,
    ) -> bool:
        """Set an instance's state if its task is one of *expected_tasks*.

        :param event: the action event this ends (recorded with its result).
        :param fault: a message to record as the instance's fault.
        :returns: whether the instance was in the expected task (and changed).
        """
        unknown = set(values) - _UPDATABLE
        if unknown:
            raise exception.BadRequest(reason=f"not updatable: {', '.join(sorted(unknown))}")
        changes = dict(values)
        if "launched_at" in changes and isinstance(changes["launched_at"], str):
            changes["launched_at"] = datetime.datetime.fromisoformat(changes["launched_at"])
        if changes.get("task_state", "") is None:
            changes["task_started_at"] = None
        return self._cas(
            instance_uuid,
            changes,
            expected_tasks=expected_tasks,
            also=(lambda session: self._record(session, ctx, instance_uuid, event, fault))
            if event or fault
            else None,
        )

    def report(self, ctx: RequestContext, host: str, binary: str, resources: Mapping) -> None:
        """Record an agent's heartbeat and, when given, its node's resources."""
        self._inventory.service_heartbeat(host, binary, f"compute.{host}")
        if resources:
            self._inventory.update_node(
                host,
                resources["hypervisor_hostname"],
                vcpus=resources["vcpus"],
                memory_mb=resources["memory_mb"],
                local_gb=resources["local_gb"],
                hypervisor_type=resources["hypervisor_type"],
                hypervisor_version=resources["hypervisor_version"],
                cpu_info=resources.get("cpu_info") or {},
                supported_instances=resources.get("supported_instances") or [],
                disk_available_least=resources.get("disk_available_least"),
            )

    # -- helpers -----------------------------------------------------------------

    def _in_task(self, instance_uuid: str, task: str) -> bool:
        with self._db.reader() as session:
            row = session.get(Instance, instance_uuid)
            return row is not None and not row.deleted and row.task_state == task

    def _cas(
        self,
        instance_uuid: str,
        values: Mapping[str, Any],
        *,
        expected_tasks: Sequence[str | None] | None,
        also: Callable[[orm.Session], None] | None = None,
    ) -> bool:
        """Update an instance if its task is one of *expected_tasks*; return whether it was.

        :param also: run in the same transaction when the update happened
            (a fault and an action event written with the state they explain).
        """

        def _update(session: orm.Session) -> int:
            statement = sa.update(Instance).where(
                Instance.uuid == instance_uuid, Instance.deleted.is_(False)
            )
            if expected_tasks is not None:
                named = [t for t in expected_tasks if t is not None]
                conditions = [Instance.task_state.in_(named)] if named else []
                if None in expected_tasks:
                    conditions.append(Instance.task_state.is_(None))
                statement = statement.where(sa.or_(*conditions))
            result = session.execute(
                statement.values(**values, updated_at=self._clock()).execution_options(
                    synchronize_session=False
                )
            )
            count = int(getattr(result, "rowcount", 0) or 0)
            if count and also is not None:
                also(session)
            return count

        return self._db.write(_update) > 0

    def _fail(
        self, ctx: RequestContext, instance_uuid: str, code: int, message: str, *, event: str
    ) -> None:
        if self._cas(
            instance_uuid,
            {"vm_state": states.ERROR, "task_state": None, "task_started_at": None},
            expected_tasks=None,
            also=lambda session: self._record(
                session, ctx, instance_uuid, event, message, code=code
            ),
        ):
            LOG.info("Instance %s failed: %s", instance_uuid, message)

    def _record(
        self,
        session: orm.Session,
        ctx: RequestContext,
        instance_uuid: str,
        event: str | None,
        fault: str | None,
        *,
        code: int = 500,
    ) -> None:
        """Write a fault and the event ending the caller's action (in *session*)."""
        now = self._clock()
        if fault:
            session.add(
                InstanceFault(
                    instance_uuid=instance_uuid, code=code, message=fault[:255], details=fault
                )  # fmt: skip
            )
        action = session.scalars(
            sa.select(InstanceAction)
            .where(
                InstanceAction.instance_uuid == instance_uuid,
                InstanceAction.request_id == ctx.request_id,
            )
            .limit(1)
        ).first()
        if action is None:
            return
        if event:
            action.events.append(
                InstanceActionEvent(
                    event=event,
                    result="Error" if fault else "Success",
                    traceback=fault,
                    start_time=action.start_time,
                    finish_time=now,
                )
            )
        action.finish_time = now
        if fault:
            action.message = "Error"


def _finish_actions(session: orm.Session, instance_uuid: str, now: datetime.datetime) -> None:
    session.execute(
        sa.update(InstanceAction)
        .where(InstanceAction.instance_uuid == instance_uuid, InstanceAction.finish_time.is_(None))
        .values(finish_time=now)
    )
