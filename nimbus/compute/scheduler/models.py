"""The scheduler's tables: services, compute nodes, allocations and host aggregates."""

from __future__ import annotations

import datetime

import sqlalchemy as sa
from sqlalchemy import orm

from nimbus.db.models import TYPE_MAP, utcnow

__all__ = [
    "Aggregate",
    "AggregateHost",
    "AggregateMetadata",
    "Allocation",
    "Base",
    "ComputeNode",
    "Service",
]


class Base(orm.DeclarativeBase):
    """Declarative base of the scheduler's tables."""

    type_annotation_map = TYPE_MAP


class Service(Base):
    """One nimbus service process on one host, with its heartbeat and status."""

    __tablename__ = "compute_services"
    __table_args__ = (
        sa.UniqueConstraint("host", "binary", name="uq_compute_services_host_binary"),
    )

    id: orm.Mapped[str] = orm.mapped_column(sa.String(36), primary_key=True)
    host: orm.Mapped[str] = orm.mapped_column(sa.String(255))
    binary: orm.Mapped[str] = orm.mapped_column(sa.String(64))
    topic: orm.Mapped[str] = orm.mapped_column(sa.String(255))
    disabled: orm.Mapped[bool] = orm.mapped_column(default=False)
    disabled_reason: orm.Mapped[str | None] = orm.mapped_column(sa.String(255))
    forced_down: orm.Mapped[bool] = orm.mapped_column(default=False)
    last_seen_up: orm.Mapped[datetime.datetime | None] = orm.mapped_column(index=True)
    created_at: orm.Mapped[datetime.datetime] = orm.mapped_column(default=utcnow)
    updated_at: orm.Mapped[datetime.datetime] = orm.mapped_column(default=utcnow, index=True)


class ComputeNode(Base):
    """A hypervisor's resources: totals from its agent, usage kept by the claims.

    ``generation`` grows by one at every change; ``updated_by`` names the
    scheduler whose claim changed the row last (``None``: an agent or the
    API), so that a scheduler's refresh skips what it already knows.
    """

    __tablename__ = "compute_nodes"
    __table_args__ = (
        sa.UniqueConstraint("host", "hypervisor_hostname", name="uq_compute_nodes_host_node"),
    )

    id: orm.Mapped[int] = orm.mapped_column(primary_key=True, autoincrement=True)
    uuid: orm.Mapped[str] = orm.mapped_column(sa.String(36), unique=True)
    host: orm.Mapped[str] = orm.mapped_column(sa.String(255), index=True)
    hypervisor_hostname: orm.Mapped[str] = orm.mapped_column(sa.String(255))
    hypervisor_type: orm.Mapped[str] = orm.mapped_column(sa.String(255))
    hypervisor_version: orm.Mapped[int] = orm.mapped_column(sa.BigInteger, default=0)
    vcpus: orm.Mapped[int] = orm.mapped_column()
    memory_mb: orm.Mapped[int] = orm.mapped_column()
    local_gb: orm.Mapped[int] = orm.mapped_column()
    vcpus_used: orm.Mapped[int] = orm.mapped_column(default=0)
    memory_mb_used: orm.Mapped[int] = orm.mapped_column(default=0)
    local_gb_used: orm.Mapped[int] = orm.mapped_column(default=0)
    running_vms: orm.Mapped[int] = orm.mapped_column(default=0)
    cpu_info: orm.Mapped[str] = orm.mapped_column(sa.Text, default="{}")
    supported_instances: orm.Mapped[str] = orm.mapped_column(sa.Text, default="[]")
    cpu_allocation_ratio: orm.Mapped[float | None] = orm.mapped_column(sa.Float)
    ram_allocation_ratio: orm.Mapped[float | None] = orm.mapped_column(sa.Float)
    disk_allocation_ratio: orm.Mapped[float | None] = orm.mapped_column(sa.Float)
    reserved_host_memory_mb: orm.Mapped[int | None] = orm.mapped_column()
    reserved_host_disk_mb: orm.Mapped[int | None] = orm.mapped_column()
    reserved_host_cpus: orm.Mapped[int | None] = orm.mapped_column()
    disk_available_least: orm.Mapped[int | None] = orm.mapped_column()
    generation: orm.Mapped[int] = orm.mapped_column(sa.BigInteger, default=0)
    updated_by: orm.Mapped[str | None] = orm.mapped_column(sa.String(36))
    created_at: orm.Mapped[datetime.datetime] = orm.mapped_column(default=utcnow)
    updated_at: orm.Mapped[datetime.datetime] = orm.mapped_column(default=utcnow, index=True)


class Allocation(Base):
    """The resources one instance holds on one compute node."""

    __tablename__ = "allocations"

    instance_uuid: orm.Mapped[str] = orm.mapped_column(sa.String(36), primary_key=True)
    node_id: orm.Mapped[int] = orm.mapped_column(
        sa.ForeignKey("compute_nodes.id", ondelete="CASCADE"), index=True
    )
    host: orm.Mapped[str] = orm.mapped_column(sa.String(255))
    vcpus: orm.Mapped[int] = orm.mapped_column()
    memory_mb: orm.Mapped[int] = orm.mapped_column()
    disk_gb: orm.Mapped[int] = orm.mapped_column()
    project_id: orm.Mapped[str | None] = orm.mapped_column(sa.String(64))
    created_at: orm.Mapped[datetime.datetime] = orm.mapped_column(default=utcnow)


class Aggregate(Base):
    """A named group of hosts with metadata (``availability_zone``, ratios, ...)."""

    __tablename__ = "aggregates"

    id: orm.Mapped[int] = orm.mapped_column(primary_key=True, autoincrement=True)
    uuid: orm.Mapped[str] = orm.mapped_column(sa.String(36), unique=True)
    name: orm.Mapped[str] = orm.mapped_column(sa.String(255), unique=True)
    created_at: orm.Mapped[datetime.datetime] = orm.mapped_column(default=utcnow)
    updated_at: orm.Mapped[datetime.datetime] = orm.mapped_column(default=utcnow, index=True)


class AggregateHost(Base):
    """A host's membership of an aggregate."""

    __tablename__ = "aggregate_hosts"

    aggregate_id: orm.Mapped[int] = orm.mapped_column(
        sa.ForeignKey("aggregates.id", ondelete="CASCADE"), primary_key=True
    )
    host: orm.Mapped[str] = orm.mapped_column(sa.String(255), primary_key=True)


class AggregateMetadata(Base):
    """One metadata key of an aggregate."""

    __tablename__ = "aggregate_metadata"

    aggregate_id: orm.Mapped[int] = orm.mapped_column(
        sa.ForeignKey("aggregates.id", ondelete="CASCADE"), primary_key=True
    )
    key: orm.Mapped[str] = orm.mapped_column(sa.String(255), primary_key=True)
    value: orm.Mapped[str] = orm.mapped_column(sa.String(255))
