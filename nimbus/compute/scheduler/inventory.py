"""The SQL side of hosts: services, compute nodes and aggregates.

The conductor calls it on behalf of the agents (heartbeats, resource
reports) and the compute API for ``os-services``, ``os-hypervisors`` and
``os-aggregates``.  Usage columns (``*_used``, ``running_vms``) belong to
the scheduler's claims (:mod:`nimbus.compute.scheduler.claims`): nothing here
writes them.  Every change moves the row's ``updated_at``, which is how the
schedulers' caches see it.
"""

from __future__ import annotations

import calendar
import datetime
import json
import uuid as uuidlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from oslo_config import cfg
from sqlalchemy import exc, orm

from nimbus import exception
from nimbus.compute.scheduler.models import (
    Aggregate,
    AggregateHost,
    AggregateMetadata,
    Allocation,
    ComputeNode,
    Service,
)
from nimbus.conf import scheduler as scheduler_opts
from nimbus.db.api import Database
from nimbus.db.models import utcnow

__all__ = ["BINARIES", "COMPUTE_BINARY", "HostInventory", "epoch", "service_is_up"]

COMPUTE_BINARY = "nimbus-compute"
BINARIES = ("nimbus-compute", "nimbus-scheduler", "nimbus-conductor")
AZ_KEY = "availability_zone"

_SERVICE_COLUMNS = (
    "id",
    "host",
    "binary",
    "topic",
    "disabled",
    "disabled_reason",
    "forced_down",
    "last_seen_up",
    "created_at",
    "updated_at",
)
_NODE_COLUMNS = (
    "id",
    "uuid",
    "host",
    "hypervisor_hostname",
    "hypervisor_type",
    "hypervisor_version",
    "vcpus",
    "memory_mb",
    "local_gb",
    "vcpus_used",
    "memory_mb_used",
    "local_gb_used",
    "running_vms",
    "cpu_allocation_ratio",
    "ram_allocation_ratio",
    "disk_allocation_ratio",
    "reserved_host_memory_mb",
    "reserved_host_disk_mb",
    "reserved_host_cpus",
    "disk_available_least",
    "generation",
    "updated_at",
)


def epoch(when: datetime.datetime) -> float:
    """Return the naive UTC *when* as seconds since the epoch."""
    return calendar.timegm(when.timetuple()) + when.microsecond / 1e6


def service_is_up(
    service: Mapping[str, Any] | Service, down_time: float, now: datetime.datetime | None = None
) -> bool:
    """Tell whether *service* heartbeated within *down_time* seconds and is not forced down."""

    def get(name: str) -> Any:
        return service[name] if isinstance(service, Mapping) else getattr(service, name)

    if get("forced_down"):
        return False
    seen = get("last_seen_up")
    if seen is None:
        return False
    now = now or utcnow()
    return abs((now - seen).total_seconds()) <= down_time


def _service_dict(row: Service, down_time: float, now: datetime.datetime) -> dict[str, Any]:
    result = {name: getattr(row, name) for name in _SERVICE_COLUMNS}
    result["up"] = service_is_up(row, down_time, now)
    return result


def _node_dict(row: ComputeNode) -> dict[str, Any]:
    result = {name: getattr(row, name) for name in _NODE_COLUMNS}
    result["cpu_info"] = json.loads(row.cpu_info or "{}")
    result["supported_instances"] = [tuple(s) for s in json.loads(row.supported_instances or "[]")]
    return result


