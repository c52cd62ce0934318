"""Metadata definitions (Glance's metadefs): namespaces and what they define.

A namespace is a named catalogue of property definitions (JSON schema
fragments), objects (named groups of properties) and tags, associated with
the resource types it applies to (``OS::Glance::Image`` ...); Horizon
reads them to offer metadata when a user edits an image, flavor or volume.

Who sees what follows Glance: a ``public`` namespace is visible to
everyone, a ``private`` one to its owner's project and cloud admins only;
to anyone else it does not exist (404).  Policy (``image:*_metadef_*``)
then decides what a caller may do with a namespace it can see: by default
anyone may read, only cloud admins may write.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import orm

from nimbus import exception
from nimbus.context import RequestContext
from nimbus.db import Database
from nimbus.image import models
from nimbus.image.service import Authorizer

__all__ = ["MetadefService", "NamespaceQuery"]

T = TypeVar("T")
Namespace = models.MetadefNamespace
Ref = dict[str, Any]
_NS = "/v2/metadefs/namespaces"
#: Namespace attributes a create or update sets directly.
_NS_FIELDS = ("namespace", "display_name", "description", "visibility", "protected", "owner")


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)


def _iso(value: datetime.datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _stamps(row: Any) -> Ref:
    return {"created_at": _iso(row.created_at), "updated_at": _iso(row.updated_at)}


def _prefixed(view: Ref, prefix: str) -> Ref:
    """Return a namespace's view with *prefix* before its property names (as Glance)."""
    view = dict(view)
    if "properties" in view:
        view["properties"] = {prefix + k: v for k, v in view["properties"].items()}
    if "objects" in view:
        view["objects"] = [
            {
                **obj,
                "properties": {prefix + k: v for k, v in obj["properties"].items()},
                "required": [prefix + r for r in obj["required"]],
            }
            for obj in view["objects"]
        ]
    return view


@dataclasses.dataclass(frozen=True)
class NamespaceQuery:
    """What a namespace list asked for.

    :param limit: the page size.
    :param marker: the name of the last namespace of the previous page.
    :param sort_key: ``created_at``, ``updated_at``, ``namespace`` ...
    :param sort_dir: ``asc`` or ``desc``.
    :param visibility: only namespaces of this visibility.
    :param resource_types: only namespaces associated with one of these.
    """

    limit: int
    marker: str | None = None
    sort_key: str = "created_at"
    sort_dir: str = "desc"
    visibility: str | None = None
    resource_types: tuple[str, ...] = ()


_SORT_KEYS = ("created_at", "updated_at", "namespace", "display_name", "visibility", "id")


