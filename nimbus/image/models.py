"""The image service's tables: images, their properties, tags and members; metadefs."""

from __future__ import annotations

import datetime

import sqlalchemy as sa
from sqlalchemy import orm

from nimbus.db.models import ID, TYPE_MAP, utcnow

__all__ = [
    "Base",
    "Image",
    "ImageLocation",
    "ImageMember",
    "ImageProperty",
    "ImageTag",
    "MetadefNamespace",
    "MetadefNamespaceResourceType",
    "MetadefObject",
    "MetadefProperty",
    "MetadefResourceType",
    "MetadefTag",
    "Task",
]


class Base(orm.DeclarativeBase):
    """Declarative base of the service's tables."""

    type_annotation_map = TYPE_MAP


class Image(Base):
    """An image's core attributes; custom properties, tags and members hang off it.

    Where the data is (one :class:`ImageLocation` per store holding it)
    is never shown to users; ``upload_id`` names the upload that holds the image in ``saving``, so
    only that upload may finish it; ``reserved_size`` is what that upload
    holds against the owner's storage quota until it ends.
    """

    __tablename__ = "images"
    __table_args__ = (
        sa.Index("ix_images_created_at_id", "created_at", "id"),
        sa.Index("ix_images_owner_status", "owner", "status"),
    )

    id: orm.Mapped[str] = orm.mapped_column(sa.String(36), primary_key=True)
    name: orm.Mapped[str | None] = orm.mapped_column(sa.String(255), index=True)
    status: orm.Mapped[str] = orm.mapped_column(sa.String(30))
    visibility: orm.Mapped[str] = orm.mapped_column(sa.String(20), index=True)
    owner: orm.Mapped[str | None] = orm.mapped_column(ID)
    size: orm.Mapped[int | None] = orm.mapped_column(sa.BigInteger)
    virtual_size: orm.Mapped[int | None] = orm.mapped_column(sa.BigInteger)
    disk_format: orm.Mapped[str | None] = orm.mapped_column(sa.String(20))
    container_format: orm.Mapped[str | None] = orm.mapped_column(sa.String(20))
    checksum: orm.Mapped[str | None] = orm.mapped_column(sa.String(32))
    os_hash_algo: orm.Mapped[str | None] = orm.mapped_column(sa.String(64))
    os_hash_value: orm.Mapped[str | None] = orm.mapped_column(sa.String(128))
    min_disk: orm.Mapped[int] = orm.mapped_column(default=0)
    min_ram: orm.Mapped[int] = orm.mapped_column(default=0)
    protected: orm.Mapped[bool] = orm.mapped_column(default=False)
    os_hidden: orm.Mapped[bool] = orm.mapped_column(default=False)
    upload_id: orm.Mapped[str | None] = orm.mapped_column(sa.String(36))
    reserved_size: orm.Mapped[int | None] = orm.mapped_column(sa.BigInteger)
    created_at: orm.Mapped[datetime.datetime] = orm.mapped_column(default=utcnow)
    updated_at: orm.Mapped[datetime.datetime] = orm.mapped_column(default=utcnow, index=True)


class ImageProperty(Base):
    """A custom (free-form string) property of an image."""

    __tablename__ = "image_properties"

    image_id: orm.Mapped[str] = orm.mapped_column(
        sa.String(36), sa.ForeignKey("images.id", ondelete="CASCADE"), primary_key=True
    )
    name: orm.Mapped[str] = orm.mapped_column(sa.String(255), primary_key=True)
    value: orm.Mapped[str] = orm.mapped_column(sa.Text)


class ImageLocation(Base):
    """Where one store keeps an image's data (the store's opaque location).

    An image has one row per store holding its data; staged data (for a
    ``glance-direct`` import) is a row of the store it was staged in.
    """

    __tablename__ = "image_locations"

    image_id: orm.Mapped[str] = orm.mapped_column(
        sa.String(36), sa.ForeignKey("images.id", ondelete="CASCADE"), primary_key=True
    )
    store: orm.Mapped[str] = orm.mapped_column(sa.String(64), primary_key=True)
    location: orm.Mapped[str] = orm.mapped_column(sa.Text)
    created_at: orm.Mapped[datetime.datetime] = orm.mapped_column(default=utcnow)


class ImageTag(Base):
    __tablename__ = "image_tags"

    image_id: orm.Mapped[str] = orm.mapped_column(
        sa.String(36), sa.ForeignKey("images.id", ondelete="CASCADE"), primary_key=True
    )
    value: orm.Mapped[str] = orm.mapped_column(sa.String(255), primary_key=True)


class ImageMember(Base):
    """A project an image is shared with, and whether it accepted."""

    __tablename__ = "image_members"

    image_id: orm.Mapped[str] = orm.mapped_column(
        sa.String(36), sa.ForeignKey("images.id", ondelete="CASCADE"), primary_key=True
    )
    member: orm.Mapped[str] = orm.mapped_column(ID, primary_key=True, index=True)
    status: orm.Mapped[str] = orm.mapped_column(sa.String(20))
    created_at: orm.Mapped[datetime.datetime] = orm.mapped_column(default=utcnow)
    updated_at: orm.Mapped[datetime.datetime] = orm.mapped_column(default=utcnow)