class HostInventory:
    """Services, compute nodes and aggregates in the database.

    :param conf: the nimbus config (``[scheduler] service_down_time``).
    :param database: nimbus's database.
    :param clock: returns the naive UTC now; injected for tests.
    """

    def __init__(
        self,
        conf: cfg.ConfigOpts,
        database: Database,
        *,
        clock: Callable[[], datetime.datetime] = utcnow,
    ) -> None:
        scheduler_opts.register_opts(conf)
        self.conf = conf
        self.db = database
        self.clock = clock

    @property
    def _down_time(self) -> float:
        return float(self.conf.scheduler.service_down_time)

    def service_is_up(
        self, service: Mapping[str, Any] | Service, now: datetime.datetime | None = None
    ) -> bool:
        """Tell whether *service* is up under ``[scheduler] service_down_time``."""
        return service_is_up(service, self._down_time, now or self.clock())

    # -- services ---------------------------------------------------------------

    def service_heartbeat(self, host: str, binary: str, topic: str) -> dict[str, Any]:
        """Record that *binary* on *host* is alive, creating its row on the first beat."""
        now = self.clock()

        def _beat(session: orm.Session) -> Service:
            row = session.scalars(
                sa.select(Service).where(Service.host == host, Service.binary == binary)
            ).one_or_none()
            if row is None:
                row = Service(
                    id=str(uuidlib.uuid4()),
                    host=host,
                    binary=binary,
                    topic=topic,
                    disabled=False,
                    forced_down=False,
                    last_seen_up=now,
                    created_at=now,
                    updated_at=now,
                )
                session.add(row)
                session.flush()
                return row
            row.last_seen_up = now
            if row.topic != topic:
                row.topic = topic
                row.updated_at = now
            return row

        try:
            row = self.db.write(_beat)
        except exc.IntegrityError:
            # Another process created the row first: beat on it.
            row = self.db.write(_beat)
        return _service_dict(row, self._down_time, now)

    def _find_service(self, session: orm.Session, service: str | tuple[str, str]) -> Service:
        if isinstance(service, tuple):
            host, binary = service
            row = session.scalars(
                sa.select(Service).where(Service.host == host, Service.binary == binary)
            ).one_or_none()
            name = f"{binary} on {host}"
        else:
            row = session.get(Service, service)
            name = service
        if row is None:
            raise exception.NotFound(kind="service", id=name)
        return row

    def set_service_status(
        self,
        service: str | tuple[str, str],
        *,
        disabled: bool | None = None,
        reason: str | None = None,
        forced_down: bool | None = None,
    ) -> dict[str, Any]:
        """Enable or disable a service, or force it down (or up again).

        :param service: the service id, or ``(host, binary)``.
        :param reason: kept as ``disabled_reason`` when disabling; cleared on enable.
        :raises NotFound: no such service.
        """
        now = self.clock()

        def _set(session: orm.Session) -> Service:
            row = self._find_service(session, service)
            if disabled is not None:
                row.disabled = disabled
                row.disabled_reason = reason if disabled else None
            elif reason is not None:
                row.disabled_reason = reason
            if forced_down is not None:
                row.forced_down = forced_down
            row.updated_at = now
            return row

        return _service_dict(self.db.write(_set), self._down_time, now)

    def get_service(self, service: str | tuple[str, str]) -> dict[str, Any]:
        """Return one service by id or ``(host, binary)``.

        :raises NotFound: no such service.
        """
        with self.db.reader() as session:
            row = self._find_service(session, service)
            return _service_dict(row, self._down_time, self.clock())

    def list_services(
        self, *, host: str | None = None, binary: str | None = None
    ) -> list[dict[str, Any]]:
        """Return the services, optionally only those of *host* and/or *binary*."""
        query = sa.select(Service).order_by(Service.host, Service.binary)
        if host is not None:
            query = query.where(Service.host == host)
        if binary is not None:
            query = query.where(Service.binary == binary)
        now = self.clock()
        with self.db.reader() as session:
            return [_service_dict(row, self._down_time, now) for row in session.scalars(query)]

    def delete_service(self, service_id: str) -> None:
        """Delete a service; a compute service takes its compute nodes with it.

        :raises NotFound: no such service.
        :raises InvalidState: a compute service whose nodes still hold instances.
        """

        def _delete(session: orm.Session) -> None:
            row = self._find_service(session, service_id)
            if row.binary == COMPUTE_BINARY:
                nodes = sa.select(ComputeNode.id).where(ComputeNode.host == row.host)
                held = session.scalar(
                    sa.select(sa.func.count()).where(Allocation.node_id.in_(nodes))
                )
                if held:
                    raise exception.InvalidState(
                        reason=f"Compute service on {row.host} still hosts {held} instances."
                    )
                session.execute(sa.delete(ComputeNode).where(ComputeNode.host == row.host))
                session.execute(sa.delete(AggregateHost).where(AggregateHost.host == row.host))
            session.delete(row)

        self.db.write(_delete)

    # -- compute nodes -------------------------------------------------------------

    def update_node(
        self,
        host: str,
        nodename: str,
        *,
        vcpus: int,
        memory_mb: int,
        local_gb: int,
        hypervisor_type: str,
        hypervisor_version: int,
        cpu_info: Mapping[str, Any],
        supported_instances: Sequence[Sequence[str]],
        disk_available_least: int | None = None,
    ) -> dict[str, Any]:
        """Record what an agent reports of a node (creating it); usage is left alone."""
        now = self.clock()
        values = {
            "vcpus": vcpus,
            "memory_mb": memory_mb,
            "local_gb": local_gb,
            "hypervisor_type": hypervisor_type,
            "hypervisor_version": hypervisor_version,
            "cpu_info": json.dumps(dict(cpu_info), sort_keys=True),
            "supported_instances": json.dumps([list(s) for s in supported_instances]),
            "disk_available_least": disk_available_least,
        }

        def _update(session: orm.Session) -> ComputeNode:
            row = session.scalars(
                sa.select(ComputeNode).where(
                    ComputeNode.host == host, ComputeNode.hypervisor_hostname == nodename
                )
            ).one_or_none()
            if row is None:
                row = ComputeNode(
                    uuid=str(uuidlib.uuid4()),
                    host=host,
                    hypervisor_hostname=nodename,
                    vcpus_used=0,
                    memory_mb_used=0,
                    local_gb_used=0,
                    running_vms=0,
                    generation=0,
                    created_at=now,
                    **values,
                )
                session.add(row)
            else:
                for name, value in values.items():
                    setattr(row, name, value)
                row.generation = row.generation + 1
            row.updated_at = now
            row.updated_by = None
            session.flush()
            return row

        try:
            row = self.db.write(_update)
        except exc.IntegrityError:
            row = self.db.write(_update)
        return _node_dict(row)

    def set_node_overrides(self, node_id: int, **values: float | int | None) -> dict[str, Any]:
        """Set a node's own allocation ratios or reserved amounts (``None``: the default).

        :param values: any of ``cpu_allocation_ratio``, ``ram_allocation_ratio``,
            ``disk_allocation_ratio``, ``reserved_host_memory_mb``,
            ``reserved_host_disk_mb``, ``reserved_host_cpus``.
        """
        allowed = {
            "cpu_allocation_ratio",
            "ram_allocation_ratio",
            "disk_allocation_ratio",
            "reserved_host_memory_mb",
            "reserved_host_disk_mb",
            "reserved_host_cpus",
        }
        unknown = set(values) - allowed
        if unknown:
            raise exception.ValidationError(field=", ".join(sorted(unknown)), reason="unknown")

        def _set(session: orm.Session) -> ComputeNode:
            row = session.get(ComputeNode, node_id)
            if row is None:
                raise exception.NotFound(kind="compute node", id=str(node_id))
            for name, value in values.items():
                setattr(row, name, value)
            row.generation = row.generation + 1
            row.updated_at = self.clock()
            row.updated_by = None
            return row

        return _node_dict(self.db.write(_set))

    def list_nodes(self, *, host: str | None = None) -> list[dict[str, Any]]:
        """Return the compute nodes (of *host*, if given), by id."""
        query = sa.select(ComputeNode).order_by(ComputeNode.id)
        if host is not None:
            query = query.where(ComputeNode.host == host)
        with self.db.reader() as session:
            return [_node_dict(row) for row in session.scalars(query)]

    def get_node(self, node: int | str) -> dict[str, Any]:
        """Return a compute node by id or uuid.

        :raises NotFound: no such node.
        """
        with self.db.reader() as session:
            if isinstance(node, int):
                row = session.get(ComputeNode, node)
            else:
                row = session.scalars(
                    sa.select(ComputeNode).where(ComputeNode.uuid == node)
                ).one_or_none()
            if row is None:
                raise exception.NotFound(kind="compute node", id=str(node))
            return _node_dict(row)

    def statistics(self) -> dict[str, int]:
        """Return the nodes' totals, as ``os-hypervisors/statistics`` shows them."""
        n = ComputeNode
        query = sa.select(
            sa.func.count(n.id),
            sa.func.coalesce(sa.func.sum(n.vcpus), 0),
            sa.func.coalesce(sa.func.sum(n.memory_mb), 0),
            sa.func.coalesce(sa.func.sum(n.local_gb), 0),
            sa.func.coalesce(sa.func.sum(n.vcpus_used), 0),
            sa.func.coalesce(sa.func.sum(n.memory_mb_used), 0),
            sa.func.coalesce(sa.func.sum(n.local_gb_used), 0),
            sa.func.coalesce(sa.func.sum(n.running_vms), 0),
            sa.func.coalesce(sa.func.sum(sa.func.coalesce(n.disk_available_least, 0)), 0),
        )
        with self.db.reader() as session:
            row = session.execute(query).one()
        count, vcpus, mem, disk, vcpus_used, mem_used, disk_used, vms, least = (int(v) for v in row)
        return {
            "count": count,
            "vcpus": vcpus,
            "memory_mb": mem,
            "local_gb": disk,
            "vcpus_used": vcpus_used,
            "memory_mb_used": mem_used,
            "local_gb_used": disk_used,
            "free_ram_mb": mem - mem_used,
            "free_disk_gb": disk - disk_used,
            "running_vms": vms,
            "disk_available_least": least,
        }

    # -- aggregates ------------------------------------------------------------------

    @staticmethod
    def _aggregate_dict(session: orm.Session, row: Aggregate) -> dict[str, Any]:
        hosts = session.scalars(
            sa.select(AggregateHost.host)
            .where(AggregateHost.aggregate_id == row.id)
            .order_by(AggregateHost.host)
        ).all()
        metadata = {
            m.key: m.value
            for m in session.scalars(
                sa.select(AggregateMetadata).where(AggregateMetadata.aggregate_id == row.id)
            )
        }
        return {
            "id": row.id,
            "uuid": row.uuid,
            "name": row.name,
            "availability_zone": metadata.get(AZ_KEY),
            "hosts": list(hosts),
            "metadata": metadata,
            "created_at": row.created_at,
            "updated_at": row.updated_at,
        }

    @staticmethod
    def _get_aggregate(session: orm.Session, aggregate_id: int) -> Aggregate:
        row = session.get(Aggregate, aggregate_id)
        if row is None:
            raise exception.NotFound(kind="aggregate", id=str(aggregate_id))
        return row

    def _write_aggregate(
        self, aggregate_id: int | None, change: Callable[[orm.Session, Aggregate], None]
    ) -> dict[str, Any]:
        def _write(session: orm.Session) -> dict[str, Any]:
            if aggregate_id is None:
                row = Aggregate(uuid=str(uuidlib.uuid4()), name="", created_at=self.clock())
                session.add(row)
            else:
                row = self._get_aggregate(session, aggregate_id)
            change(session, row)
            row.updated_at = self.clock()
            session.flush()
            return self._aggregate_dict(session, row)

        try:
            return self.db.write(_write)
        except exc.IntegrityError as ex:
            raise exception.Conflict(kind="aggregate", reason="the name is taken") from ex

    @staticmethod
    def _set_meta(session: orm.Session, row: Aggregate, key: str, value: str | None) -> None:
        session.execute(
            sa.delete(AggregateMetadata).where(
                AggregateMetadata.aggregate_id == row.id, AggregateMetadata.key == key
            )
        )
        if value is not None:
            session.add(AggregateMetadata(aggregate_id=row.id, key=key, value=str(value)))

    def create_aggregate(self, name: str, availability_zone: str | None = None) -> dict[str, Any]:
        """Create an aggregate, in *availability_zone* if given.

        :raises Conflict: the name is taken.
        """

        def _create(session: orm.Session, row: Aggregate) -> None:
            row.name = name
            session.flush()
            if availability_zone:
                self._set_meta(session, row, AZ_KEY, availability_zone)

        return self._write_aggregate(None, _create)

    def update_aggregate(
        self, aggregate_id: int, *, name: str | None = None, availability_zone: str | None = None
    ) -> dict[str, Any]:
        """Rename an aggregate or move it to another availability zone."""

        def _update(session: orm.Session, row: Aggregate) -> None:
            if name is not None:
                row.name = name
            if availability_zone is not None:
                self._set_meta(session, row, AZ_KEY, availability_zone or None)

        return self._write_aggregate(aggregate_id, _update)

    def set_metadata(self, aggregate_id: int, metadata: Mapping[str, str | None]) -> dict[str, Any]:
        """Set (or, with ``None``, delete) metadata keys of an aggregate."""

        def _set(session: orm.Session, row: Aggregate) -> None:
            for key, value in metadata.items():
                self._set_meta(session, row, key, value)

        return self._write_aggregate(aggregate_id, _set)

    def add_host(self, aggregate_id: int, host: str) -> dict[str, Any]:
        """Add a compute host to an aggregate.

        :raises NotFound: no compute service runs on *host*.
        :raises Conflict: the host is in it already, or in another zone.
        """

        def _add(session: orm.Session, row: Aggregate) -> None:
            known = session.scalar(
                sa.select(Service.id).where(Service.host == host, Service.binary == COMPUTE_BINARY)
            )
            if known is None:
                raise exception.NotFound(kind="compute host", id=host)
            if session.get(AggregateHost, (row.id, host)) is not None:
                raise exception.Conflict(
                    kind="aggregate", reason=f"host {host} is already in {row.name}"
                )
            zone = session.get(AggregateMetadata, (row.id, AZ_KEY))
            if zone is not None:
                others = session.scalars(
                    sa.select(AggregateMetadata.value).where(
                        AggregateMetadata.key == AZ_KEY,
                        AggregateMetadata.aggregate_id.in_(
                            sa.select(AggregateHost.aggregate_id).where(AggregateHost.host == host)
                        ),
                    )
                ).all()
                if any(other != zone.value for other in others):
                    raise exception.Conflict(
                        kind="aggregate",
                        reason=f"host {host} is in zone {others[0]}, not {zone.value}",
                    )
            session.add(AggregateHost(aggregate_id=row.id, host=host))

        return self._write_aggregate(aggregate_id, _add)

    def remove_host(self, aggregate_id: int, host: str) -> dict[str, Any]:
        """Remove a host from an aggregate.

        :raises NotFound: the host is not in it.
        """

        def _remove(session: orm.Session, row: Aggregate) -> None:
            member = session.get(AggregateHost, (row.id, host))
            if member is None:
                raise exception.NotFound(kind="aggregate host", id=host)
            session.delete(member)

        return self._write_aggregate(aggregate_id, _remove)

    def delete_aggregate(self, aggregate_id: int) -> None:
        """Delete an empty aggregate.

        :raises NotFound: no such aggregate.
        :raises InvalidState: it still has hosts.
        """

        def _delete(session: orm.Session) -> None:
            row = self._get_aggregate(session, aggregate_id)
            hosts = session.scalar(
                sa.select(sa.func.count()).where(AggregateHost.aggregate_id == row.id)
            )
            if hosts:
                raise exception.InvalidState(
                    reason=f"Aggregate {row.name} still has {hosts} hosts; remove them first."
                )
            session.execute(
                sa.delete(AggregateMetadata).where(AggregateMetadata.aggregate_id == row.id)
            )
            session.delete(row)

        self.db.write(_delete)

    def get_aggregate(self, aggregate_id: int) -> dict[str, Any]:
        """Return one aggregate with its hosts and metadata.

        :raises NotFound: no such aggregate.
        """
        with self.db.reader() as session:
            return self._aggregate_dict(session, self._get_aggregate(session, aggregate_id))

    def list_aggregates(self) -> list[dict[str, Any]]:
        """Return every aggregate with its hosts and metadata, by id."""
        with self.db.reader() as session:
            rows = session.scalars(sa.select(Aggregate).order_by(Aggregate.id)).all()
            return [self._aggregate_dict(session, row) for row in rows]
