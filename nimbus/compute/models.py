"""The compute service's tables: flavors (with extra specs and access), key pairs, quotas."""

from __future__ import annotations

import datetime

import sqlalchemy as sa
from sqlalchemy import orm

from nimbus.db.models import ID, TYPE_MAP, utcnow

__all__ = ["Base", "Flavor", "FlavorExtraSpec", "FlavorProject", "KeyPair", "Quota"]


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
