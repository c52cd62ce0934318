"""Tables of the ``sql`` identity back-end: users, groups and memberships."""

from __future__ import annotations

import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm
from sqlalchemy.dialects import mysql

__all__ = ["Base", "Group", "Membership", "User"]

ID = sa.String(64)
#: Microsecond timestamps everywhere (MySQL's DATETIME keeps whole seconds by default).
TIMESTAMP = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


class Base(orm.DeclarativeBase):
    """Declarative base of the sql identity back-end's tables."""

    type_annotation_map = {dict[str, Any]: sa.JSON, datetime.datetime: TIMESTAMP}


class _DomainNamed:
    """Columns of a row named uniquely within its domain (users, groups)."""

    @orm.declared_attr.directive
    @classmethod
    def __table_args__(cls) -> tuple[sa.UniqueConstraint]:
        table = cls.__tablename__  # type: ignore[attr-defined]
        return (sa.UniqueConstraint("domain_id", "name", name=f"uq_{table}_domain_name"),)

    id: orm.Mapped[str] = orm.mapped_column(ID, primary_key=True)
    name: orm.Mapped[str] = orm.mapped_column(sa.String(255))
    domain_id: orm.Mapped[str] = orm.mapped_column(ID, index=True)
    description: orm.Mapped[str | None] = orm.mapped_column(sa.Text)
    extra: orm.Mapped[dict[str, Any]] = orm.mapped_column(default=dict)


class User(_DomainNamed, Base):
    __tablename__ = "users"

    enabled: orm.Mapped[bool] = orm.mapped_column(default=True)
    default_project_id: orm.Mapped[str | None] = orm.mapped_column(ID)
    email: orm.Mapped[str | None] = orm.mapped_column(sa.String(255))
    password_hash: orm.Mapped[str | None] = orm.mapped_column(sa.String(255))
    password_created_at: orm.Mapped[datetime.datetime | None] = orm.mapped_column()
    failed_auth_count: orm.Mapped[int] = orm.mapped_column(default=0)
    failed_auth_at: orm.Mapped[datetime.datetime | None] = orm.mapped_column()
    created_at: orm.Mapped[datetime.datetime] = orm.mapped_column()


class Group(_DomainNamed, Base):
    __tablename__ = "groups"


class Membership(Base):
    __tablename__ = "user_group_membership"

    user_id: orm.Mapped[str] = orm.mapped_column(
        ID, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    group_id: orm.Mapped[str] = orm.mapped_column(
        ID, sa.ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True, index=True
    )
