"""The compute service's tables: flavors, key pairs, quotas, servers and their history."""

from __future__ import annotations

import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from nimbus.db.models import ID, TYPE_MAP, utcnow

__all__ = [
    "Base",
    "Flavor",
    "FlavorExtraSpec",
    "FlavorProject",
    "Instance",
    "InstanceAction",
    "InstanceActionEvent",
    "InstanceFault",
    "InstanceGroup",
    "InstanceGroupMember",
    "InstanceMetadata",
    "KeyPair",
    "Quota",
]


class Base(orm.DeclarativeBase):
    """Declarative base of the compute service's tables."""

    type_annotation_map = TYPE_MAP


class Flavor(Base):
    """A size servers are made in; ``flavorid`` is the id the API shows.

    ``id`` is internal (extra specs and access rows refer to it), so that a
    flavor deleted and created again under the same API id is a new flavor.
    """

    __tablename__ = "flavors"

    id: orm.Mapped[int] = orm.mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    flavorid: orm.Mapped[str] = orm.mapped_column(sa.String(255), unique=True)
    name: orm.Mapped[str] = orm.mapped_column(sa.String(255), unique=True)
    memory_mb: orm.Mapped[int] = orm.mapped_column(sa.Integer)
    vcpus: orm.Mapped[int] = orm.mapped_column(sa.Integer)
    root_gb: orm.Mapped[int] = orm.mapped_column(sa.Integer)
    ephemeral_gb: orm.Mapped[int] = orm.mapped_column(sa.Integer, default=0)
    swap: orm.Mapped[int] = orm.mapped_column(sa.Integer, default=0)
    rxtx_factor: orm.Mapped[float] = orm.mapped_column(sa.Float, default=1.0)
    is_public: orm.Mapped[bool] = orm.mapped_column(sa.Boolean, default=True)
    disabled: orm.Mapped[bool] = orm.mapped_column(sa.Boolean, default=False)
    description: orm.Mapped[str | None] = orm.mapped_column(sa.Text)
    created_at: orm.Mapped[datetime.datetime] = orm.mapped_column(default=utcnow)
    updated_at: orm.Mapped[datetime.datetime | None] = orm.mapped_column(onupdate=utcnow)

    extra_specs: orm.Mapped[list[FlavorExtraSpec]] = orm.relationship(
        cascade="all, delete-orphan", lazy="selectin", passive_deletes=True
    )
    projects: orm.Mapped[list[FlavorProject]] = orm.relationship(
        cascade="all, delete-orphan", lazy="selectin", passive_deletes=True
    )


class FlavorExtraSpec(Base):
    """One ``key=value`` of a flavor's extra specs (scheduler and driver hints)."""

    __tablename__ = "flavor_extra_specs"

    flavor_id: orm.Mapped[int] = orm.mapped_column(
        sa.ForeignKey("flavors.id", ondelete="CASCADE"), primary_key=True
    )
    key: orm.Mapped[str] = orm.mapped_column(sa.String(255), primary_key=True)
    value: orm.Mapped[str] = orm.mapped_column(sa.String(255))


class FlavorProject(Base):
    """A project that may use a private flavor."""

    __tablename__ = "flavor_projects"

    flavor_id: orm.Mapped[int] = orm.mapped_column(
        sa.ForeignKey("flavors.id", ondelete="CASCADE"), primary_key=True
    )
    project_id: orm.Mapped[str] = orm.mapped_column(ID, primary_key=True)


class KeyPair(Base):
    """A user's SSH public key, by name (names are per user)."""

    __tablename__ = "key_pairs"
    __table_args__ = (sa.UniqueConstraint("user_id", "name", name="uq_key_pairs_user_id_name"),)

    id: orm.Mapped[int] = orm.mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    name: orm.Mapped[str] = orm.mapped_column(sa.String(255))
    user_id: orm.Mapped[str] = orm.mapped_column(ID)
    fingerprint: orm.Mapped[str] = orm.mapped_column(sa.String(255))
    public_key: orm.Mapped[str] = orm.mapped_column(sa.Text)
    type: orm.Mapped[str] = orm.mapped_column(sa.String(10), default="ssh")
    created_at: orm.Mapped[datetime.datetime] = orm.mapped_column(default=utcnow)


