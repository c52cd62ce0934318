"""Servers, as the API sees them: create, list, show, update, delete and act on them.

The API side writes intent and hands the work on: a create stores the
instances (``building`` / ``scheduling``) within the project's quota and
casts to the conductor, which schedules and builds them; an action moves
the server into its task state with a compare-and-swap (so two requests
cannot both win) and casts to the compute agent of its host.  Everything
the agents report comes back through the conductor.

A server of another project is not found (404), as in Nova; a locked
server refuses actions but from cloud admins and whoever locked it.
"""

from __future__ import annotations

import base64
import binascii
import builtins
import dataclasses
import datetime
import logging
import re
import uuid as uuidlib
from collections.abc import Callable, Collection, Mapping
from typing import Any

import sqlalchemy as sa
from oslo_config import cfg
from sqlalchemy import orm

from nimbus import exception
from nimbus.compute import states
from nimbus.compute.flavors import FlavorService
from nimbus.compute.groups import ServerGroupService
from nimbus.compute.keypairs import KeypairService
from nimbus.compute.models import (
    Instance,
    InstanceAction,
    InstanceActionEvent,
    InstanceFault,
    InstanceMetadata,
)
from nimbus.compute.quotas import QuotaService
from nimbus.compute.states import Task
from nimbus.context import RequestContext
from nimbus.db import Database
from nimbus.db.models import utcnow
from nimbus.policy import Enforcer

__all__ = ["ACTIONS", "CreateRequest", "ServerQuery", "ServerService"]

LOG = logging.getLogger(__name__)

_RULE = "os_compute_api:servers"
_MAX_USER_DATA = 65535


@dataclasses.dataclass(frozen=True)
class _Action:
    """An action on a server: where it may start, its task, its policy and agent method."""

    rule: str
    vm_states: frozenset[str]
    task: str
    method: str
    #: task_states the action may start from besides none.
    from_tasks: frozenset[str] = frozenset()


_ANY_RESTING = frozenset(
    {states.ACTIVE, states.STOPPED, states.PAUSED, states.SUSPENDED, states.ERROR}
)
#: Each action, by the name the API's action body uses (Nova's allowed states).
ACTIONS: Mapping[str, _Action] = {
    "os-start": _Action(
        f"{_RULE}:start", frozenset({states.STOPPED}), Task.POWERING_ON, "start_instance"
    ),
    "os-stop": _Action(
        f"{_RULE}:stop",
        frozenset({states.ACTIVE, states.ERROR}),
        Task.POWERING_OFF,
        "stop_instance",
    ),
    "reboot-SOFT": _Action(
        f"{_RULE}:reboot", frozenset({states.ACTIVE}), Task.REBOOTING, "reboot_instance"
    ),
    "reboot-HARD": _Action(
        f"{_RULE}:reboot",
        _ANY_RESTING,
        Task.REBOOTING_HARD,
        "reboot_instance",
        frozenset({Task.REBOOTING, Task.REBOOTING_HARD}),
    ),
    "pause": _Action(
        "os_compute_api:os-pause-server:pause",
        frozenset({states.ACTIVE}),
        Task.PAUSING,
        "pause_instance",
    ),
    "unpause": _Action(
        "os_compute_api:os-pause-server:unpause",
        frozenset({states.PAUSED}),
        Task.UNPAUSING,
        "unpause_instance",
    ),
    "suspend": _Action(
        "os_compute_api:os-suspend-server:suspend",
        frozenset({states.ACTIVE}),
        Task.SUSPENDING,
        "suspend_instance",
    ),
    "resume": _Action(
        "os_compute_api:os-suspend-server:resume",
        frozenset({states.SUSPENDED}),
        Task.RESUMING,
        "resume_instance",
    ),
}
#: The instance action each API action records (os-instance-actions).
_RECORDED = {
    "os-start": "start",
    "os-stop": "stop",
    "reboot-SOFT": "reboot",
    "reboot-HARD": "reboot",
    "pause": "pause",
    "unpause": "unpause",
    "suspend": "suspend",
    "resume": "resume",
}


@dataclasses.dataclass(frozen=True)
class CreateRequest:
    """A validated ``POST /servers``."""

    name: str
    flavor_ref: str
    image_ref: str | None
    min_count: int = 1
    max_count: int = 1
    key_name: str | None = None
    availability_zone: str | None = None
    metadata: Mapping[str, str] = dataclasses.field(default_factory=dict)
    user_data: str | None = None
    networks: Any = None
    security_groups: tuple[str, ...] = ()
    scheduler_hints: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    access_ip_v4: str | None = None
    access_ip_v6: str | None = None
    config_drive: bool = False
    description: str | None = None


@dataclasses.dataclass(frozen=True)
class ServerQuery:
    """What a server list asks for (Nova's filters; admins' ones marked)."""

    name: str | None = None
    status: str | None = None
    image: str | None = None
    flavor: str | None = None
    host: str | None = None  # admins
    changes_since: datetime.datetime | None = None
    all_tenants: bool = False  # admins
    project_id: str | None = None  # admins, with all_tenants
    deleted: bool = False  # admins
    reservation_id: str | None = None
    ip: str | None = None
    limit: int | None = None
    marker: str | None = None


