"""The identity service's tables: domains, projects, roles, assignments, catalog, revocations."""

from __future__ import annotations

import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from nimbus.db.models import ID, TYPE_MAP, utcnow

__all__ = [
    "Assignment",
    "Base",
    "Credential",
    "Domain",
    "Endpoint",
    "ImpliedRole",
    "Project",
    "Region",
    "RevocationEvent",
    "Role",
    "Service",
]


class Base(orm.DeclarativeBase):
    """Declarative base of the service's tables."""

    type_annotation_map = TYPE_MAP


def _role_ref() -> orm.MappedColumn[str]:
    """Return a primary-key column naming a role; its rows go with the role."""
    return orm.mapped_column(ID, sa.ForeignKey("roles.id", ondelete="CASCADE"), primary_key=True)


class _Described:
    """The free-form columns of domains, projects and roles."""

    description: orm.Mapped[str | None] = orm.mapped_column(sa.Text)
    extra: orm.Mapped[dict[str, Any]] = orm.mapped_column(default=dict)


class _Container(_Described):
    """The columns of what roles are assigned on: domains and projects."""

    enabled: orm.Mapped[bool] = orm.mapped_column(default=True)
    created_at: orm.Mapped[datetime.datetime] = orm.mapped_column(default=utcnow)


class Domain(_Container, Base):
    __tablename__ = "domains"

    id: orm.Mapped[str] = orm.mapped_column(ID, primary_key=True)
    name: orm.Mapped[str] = orm.mapped_column(sa.String(64), unique=True)


class Project(_Container, Base):
    __tablename__ = "projects"
    __table_args__ = (sa.UniqueConstraint("domain_id", "name", name="uq_projects_domain_name"),)

    id: orm.Mapped[str] = orm.mapped_column(ID, primary_key=True)
    name: orm.Mapped[str] = orm.mapped_column(sa.String(64))
    domain_id: orm.Mapped[str] = orm.mapped_column(ID, sa.ForeignKey("domains.id"), index=True)
    parent_id: orm.Mapped[str | None] = orm.mapped_column(ID, sa.ForeignKey("projects.id"))
    #: Keystone's project tags, in the order given; ``None`` is none.
    tags: orm.Mapped[list[str] | None] = orm.mapped_column(sa.JSON)


class Role(_Described, Base):
    __tablename__ = "roles"

    id: orm.Mapped[str] = orm.mapped_column(ID, primary_key=True)
    name: orm.Mapped[str] = orm.mapped_column(sa.String(255), unique=True)
    #: The domain of a domain-specific role; ``None`` for a global one.
    domain_id: orm.Mapped[str | None] = orm.mapped_column(ID, index=True)


class ImpliedRole(Base):
    """A prior role implies another: holding ``admin`` grants ``member`` too."""

    __tablename__ = "implied_roles"

    prior_role_id: orm.Mapped[str] = _role_ref()
    implied_role_id: orm.Mapped[str] = _role_ref()


class Assignment(Base):
    """One role given to an actor (user or group) on a target (project or domain).

    ``type`` is one of ``UserProject``, ``GroupProject``, ``UserDomain``,
    ``GroupDomain``.  Actors live in the identity back-end, so there is no
    foreign key to them.
    """

    __tablename__ = "assignments"
    __table_args__ = (
        sa.Index("ix_assignments_actor", "actor_id"),
        sa.Index("ix_assignments_target", "target_id"),
    )

    type: orm.Mapped[str] = orm.mapped_column(sa.String(16), primary_key=True)
    actor_id: orm.Mapped[str] = orm.mapped_column(ID, primary_key=True)
    target_id: orm.Mapped[str] = orm.mapped_column(ID, primary_key=True)
    role_id: orm.Mapped[str] = _role_ref()
    inherited: orm.Mapped[bool] = orm.mapped_column(primary_key=True, default=False)


class Credential(Base):
    """A secret a user keeps with the identity service (an EC2 key pair, a TOTP seed ...).

    The blob is stored encrypted with the credential keys; ``key_hash``
    names the key that encrypted it.  Users and projects live elsewhere
    (the identity back-end, or may be gone), so there are no foreign keys:
    deleting a user or a project deletes its credentials.
    """

    __tablename__ = "credentials"

    id: orm.Mapped[str] = orm.mapped_column(ID, primary_key=True)
    user_id: orm.Mapped[str] = orm.mapped_column(ID, index=True)
    project_id: orm.Mapped[str | None] = orm.mapped_column(ID, index=True)
    type: orm.Mapped[str] = orm.mapped_column(sa.String(255))
    encrypted_blob: orm.Mapped[str] = orm.mapped_column(sa.Text)
    key_hash: orm.Mapped[str] = orm.mapped_column(sa.String(64))
    extra: orm.Mapped[dict[str, Any]] = orm.mapped_column(default=dict)


class Region(Base):
    __tablename__ = "regions"

    id: orm.Mapped[str] = orm.mapped_column(sa.String(255), primary_key=True)
    description: orm.Mapped[str] = orm.mapped_column(sa.Text, default="")
    parent_region_id: orm.Mapped[str | None] = orm.mapped_column(
        sa.String(255), sa.ForeignKey("regions.id")
    )
    extra: orm.Mapped[dict[str, Any]] = orm.mapped_column(default=dict)


class Service(Base):
    __tablename__ = "services"

    id: orm.Mapped[str] = orm.mapped_column(ID, primary_key=True)
    type: orm.Mapped[str] = orm.mapped_column(sa.String(255), index=True)
    name: orm.Mapped[str] = orm.mapped_column(sa.String(255), default="")
    description: orm.Mapped[str] = orm.mapped_column(sa.Text, default="")
    enabled: orm.Mapped[bool] = orm.mapped_column(default=True)
    extra: orm.Mapped[dict[str, Any]] = orm.mapped_column(default=dict)


class Endpoint(Base):
    __tablename__ = "endpoints"

    id: orm.Mapped[str] = orm.mapped_column(ID, primary_key=True)
    service_id: orm.Mapped[str] = orm.mapped_column(
        ID, sa.ForeignKey("services.id", ondelete="CASCADE"), index=True
    )
    interface: orm.Mapped[str] = orm.mapped_column(sa.String(8))
    url: orm.Mapped[str] = orm.mapped_column(sa.Text)
    region_id: orm.Mapped[str | None] = orm.mapped_column(
        sa.String(255), sa.ForeignKey("regions.id")
    )
    enabled: orm.Mapped[bool] = orm.mapped_column(default=True)
    extra: orm.Mapped[dict[str, Any]] = orm.mapped_column(default=dict)


class RevocationEvent(Base):
    """Tokens matching every set attribute and issued before ``issued_before`` are revoked."""

    __tablename__ = "revocation_events"

    id: orm.Mapped[int] = orm.mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    domain_id: orm.Mapped[str | None] = orm.mapped_column(ID)
    project_id: orm.Mapped[str | None] = orm.mapped_column(ID)
    user_id: orm.Mapped[str | None] = orm.mapped_column(ID)
    role_id: orm.Mapped[str | None] = orm.mapped_column(ID)
    audit_id: orm.Mapped[str | None] = orm.mapped_column(sa.String(32))
    audit_chain_id: orm.Mapped[str | None] = orm.mapped_column(sa.String(32))
    expires_at: orm.Mapped[datetime.datetime | None] = orm.mapped_column()
    issued_before: orm.Mapped[datetime.datetime] = orm.mapped_column(index=True)
    revoked_at: orm.Mapped[datetime.datetime] = orm.mapped_column(default=utcnow, index=True)