class Quota(Base):
    """A project's limit on one resource, where it differs from the configured default."""

    __tablename__ = "compute_quotas"

    project_id: orm.Mapped[str] = orm.mapped_column(ID, primary_key=True)
    resource: orm.Mapped[str] = orm.mapped_column(sa.String(255), primary_key=True)
    hard_limit: orm.Mapped[int] = orm.mapped_column(sa.Integer)


class Instance(Base):
    """A server: what was asked for, where it runs, and its state.

    The flavor is copied in (``flavor``), so that deleting or changing the
    flavor never changes a server.  ``vm_state`` / ``task_state`` /
    ``power_state`` are Nova's; ``task_started_at`` is when the current
    task began, so that a task past its deadline is found and ended.
    """

    __tablename__ = "instances"
    __table_args__ = (
        sa.Index("ix_instances_project_id_created_at", "project_id", "created_at"),
        sa.Index("ix_instances_host", "host"),
        sa.Index("ix_instances_task_state", "task_state"),
    )

    uuid: orm.Mapped[str] = orm.mapped_column(sa.String(36), primary_key=True)
    name: orm.Mapped[str] = orm.mapped_column(sa.String(255))
    project_id: orm.Mapped[str] = orm.mapped_column(ID)
    user_id: orm.Mapped[str] = orm.mapped_column(ID)
    image_ref: orm.Mapped[str | None] = orm.mapped_column(sa.String(36))
    flavor_id: orm.Mapped[str] = orm.mapped_column(sa.String(255))
    flavor: orm.Mapped[dict[str, Any]] = orm.mapped_column()
    #: The flavor's size, as columns: what the quotas sum.
    vcpus: orm.Mapped[int] = orm.mapped_column(sa.Integer)
    memory_mb: orm.Mapped[int] = orm.mapped_column(sa.Integer)
    key_name: orm.Mapped[str | None] = orm.mapped_column(sa.String(255))
    key_data: orm.Mapped[str | None] = orm.mapped_column(sa.Text)
    user_data: orm.Mapped[str | None] = orm.mapped_column(sa.Text)
    availability_zone: orm.Mapped[str | None] = orm.mapped_column(sa.String(255))
    host: orm.Mapped[str | None] = orm.mapped_column(sa.String(255))
    node: orm.Mapped[str | None] = orm.mapped_column(sa.String(255))
    vm_state: orm.Mapped[str] = orm.mapped_column(sa.String(255))
    task_state: orm.Mapped[str | None] = orm.mapped_column(sa.String(255))
    power_state: orm.Mapped[int] = orm.mapped_column(sa.Integer, default=0)
    task_started_at: orm.Mapped[datetime.datetime | None] = orm.mapped_column()
    launched_at: orm.Mapped[datetime.datetime | None] = orm.mapped_column()
    terminated_at: orm.Mapped[datetime.datetime | None] = orm.mapped_column()
    locked: orm.Mapped[bool] = orm.mapped_column(sa.Boolean, default=False)
    locked_by: orm.Mapped[str | None] = orm.mapped_column(sa.String(255))
    description: orm.Mapped[str | None] = orm.mapped_column(sa.Text)
    access_ip_v4: orm.Mapped[str | None] = orm.mapped_column(sa.String(39))
    access_ip_v6: orm.Mapped[str | None] = orm.mapped_column(sa.String(39))
    config_drive: orm.Mapped[str] = orm.mapped_column(sa.String(255), default="")
    reservation_id: orm.Mapped[str] = orm.mapped_column(sa.String(255))
    launch_index: orm.Mapped[int] = orm.mapped_column(sa.Integer, default=0)
    #: Scheduler hints and the like, as the create asked (for reschedules).
    request: orm.Mapped[dict[str, Any]] = orm.mapped_column()
    deleted: orm.Mapped[bool] = orm.mapped_column(sa.Boolean, default=False)
    created_at: orm.Mapped[datetime.datetime] = orm.mapped_column(default=utcnow)
    updated_at: orm.Mapped[datetime.datetime] = orm.mapped_column(default=utcnow, onupdate=utcnow)
    deleted_at: orm.Mapped[datetime.datetime | None] = orm.mapped_column()

    metadata_items: orm.Mapped[list[InstanceMetadata]] = orm.relationship(
        cascade="all, delete-orphan", lazy="selectin", passive_deletes=True
    )