def render(row: Instance, fault: InstanceFault | None = None) -> dict[str, Any]:
    """Return a server as the service hands it out."""
    return {
        "id": row.uuid,
        "name": row.name,
        "project_id": row.project_id,
        "user_id": row.user_id,
        "image_ref": row.image_ref,
        "flavor_id": row.flavor_id,
        "flavor": dict(row.flavor),
        "key_name": row.key_name,
        "availability_zone": row.availability_zone,
        "host": row.host,
        "node": row.node,
        "vm_state": row.vm_state,
        "task_state": row.task_state,
        "power_state": row.power_state,
        "status": "DELETED" if row.deleted else states.status(row.vm_state, row.task_state),
        "launched_at": row.launched_at,
        "terminated_at": row.terminated_at,
        "locked": row.locked,
        "locked_by": row.locked_by,
        "description": row.description,
        "access_ip_v4": row.access_ip_v4 or "",
        "access_ip_v6": row.access_ip_v6 or "",
        "config_drive": row.config_drive,
        "reservation_id": row.reservation_id,
        "launch_index": row.launch_index,
        "metadata": {item.key: item.value for item in row.metadata_items},
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "deleted": row.deleted,
        "fault": None
        if fault is None
        else {"code": fault.code, "message": fault.message, "created": fault.created_at},
        "user_data": row.user_data,
    }


