"""The image service: image records, visibility, members, tags and the status machine.

Records live in nimbus's database; data lives in an image store
(:mod:`nimbus.drivers.image`), streamed through :mod:`nimbus.image.data`.
Status changes are compare-and-swap updates, so two requests never both
win: ``queued`` -> ``saving`` -> ``active`` (back to ``queued`` when an
upload fails), ``active`` <-> ``deactivated``; a deleted image's row is
removed and its data deleted from the store.

Who sees what follows Glance: owners see their images; everyone sees
``public`` and ``community`` images (community ones are listed only when
asked for); members of a ``shared`` image see it, and list it once they
have accepted; cloud admins see everything.
"""

from __future__ import annotations

import builtins
import dataclasses
import datetime
import logging
import typing
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

import sqlalchemy as sa
from oslo_config import cfg
from sqlalchemy import orm
from sqlalchemy.engine import CursorResult

from nimbus import exception
from nimbus.common.logsafe import printable
from nimbus.context import RequestContext
from nimbus.db import Database
from nimbus.drivers.image import ImageStore
from nimbus.image import models, patch, schema
from nimbus.image import query as queries
from nimbus.image.query import ImageQuery
from nimbus.image.stores import Stores

__all__ = [
    "IMPORT_LOCK",
    "Authorizer",
    "ImageService",
    "StagedData",
    "StoredImage",
    "UploadClaim",
    "utcnow",
]

LOG = logging.getLogger(__name__)

Image = models.Image
_NULL_SORT: dict[str, Any] = {
    "name": "",
    "size": -1,
    "virtual_size": -1,
    "disk_format": "",
    "container_format": "",
    "owner": "",
}
#: The statuses in which an image's data is in its store, for good.
_STORED = ("active", "deactivated")
#: The property naming the import task that holds an image (Glance's import lock).
IMPORT_LOCK = "os_glance_import_task"
#: The stores an import has still to write to, and those it failed in (Glance's names).
IMPORTING = "os_glance_importing_to_stores"
FAILED = "os_glance_failed_import"
#: Properties the openstack client fills with the file's hashes when it knows them.
_DECLARED = {"owner_specified.openstack.md5": "md5", "owner_specified.openstack.sha256": "sha256"}


def utcnow() -> datetime.datetime:
    """Return the current UTC time, naive, as the database stores it."""
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)