class InstanceMetadata(Base):
    """One ``key=value`` of a server's metadata."""

    __tablename__ = "instance_metadata"

    instance_uuid: orm.Mapped[str] = orm.mapped_column(
        sa.ForeignKey("instances.uuid", ondelete="CASCADE"), primary_key=True
    )
    key: orm.Mapped[str] = orm.mapped_column(sa.String(255), primary_key=True)
    value: orm.Mapped[str] = orm.mapped_column(sa.String(255))


class InstanceFault(Base):
    """Why a server went wrong: the last one is shown in its body while it is in error."""

    __tablename__ = "instance_faults"

    id: orm.Mapped[int] = orm.mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    instance_uuid: orm.Mapped[str] = orm.mapped_column(
        sa.ForeignKey("instances.uuid", ondelete="CASCADE"), index=True
    )
    code: orm.Mapped[int] = orm.mapped_column(sa.Integer)
    message: orm.Mapped[str] = orm.mapped_column(sa.String(255))
    details: orm.Mapped[str | None] = orm.mapped_column(sa.Text)
    host: orm.Mapped[str | None] = orm.mapped_column(sa.String(255))
    created_at: orm.Mapped[datetime.datetime] = orm.mapped_column(default=utcnow)


class InstanceAction(Base):
    """One user request on a server (create, stop, reboot...), for ``os-instance-actions``."""

    __tablename__ = "instance_actions"
    __table_args__ = (sa.Index("ix_instance_actions_instance_uuid", "instance_uuid"),)

    id: orm.Mapped[int] = orm.mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    instance_uuid: orm.Mapped[str] = orm.mapped_column(sa.String(36))
    request_id: orm.Mapped[str] = orm.mapped_column(sa.String(255))
    action: orm.Mapped[str] = orm.mapped_column(sa.String(255))
    user_id: orm.Mapped[str | None] = orm.mapped_column(ID)
    project_id: orm.Mapped[str | None] = orm.mapped_column(ID)
    message: orm.Mapped[str | None] = orm.mapped_column(sa.String(255))
    start_time: orm.Mapped[datetime.datetime] = orm.mapped_column(default=utcnow)
    finish_time: orm.Mapped[datetime.datetime | None] = orm.mapped_column()

    events: orm.Mapped[list[InstanceActionEvent]] = orm.relationship(
        cascade="all, delete-orphan", lazy="selectin", passive_deletes=True
    )


class InstanceActionEvent(Base):
    """One step of an action (``compute_build_and_run_instance``) and how it ended."""

    __tablename__ = "instance_action_events"

    id: orm.Mapped[int] = orm.mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    action_id: orm.Mapped[int] = orm.mapped_column(
        sa.ForeignKey("instance_actions.id", ondelete="CASCADE"), index=True
    )
    event: orm.Mapped[str] = orm.mapped_column(sa.String(255))
    host: orm.Mapped[str | None] = orm.mapped_column(sa.String(255))
    result: orm.Mapped[str | None] = orm.mapped_column(sa.String(255))
    traceback: orm.Mapped[str | None] = orm.mapped_column(sa.Text)
    start_time: orm.Mapped[datetime.datetime] = orm.mapped_column(default=utcnow)
    finish_time: orm.Mapped[datetime.datetime | None] = orm.mapped_column()


class InstanceGroup(Base):
    """A server group: servers kept together (affinity) or apart (anti-affinity)."""

    __tablename__ = "instance_groups"
    __table_args__ = (sa.Index("ix_instance_groups_project_id", "project_id"),)

    uuid: orm.Mapped[str] = orm.mapped_column(sa.String(36), primary_key=True)
    name: orm.Mapped[str] = orm.mapped_column(sa.String(255))
    project_id: orm.Mapped[str] = orm.mapped_column(ID)
    user_id: orm.Mapped[str] = orm.mapped_column(ID)
    policy: orm.Mapped[str] = orm.mapped_column(sa.String(255))
    created_at: orm.Mapped[datetime.datetime] = orm.mapped_column(default=utcnow)

    members: orm.Mapped[list[InstanceGroupMember]] = orm.relationship(
        cascade="all, delete-orphan", lazy="selectin", passive_deletes=True
    )


class InstanceGroupMember(Base):
    """A server in a server group (a server is in one group at most)."""

    __tablename__ = "instance_group_members"

    group_uuid: orm.Mapped[str] = orm.mapped_column(
        sa.ForeignKey("instance_groups.uuid", ondelete="CASCADE"), primary_key=True
    )
    instance_uuid: orm.Mapped[str] = orm.mapped_column(sa.String(36), primary_key=True)