class ServerService:
    """The compute API's servers.

    :param conf: the nimbus config.
    :param database: where servers are kept.
    :param enforcer: the policy.
    :param flavors: flavors the servers are made in.
    :param keypairs: users' key pairs.
    :param quotas: the compute quotas (instances, cores, ram, metadata items).
    :param get_image: returns an image the caller can see (the image
        service's ``get``); raises ``NotFound`` otherwise.
    :param conductor: casts to the conductor: ``conductor(ctx, method, **kwargs)``.
    :param agent: casts or calls the compute agent of a host:
        ``agent(ctx, host, method, call=False, **kwargs)``.
    :param groups: server groups (the ``group`` scheduler hint).
    :param create_image: creates a queued image record (the image
        service's ``create``), for snapshots.
    :param clock: the time, for task start times.
    """

    def __init__(
        self,
        conf: cfg.ConfigOpts,
        database: Database,
        enforcer: Enforcer,
        *,
        flavors: FlavorService,
        keypairs: KeypairService,
        quotas: QuotaService,
        get_image: Callable[[RequestContext, str], dict[str, Any]],
        conductor: Callable[..., Any],
        agent: Callable[..., Any],
        groups: ServerGroupService | None = None,
        create_image: Callable[[RequestContext, dict[str, Any]], dict[str, Any]] | None = None,
        clock: Callable[[], datetime.datetime] = utcnow,
    ) -> None:
        self.conf = conf
        self.db = database
        self.enforcer = enforcer
        self.flavors = flavors
        self.keypairs = keypairs
        self.quotas = quotas
        self.get_image = get_image
        self.conductor = conductor
        self.agent = agent
        self.groups = groups
        self.create_image = create_image
        self.clock = clock
        quotas.register_counter("instances", lambda ctx, p: self._usage(p)["instances"])
        quotas.register_counter("cores", lambda ctx, p: self._usage(p)["cores"])
        quotas.register_counter("ram", lambda ctx, p: self._usage(p)["ram"])

    # -- reading -----------------------------------------------------------------

    def _is_admin(self, ctx: RequestContext) -> bool:
        return self.enforcer.check(ctx, "admin_required")

    def _load(self, session: orm.Session, ctx: RequestContext, server_id: str) -> Instance:
        row = session.get(Instance, server_id)
        if (
            row is None
            or row.deleted
            or (row.project_id != ctx.project_id and not self._is_admin(ctx))
        ):
            raise exception.InstanceNotFound(uuid=server_id)
        return row

    def _fault(self, session: orm.Session, row: Instance) -> InstanceFault | None:
        if row.vm_state != states.ERROR:
            return None
        return session.scalars(
            sa.select(InstanceFault)
            .where(InstanceFault.instance_uuid == row.uuid)
            .order_by(InstanceFault.id.desc())
            .limit(1)
        ).first()

    def get(self, ctx: RequestContext, server_id: str) -> dict[str, Any]:
        """Return one server. :raises InstanceNotFound: none the caller may see has that id."""
        with self.db.reader() as session:
            row = self._load(session, ctx, server_id)
            self.enforcer.authorize(ctx, f"{_RULE}:show", {"project_id": row.project_id})
            return render(row, self._fault(session, row))

    def list(
        self, ctx: RequestContext, query: ServerQuery, *, detail: bool
    ) -> list[dict[str, Any]]:
        """Return one page of the servers matching *query*, newest first.

        :raises BadRequest: a filter is malformed, or the marker names no server.
        """
        verb = "detail" if detail else "index"
        self.enforcer.authorize(ctx, f"{_RULE}:{verb}", {"project_id": ctx.project_id})
        admin = self._is_admin(ctx)
        statement = sa.select(Instance)
        if query.all_tenants and admin:
            if query.project_id:
                statement = statement.where(Instance.project_id == query.project_id)
        else:
            statement = statement.where(Instance.project_id == (ctx.project_id or ""))
        if query.changes_since is not None:
            # Deleted servers are listed too, as Nova does, when asked what changed.
            statement = statement.where(Instance.updated_at >= query.changes_since)
        elif not (query.deleted and admin):
            statement = statement.where(Instance.deleted.is_(False))
        else:
            statement = statement.where(Instance.deleted.is_(True))
        if query.status:
            try:
                vm_states = states.vm_states_for_status(query.status)
            except ValueError:
                # Nova answers an unknown status with an empty list.
                return []
            statement = statement.where(Instance.vm_state.in_(vm_states))
        if query.image:
            statement = statement.where(Instance.image_ref == query.image.rsplit("/", 1)[-1])
        if query.flavor:
            statement = statement.where(Instance.flavor_id == query.flavor.rsplit("/", 1)[-1])
        if query.host and admin:
            statement = statement.where(Instance.host == query.host)
        if query.reservation_id:
            statement = statement.where(Instance.reservation_id == query.reservation_id)
        name_pattern = _name_regex(query.name)
        with self.db.reader() as session:
            if query.marker is not None:
                marker = session.get(Instance, query.marker)
                if marker is None:
                    raise exception.BadRequest(reason=f"marker [{query.marker}] not found")
                statement = statement.where(
                    sa.or_(
                        Instance.created_at < marker.created_at,
                        sa.and_(
                            Instance.created_at == marker.created_at,
                            Instance.uuid < marker.uuid,
                        ),
                    )
                )
            statement = statement.order_by(Instance.created_at.desc(), Instance.uuid.desc())
            found: list[dict[str, Any]] = []
            # A name is a regular expression (Nova's): filtered here, page by page.
            for row in session.scalars(statement):
                if name_pattern is not None and not name_pattern.search(row.name):
                    continue
                found.append(render(row, self._fault(session, row)))
                if query.limit is not None and len(found) >= query.limit:
                    break
            return found

    # -- creating ----------------------------------------------------------------

    def _usage(self, project_id: str, session: orm.Session | None = None) -> dict[str, int]:
        def count(s: orm.Session) -> dict[str, int]:
            instances, cores, ram = s.execute(
                sa.select(
                    sa.func.count(),
                    sa.func.coalesce(sa.func.sum(Instance.vcpus), 0),
                    sa.func.coalesce(sa.func.sum(Instance.memory_mb), 0),
                ).where(Instance.project_id == project_id, Instance.deleted.is_(False))
            ).one()
            return {"instances": int(instances), "cores": int(cores), "ram": int(ram)}

        if session is not None:
            return count(session)
        with self.db.reader() as reader:
            return count(reader)

    def _fitting(self, project_id: str, flavor: Mapping[str, Any], wanted: int, least: int,
                 session: orm.Session | None = None) -> int:  # fmt: skip
        """Return how many servers of *flavor* fit the project's quotas, up to *wanted*.

        :raises ComputeQuotaExceeded: not even *least* fit.
        """
        limits = self.quotas.limits_of(project_id)
        used = self._usage(project_id, session)
        each = {"instances": 1, "cores": flavor["vcpus"], "ram": flavor["memory_mb"]}
        count = wanted
        for resource, size in each.items():
            limit = limits[resource]
            if limit < 0 or size == 0:
                continue
            room = max(0, (limit - used[resource]) // size)
            if room < least:
                raise exception.ComputeQuotaExceeded(
                    reason=f"Quota exceeded for {resource}: Requested {size * least}, but already"
                    f" used {used[resource]} of {limit} {resource}"
                )
            count = min(count, room)
        return count

    def _check_metadata(self, project_id: str, metadata: Mapping[str, str]) -> None:
        limit = self.quotas.limit_of(project_id, "metadata_items")
        if 0 <= limit < len(metadata):
            raise exception.ComputeQuotaExceeded(reason="Quota exceeded for metadata_items")

    def create(self, ctx: RequestContext, request: CreateRequest) -> builtins.list[dict[str, Any]]:
        """Create the servers of *request* and start building them; return them.

        :raises BadRequest: the flavor, image or key pair is not usable.
        :raises ComputeQuotaExceeded: the project's quotas leave no room for
            ``min_count`` servers (403, as in Nova).
        """
        project_id = ctx.project_id or ""
        self.enforcer.authorize(ctx, f"{_RULE}:create", {"project_id": project_id})
        try:
            flavor = self.flavors.get(ctx, request.flavor_ref)
        except exception.NotFound:
            raise exception.BadRequest(reason="Invalid flavorRef provided.") from None
        if flavor["disabled"]:
            raise exception.BadRequest(reason="Flavor is disabled.")
        image: dict[str, Any] | None = None
        if request.image_ref:
            image = self._usable_image(ctx, request.image_ref, flavor)
        key_data = None
        if request.key_name is not None:
            try:
                key_data = self.keypairs.get(ctx, request.key_name)["public_key"]
            except exception.NotFound:
                raise exception.BadRequest(
                    reason=f"Invalid key_name provided: {request.key_name}"
                ) from None
        self._check_metadata(project_id, request.metadata)
        if request.user_data is not None:
            _check_user_data(request.user_data)
        snapshot = _flavor_snapshot(flavor)
        wanted = self._fitting(project_id, snapshot, request.max_count, request.min_count)
        reservation = f"r-{uuidlib.uuid4().hex[:8]}"
        now = self.clock()
        uuids = [str(uuidlib.uuid4()) for _ in range(wanted)]
        group_id = _one_hint(request.scheduler_hints, "group")
        if group_id is not None and self.groups is None:
            raise exception.BadRequest(reason="Server groups are not served here.")
        joined: dict[str, Any] = {}

        def _create(session: orm.Session) -> list[dict[str, Any]]:
            # Counted again in the transaction that writes: two creates at once
            # cannot both take the last room (SQLite writes one at a time; on
            # the server databases the count below runs after the insert).
            made = []
            for index, server_id in enumerate(uuids):
                name = request.name
                if wanted > 1 and "%" not in name:
                    name = f"{request.name}-{index + 1}"
                row = Instance(
                    uuid=server_id,
                    name=name,
                    project_id=project_id,
                    user_id=ctx.user_id or "",
                    image_ref=image["id"] if image else None,
                    flavor_id=flavor["id"],
                    flavor=snapshot,
                    vcpus=snapshot["vcpus"],
                    memory_mb=snapshot["memory_mb"],
                    key_name=request.key_name,
                    key_data=key_data,
                    user_data=request.user_data,
                    availability_zone=request.availability_zone,
                    vm_state=states.BUILDING,
                    task_state=Task.SCHEDULING,
                    power_state=0,
                    task_started_at=now,
                    locked=False,
                    description=request.description,
                    access_ip_v4=request.access_ip_v4,
                    access_ip_v6=request.access_ip_v6,
                    config_drive="True" if request.config_drive else "",
                    reservation_id=reservation,
                    launch_index=index,
                    request=_request_record(request, image),
                    deleted=False,
                    created_at=now,
                    updated_at=now,
                )
                row.metadata_items = [
                    InstanceMetadata(key=k, value=v) for k, v in request.metadata.items()
                ]
                session.add(row)
                session.add(
                    InstanceAction(
                        instance_uuid=server_id,
                        request_id=ctx.request_id,
                        action="create",
                        user_id=ctx.user_id,
                        project_id=project_id,
                        start_time=now,
                    )
                )
                made.append(row)
            session.flush()
            self._recheck_quota(session, project_id)
            if group_id is not None and self.groups is not None:
                joined.update(self.groups.join(session, ctx, group_id, uuids))
            return [render(row) for row in made]

        created = self.db.write(_create)
        spec = _spec_record(ctx, snapshot, request, image)
        if joined:
            spec["group"] = {
                "uuid": joined["id"],
                "policy": joined["policy"],
                "members": joined["members"],
            }
        try:
            self.conductor(ctx, "build_instances", instance_uuids=uuids, spec=spec)
        except exception.MessagingError as ex:
            for server_id in uuids:
                self.set_error(server_id, 500, "The build could not be started.", str(ex))
            raise
        return created

    def _recheck_quota(self, session: orm.Session, project_id: str) -> None:
        limits = self.quotas.limits_of(project_id)
        used = self._usage(project_id, session)
        for resource in ("instances", "cores", "ram"):
            if 0 <= limits[resource] < used[resource]:
                raise exception.ComputeQuotaExceeded(
                    reason=f"Quota exceeded for {resource}: already used {used[resource]} of"
                    f" {limits[resource]} {resource}"
                )

    def _usable_image(
        self, ctx: RequestContext, image_ref: str, flavor: Mapping[str, Any]
    ) -> dict[str, Any]:
        image_id = image_ref.rsplit("/", 1)[-1]
        try:
            image = self.get_image(ctx, image_id)
        except (exception.NotFound, exception.Invalid):
            raise exception.BadRequest(reason=f"Image {image_id} could not be found.") from None
        if image.get("status") != "active":
            raise exception.BadRequest(reason=f"Image {image_id} is not active.")
        min_ram = int(image.get("min_ram") or 0)
        if min_ram > flavor["memory_mb"]:
            raise exception.BadRequest(reason="Flavor's memory is too small for requested image.")
        min_disk = int(image.get("min_disk") or 0)
        if flavor["root_gb"] and min_disk > flavor["root_gb"]:
            raise exception.BadRequest(reason="Flavor's disk is too small for requested image.")
        size = int(image.get("size") or 0)
        if flavor["root_gb"] and size > flavor["root_gb"] * 1024**3:
            raise exception.BadRequest(reason="Flavor's disk is too small for requested image.")
        return image

    # -- changing ----------------------------------------------------------------

    def update(self, ctx: RequestContext, server_id: str, changes: Mapping[str, Any]) -> dict:
        """Rename a server (or change its access addresses); return it."""

        def _update(session: orm.Session) -> dict[str, Any]:
            row = self._load(session, ctx, server_id)
            self.enforcer.authorize(ctx, f"{_RULE}:update", {"project_id": row.project_id})
            for key, value in changes.items():
                setattr(row, key, value)
            row.updated_at = self.clock()
            session.flush()
            return render(row, self._fault(session, row))

        return self.db.write(_update)

    def _check_lock(self, ctx: RequestContext, row: Instance) -> None:
        # As Nova: a locked server refuses everyone's actions but cloud admins'.
        if row.locked and not self._is_admin(ctx):
            raise exception.InstanceIsLocked(uuid=row.uuid)

    def _start_task(
        self,
        ctx: RequestContext,
        server_id: str,
        action: str,
        *,
        rule: str,
        vm_states: Collection[str],
        task: str,
        from_tasks: Collection[str] = (),
        edit: Callable[[Instance], None] | None = None,
    ) -> Instance:
        """Move a server into *task* if it rests in one of *vm_states*; return it.

        :param edit: changes more of the server in the same transaction.
        :raises InstanceInvalidState: it is elsewhere, or busy (409).
        """
        now = self.clock()

        def _start(session: orm.Session) -> Instance:
            row = self._load(session, ctx, server_id)
            self.enforcer.authorize(ctx, rule, {"project_id": row.project_id})
            self._check_lock(ctx, row)
            tasks = [Instance.task_state.is_(None)]
            if from_tasks:
                tasks.append(Instance.task_state.in_(list(from_tasks)))
            result = session.execute(
                sa.update(Instance)
                .where(
                    Instance.uuid == server_id,
                    Instance.deleted.is_(False),
                    Instance.vm_state.in_(list(vm_states)),
                    sa.or_(*tasks),
                )
                .values(task_state=task, task_started_at=now, updated_at=now)
                .execution_options(synchronize_session=False)
            )
            if not getattr(result, "rowcount", 0):
                if row.task_state is not None and row.task_state not in from_tasks:
                    raise exception.InstanceInvalidState(
                        f"Cannot '{action}' instance {server_id} while it is in task_state"
                        f" {row.task_state}"
                    )
                raise exception.InstanceInvalidState(
                    f"Cannot '{action}' instance {server_id} while it is in vm_state {row.vm_state}"
                )
            session.add(
                InstanceAction(
                    instance_uuid=server_id,
                    request_id=ctx.request_id,
                    action=_RECORDED.get(action, action),
                    user_id=ctx.user_id,
                    project_id=row.project_id,
                    start_time=now,
                )
            )
            session.flush()
            session.refresh(row)
            if edit is not None:
                edit(row)
                session.flush()
            return row

        return self.db.write(_start)

    def act(self, ctx: RequestContext, server_id: str, action: str) -> None:
        """Start *action* (a key of :data:`ACTIONS`) on a server; the agent does it.

        :raises InstanceInvalidState: the server's state does not allow it.
        :raises InstanceIsLocked: the server is locked.
        """
        spec = ACTIONS[action]
        row = self._start_task(
            ctx,
            server_id,
            _RECORDED[action],
            rule=spec.rule,
            vm_states=spec.vm_states,
            task=spec.task,
            from_tasks=spec.from_tasks,
        )
        kwargs: dict[str, Any] = {"instance_uuid": server_id}
        if spec.method == "reboot_instance":
            kwargs["hard"] = action == "reboot-HARD"
        self._send(ctx, row, spec.method, **kwargs)

    def _send(self, ctx: RequestContext, row: Instance, method: str, **kwargs: Any) -> None:
        if row.host is None:
            # Never reached a host (it is in error): nothing to do there.
            self._end_task(row.uuid)
            raise exception.InstanceInvalidState(
                f"Cannot act on instance {row.uuid}: it has no host"
            )
        try:
            self.agent(ctx, row.host, method, **kwargs)
        except exception.MessagingError:
            self._end_task(row.uuid)
            raise

    def _end_task(self, server_id: str) -> None:
        def _end(session: orm.Session) -> None:
            session.execute(
                sa.update(Instance)
                .where(Instance.uuid == server_id)
                .values(task_state=None, task_started_at=None, updated_at=self.clock())
            )

        self.db.write(_end)

    def snapshot(
        self, ctx: RequestContext, server_id: str, name: str, metadata: Mapping[str, str]
    ) -> str:
        """Start a snapshot of a server's disk into a new image; return the image's id.

        The image is made here (queued, the project's, marked a snapshot of
        the server); the agent of the server's host fills it.
        """
        if self.create_image is None:
            raise exception.BadRequest(reason="Snapshots are not served here.")
        row = self._start_task(
            ctx,
            server_id,
            "createImage",
            rule=f"{_RULE}:create_image",
            vm_states=(states.ACTIVE, states.STOPPED, states.PAUSED, states.SUSPENDED),
            task=Task.IMAGE_SNAPSHOT,
        )
        try:
            image = self.create_image(
                ctx,
                {
                    **metadata,
                    "name": name,
                    "instance_uuid": server_id,
                    "image_type": "snapshot",
                    "base_image_ref": row.image_ref or "",
                    "user_id": ctx.user_id,
                },
            )
        except Exception:
            self._end_task(server_id)
            raise
        self._send(ctx, row, "snapshot_instance", instance_uuid=server_id, image_id=image["id"])
        return str(image["id"])

    def rebuild(
        self, ctx: RequestContext, server_id: str, image_ref: str, changes: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Rebuild a server from *image_ref* (its disk made anew); return it.

        :param changes: ``name``, ``metadata``, ``access_ip_v4`` / ``v6`` to set too.
        :raises BadRequest: the image is not usable with the server's flavor.
        """
        with self.db.reader() as session:
            current = self._load(session, ctx, server_id)
            flavor = dict(current.flavor)
        image = self._usable_image(ctx, image_ref, flavor)
        if "metadata" in changes:
            self._check_metadata(current.project_id, changes["metadata"])

        def edit(row: Instance) -> None:
            row.image_ref = image["id"]
            for key in ("name", "access_ip_v4", "access_ip_v6"):
                if key in changes:
                    setattr(row, key, changes[key])
            if "metadata" in changes:
                row.metadata_items = [
                    InstanceMetadata(key=k, value=v) for k, v in changes["metadata"].items()
                ]

        row = self._start_task(
            ctx,
            server_id,
            "rebuild",
            rule=f"{_RULE}:rebuild",
            vm_states=(states.ACTIVE, states.STOPPED, states.ERROR),
            task=Task.REBUILDING,
            edit=edit,
        )
        self._send(ctx, row, "rebuild_instance", instance_uuid=server_id)
        return self.get(ctx, server_id)

    def lock(self, ctx: RequestContext, server_id: str, *, locked: bool) -> None:
        """Lock or unlock a server (a locked one refuses actions but cloud admins').

        A server an admin locked is unlocked by an admin only (``locked_by``
        is ``admin``); one its owner locked, by its project too.

        :raises InstanceIsLocked: unlocking what an admin locked.
        """
        verb = "lock" if locked else "unlock"

        def _lock(session: orm.Session) -> None:
            row = self._load(session, ctx, server_id)
            self.enforcer.authorize(
                ctx, f"os_compute_api:os-lock-server:{verb}", {"project_id": row.project_id}
            )
            admin = self._is_admin(ctx)
            if not locked and row.locked and row.locked_by == "admin" and not admin:
                raise exception.InstanceIsLocked(uuid=server_id)
            row.locked = locked
            row.locked_by = ("admin" if admin else "owner") if locked else None
            session.add(
                InstanceAction(
                    instance_uuid=server_id,
                    request_id=ctx.request_id,
                    action=verb,
                    user_id=ctx.user_id,
                    project_id=row.project_id,
                    start_time=self.clock(),
                    finish_time=self.clock(),
                )
            )
            session.flush()

        self.db.write(_lock)

    def delete(self, ctx: RequestContext, server_id: str, *, force: bool = False) -> None:
        """Delete a server: its guest is destroyed and its claim given back.

        A server that never reached a host goes at once.
        """
        rule = "os_compute_api:os-deferred-delete:force" if force else f"{_RULE}:delete"
        now = self.clock()

        def _delete(session: orm.Session) -> Instance:
            row = self._load(session, ctx, server_id)
            self.enforcer.authorize(ctx, rule, {"project_id": row.project_id})
            self._check_lock(ctx, row)
            row.task_state = Task.DELETING
            row.task_started_at = now
            row.updated_at = now
            session.add(
                InstanceAction(
                    instance_uuid=server_id,
                    request_id=ctx.request_id,
                    action="delete",
                    user_id=ctx.user_id,
                    project_id=row.project_id,
                    start_time=now,
                )
            )
            session.flush()
            return row

        row = self.db.write(_delete)
        # The conductor finishes it: on the host if it has one, at once if not.
        self.conductor(ctx, "delete_instance", instance_uuid=server_id, host=row.host)

    def set_error(self, server_id: str, code: int, message: str, details: str = "") -> None:
        """Put a server in error with a fault (what went wrong, for its owner)."""

        def _error(session: orm.Session) -> None:
            row = session.get(Instance, server_id)
            if row is None:
                return
            row.vm_state = states.ERROR
            row.task_state = None
            row.task_started_at = None
            session.add(
                InstanceFault(
                    instance_uuid=server_id, code=code, message=message[:255], details=details
                )
            )

        self.db.write(_error)

    # -- deadlines ----------------------------------------------------------------

    def reap(
        self, *, now: datetime.datetime | None = None, builds_older_than: float | None = None
    ) -> int:
        """End the tasks past their deadline; return how many servers were settled.

        A build past ``[compute] build_timeout`` (or *builds_older_than*)
        goes to ERROR with a fault; an action past ``action_timeout`` ends;
        a delete past it is sent again, or finished here when the server
        has no host.
        """
        now = now or self.clock()
        build_age = (
            self.conf.compute.build_timeout if builds_older_than is None else builds_older_than
        )
        build_before = now - datetime.timedelta(seconds=build_age)
        action_before = now - datetime.timedelta(seconds=self.conf.compute.action_timeout)
        builds = (Task.SCHEDULING, Task.NETWORKING, Task.SPAWNING)
        with self.db.reader() as session:
            stuck = session.execute(
                sa.select(Instance.uuid, Instance.task_state, Instance.host).where(
                    Instance.deleted.is_(False),
                    Instance.task_state.is_not(None),
                    sa.or_(
                        sa.and_(Instance.task_state.in_(builds),
                                Instance.task_started_at <= build_before),
                        sa.and_(Instance.task_state.not_in(builds),
                                Instance.task_started_at <= action_before),
                    ),
                )
            ).all()  # fmt: skip
        ctx = RequestContext.admin()
        for server_id, task, host in stuck:
            if task in builds:
                self._reap_build(server_id, str(task), build_age)
            elif task == Task.DELETING:
                self.conductor(ctx, "delete_instance", instance_uuid=server_id, host=host)
            else:
                self._reap_action(server_id, str(task))
        return len(stuck)

    def _reap_build(self, server_id: str, task: str, age: float) -> None:
        def _fail(session: orm.Session) -> None:
            updated = session.execute(
                sa.update(Instance)
                .where(Instance.uuid == server_id, Instance.task_state == task)
                .values(vm_state=states.ERROR, task_state=None, task_started_at=None)
            )
            if getattr(updated, "rowcount", 0):
                session.add(
                    InstanceFault(
                        instance_uuid=server_id,
                        code=500,
                        message=f"The build did not finish within {age:g} seconds ({task}):"
                        " a process of the cloud stopped on the way",
                    )
                )

        self.db.write(_fail)

    def _reap_action(self, server_id: str, task: str) -> None:
        def _end(session: orm.Session) -> None:
            updated = session.execute(
                sa.update(Instance)
                .where(Instance.uuid == server_id, Instance.task_state == task)
                .values(task_state=None, task_started_at=None)
            )
            if getattr(updated, "rowcount", 0):
                session.add(
                    InstanceFault(
                        instance_uuid=server_id,
                        code=500,
                        message=f"{task} did not finish within"
                        f" {self.conf.compute.action_timeout:g} seconds",
                    )
                )

        self.db.write(_end)

    # -- consoles and metadata ---------------------------------------------------

    def console_output(self, ctx: RequestContext, server_id: str, length: int | None) -> str:
        """Return the end of a server's console log (its last *length* lines)."""
        with self.db.reader() as session:
            row = self._load(session, ctx, server_id)
        self.enforcer.authorize(
            ctx, "os_compute_api:os-console-output", {"project_id": row.project_id}
        )
        if row.host is None or row.vm_state not in (states.ACTIVE, states.PAUSED, states.STOPPED,
                                                     states.SUSPENDED):  # fmt: skip
            raise exception.InstanceInvalidState(
                f"Cannot get the console output of instance {server_id} while it is in vm_state"
                f" {row.vm_state}"
            )
        text = str(self.agent(ctx, row.host, "get_console_output", call=True,
                              instance_uuid=server_id))  # fmt: skip
        if length is not None:
            lines = text.splitlines(keepends=True)
            text = "".join(lines[-length:]) if length else ""
        return text

    def metadata(self, ctx: RequestContext, server_id: str) -> dict[str, str]:
        """Return a server's metadata."""
        server = self.get(ctx, server_id)
        self.enforcer.authorize(
            ctx, "os_compute_api:server-metadata:index", {"project_id": server["project_id"]}
        )
        return dict(server["metadata"])

    def set_metadata(
        self, ctx: RequestContext, server_id: str, items: Mapping[str, str], *, replace: bool
    ) -> dict[str, str]:
        """Add (or, with *replace*, set all of) a server's metadata; return it all."""
        verb = "update_all" if replace else "update"

        def _set(session: orm.Session) -> dict[str, str]:
            row = self._load(session, ctx, server_id)
            self.enforcer.authorize(
                ctx, f"os_compute_api:server-metadata:{verb}", {"project_id": row.project_id}
            )
            self._check_lock(ctx, row)
            current = {} if replace else {m.key: m.value for m in row.metadata_items}
            current.update(items)
            self._check_metadata(row.project_id, current)
            existing = {m.key: m for m in row.metadata_items}
            for key in list(existing):
                if key not in current:
                    row.metadata_items.remove(existing.pop(key))
            for key, value in current.items():
                if key in existing:
                    existing[key].value = value
                else:
                    row.metadata_items.append(InstanceMetadata(key=key, value=value))
            row.updated_at = self.clock()
            session.flush()
            return current

        return self.db.write(_set)

    def delete_metadata(self, ctx: RequestContext, server_id: str, key: str) -> None:
        """Remove one metadata item. :raises NotFound: the server has no such key."""

        def _delete(session: orm.Session) -> None:
            row = self._load(session, ctx, server_id)
            self.enforcer.authorize(
                ctx, "os_compute_api:server-metadata:delete", {"project_id": row.project_id}
            )
            self._check_lock(ctx, row)
            found = [m for m in row.metadata_items if m.key == key]
            if not found:
                raise exception.NotFound("Metadata item was not found", kind="metadata", id=key)
            row.metadata_items.remove(found[0])
            session.flush()

        self.db.write(_delete)

    # -- history -----------------------------------------------------------------

    def actions(self, ctx: RequestContext, server_id: str) -> builtins.list[dict[str, Any]]:
        """Return the actions done on a server, newest first."""
        with self.db.reader() as session:
            row = self._load(session, ctx, server_id)
            self.enforcer.authorize(
                ctx, "os_compute_api:os-instance-actions:list", {"project_id": row.project_id}
            )
            found = session.scalars(
                sa.select(InstanceAction)
                .where(InstanceAction.instance_uuid == server_id)
                .order_by(InstanceAction.start_time.desc(), InstanceAction.id.desc())
            )
            return [_action_dict(action, events=False) for action in found]

    def action(self, ctx: RequestContext, server_id: str, request_id: str) -> dict[str, Any]:
        """Return one action of a server, with its events."""
        with self.db.reader() as session:
            row = self._load(session, ctx, server_id)
            self.enforcer.authorize(
                ctx, "os_compute_api:os-instance-actions:show", {"project_id": row.project_id}
            )
            found = session.scalars(
                sa.select(InstanceAction).where(
                    InstanceAction.instance_uuid == server_id,
                    InstanceAction.request_id == request_id,
                )
            ).first()
            if found is None:
                raise exception.NotFound(
                    f"Action for request_id {request_id} on instance {server_id} not found",
                    kind="action",
                    id=request_id,
                )
            return _action_dict(found, events=True)


def _action_dict(action: InstanceAction, *, events: bool) -> dict[str, Any]:
    result: dict[str, Any] = {
        "action": action.action,
        "instance_uuid": action.instance_uuid,
        "request_id": action.request_id,
        "user_id": action.user_id,
        "project_id": action.project_id,
        "start_time": action.start_time,
        "message": action.message,
    }
    if events:
        result["events"] = [_event_dict(event) for event in action.events]
    return result


def _event_dict(event: InstanceActionEvent) -> dict[str, Any]:
    return {
        "event": event.event,
        "start_time": event.start_time,
        "finish_time": event.finish_time,
        "result": event.result,
        "traceback": event.traceback,
        "host": event.host,
    }


def _one_hint(hints: Mapping[str, Any], name: str) -> str | None:
    value = hints.get(name)
    if isinstance(value, list):
        value = value[0] if value else None
    return None if value is None else str(value)


def _name_regex(name: str | None) -> re.Pattern[str] | None:
    if not name:
        return None
    try:
        return re.compile(name)
    except re.error:
        # Not a regular expression: taken as it is.
        return re.compile(re.escape(name))


def _check_user_data(user_data: str) -> None:
    if len(user_data) > _MAX_USER_DATA:
        raise exception.BadRequest(reason="User data too large.")
    try:
        base64.b64decode(user_data, validate=True)
    except (binascii.Error, ValueError):
        raise exception.BadRequest(reason="User data needs to be valid base 64.") from None


def _flavor_snapshot(flavor: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("id", "name", "memory_mb", "vcpus", "root_gb", "ephemeral_gb", "swap", "rxtx_factor")
    snapshot = {key: flavor[key] for key in keys}
    snapshot["extra_specs"] = dict(flavor.get("extra_specs") or {})
    return snapshot


def _request_record(request: CreateRequest, image: Mapping[str, Any] | None) -> dict[str, Any]:
    return {
        "networks": request.networks,
        "security_groups": list(request.security_groups),
        "scheduler_hints": dict(request.scheduler_hints),
        "image_properties": _image_properties(image),
    }


def _image_properties(image: Mapping[str, Any] | None) -> dict[str, Any]:
    if not image:
        return {}
    skip = {"id", "name", "status", "size", "checksum", "owner", "visibility", "tags"}
    return {k: v for k, v in image.items() if k.startswith(("hw_", "img_", "kernel", "ramdisk"))
            and k not in skip}  # fmt: skip


def _spec_record(
    ctx: RequestContext,
    flavor: Mapping[str, Any],
    request: CreateRequest,
    image: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """Return the scheduler's request spec of a create, as plain JSON for the bus."""
    hints: dict[str, list[str]] = {}
    for key, value in request.scheduler_hints.items():
        hints[key] = [str(v) for v in value] if isinstance(value, list) else [str(value)]
    return {
        "project_id": ctx.project_id,
        "user_id": ctx.user_id,
        "memory_mb": flavor["memory_mb"],
        "vcpus": flavor["vcpus"],
        "root_gb": flavor["root_gb"],
        "ephemeral_gb": flavor["ephemeral_gb"],
        "swap_mb": flavor["swap"],
        "extra_specs": dict(flavor["extra_specs"]),
        "image_properties": _image_properties(image),
        "availability_zone": request.availability_zone,
        "scheduler_hints": hints,
    }