def _iso(value: datetime.datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value is not None else None


@dataclasses.dataclass(frozen=True)
class UploadClaim:
    """What an upload holds while its image is ``saving``.

    :param image_id: the image being uploaded to.
    :param upload_id: names the upload; only it may finish or release the image.
    :param disk_format: the image's declared disk format.
    :param declared: the hashes the client declared, by algorithm (``md5``, ``sha256``).
    :param remaining: the bytes the owner's storage quota leaves; ``None`` without one.
    :param used: the bytes the owner stored before this upload.
    """

    image_id: str
    upload_id: str
    disk_format: str | None
    declared: dict[str, str]
    remaining: int | None
    used: int


@dataclasses.dataclass(frozen=True)
class StoredImage:
    """What a download needs of an image's record.

    :param locations: (store id, location) of each store holding the data.
    """

    status: str
    locations: tuple[tuple[str, str], ...]
    size: int | None
    checksum: str | None


@dataclasses.dataclass(frozen=True)
class StagedData:
    """Where an image's staged data is, and what staging it recorded."""

    store: str
    location: str
    size: int
    hash_algo: str | None
    hash_value: str | None


class Authorizer(Protocol):
    """What the service needs from the policy enforcer."""

    def authorize(
        self, ctx: RequestContext, action: str, target: dict[str, Any] | None = None
    ) -> None:
        """Raise PolicyNotAuthorized unless *ctx* may do *action* on *target*."""


class Notifier(Protocol):
    """What the service needs to publish notifications."""

    def info(self, ctx: RequestContext, event_type: str, payload: dict[str, Any]) -> None:
        """Publish an ``info`` notification."""


@dataclasses.dataclass(eq=False)
class ImageService:
    """Images, their members and tags, ready for the API.

    :param conf: the nimbus config (``[image]``).
    :param db: nimbus's database (schema already upgraded).
    :param store: the default image store (the one store, without several).
    :param enforcer: checks policy rules (``image:*``).
    :param notifier: publishes ``image.*`` notifications; none if ``None``.
    :param stores: every store by id; by default *store* alone, under the
        id ``[image] store``.
    """

    conf: cfg.ConfigOpts
    db: Database
    store: ImageStore
    enforcer: Authorizer
    _: dataclasses.KW_ONLY
    notifier: Notifier | None = None
    stores: Stores = dataclasses.field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        # A single-store service copied with another store (dataclasses.replace)
        # takes that store.
        single = self.stores is None or not self.stores.multiple
        if single and (self.stores is None or self.stores.default_store is not self.store):
            self.stores = Stores.single(self.store, self.conf.image.store)
        else:
            self.store = self.stores.default_store

    # -- helpers -----------------------------------------------------------

    def notify(self, ctx: RequestContext, event_type: str, payload: dict[str, Any]) -> None:
        """Publish a notification; a bus failure is logged, never raised."""
        if self.notifier is None:
            return
        try:
            self.notifier.info(ctx, event_type, payload)
        except Exception:
            LOG.warning("Could not publish %s notification", event_type, exc_info=True)

    @staticmethod
    def target(row: models.Image) -> dict[str, Any]:
        """Return the policy target of an image."""
        # An ownerless image (an admin may make one) must match no project,
        # not the "None" a token without a project would render as.
        owner = row.owner if row.owner is not None else ""
        return {
            "project_id": owner,
            "owner": owner,
            "visibility": row.visibility,
            "image_id": row.id,
        }

    def authorize(self, ctx: RequestContext, action: str, row: models.Image | None = None) -> None:
        """Check the ``image:<action>`` rule against *row* (raises PolicyNotAuthorized)."""
        self.enforcer.authorize(ctx, f"image:{action}", self.target(row) if row else {})

    @staticmethod
    def _member_exists(project_id: str | None, status: str | None = None) -> Any:
        clause = sa.exists().where(
            models.ImageMember.image_id == Image.id, models.ImageMember.member == project_id
        )
        if status is not None:
            clause = clause.where(models.ImageMember.status == status)
        return clause

    def _visible(self, session: orm.Session, ctx: RequestContext, row: models.Image) -> bool:
        if ctx.is_admin or (row.owner is not None and row.owner == ctx.project_id):
            return True
        if row.visibility in ("public", "community"):
            return True
        if row.visibility == "shared" and ctx.project_id:
            found = session.get(models.ImageMember, (row.id, ctx.project_id))
            return found is not None
        return False

    def load(
        self, session: orm.Session, ctx: RequestContext, image_id: str, *, lock: bool = False
    ) -> models.Image:
        """Return an image's row if the caller can see it (locked for update with *lock*).

        :raises NotFound: no such image, or not visible to the caller.
        """
        stmt = sa.select(Image).where(Image.id == image_id)
        if lock:
            stmt = stmt.with_for_update()
        row = session.execute(stmt).scalar_one_or_none()
        if row is None or not self._visible(session, ctx, row):
            raise exception.NotFound(message=f"No image found with ID {image_id}")
        return row

    @staticmethod
    def _extras(
        session: orm.Session, image_ids: Sequence[str]
    ) -> tuple[dict[str, dict[str, str]], dict[str, list[str]]]:
        props: dict[str, dict[str, str]] = {i: {} for i in image_ids}
        tags: dict[str, list[str]] = {i: [] for i in image_ids}
        if not image_ids:
            return props, tags
        for image_id, name, value in session.execute(
            sa.select(
                models.ImageProperty.image_id, models.ImageProperty.name, models.ImageProperty.value
            ).where(models.ImageProperty.image_id.in_(image_ids))
        ):
            props[image_id][name] = value
        for image_id, value in session.execute(
            sa.select(models.ImageTag.image_id, models.ImageTag.value)
            .where(models.ImageTag.image_id.in_(image_ids))
            .order_by(models.ImageTag.image_id, models.ImageTag.value)
        ):
            tags[image_id].append(value)
        return props, tags

    @staticmethod
    def _stores_of(session: orm.Session, image_ids: Sequence[str]) -> dict[str, list[str]]:
        """Return the ids of the stores holding each image's data, sorted."""
        found: dict[str, list[str]] = {i: [] for i in image_ids}
        if not image_ids:
            return found
        for image_id, store in session.execute(
            sa.select(models.ImageLocation.image_id, models.ImageLocation.store)
            .where(models.ImageLocation.image_id.in_(image_ids))
            .order_by(models.ImageLocation.image_id, models.ImageLocation.store)
        ):
            found[image_id].append(store)
        return found

    @staticmethod
    def locations_of(session: orm.Session, image_id: str) -> dict[str, str]:
        """Return each store holding *image_id*'s data and its location there."""
        return {
            store: location
            for store, location in session.execute(
                sa.select(models.ImageLocation.store, models.ImageLocation.location)
                .where(models.ImageLocation.image_id == image_id)
                .order_by(models.ImageLocation.store)
            )
        }

    def _take_locations(self, session: orm.Session, image_id: str) -> dict[str, str]:
        """Forget every location of *image_id*; return them, for their data to be deleted."""
        locations = self.locations_of(session, image_id)
        session.execute(
            sa.delete(models.ImageLocation).where(models.ImageLocation.image_id == image_id)
        )
        return locations

    def _default_first(self, locations: Mapping[str, str]) -> builtins.list[tuple[str, str]]:
        """Return (store id, location) pairs, the default store's first, then the others by id."""
        return sorted(locations.items(), key=lambda item: item[0] != self.stores.default)

    def view(
        self,
        row: models.Image,
        props: dict[str, str],
        tags: list[str],
        stores: Sequence[str] = (),
    ) -> dict[str, Any]:
        """Return an image as the API shows it (without its links).

        An image whose data is stored names the stores holding it in
        ``stores``, comma-separated and sorted, as Glance does with several
        stores (tempest compares it with the sorted list).
        """
        stored = {"stores": ",".join(stores)} if stores and row.status in _STORED else {}
        return {
            **stored,
            **props,
            "id": row.id,
            "name": row.name,
            "status": row.status,
            "visibility": row.visibility,
            "protected": row.protected,
            "os_hidden": row.os_hidden,
            "owner": row.owner,
            "size": row.size,
            "virtual_size": row.virtual_size,
            "disk_format": row.disk_format,
            "container_format": row.container_format,
            "checksum": row.checksum,
            "os_hash_algo": row.os_hash_algo,
            "os_hash_value": row.os_hash_value,
            "min_disk": row.min_disk,
            "min_ram": row.min_ram,
            "tags": tags,
            "created_at": _iso(row.created_at),
            "updated_at": _iso(row.updated_at),
        }

    def view_one(self, session: orm.Session, row: models.Image) -> dict[str, Any]:
        """Return the API view of *row*, with its properties and tags."""
        props, tags = self._extras(session, [row.id])
        stores = self._stores_of(session, [row.id])
        return self.view(row, props[row.id], tags[row.id], stores[row.id])

    @staticmethod
    def _over(limit: int, count: int) -> bool:
        return limit >= 0 and count > limit

    def _check_one_more(
        self, session: orm.Session, model: Any, image_id: str, resource: str, limit: int
    ) -> None:
        """Raise QuotaExceeded unless an image may hold one more row of *model*."""
        count = session.execute(
            sa.select(sa.func.count()).select_from(model).where(model.image_id == image_id)
        ).scalar_one()
        if self._over(limit, count + 1):
            raise exception.QuotaExceeded(resource=resource, requested=1, used=count, limit=limit)

    # -- images --------------------------------------------------------------

    def create(self, ctx: RequestContext, values: dict[str, Any]) -> dict[str, Any]:
        """Create a queued image from validated create-request *values*.

        :raises Forbidden: policy refuses, or a read-only attribute is given.
        :raises Conflict: an image with the requested id exists.
        :raises QuotaExceeded: the project owns ``image_count_quota`` images.
        """
        values = dict(values)
        image_id = values.pop("id", None) or str(uuid.uuid4())
        owner = values.pop("owner", None) or ctx.project_id
        if owner is None:
            raise exception.Forbidden(
                message="Images belong to projects: use a project-scoped token to create one."
            )
        if owner != ctx.project_id and not ctx.is_admin:
            raise exception.Forbidden(
                message=f"You are not permitted to create images owned by '{owner}'."
            )
        visibility = values.pop("visibility", None) or "shared"
        tags = list(dict.fromkeys(values.pop("tags", None) or []))
        core = {name: values.pop(name) for name in schema.CORE_COLUMNS if name in values}
        core = {name: value for name, value in core.items() if value is not None}
        props = {name: value for name, value in values.items() if value is not None}
        self._check_limits(props, tags)
        probe = Image(id=image_id, owner=owner, visibility=visibility)
        self.authorize(ctx, "add_image", probe)
        self._check_visibility(ctx, probe, visibility)
        now = utcnow()

        def write(session: orm.Session) -> dict[str, Any]:
            if session.get(Image, image_id) is not None:
                raise exception.Conflict(
                    message=f"Image with identifier {image_id} already exists!"
                )
            limit = self.conf.image.image_count_quota
            if limit >= 0 and owner is not None:
                used = session.execute(
                    sa.select(sa.func.count()).select_from(Image).where(Image.owner == owner)
                ).scalar_one()
                if used + 1 > limit:
                    raise exception.QuotaExceeded(
                        resource="image_count", requested=1, used=used, limit=limit
                    )
            row = Image(
                id=image_id,
                status="queued",
                visibility=visibility,
                owner=owner,
                protected=bool(core.pop("protected", False)),
                os_hidden=bool(core.pop("os_hidden", False)),
                min_disk=int(core.pop("min_disk", 0)),
                min_ram=int(core.pop("min_ram", 0)),
                created_at=now,
                updated_at=now,
                **core,
            )
            session.add(row)
            session.flush()
            session.add_all(
                models.ImageProperty(image_id=image_id, name=k, value=v) for k, v in props.items()
            )
            session.add_all(models.ImageTag(image_id=image_id, value=t) for t in tags)
            session.flush()
            return self.view(row, props, sorted(tags))

        image = self.db.write(write)
        self.notify(ctx, "image.create", image)
        return image

    def _check_limits(self, props: dict[str, Any], tags: Sequence[str]) -> None:
        conf = self.conf.image
        if self._over(conf.image_property_quota, len(props)):
            raise exception.QuotaExceeded(
                resource="image properties",
                requested=len(props),
                used=0,
                limit=conf.image_property_quota,
            )
        if self._over(conf.image_tag_quota, len(tags)):
            raise exception.QuotaExceeded(
                resource="image tags", requested=len(tags), used=0, limit=conf.image_tag_quota
            )

    def _check_visibility(self, ctx: RequestContext, row: models.Image, visibility: str) -> None:
        if visibility == "public":
            self.authorize(ctx, "publicize_image", row)
        elif visibility == "community":
            self.authorize(ctx, "communitize_image", row)

    def get(self, ctx: RequestContext, image_id: str) -> dict[str, Any]:
        """Return one image the caller can see.

        :raises NotFound: no such image, or not visible to the caller.
        """
        with self.db.reader() as session:
            row = self.load(session, ctx, image_id)
            self.authorize(ctx, "get_image", row)
            return self.view_one(session, row)

    def _sort_column(self, key: str) -> Any:
        column = getattr(Image, key)
        if key in _NULL_SORT:
            return sa.func.coalesce(column, _NULL_SORT[key])
        return column

    def _list_clause(self, ctx: RequestContext, query: ImageQuery) -> Any:
        project = ctx.project_id
        status = None if query.member_status == "all" else query.member_status
        member: sa.ColumnElement[bool]
        owned: sa.ColumnElement[bool]
        if project is None:
            member, owned = sa.false(), sa.false()
        else:
            member, owned = self._member_exists(project, status), Image.owner == project
        visibility = query.visibility
        if visibility in ("public", "community"):
            return Image.visibility == visibility
        if ctx.is_admin:
            if visibility in (None, "all"):
                return sa.true()
            return Image.visibility == visibility
        if visibility == "private":
            return sa.and_(Image.visibility == "private", owned)
        if visibility == "shared":
            return sa.and_(Image.visibility == "shared", sa.or_(owned, member))
        listed = sa.or_(
            owned, Image.visibility == "public", sa.and_(Image.visibility == "shared", member)
        )
        if visibility == "all":
            return sa.or_(listed, Image.visibility == "community")
        return listed

    def list_query(self, params: Mapping[str, Any]) -> ImageQuery:
        """Return the list query of request *params*, paged by ``[image]``'s limits.

        :param params: name to value, or to a list of values for repeated names.
        :raises BadRequest: a parameter has an invalid value.
        """
        conf = self.conf.image
        return queries.parse(
            params, default_limit=conf.limit_param_default, max_limit=conf.api_limit_max
        )

    def list(self, ctx: RequestContext, query: ImageQuery) -> tuple[list[dict[str, Any]], bool]:
        """Return one page of the images the caller may list, and whether more follow.

        :raises BadRequest: the marker is not an image the caller can see.
        """
        self.authorize(ctx, "get_images")
        stmt = sa.select(Image).where(self._list_clause(ctx, query))
        for column, values in query.equals.items():
            attr = getattr(Image, column)
            stmt = stmt.where(attr == values[0] if len(values) == 1 else attr.in_(values))
        for column, op, value in query.ranges:
            stmt = stmt.where(_compare(getattr(Image, column), op, value))
        for tag in query.tags:
            stmt = stmt.where(
                sa.exists().where(
                    models.ImageTag.image_id == Image.id, models.ImageTag.value == tag
                )
            )
        for name, value in query.properties.items():
            stmt = stmt.where(
                sa.exists().where(
                    models.ImageProperty.image_id == Image.id,
                    models.ImageProperty.name == name,
                    models.ImageProperty.value == value,
                )
            )
        if query.protected is not None:
            stmt = stmt.where(Image.protected == query.protected)
        if query.os_hidden is not None:
            stmt = stmt.where(Image.os_hidden == query.os_hidden)
        columns = [self._sort_column(key) for key, _ in query.sort]
        with self.db.reader() as session:
            if query.marker is not None:
                stmt = stmt.where(self._after_marker(session, ctx, query, columns))
            order = [
                c.asc() if d == "asc" else c.desc()
                for c, (_, d) in zip(columns, query.sort, strict=True)
            ]
            rows = session.execute(stmt.order_by(*order).limit(query.limit + 1)).scalars().all()
            more = len(rows) > query.limit
            rows = rows[: query.limit]
            ids = [r.id for r in rows]
            props, tags = self._extras(session, ids)
            stores = self._stores_of(session, ids)
            return [self.view(r, props[r.id], tags[r.id], stores[r.id]) for r in rows], more

    def _after_marker(
        self,
        session: orm.Session,
        ctx: RequestContext,
        query: ImageQuery,
        columns: builtins.list[Any],
    ) -> Any:
        marker = session.get(Image, query.marker)
        if marker is None or not self._visible(session, ctx, marker):
            raise exception.BadRequest(reason=f"Invalid marker: no image with ID {query.marker}.")
        values = session.execute(sa.select(*columns).where(Image.id == marker.id)).one()
        clauses = []
        for index, (column, (_, direction)) in enumerate(zip(columns, query.sort, strict=True)):
            equal = [columns[i] == values[i] for i in range(index)]
            beyond = column > values[index] if direction == "asc" else column < values[index]
            clauses.append(sa.and_(*equal, beyond))
        return sa.or_(*clauses)

    def update(
        self, ctx: RequestContext, image_id: str, changes: builtins.list[patch.Change]
    ) -> dict[str, Any]:
        """Apply a JSON patch to an image and return it.

        :raises NotFound: no such image visible to the caller.
        :raises Forbidden: policy, read-only attributes, formats after upload.
        :raises Conflict: property present/missing as the patch requires.
        """

        def write(session: orm.Session) -> dict[str, Any]:
            row = self.load(session, ctx, image_id, lock=True)
            self.authorize(ctx, "modify_image", row)
            props, tags = self._extras(session, [row.id])
            current: dict[str, Any] = {name: getattr(row, name) for name in schema.CORE_COLUMNS}
            current.update(props[row.id], tags=tags[row.id])
            result = patch.apply(
                self.conf, current, changes, status=row.status, may_set_owner=ctx.is_admin
            )
            new_tags = result.pop("tags")
            new_core = {name: result.pop(name) for name in schema.CORE_COLUMNS}
            new_props = result
            self._check_limits(new_props, new_tags)
            if new_core["visibility"] != row.visibility:
                self._check_visibility(ctx, row, new_core["visibility"])
            for name, value in new_core.items():
                if name in ("protected", "os_hidden", "min_disk", "min_ram") and value is None:
                    raise exception.ValidationError(field=name, reason="may not be null")
                setattr(row, name, value)
            old_props = props[row.id]
            for name in old_props.keys() - new_props.keys():
                session.execute(
                    sa.delete(models.ImageProperty).where(
                        models.ImageProperty.image_id == row.id, models.ImageProperty.name == name
                    )
                )
            for name, value in new_props.items():
                if name not in old_props:
                    session.add(models.ImageProperty(image_id=row.id, name=name, value=value))
                elif old_props[name] != value:
                    session.get_one(models.ImageProperty, (row.id, name)).value = value
            self._replace_tags(session, row.id, tags[row.id], new_tags)
            row.updated_at = utcnow()
            session.flush()
            stores = self._stores_of(session, [row.id])[row.id]
            return self.view(row, new_props, sorted(new_tags), stores)

        image = self.db.write(write)
        self.notify(ctx, "image.update", image)
        return image

    @staticmethod
    def _replace_tags(
        session: orm.Session, image_id: str, old: Iterable[str], new: Iterable[str]
    ) -> None:
        old_set, new_set = set(old), set(new)
        gone = old_set - new_set
        if gone:
            session.execute(
                sa.delete(models.ImageTag).where(
                    models.ImageTag.image_id == image_id, models.ImageTag.value.in_(gone)
                )
            )
        session.add_all(
            models.ImageTag(image_id=image_id, value=t) for t in sorted(new_set - old_set)
        )

    def delete(self, ctx: RequestContext, image_id: str) -> None:
        """Delete an image and its data.

        :raises Forbidden: policy refuses, or the image is protected.
        """

        def write(session: orm.Session) -> tuple[dict[str, Any], dict[str, str]]:
            row = self.load(session, ctx, image_id, lock=True)
            self.authorize(ctx, "delete_image", row)
            if row.protected:
                raise exception.Forbidden(
                    message=f"Image {image_id} is protected and cannot be deleted."
                )
            image = self.view_one(session, row)
            locations = self._take_locations(session, image_id)
            session.delete(row)
            return image, locations

        image, locations = self.db.write(write)
        for store_id, location in locations.items():
            self.delete_data(location, store_id)
        image["status"] = "deleted"
        self.notify(ctx, "image.delete", image)

    def store_of(self, store_id: str | None) -> ImageStore:
        """Return the store *store_id* (the default one for ``None`` or a store no longer enabled).

        A location recorded under a store id that is no longer configured
        (a cloud that went from one store to several) is looked for in the
        default store, whose location check refuses it if it is not there.
        """
        if store_id is None:
            return self.store
        return self.stores.get(store_id) or self.store

    def delete_data(self, location: str, store_id: str | None = None) -> None:
        """Remove data from a store, logging (not raising) a failure."""
        try:
            self.store_of(store_id).delete(location)
        except exception.NimbusException:
            LOG.exception(
                "Could not delete image data at %s (store %s); it is orphaned", location, store_id
            )

    def remove_from_store(self, ctx: RequestContext, store_id: str, image_id: str) -> None:
        """Remove an active image's data from one store (``DELETE /v2/stores/...``, Glance 2.10).

        :raises NotFound: no such image visible to the caller, the image is
            not in that store, or the cloud has one store only.
        :raises Conflict: no such store, or the image is not active.
        :raises Forbidden: policy, or the store holds the image's last copy.
        """
        if not self.stores.multiple:
            raise exception.NotFound(message="The resource could not be found.")
        if store_id not in self.stores:
            raise exception.Conflict(
                message=f"The selected store {printable(store_id)[:80]} is not available on"
                " this node."
            )

        def write(session: orm.Session) -> tuple[str, dict[str, Any]]:
            try:
                row = self.load(session, ctx, image_id, lock=True)
            except exception.NotFound:
                raise exception.NotFound(message=f"Failed to find image {image_id}") from None
            self.authorize(ctx, "get_image_location", row)
            self.authorize(ctx, "delete_image_location", row)
            if row.status != "active":
                raise exception.Conflict(
                    message="It's not allowed to remove image data from store if image status"
                    " is not 'active'"
                )
            locations = self.locations_of(session, image_id)
            if len(locations) == 1:
                raise exception.Forbidden(
                    message="Cannot delete image data from the only store containing it."
                    " Consider deleting the image instead."
                )
            if store_id not in locations:
                raise exception.NotFound(
                    message=f"Image {image_id} is not stored in store {store_id}."
                )
            session.execute(
                sa.delete(models.ImageLocation).where(
                    models.ImageLocation.image_id == image_id,
                    models.ImageLocation.store == store_id,
                )
            )
            row.updated_at = utcnow()
            session.flush()
            return locations[store_id], self.view_one(session, row)

        location, image = self.db.write(write)
        self.delete_data(location, store_id)
        self.notify(ctx, "image.update", image)

    def _transition(
        self,
        ctx: RequestContext,
        image_id: str,
        action: str,
        allowed: dict[str, str],
    ) -> dict[str, Any]:
        def write(session: orm.Session) -> dict[str, Any]:
            row = self.load(session, ctx, image_id, lock=True)
            self.authorize(ctx, action, row)
            if row.status not in allowed:
                raise exception.Forbidden(
                    message=f"Not allowed to {action} an image in status '{row.status}'."
                )
            if row.status != allowed[row.status]:
                row.status = allowed[row.status]
                row.updated_at = utcnow()
            return self.view_one(session, row)

        image = self.db.write(write)
        self.notify(ctx, f"image.{action}", image)
        return image

    # -- interoperable import ---------------------------------------------------

    def begin_import(
        self,
        ctx: RequestContext,
        image_id: str,
        method: str,
        task_id: str,
        stores: Sequence[str],
        *,
        all_stores: bool = False,
    ) -> builtins.list[str]:
        """Lock an image for the import task *task_id*; return the stores to import to.

        ``glance-direct`` moves the staged image to ``importing``;
        ``copy-image`` leaves the active image as it is.  The task's id is
        the image's ``os_glance_import_task`` property, the lock Glance puts
        on an image under import, until the import ends; the stores still
        to do are in ``os_glance_importing_to_stores`` and those that failed
        in ``os_glance_failed_import``, as Glance keeps them.

        :param stores: the stores the request asked for (checked).
        :param all_stores: the request asked for every store: ``copy-image``
            then leaves out the stores that hold the image already.
        :returns: the stores to import to; empty when a ``copy-image`` to
            every store finds the image in all of them (no task runs).
        :raises NotFound: no such image visible to the caller.
        :raises PolicyNotAuthorized: the caller may not modify (or copy) the image.
        :raises Conflict: the image is not in the state *method* needs, its
            formats are unset, or another import holds it.
        :raises BadRequest: ``copy-image`` to a store that holds the image.
        """

        def write(session: orm.Session) -> builtins.list[str]:
            row = self.load(session, ctx, image_id, lock=True)
            copying = method == "copy-image"
            if row.status == "active" and not copying:
                raise exception.Conflict(
                    message="Image with status active cannot be target for import"
                )
            if row.status != "active" and copying:
                raise exception.Conflict(
                    message="Only images with status active can be targeted for copying"
                )
            if method == "glance-direct" and row.status != "uploading":
                raise exception.Conflict(
                    message="Image needs to be staged before 'glance-direct' method can be used"
                )
            for name in ("container_format", "disk_format"):
                if not getattr(row, name):
                    raise exception.Conflict(message=f"'{name}' needs to be set before import")
            self.authorize(ctx, "copy_image" if copying else "modify_image", row)
            if session.get(models.ImageProperty, (image_id, IMPORT_LOCK)) is not None:
                raise exception.Conflict(message=f"Image {image_id} has an import in progress")
            targets = list(stores)
            if copying:
                held = self.locations_of(session, image_id)
                if all_stores:
                    targets = [store for store in targets if store not in held]
                    if not targets:
                        return []
                for store in targets:
                    if store in held:
                        raise exception.BadRequest(
                            reason=f"Image is already present at store '{store}'"
                        )
            else:
                row.status = "importing"
            row.updated_at = utcnow()
            # As Glance: the stores join those to do and leave those that
            # failed before; both lists sorted.
            importing = set(self._store_list(session, image_id, IMPORTING)) | set(targets)
            failed = set(self._store_list(session, image_id, FAILED)) - set(targets)
            self._set_props(
                session,
                image_id,
                {IMPORT_LOCK: task_id, IMPORTING: _joined(importing), FAILED: _joined(failed)},
            )
            return targets

        return self.db.write(write)

    @staticmethod
    def _set_props(session: orm.Session, image_id: str, values: Mapping[str, str]) -> None:
        for name, value in values.items():
            found = session.get(models.ImageProperty, (image_id, name))
            if found is None:
                session.add(models.ImageProperty(image_id=image_id, name=name, value=value))
            else:
                found.value = value

    @staticmethod
    def _store_list(session: orm.Session, image_id: str, name: str) -> builtins.list[str]:
        found = session.get(models.ImageProperty, (image_id, name))
        return [s for s in found.value.split(",") if s] if found is not None else []

    def _held(self, session: orm.Session, image_id: str, task_id: str) -> models.Image | None:
        """Return the image (locked) if the import *task_id* still holds it."""
        lock = session.get(models.ImageProperty, (image_id, IMPORT_LOCK), with_for_update=True)
        row = session.get(Image, image_id, with_for_update=True)
        if lock is None or lock.value != task_id or row is None:
            return None
        return row

    def _store_done(
        self, session: orm.Session, image_id: str, store_id: str, *, failed: bool
    ) -> None:
        """Take *store_id* off the stores an import is doing (onto the failed ones)."""
        importing = set(self._store_list(session, image_id, IMPORTING)) - {store_id}
        values = {IMPORTING: _joined(importing)}
        if failed:
            failures = set(self._store_list(session, image_id, FAILED)) | {store_id}
            values[FAILED] = _joined(failures)
        self._set_props(session, image_id, values)

    def add_location(self, image_id: str, task_id: str, store_id: str, location: str) -> bool:
        """Record that the import *task_id* wrote the image's data to *store_id*.

        :returns: False if the import no longer holds the image (deleted,
            or ended by the recovery): the caller removes what it wrote.
        """

        def write(session: orm.Session) -> bool:
            row = self._held(session, image_id, task_id)
            if row is None:
                return False
            session.merge(
                models.ImageLocation(
                    image_id=image_id, store=store_id, location=location, created_at=utcnow()
                )
            )
            self._store_done(session, image_id, store_id, failed=False)
            row.updated_at = utcnow()
            return True

        return self.db.write(write)

    def import_failed_in(self, image_id: str, task_id: str, store_id: str) -> None:
        """Record that the import *task_id* could not write to *store_id* (it goes on)."""

        def write(session: orm.Session) -> None:
            row = self._held(session, image_id, task_id)
            if row is not None:
                self._store_done(session, image_id, store_id, failed=True)
                row.updated_at = utcnow()

        self.db.write(write)

    def drop_location(self, image_id: str, store_id: str) -> None:
        """Forget the image's data in *store_id* and remove it from the store."""

        def write(session: orm.Session) -> str | None:
            found = session.get(models.ImageLocation, (image_id, store_id), with_for_update=True)
            if found is None:
                return None
            session.delete(found)
            return found.location

        location = self.db.write(write)
        if location:
            self.delete_data(location, store_id)

    def adopt_locations(self, old_store: str) -> int:
        """Record the locations of *old_store* under the default store; return how many moved.

        For a store id no longer enabled whose data the default store now
        keeps (the single ``file`` store of a state directory made before
        ``nimbus up`` ran two stores: its default store took that
        directory).  Without this such an image would show a store that is
        not listed, and a copy to the default store would write over the
        data it reads, which removing one store's copy would then delete.
        A location the default store already has for that image is kept.
        """
        default = self.stores.default

        def write(session: orm.Session) -> int:
            held = sa.select(models.ImageLocation.image_id).where(
                models.ImageLocation.store == default
            )
            moved = session.execute(
                sa.update(models.ImageLocation)
                .where(
                    models.ImageLocation.store == old_store,
                    models.ImageLocation.image_id.not_in(held),
                )
                .values(store=default)
                .execution_options(synchronize_session=False)
            )
            return typing.cast(CursorResult[Any], moved).rowcount

        count = self.db.write(write)
        if count:
            LOG.info("Recorded %d image(s) of store %s under store %s", count, old_store, default)
        return count

    def stored_locations(self, image_id: str) -> dict[str, str]:
        """Return each store holding an image's data and its location there."""
        with self.db.reader() as session:
            return self.locations_of(session, image_id)

    def end_import(self, image_id: str, task_id: str, *, succeeded: bool) -> dict[str, Any] | None:
        """End the import *task_id* holds: ``importing`` -> ``active``, or back to ``queued``.

        A failed ``glance-direct`` import drops the staged data and whatever
        it wrote to other stores (Glance's revert), so the image takes a new
        stage or upload.  A ``copy-image`` leaves the image active.  The
        stores the import did not get to are added to
        ``os_glance_failed_import``.

        :returns: the image, or None if the import no longer held it
            (deleted, or ended by the recovery).
        """

        def write(session: orm.Session) -> tuple[dict[str, Any] | None, dict[str, str]]:
            row = self._held(session, image_id, task_id)
            if row is None:
                return None, {}
            lock = session.get_one(models.ImageProperty, (image_id, IMPORT_LOCK))
            session.delete(lock)
            left = set(self._store_list(session, image_id, IMPORTING))
            failures = set(self._store_list(session, image_id, FAILED)) | left
            self._set_props(session, image_id, {IMPORTING: "", FAILED: _joined(failures)})
            locations: dict[str, str] = {}
            row.updated_at = utcnow()
            if row.status == "importing":
                if succeeded:
                    row.status = "active"
                else:
                    locations = self._take_locations(session, image_id)
                    row.status = "queued"
                    for name in (
                        "size",
                        "virtual_size",
                        "checksum",
                        "os_hash_algo",
                        "os_hash_value",
                    ):
                        setattr(row, name, None)
            session.flush()
            return self.view_one(session, row), locations

        image, locations = self.db.write(write)
        for store_id, location in locations.items():
            self.delete_data(location, store_id)
        return image

    def staged_data(self, image_id: str) -> StagedData:
        """Return where an importing image's staged data is and what it hashed to.

        :raises Conflict: the image is not importing, or has no data.
        """
        return self._data_of(image_id, "importing", "has no staged data to import")

    def stored_data(self, image_id: str) -> StagedData:
        """Return where an active image's data is (a store holding it) and its hash.

        The default store is preferred when it holds the data.

        :raises Conflict: the image is not active, or has no data.
        """
        return self._data_of(image_id, "active", "has no data to copy")

    def _data_of(self, image_id: str, status: str, missing: str) -> StagedData:
        """Return a store holding the data of *image_id*, in *status* (the default store first).

        :raises Conflict: the image is not in *status*, or has no data (*missing* says so).
        """
        with self.db.reader() as session:
            row = session.get(Image, image_id)
            locations = self.locations_of(session, image_id) if row is not None else {}
            if row is None or row.status != status or not locations:
                raise exception.Conflict(message=f"Image {image_id} {missing}.")
            store, location = self._default_first(locations)[0]
            return StagedData(store, location, row.size or 0, row.os_hash_algo, row.os_hash_value)

    def imports_of_ended_tasks(self) -> builtins.list[tuple[str, str]]:
        """Return (image id, task id) of images still locked by an import task that ended."""
        stmt = (
            sa.select(Image.id, models.ImageProperty.value)
            .join(models.ImageProperty, models.ImageProperty.image_id == Image.id)
            .outerjoin(models.Task, models.Task.id == models.ImageProperty.value)
            .where(
                Image.status.in_(("importing", "active", "deactivated")),
                models.ImageProperty.name == IMPORT_LOCK,
                sa.or_(models.Task.id.is_(None), models.Task.status.in_(("success", "failure"))),
            )
        )
        with self.db.reader() as session:
            return [(image_id, task_id) for image_id, task_id in session.execute(stmt)]

    def deactivate(self, ctx: RequestContext, image_id: str) -> dict[str, Any]:
        """Make an active image's data unavailable to non-admins."""
        return self._transition(
            ctx, image_id, "deactivate", {"active": "deactivated", "deactivated": "deactivated"}
        )

    def reactivate(self, ctx: RequestContext, image_id: str) -> dict[str, Any]:
        """Make a deactivated image active again."""
        return self._transition(
            ctx, image_id, "reactivate", {"deactivated": "active", "active": "active"}
        )

    # -- tags ----------------------------------------------------------------

    def add_tag(self, ctx: RequestContext, image_id: str, tag: str) -> None:
        """Add a tag (adding a present tag is fine).

        :raises QuotaExceeded: the image has ``image_tag_quota`` tags.
        """
        if not tag or len(tag) > 255:
            raise exception.BadRequest(reason="A tag must be 1 to 255 characters long.")

        def write(session: orm.Session) -> None:
            row = self.load(session, ctx, image_id, lock=True)
            self.authorize(ctx, "modify_image", row)
            if session.get(models.ImageTag, (row.id, tag)) is not None:
                return
            self._check_one_more(
                session, models.ImageTag, row.id, "image tags", self.conf.image.image_tag_quota
            )
            session.add(models.ImageTag(image_id=row.id, value=tag))
            row.updated_at = utcnow()

        self.db.write(write)

    def remove_tag(self, ctx: RequestContext, image_id: str, tag: str) -> None:
        """Remove a tag.

        :raises NotFound: the image has no such tag.
        """

        def write(session: orm.Session) -> None:
            row = self.load(session, ctx, image_id, lock=True)
            self.authorize(ctx, "modify_image", row)
            found = session.get(models.ImageTag, (row.id, tag))
            if found is None:
                raise exception.NotFound(message=f"Tag {tag} not found on image {image_id}.")
            session.delete(found)
            row.updated_at = utcnow()

        self.db.write(write)

    # -- members -------------------------------------------------------------

    @staticmethod
    def member_view(member: models.ImageMember) -> dict[str, Any]:
        """Return a membership as the API shows it."""
        return {
            "image_id": member.image_id,
            "member_id": member.member,
            "status": member.status,
            "created_at": _iso(member.created_at),
            "updated_at": _iso(member.updated_at),
        }

    def _shared(self, row: models.Image) -> None:
        if row.visibility != "shared":
            raise exception.Forbidden(
                message=f"Image {row.id} is '{row.visibility}': only shared images have members."
            )

    def add_member(self, ctx: RequestContext, image_id: str, member_id: str) -> dict[str, Any]:
        """Share an image with a project (status ``pending``).

        :raises Forbidden: not the owner, or the image is not ``shared``.
        :raises Conflict: the project already is a member.
        :raises QuotaExceeded: the image has ``image_member_quota`` members.
        """

        def write(session: orm.Session) -> dict[str, Any]:
            row = self.load(session, ctx, image_id, lock=True)
            self.authorize(ctx, "add_member", row)
            if row.owner != ctx.project_id and not ctx.is_admin:
                raise exception.Forbidden(message="Only the image's owner may add members.")
            self._shared(row)
            if session.get(models.ImageMember, (row.id, member_id)) is not None:
                raise exception.Conflict(
                    message=f"Project {member_id} is already a member of image {image_id}."
                )
            self._check_one_more(
                session,
                models.ImageMember,
                row.id,
                "image members",
                self.conf.image.image_member_quota,
            )
            now = utcnow()
            member = models.ImageMember(
                image_id=row.id, member=member_id, status="pending", created_at=now, updated_at=now
            )
            session.add(member)
            session.flush()
            return self.member_view(member)

        member = self.db.write(write)
        self.notify(ctx, "image.member.create", member)
        return member

    def _member_rows(
        self, session: orm.Session, ctx: RequestContext, row: models.Image
    ) -> builtins.list[models.ImageMember]:
        stmt = sa.select(models.ImageMember).where(models.ImageMember.image_id == row.id)
        if not (ctx.is_admin or row.owner == ctx.project_id):
            # A member sees its own membership only.
            stmt = stmt.where(models.ImageMember.member == ctx.project_id)
        return list(session.execute(stmt.order_by(models.ImageMember.member)).scalars())

    def list_members(self, ctx: RequestContext, image_id: str) -> builtins.list[dict[str, Any]]:
        """Return the members the caller may see: all for the owner, its own for a member."""
        with self.db.reader() as session:
            row = self.load(session, ctx, image_id)
            self.authorize(ctx, "get_members", row)
            self._shared(row)
            return [self.member_view(m) for m in self._member_rows(session, ctx, row)]

    def get_member(self, ctx: RequestContext, image_id: str, member_id: str) -> dict[str, Any]:
        """Return one membership visible to the caller.

        :raises NotFound: no such member, or not the caller's to see.
        """
        with self.db.reader() as session:
            row = self.load(session, ctx, image_id)
            self.authorize(ctx, "get_member", row)
            for member in self._member_rows(session, ctx, row):
                if member.member == member_id:
                    return self.member_view(member)
        raise exception.NotFound(message=f"Member {member_id} not found for image {image_id}.")

    def update_member(
        self, ctx: RequestContext, image_id: str, member_id: str, status: str
    ) -> dict[str, Any]:
        """Accept or reject a share; only the member project itself may.

        :raises Forbidden: the caller is not that member.
        :raises NotFound: no such member.
        """

        def write(session: orm.Session) -> dict[str, Any]:
            row = self.load(session, ctx, image_id)
            member = session.get(models.ImageMember, (row.id, member_id))
            if member is None:
                raise exception.NotFound(
                    message=f"Member {member_id} not found for image {image_id}."
                )
            self.enforcer.authorize(
                ctx, "image:modify_member", {**self.target(row), "member_id": member_id}
            )
            if ctx.project_id != member_id and not ctx.is_admin:
                raise exception.Forbidden(
                    message="Only the member project may accept or reject an image."
                )
            member.status = status
            member.updated_at = utcnow()
            session.flush()
            return self.member_view(member)

        member = self.db.write(write)
        self.notify(ctx, "image.member.update", member)
        return member

    def delete_member(self, ctx: RequestContext, image_id: str, member_id: str) -> None:
        """Stop sharing an image with a project (the owner's call)."""

        def write(session: orm.Session) -> dict[str, Any]:
            row = self.load(session, ctx, image_id, lock=True)
            self.authorize(ctx, "delete_member", row)
            if row.owner != ctx.project_id and not ctx.is_admin:
                if session.get(models.ImageMember, (row.id, ctx.project_id)) is None:
                    raise exception.NotFound(
                        message=f"Member {member_id} not found for image {image_id}."
                    )
                raise exception.Forbidden(message="Only the image's owner may remove members.")
            member = session.get(models.ImageMember, (row.id, member_id))
            if member is None:
                raise exception.NotFound(
                    message=f"Member {member_id} not found for image {image_id}."
                )
            view = self.member_view(member)
            session.delete(member)
            return view

        member = self.db.write(write)
        self.notify(ctx, "image.member.delete", member)

    # -- used by the data path ----------------------------------------------
    #
    # An upload holds its image in "saving" under an upload id.  While data
    # arrives, the upload refreshes the row's updated_at (its heartbeat);
    # every change it makes is a compare-and-swap on (id, upload_id,
    # "saving"), so once recover_stale_uploads has put a silent upload's
    # image back to "queued", that upload can no longer touch the image.

    def storage_used(
        self, session: orm.Session, owner: str, *, lock: bool = False, but: str | None = None
    ) -> int:
        """Return the bytes of image data *owner* stores or has uploads reserve.

        :param lock: lock the owner's image rows until the transaction ends,
            so that concurrent quota checks of one owner take turns.
        :param but: leave this image out (the upload asking for more).
        """
        held = sa.func.coalesce(Image.size, Image.reserved_size, 0)
        if not lock:
            stmt = sa.select(sa.func.coalesce(sa.func.sum(held), 0)).where(Image.owner == owner)
            return int(session.execute(stmt).scalar_one() or 0)
        # Aggregates cannot be locked FOR UPDATE: lock the rows, sum here.
        rows = session.execute(
            sa.select(Image.id, held).where(Image.owner == owner).with_for_update()
        ).all()
        return sum(int(size) for image_id, size in rows if image_id != but)

    def reserve_upload(self, image_id: str, upload_id: str, need: int, want: int) -> int:
        """Grow the quota reservation of an upload in progress; return its new size.

        The upload gets *want* bytes if the owner's quota has room, else
        what is left, but never less than *need* (what it has received).

        :raises QuotaExceeded: the owner's other images and reservations
            leave less than *need*.
        :raises NotFound: the image was deleted meanwhile.
        :raises InvalidState: the upload lost the image (recovered as stale).
        """
        quota = self.conf.image.image_storage_quota

        def write(session: orm.Session) -> int:
            row = session.execute(
                sa.select(Image).where(Image.id == image_id).with_for_update()
            ).scalar_one_or_none()
            if row is None or row.upload_id != upload_id or row.status != "saving":
                raise self._lost(session, image_id)
            granted = want
            if row.owner is not None and quota >= 0:
                used = self.storage_used(session, row.owner, lock=True, but=image_id)
                if used + need > quota:
                    raise exception.QuotaExceeded(
                        resource="image storage", requested=need, used=used, limit=quota
                    )
                granted = max(need, min(want, quota - used))
            row.reserved_size = granted
            return granted

        return self.db.write(write)

    def claim_upload(
        self, ctx: RequestContext, image_id: str, content_length: int | None
    ) -> UploadClaim:
        """Move a queued image to ``saving`` for a new upload.

        :param content_length: the declared body length, checked against the quota.
        :returns: the claim: the upload's id and what the data path checks.
        :raises NotFound: no such image visible to the caller.
        :raises PolicyNotAuthorized: the caller may not upload to it.
        :raises BadRequest: the image's disk or container format is unset.
        :raises InvalidState: the image is not ``queued`` (another upload holds it).
        :raises QuotaExceeded: the declared length is past the storage quota.
        """
        return self.db.write(lambda session: self._claim(session, ctx, image_id, content_length))

    def _claim(
        self,
        session: orm.Session,
        ctx: RequestContext,
        image_id: str,
        content_length: int | None,
    ) -> UploadClaim:
        row = self.load(session, ctx, image_id, lock=True)
        self.authorize(ctx, "upload_image", row)
        if not row.disk_format or not row.container_format:
            raise exception.BadRequest(
                reason="Properties disk_format, container_format must be set prior to saving data."
            )
        if row.status != "queued":
            raise exception.InvalidState(
                reason=f"Image {image_id} is {row.status}: data can only be uploaded to a"
                " queued image."
            )
        quota = self.conf.image.image_storage_quota
        remaining = None
        used = 0
        if quota >= 0 and row.owner is not None:
            # The owner's rows stay locked until this claim commits: a
            # concurrent claim sees its reservation.
            used = self.storage_used(session, row.owner, lock=True, but=row.id)
            remaining = max(quota - used, 0)
            if content_length is not None and content_length > remaining:
                raise exception.QuotaExceeded(
                    resource="image storage", requested=content_length, used=used, limit=quota
                )
            row.reserved_size = content_length or 0
        declared = {
            _DECLARED[p.name]: p.value
            for p in session.execute(
                sa.select(models.ImageProperty).where(
                    models.ImageProperty.image_id == row.id,
                    models.ImageProperty.name.in_(list(_DECLARED)),
                )
            ).scalars()
            if p.value
        }
        upload_id = str(uuid.uuid4())
        row.status = "saving"
        row.upload_id = upload_id
        row.updated_at = utcnow()
        return UploadClaim(row.id, upload_id, row.disk_format, declared, remaining, used)

    def _lost(self, session: orm.Session, image_id: str) -> exception.NimbusException:
        """Return the error for an upload that no longer holds *image_id*."""
        if session.get(Image, image_id) is None:
            return exception.NotFound(
                message=f"Image {image_id} was deleted while its data was being uploaded."
            )
        stale_after = self.conf.image.upload_stale_after
        return exception.InvalidState(
            reason=f"The upload to image {image_id} was given up: it received no data for"
            f" {stale_after:g} seconds and the image went back to queued. Upload the data again."
        )

    def finish_upload(
        self, image_id: str, upload_id: str, values: dict[str, Any]
    ) -> dict[str, Any]:
        """Record a stored upload's results (``saving`` -> ``active``) and return the image.

        :param values: the columns to set (status, size, checksums, location...).
        :raises NotFound: the image was deleted meanwhile.
        :raises InvalidState: the upload lost the image (recovered as stale).
        """

        def write(session: orm.Session) -> dict[str, Any]:
            row = session.execute(
                sa.select(Image)
                .where(Image.id == image_id, Image.upload_id == upload_id)
                .with_for_update()
            ).scalar_one_or_none()
            if row is None or row.status != "saving":
                raise self._lost(session, image_id)
            columns = dict(values)
            location = columns.pop("location", None)
            store_id = columns.pop("store", None) or self.stores.default
            for name, value in columns.items():
                setattr(row, name, value)
            if location is not None:
                session.merge(
                    models.ImageLocation(
                        image_id=image_id, store=store_id, location=location, created_at=utcnow()
                    )
                )
            session.flush()
            return self.view_one(session, row)

        return self.db.write(write)

    def release_upload(self, image_id: str, upload_id: str) -> None:
        """Put an image whose upload failed back to ``queued``; log, never raise."""

        def write(session: orm.Session) -> None:
            session.execute(
                sa.update(Image)
                .where(
                    Image.id == image_id,
                    Image.upload_id == upload_id,
                    Image.status == "saving",
                )
                .values(
                    status="queued",
                    upload_id=None,
                    size=None,
                    virtual_size=None,
                    reserved_size=None,
                    updated_at=utcnow(),
                )
            )

        try:
            self.db.write(write)
        except Exception:
            LOG.exception("Could not put image %s back to queued after a failed upload", image_id)

    def heartbeat_upload(self, image_id: str, upload_id: str) -> None:
        """Tell other processes the upload is alive: refresh the image's ``updated_at``.

        A database that does not answer is logged, not raised: the upload
        goes on, and the next heartbeat may get through.

        :raises NotFound: the image was deleted meanwhile.
        :raises InvalidState: the upload lost the image (recovered as stale).
        """

        def write(session: orm.Session) -> None:
            result = session.execute(
                sa.update(Image)
                .where(
                    Image.id == image_id,
                    Image.upload_id == upload_id,
                    Image.status == "saving",
                )
                .values(updated_at=utcnow())
            )
            if not typing.cast(CursorResult[Any], result).rowcount:
                raise self._lost(session, image_id)

        try:
            self.db.write(write)
        except sa.exc.SQLAlchemyError:
            LOG.warning(
                "Could not refresh the upload heartbeat of image %s", image_id, exc_info=True
            )

    def recover_stale_uploads(self, *, older_than: float) -> int:
        """Put images whose upload sent no heartbeat for *older_than* seconds back to ``queued``.

        :param older_than: seconds since the upload's last heartbeat; 0 takes
            every image in ``saving``.
        :returns: how many images were put back.
        """
        cutoff = utcnow() - datetime.timedelta(seconds=older_than)

        def write(session: orm.Session) -> int:
            result = session.execute(
                sa.update(Image)
                .where(Image.status == "saving", Image.updated_at <= cutoff)
                .values(status="queued", upload_id=None, reserved_size=None, updated_at=utcnow())
            )
            return typing.cast(CursorResult[Any], result).rowcount or 0

        return self.db.write(write)

    def load_for_download(self, ctx: RequestContext, image_id: str) -> StoredImage:
        """Return what a download needs of an image the caller may download.

        :raises NotFound: no such image visible to the caller.
        :raises PolicyNotAuthorized: the caller may not download it.
        """
        with self.db.reader() as session:
            row = self.load(session, ctx, image_id)
            self.authorize(ctx, "download_image", row)
            ordered = self._default_first(self.locations_of(session, image_id))
            return StoredImage(row.status, tuple(ordered), row.size, row.checksum)


def _joined(stores: Iterable[str]) -> str:
    """Return a store list property's value: the ids sorted, comma-separated."""
    return ",".join(sorted(store for store in stores if store))


def _compare(column: Any, op: str, value: Any) -> Any:
    operations: dict[str, Callable[[Any, Any], Any]] = {
        "gt": lambda c, v: c > v,
        "gte": lambda c, v: c >= v,
        "lt": lambda c, v: c < v,
        "lte": lambda c, v: c <= v,
        "eq": lambda c, v: c == v,
        "neq": lambda c, v: c != v,
    }
    return operations[op](column, value)