class Task(Base):
    """A Glance task: asynchronous work a project asked for, and how it ended.

    ``status`` goes ``pending`` -> ``processing`` -> ``success`` or
    ``failure``; while processing, the worker refreshes ``updated_at`` (its
    heartbeat), so a task whose worker died is failed by the recovery.
    ``expires_at`` is set when the task ends: after it the row is removed.
    """

    __tablename__ = "image_tasks"
    __table_args__ = (
        sa.Index("ix_image_tasks_owner_created_at", "owner", "created_at"),
        sa.Index("ix_image_tasks_status_updated_at", "status", "updated_at"),
    )

    id: orm.Mapped[str] = orm.mapped_column(sa.String(36), primary_key=True)
    type: orm.Mapped[str] = orm.mapped_column(sa.String(30))
    status: orm.Mapped[str] = orm.mapped_column(sa.String(30))
    owner: orm.Mapped[str] = orm.mapped_column(ID)
    input: orm.Mapped[dict[str, object] | None] = orm.mapped_column(sa.JSON)
    result: orm.Mapped[dict[str, object] | None] = orm.mapped_column(sa.JSON)
    message: orm.Mapped[str] = orm.mapped_column(sa.Text, default="")
    image_id: orm.Mapped[str | None] = orm.mapped_column(sa.String(36), index=True)
    request_id: orm.Mapped[str | None] = orm.mapped_column(sa.String(64))
    user_id: orm.Mapped[str | None] = orm.mapped_column(ID)
    expires_at: orm.Mapped[datetime.datetime | None] = orm.mapped_column(index=True)
    created_at: orm.Mapped[datetime.datetime] = orm.mapped_column(default=utcnow)
    updated_at: orm.Mapped[datetime.datetime] = orm.mapped_column(default=utcnow)


# -- metadata definitions (Glance's metadefs) --------------------------------


def _namespace_fk() -> orm.Mapped[int]:
    # First in the table, so first in the primary key: session.get(model, (namespace_id, name)).
    return orm.mapped_column(
        sa.ForeignKey("metadef_namespaces.id", ondelete="CASCADE"), primary_key=True, sort_order=-2
    )


class _Stamped:
    """When a metadata definition was created and last changed."""

    created_at: orm.Mapped[datetime.datetime] = orm.mapped_column(default=utcnow)
    updated_at: orm.Mapped[datetime.datetime] = orm.mapped_column(default=utcnow)


class _Member(_Stamped):
    """What a namespace's objects, properties and tags share: their key, its name and one."""

    @orm.declared_attr
    def namespace_id(cls) -> orm.Mapped[int]:
        return _namespace_fk()

    name: orm.Mapped[str] = orm.mapped_column(sa.String(80), primary_key=True, sort_order=-1)


class MetadefNamespace(_Stamped, Base):
    """A metadata definition namespace: a named catalogue of properties, objects and tags.

    ``namespace`` is its name in URLs; ``id`` only links the rows that hang off it,
    so a rename touches one row.
    """

    __tablename__ = "metadef_namespaces"

    id: orm.Mapped[int] = orm.mapped_column(primary_key=True, autoincrement=True)
    namespace: orm.Mapped[str] = orm.mapped_column(sa.String(80), unique=True)
    display_name: orm.Mapped[str | None] = orm.mapped_column(sa.String(80))
    description: orm.Mapped[str | None] = orm.mapped_column(sa.Text)
    visibility: orm.Mapped[str] = orm.mapped_column(sa.String(32))
    protected: orm.Mapped[bool] = orm.mapped_column(default=False)
    owner: orm.Mapped[str] = orm.mapped_column(ID, index=True)


class MetadefObject(_Member, Base):
    """A named group of property definitions in a namespace."""

    __tablename__ = "metadef_objects"

    description: orm.Mapped[str | None] = orm.mapped_column(sa.Text)
    required: orm.Mapped[list[str] | None] = orm.mapped_column(sa.JSON)
    properties: orm.Mapped[dict[str, object] | None] = orm.mapped_column(sa.JSON)


class MetadefProperty(_Member, Base):
    """A property definition (a JSON schema fragment) in a namespace."""

    __tablename__ = "metadef_properties"

    schema: orm.Mapped[dict[str, object]] = orm.mapped_column(sa.JSON)


class MetadefTag(_Member, Base):
    __tablename__ = "metadef_tags"


class MetadefResourceType(_Stamped, Base):
    """A kind of resource namespaces apply to (``OS::Glance::Image`` ...)."""

    __tablename__ = "metadef_resource_types"

    id: orm.Mapped[int] = orm.mapped_column(primary_key=True, autoincrement=True)
    name: orm.Mapped[str] = orm.mapped_column(sa.String(80), unique=True)
    protected: orm.Mapped[bool] = orm.mapped_column(default=False)


class MetadefNamespaceResourceType(_Stamped, Base):
    """That a namespace applies to a resource type, with the prefix its properties take."""

    __tablename__ = "metadef_namespace_resource_types"

    namespace_id: orm.Mapped[int] = _namespace_fk()
    resource_type_id: orm.Mapped[int] = orm.mapped_column(
        sa.ForeignKey("metadef_resource_types.id", ondelete="CASCADE"), primary_key=True
    )
    prefix: orm.Mapped[str | None] = orm.mapped_column(sa.String(80))
    properties_target: orm.Mapped[str | None] = orm.mapped_column(sa.String(80))