@dataclasses.dataclass(eq=False)
class MetadefService:
    """Metadata definition namespaces, objects, properties, tags and resource types.

    :param db: nimbus's database (schema already upgraded).
    :param enforcer: checks policy rules (``image:*_metadef_*``).
    """

    db: Database
    enforcer: Authorizer

    # -- helpers -----------------------------------------------------------

    def authorize(self, ctx: RequestContext, action: str, row: Namespace | None = None) -> None:
        """Check ``image:<action>`` against a namespace (raises PolicyNotAuthorized)."""
        target = {}
        if row is not None:
            target = {
                "project_id": row.owner,
                "owner": row.owner,
                "visibility": row.visibility,
                "namespace": row.namespace,
            }
        self.enforcer.authorize(ctx, f"image:{action}", target)

    @staticmethod
    def _visible_clause(ctx: RequestContext) -> Any:
        if ctx.is_admin:
            return sa.true()
        clause = Namespace.visibility == "public"
        if ctx.project_id:
            clause = sa.or_(clause, Namespace.owner == ctx.project_id)
        return clause

    def _load(self, session: orm.Session, ctx: RequestContext, name: str, action: str) -> Namespace:
        """Return a namespace the caller can see, once *action* is authorized on it.

        :raises NotFound: no such namespace, or not visible to the caller.
        """
        row = session.execute(
            sa.select(Namespace).where(Namespace.namespace == name, self._visible_clause(ctx))
        ).scalar_one_or_none()
        if row is None:
            raise exception.NotFound(message=f"Metadata definition namespace={name} was not found.")
        self.authorize(ctx, action, row)
        return row

    def _read(self, ctx: RequestContext, name: str, action: str, fn: Callable[..., T]) -> T:
        with self.db.reader() as session:
            return fn(session, self._load(session, ctx, name, action))

    def _write(self, ctx: RequestContext, name: str, action: str, fn: Callable[..., T]) -> T:
        def write(session: orm.Session) -> T:
            row = self._load(session, ctx, name, action)
            result = fn(session, row)
            row.updated_at = _now()
            session.flush()
            return result

        return self.db.write(write)

    @staticmethod
    def _protected(row: Namespace) -> None:
        if row.protected:
            raise exception.Forbidden(
                message=f"Namespace {row.namespace} is protected and cannot be deleted."
            )

    @staticmethod
    def _duplicate(kind: str, name: str, namespace: str) -> exception.Conflict:
        return exception.Conflict(
            message=(
                f"A metadata definition {kind} with name={name} already exists "
                f"in namespace={namespace}."
            )
        )

    @staticmethod
    def _missing(kind: str, name: str, namespace: str) -> exception.NotFound:
        return exception.NotFound(
            message=(
                f"Metadata definition {kind} not found for namespace={namespace} and name={name}."
            )
        )

    # -- views -------------------------------------------------------------

    @staticmethod
    def namespace_view(row: Namespace) -> Ref:
        """Return a namespace's own attributes as Glance shows them."""
        view: Ref = {
            "namespace": row.namespace,
            "visibility": row.visibility,
            "protected": row.protected,
            "owner": row.owner,
            **_stamps(row),
            "self": f"{_NS}/{row.namespace}",
            "schema": "/v2/schemas/metadefs/namespace",
        }
        if row.display_name is not None:
            view["display_name"] = row.display_name
        if row.description is not None:
            view["description"] = row.description
        return view

    @staticmethod
    def object_view(namespace: str, row: models.MetadefObject) -> Ref:
        view: Ref = {
            "name": row.name,
            "required": row.required or [],
            "properties": row.properties or {},
            **_stamps(row),
            "self": f"{_NS}/{namespace}/objects/{row.name}",
            "schema": "/v2/schemas/metadefs/object",
        }
        if row.description is not None:
            view["description"] = row.description
        return view

    @staticmethod
    def property_view(row: models.MetadefProperty) -> Ref:
        return {"name": row.name, **row.schema}

    @staticmethod
    def tag_view(row: models.MetadefTag) -> Ref:
        return {"name": row.name, **_stamps(row)}

    @staticmethod
    def association_view(name: str, row: models.MetadefNamespaceResourceType) -> Ref:
        view: Ref = {"name": name, **_stamps(row)}
        if row.prefix is not None:
            view["prefix"] = row.prefix
        if row.properties_target is not None:
            view["properties_target"] = row.properties_target
        return view

    def _associations(
        self, session: orm.Session, namespace_ids: Sequence[int]
    ) -> dict[int, list[Ref]]:
        found: dict[int, list[Ref]] = {i: [] for i in namespace_ids}
        if not namespace_ids:
            return found
        rows = session.execute(
            sa.select(models.MetadefNamespaceResourceType, models.MetadefResourceType.name)
            .join(models.MetadefResourceType)
            .where(models.MetadefNamespaceResourceType.namespace_id.in_(namespace_ids))
            .order_by(models.MetadefResourceType.name)
        )
        for assoc, name in rows:
            found[assoc.namespace_id].append(self.association_view(name, assoc))
        return found

    def _full_view(self, session: orm.Session, row: Namespace) -> Ref:
        view = self.namespace_view(row)
        associations = self._associations(session, [row.id])[row.id]
        if associations:
            view["resource_type_associations"] = associations
        props = self._children(session, models.MetadefProperty, row)
        if props:
            view["properties"] = {
                p.name: {k: v for k, v in self.property_view(p).items() if k != "name"}
                for p in props
            }
        objects = self._children(session, models.MetadefObject, row)
        if objects:
            view["objects"] = [self.object_view(row.namespace, o) for o in objects]
        tags = self._children(session, models.MetadefTag, row)
        if tags:
            view["tags"] = [{"name": t.name} for t in tags]
        return view

    @staticmethod
    def _children(session: orm.Session, model: Any, row: Namespace) -> list[Any]:
        return list(
            session.execute(
                sa.select(model).where(model.namespace_id == row.id).order_by(model.name)
            ).scalars()
        )

    # -- namespaces ----------------------------------------------------------

    def list_namespaces(self, ctx: RequestContext, query: NamespaceQuery) -> tuple[list[Ref], bool]:
        """Return a page of the namespaces the caller can see, and whether more follow.

        :raises NotFound: the marker names no namespace the caller can see.
        """
        self.authorize(ctx, "get_metadef_namespaces")
        key = getattr(Namespace, query.sort_key)
        desc = query.sort_dir == "desc"
        with self.db.reader() as session:
            stmt = sa.select(Namespace).where(self._visible_clause(ctx))
            if query.visibility:
                stmt = stmt.where(Namespace.visibility == query.visibility)
            if query.resource_types:
                stmt = stmt.where(
                    sa.exists()
                    .where(models.MetadefNamespaceResourceType.namespace_id == Namespace.id)
                    .where(
                        models.MetadefNamespaceResourceType.resource_type_id
                        == models.MetadefResourceType.id
                    )
                    .where(models.MetadefResourceType.name.in_(query.resource_types))
                )
            if query.marker is not None:
                marker = session.execute(
                    sa.select(Namespace).where(
                        Namespace.namespace == query.marker, self._visible_clause(ctx)
                    )
                ).scalar_one_or_none()
                if marker is None:
                    raise exception.NotFound(
                        message=f"Metadata definition namespace={query.marker} was not found."
                    )
                mine = (getattr(marker, query.sort_key), marker.id)
                pair = sa.tuple_(key, Namespace.id)
                stmt = stmt.where(pair < sa.tuple_(*mine) if desc else pair > sa.tuple_(*mine))
            order = (key.desc(), Namespace.id.desc()) if desc else (key.asc(), Namespace.id.asc())
            rows = list(session.execute(stmt.order_by(*order).limit(query.limit + 1)).scalars())
            more = len(rows) > query.limit
            rows = rows[: query.limit]
            associations = self._associations(session, [r.id for r in rows])
            views = []
            for row in rows:
                view = self.namespace_view(row)
                if associations[row.id]:
                    view["resource_type_associations"] = associations[row.id]
                views.append(view)
            return views, more

    def get_namespace(
        self, ctx: RequestContext, name: str, *, resource_type: str | None = None
    ) -> Ref:
        """Return a namespace with everything it defines.

        :param resource_type: name properties as applied to this resource
            type: with the prefix of the namespace's association with it.
        :raises NotFound: no such namespace visible to the caller.
        """
        view = self._read(ctx, name, "get_metadef_namespace", self._full_view)
        prefix = next(
            (
                assoc.get("prefix")
                for assoc in view.get("resource_type_associations", [])
                if assoc["name"] == resource_type
            ),
            None,
        )
        return _prefixed(view, prefix) if prefix else view

    def create_namespace(self, ctx: RequestContext, values: Ref) -> Ref:
        """Create a namespace, and the definitions the body nests in it.

        :raises Forbidden: policy refuses, or no project to own it.
        :raises Conflict: a namespace of that name exists.
        """
        values = dict(values)
        owner = values.get("owner") or ctx.project_id
        if owner is None:
            raise exception.Forbidden(
                message="Namespaces belong to projects: use a project-scoped token."
            )
        probe = Namespace(
            namespace=values["namespace"],
            owner=owner,
            visibility=values.get("visibility") or "private",
        )
        self.authorize(ctx, "add_metadef_namespace", probe)
        now = _now()

        def write(session: orm.Session) -> Ref:
            name = values["namespace"]
            if session.execute(sa.select(Namespace.id).where(Namespace.namespace == name)).first():
                raise exception.Conflict(
                    message=f"Metadata definition namespace={name} already exists."
                )
            row = Namespace(
                namespace=name,
                display_name=values.get("display_name"),
                description=values.get("description"),
                visibility=probe.visibility,
                protected=bool(values.get("protected", False)),
                owner=owner,
                created_at=now,
                updated_at=now,
            )
            session.add(row)
            session.flush()
            for assoc in values.get("resource_type_associations") or []:
                self._associate(session, row, assoc, now)
            for prop_name, prop in (values.get("properties") or {}).items():
                self._add(session, PROPERTIES, row, {**prop, "name": prop_name}, now)
            for obj in values.get("objects") or []:
                self._add(session, OBJECTS, row, obj, now)
            self._add_tags(session, row, [t["name"] for t in values.get("tags") or []], now)
            session.flush()
            return self._full_view(session, row)

        return self.db.write(write)

    def update_namespace(self, ctx: RequestContext, name: str, values: Ref) -> Ref:
        """Change a namespace's attributes (a new ``namespace`` renames it).

        :raises NotFound: no such namespace visible to the caller.
        :raises Conflict: the new name is taken.
        """

        def change(session: orm.Session, row: Namespace) -> str:
            new_name = values.get("namespace", row.namespace)
            if (
                new_name != row.namespace
                and session.execute(
                    sa.select(Namespace.id).where(Namespace.namespace == new_name)
                ).first()
            ):
                raise exception.Conflict(
                    message=f"Metadata definition namespace={new_name} already exists."
                )
            for field in _NS_FIELDS:
                if field in values:
                    setattr(row, field, values[field])
            return row.namespace

        renamed = self._write(ctx, name, "modify_metadef_namespace", change)
        with self.db.reader() as session:
            row = session.execute(
                sa.select(Namespace).where(Namespace.namespace == renamed)
            ).scalar_one()
            return self.namespace_view(row)

    def delete_namespace(self, ctx: RequestContext, name: str) -> None:
        """Delete a namespace and everything it defines.

        :raises Forbidden: the namespace is protected.
        """

        def delete(session: orm.Session) -> None:
            row = self._load(session, ctx, name, "delete_metadef_namespace")
            self._protected(row)
            for model in (
                models.MetadefNamespaceResourceType,
                models.MetadefObject,
                models.MetadefProperty,
                models.MetadefTag,
            ):
                session.execute(sa.delete(model).where(model.namespace_id == row.id))
            session.delete(row)

        self.db.write(delete)

    # -- objects, properties and tags ------------------------------------------

    def _add(
        self,
        session: orm.Session,
        member: Member,
        ns: Namespace,
        values: Ref,
        now: datetime.datetime,
    ) -> Any:
        """Store one definition of *member*'s kind in *ns*. :raises Conflict: its name is taken."""
        name = values["name"]
        if session.get(member.model, (ns.id, name)) is not None:
            raise self._duplicate(member.kind, name, ns.namespace)
        row = member.model(
            namespace_id=ns.id, name=name, created_at=now, updated_at=now, **member.columns(values)
        )
        session.add(row)
        session.flush()
        return row

    def _member(self, session: orm.Session, member: Member, ns: Namespace, name: str) -> Any:
        row = session.get(member.model, (ns.id, name))
        if row is None:
            raise self._missing(member.kind, name, ns.namespace)
        return row

    def list_members(self, ctx: RequestContext, namespace: str, member: Member) -> list[Ref]:
        """Return a namespace's objects, properties or tags, by name."""
        return self._read(
            ctx,
            namespace,
            member.rules["list"],
            lambda s, ns: [
                member.view(ns.namespace, r) for r in self._children(s, member.model, ns)
            ],
        )

    def create_member(
        self, ctx: RequestContext, namespace: str, member: Member, values: Ref
    ) -> Ref:
        """Add an object, a property or a tag to a namespace.

        :raises Conflict: the namespace has one of that name.
        """
        return self._write(
            ctx,
            namespace,
            member.rules["add"],
            lambda s, ns: member.view(ns.namespace, self._add(s, member, ns, values, _now())),
        )

    def get_member(self, ctx: RequestContext, namespace: str, member: Member, name: str) -> Ref:
        """Return one object, property or tag of a namespace. :raises NotFound: none."""
        return self._read(
            ctx,
            namespace,
            member.rules["get"],
            lambda s, ns: member.view(ns.namespace, self._member(s, member, ns, name)),
        )

    def update_member(
        self, ctx: RequestContext, namespace: str, member: Member, name: str, values: Ref
    ) -> Ref:
        """Replace a definition with *values* (a new ``name`` renames it).

        The creation time stays.

        :raises NotFound: no such definition.
        :raises Conflict: the new name is taken.
        """

        def change(session: orm.Session, ns: Namespace) -> Ref:
            created = self._member(session, member, ns, name).created_at
            if values["name"] != name and session.get(member.model, (ns.id, values["name"])):
                raise self._duplicate(member.kind, values["name"], ns.namespace)
            session.delete(self._member(session, member, ns, name))
            session.flush()
            row = self._add(session, member, ns, values, _now())
            row.created_at = created
            return member.view(ns.namespace, row)

        return self._write(ctx, namespace, member.rules["modify"], change)

    def delete_member(self, ctx: RequestContext, namespace: str, member: Member, name: str) -> None:
        """Delete one object, property or tag of a namespace. :raises NotFound: none."""
        self._write(
            ctx,
            namespace,
            member.rules["delete"],
            lambda s, ns: s.delete(self._member(s, member, ns, name)),
        )

    def clear_members(self, ctx: RequestContext, namespace: str, member: Member) -> None:
        """Delete every object, property or tag of a namespace (refused while it is protected)."""

        def clear(session: orm.Session, row: Namespace) -> None:
            self._protected(row)
            session.execute(sa.delete(member.model).where(member.model.namespace_id == row.id))

        self._write(ctx, namespace, member.rules["clear"], clear)

    def _add_tags(
        self, session: orm.Session, ns: Namespace, names: Iterable[str], now: datetime.datetime
    ) -> list[Any]:
        names = list(names)
        if len(set(names)) != len(names):
            repeated = next(n for n in names if names.count(n) > 1)
            raise self._duplicate("tag", repeated, ns.namespace)
        return [self._add(session, TAGS, ns, {"name": name}, now) for name in names]

    def create_tags(
        self, ctx: RequestContext, namespace: str, names: Sequence[str], *, append: bool = False
    ) -> list[Ref]:
        """Set a namespace's tags to *names* (add them, with *append*).

        :raises Conflict: a name is repeated, or (with *append*) already a tag.
        """

        def create(session: orm.Session, ns: Namespace) -> list[Ref]:
            if not append:
                session.execute(
                    sa.delete(models.MetadefTag).where(models.MetadefTag.namespace_id == ns.id)
                )
            return [self.tag_view(t) for t in self._add_tags(session, ns, names, _now())]

        return self._write(ctx, namespace, "add_metadef_tags", create)

    # -- resource types ----------------------------------------------------

    def list_resource_types(self, ctx: RequestContext) -> list[Ref]:
        """Return every resource type."""
        self.authorize(ctx, "list_metadef_resource_types")
        with self.db.reader() as session:
            rows = session.execute(
                sa.select(models.MetadefResourceType).order_by(models.MetadefResourceType.name)
            ).scalars()
            return [{"name": r.name, **_stamps(r)} for r in rows]

    def _associate(
        self, session: orm.Session, ns: Namespace, values: Ref, now: datetime.datetime
    ) -> Ref:
        name = values["name"]
        kind = session.execute(
            sa.select(models.MetadefResourceType).where(models.MetadefResourceType.name == name)
        ).scalar_one_or_none()
        if kind is None:
            # As Glance: associating with an unknown resource type creates it.
            kind = models.MetadefResourceType(
                name=name, protected=False, created_at=now, updated_at=now
            )
            session.add(kind)
            session.flush()
        if session.get(models.MetadefNamespaceResourceType, (ns.id, kind.id)) is not None:
            raise exception.Conflict(
                message=(
                    f"The metadata definition resource-type association of "
                    f"resource-type={name} to namespace={ns.namespace}, already exists."
                )
            )
        row = models.MetadefNamespaceResourceType(
            namespace_id=ns.id,
            resource_type_id=kind.id,
            prefix=values.get("prefix"),
            properties_target=values.get("properties_target"),
            created_at=now,
            updated_at=now,
        )
        session.add(row)
        session.flush()
        return self.association_view(name, row)

    def list_associations(self, ctx: RequestContext, namespace: str) -> list[Ref]:
        """Return the resource types a namespace applies to."""
        return self._read(
            ctx,
            namespace,
            "get_metadef_resource_type",
            lambda s, ns: self._associations(s, [ns.id])[ns.id],
        )

    def create_association(self, ctx: RequestContext, namespace: str, values: Ref) -> Ref:
        """Associate a namespace with a resource type (created if unknown).

        :raises Conflict: the association exists.
        """
        return self._write(
            ctx,
            namespace,
            "add_metadef_resource_type_association",
            lambda s, ns: self._associate(s, ns, values, _now()),
        )

    def delete_association(self, ctx: RequestContext, namespace: str, name: str) -> None:
        """End a namespace's association with a resource type.

        :raises NotFound: the namespace is not associated with it.
        """

        def delete(session: orm.Session, ns: Namespace) -> None:
            found = session.execute(
                sa.select(models.MetadefNamespaceResourceType)
                .join(models.MetadefResourceType)
                .where(
                    models.MetadefNamespaceResourceType.namespace_id == ns.id,
                    models.MetadefResourceType.name == name,
                )
            ).scalar_one_or_none()
            if found is None:
                raise exception.NotFound(
                    message=(
                        f"The metadata definition resource-type association of "
                        f"resource-type={name} to namespace={ns.namespace}, was not found."
                    )
                )
            session.delete(found)

        self._write(ctx, namespace, "remove_metadef_resource_type_association", delete)


@dataclasses.dataclass(frozen=True)
class Member:
    """A kind of definition inside a namespace (objects, properties, tags), keyed by name.

    :param kind: its name in messages (``object``).
    :param model: its table, keyed by ``(namespace_id, name)``.
    :param rules: Glance's rule of each verb (``list``, ``get``, ``add``,
        ``modify``, ``delete``, and ``clear`` for deleting them all).
    :param columns: the row's other columns from a request body.
    :param view: the body shown, from the namespace's name and the row.
    """

    kind: str
    model: Any
    rules: dict[str, str]
    columns: Callable[[Ref], Ref]
    view: Callable[[str, Any], Ref]


def _rules(noun: str, plural: str, clear: str, **special: str) -> dict[str, str]:
    rules = {
        "list": f"get_metadef_{plural}",
        "get": f"get_metadef_{noun}",
        "add": f"add_metadef_{noun}",
        "modify": f"modify_metadef_{noun}",
        "delete": f"delete_metadef_{noun}",
        "clear": clear,
    }
    return {**rules, **special}


OBJECTS = Member(
    "object",
    models.MetadefObject,
    _rules("object", "objects", "delete_metadef_namespace"),
    lambda values: {
        "description": values.get("description"),
        "required": values.get("required") or [],
        "properties": values.get("properties") or {},
    },
    MetadefService.object_view,
)
PROPERTIES = Member(
    "property",
    models.MetadefProperty,
    _rules("property", "properties", "delete_metadef_namespace", delete="remove_metadef_property"),
    lambda values: {"schema": {k: v for k, v in values.items() if k != "name"}},
    lambda namespace, row: MetadefService.property_view(row),
)
TAGS = Member(
    "tag",
    models.MetadefTag,
    _rules("tag", "tags", "delete_metadef_tags"),
    lambda values: {},
    lambda namespace, row: MetadefService.tag_view(row),
)
