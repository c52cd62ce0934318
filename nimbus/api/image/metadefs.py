"""``/v2/metadefs/*``: metadata definition namespaces, objects, properties, tags, types.

Bodies are validated against the schemas ``/v2/schemas/metadefs/*`` serve
(:mod:`nimbus.image.metadef_schema`), as Glance does; read-only attributes
(``self``, ``schema``, timestamps) in a body are refused with 403, as in Glance.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import falcon
from oslo_config import cfg

from nimbus import exception
from nimbus.api import hooks, resource
from nimbus.api.app import Links
from nimbus.image import metadef_schema
from nimbus.image.metadefs import OBJECTS, PROPERTIES, TAGS, Member, MetadefService, NamespaceQuery
from nimbus.image.query import glance_limit

__all__ = [
    "MetadefSchema",
    "NamespaceCollection",
    "NamespaceItem",
    "MemberCollection",
    "MemberItem",
    "NamespaceTagCollection",
    "NamespaceTagItem",
    "object_routes",
    "ResourceTypeAssociationCollection",
    "ResourceTypeAssociationItem",
    "ResourceTypeCollection",
]

Ref = dict[str, Any]
_NS = "/v2/metadefs/namespaces"
_READ_ONLY = ("self", "schema", "created_at", "updated_at")
_STAMPS = ("created_at", "updated_at")


def _body(name: str, *, read_only: tuple[str, ...] = _READ_ONLY) -> hooks.Hook:
    """Return the hook refusing read-only attributes, then checking the body's schema."""
    check = hooks.validate(metadef_schema.item_schema(name), root=name)

    def hook(req: falcon.Request, resp: falcon.Response, res: Any, params: dict) -> None:
        document = req.context.get("json")
        if document is None:
            raise exception.BadRequest(reason="Body expected in request.")
        if isinstance(document, dict):
            for key in read_only:
                if key in document:
                    raise exception.Forbidden(message=f"Attribute '{key}' is read-only.")
        check(req, resp, res, params)

    return hook


class _Resource(resource.Resource):
    service: MetadefService
    media_types = ("application/json",)

    def __init__(self, service: MetadefService, links: Links) -> None:
        super().__init__(service, links)


class MetadefSchema:
    """One ``/v2/schemas/metadefs/<name>`` document."""

    def __init__(self, name: str) -> None:
        self.document = metadef_schema.document(name)

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = self.document


class NamespaceCollection(_Resource):
    """``GET`` lists namespaces (Glance's filters and pages), ``POST`` creates one."""

    def __init__(self, service: MetadefService, links: Links, conf: cfg.ConfigOpts) -> None:
        super().__init__(service, links)
        self.conf = conf

    def _query(self, req: falcon.Request) -> NamespaceQuery:
        limit = glance_limit(
            req.get_param("limit", default=None), self.conf.image.limit_param_default
        )
        limit = min(limit, self.conf.image.api_limit_max)
        sort_key = req.get_param("sort_key", default="created_at")
        if sort_key not in ("created_at", "updated_at", "namespace", "display_name"):
            raise exception.BadRequest(reason=f"Invalid sort key: {sort_key}")
        sort_dir = req.get_param("sort_dir", default="desc")
        if sort_dir not in ("asc", "desc"):
            raise exception.BadRequest(reason=f"Invalid sort direction: {sort_dir}")
        visibility = req.get_param("visibility", default=None) or None
        if visibility is not None and visibility not in ("public", "private"):
            raise exception.BadRequest(reason=f"Invalid visibility value: {visibility}")
        types = req.get_param("resource_types", default="") or ""
        return NamespaceQuery(
            limit=limit,
            marker=req.get_param("marker", default=None) or None,
            sort_key=sort_key,
            sort_dir=sort_dir,
            visibility=visibility,
            resource_types=tuple(t.strip() for t in types.split(",") if t.strip()),
        )

    @staticmethod
    def _page(req: falcon.Request, namespaces: list[dict[str, Any]], more: bool) -> dict[str, Any]:
        """Return Glance's page: ``first`` and ``next`` links keyed by namespace name."""
        params = {k: v for k, v in req.params.items() if k != "marker"}
        body: dict[str, Any] = {
            "namespaces": namespaces,
            "first": _NS + (f"?{urlencode(params, doseq=True)}" if params else ""),
            "schema": "/v2/schemas/metadefs/namespaces",
        }
        if more and namespaces:
            params["marker"] = namespaces[-1]["namespace"]
            body["next"] = f"{_NS}?{urlencode(params, doseq=True)}"
        return body

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        namespaces, more = self.service.list_namespaces(self.ctx(req), self._query(req))
        resp.media = self._page(req, namespaces, more)

    @falcon.before(_body("namespace"))
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        namespace = self.service.create_namespace(self.ctx(req), self.body(req))
        resp.status = falcon.HTTP_201
        resp.location = self.url(req, namespace["self"])
        resp.media = namespace


class NamespaceItem(_Resource):
    """``GET`` shows a namespace, ``PUT`` updates it, ``DELETE`` deletes it."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, namespace: str) -> None:
        kind = req.get_param("resource_type", default=None) or None
        resp.media = self.service.get_namespace(self.ctx(req), namespace, resource_type=kind)

    @falcon.before(_body("namespace"))
    def on_put(self, req: falcon.Request, resp: falcon.Response, namespace: str) -> None:
        resp.media = self.service.update_namespace(self.ctx(req), namespace, self.body(req))

    def on_delete(self, req: falcon.Request, resp: falcon.Response, namespace: str) -> None:
        self.service.delete_namespace(self.ctx(req), namespace)
        resp.status = falcon.HTTP_204


class MemberCollection(_Resource):
    """A namespace's objects or properties: list, create one, delete them all.

    :param member: which kind (:data:`~nimbus.image.metadefs.OBJECTS` ...).
    :param listing: the list body, from the definitions shown one by one.
    :param read_only: attributes a body may not carry (403).
    """

    def __init__(
        self,
        service: MetadefService,
        links: Links,
        member: Member,
        listing: Callable[[list[Ref]], Ref],
        read_only: tuple[str, ...] = _READ_ONLY,
    ) -> None:
        super().__init__(service, links)
        self.member = member
        self.shape = listing
        self.check = _body(member.kind, read_only=read_only)

    def on_get(self, req: falcon.Request, resp: falcon.Response, namespace: str) -> None:
        resp.media = self.shape(self.service.list_members(self.ctx(req), namespace, self.member))

    def on_post(self, req: falcon.Request, resp: falcon.Response, namespace: str) -> None:
        self.check(req, resp, self, {})
        created = self.service.create_member(self.ctx(req), namespace, self.member, self.body(req))
        resp.status = falcon.HTTP_201
        resp.media = created

    def on_delete(self, req: falcon.Request, resp: falcon.Response, namespace: str) -> None:
        self.service.clear_members(self.ctx(req), namespace, self.member)
        resp.status = falcon.HTTP_204


class MemberItem(_Resource):
    """One object, property or tag: show, replace (``PUT``), delete."""

    def __init__(
        self,
        service: MetadefService,
        links: Links,
        member: Member,
        read_only: tuple[str, ...] = _READ_ONLY,
    ) -> None:
        super().__init__(service, links)
        self.member = member
        self.check = _body(member.kind, read_only=read_only)

    def on_get(self, req: falcon.Request, resp: falcon.Response, namespace: str, name: str) -> None:
        resp.media = self.service.get_member(self.ctx(req), namespace, self.member, name)

    def on_put(self, req: falcon.Request, resp: falcon.Response, namespace: str, name: str) -> None:
        self.check(req, resp, self, {})
        values = self.body(req)
        resp.media = self.service.update_member(self.ctx(req), namespace, self.member, name, values)

    def on_delete(
        self, req: falcon.Request, resp: falcon.Response, namespace: str, name: str
    ) -> None:
        self.service.delete_member(self.ctx(req), namespace, self.member, name)
        resp.status = falcon.HTTP_204


class NamespaceTagCollection(MemberCollection):
    """A namespace's tags: list, set (or append, with ``X-Openstack-Append``), delete all."""

    def __init__(self, service: MetadefService, links: Links) -> None:
        super().__init__(service, links, TAGS, lambda tags: {"tags": tags}, _STAMPS)
        self.check = _body("tags_create", read_only=_STAMPS)

    def on_post(self, req: falcon.Request, resp: falcon.Response, namespace: str) -> None:
        self.check(req, resp, self, {})
        names = [tag["name"] for tag in self.body(req).get("tags", [])]
        append = resource.bool_value(req.get_header("X-Openstack-Append") or "false")
        tags = self.service.create_tags(self.ctx(req), namespace, names, append=append)
        resp.status = falcon.HTTP_201
        resp.media = {"tags": tags}


class NamespaceTagItem(MemberItem):
    """One tag: show, create (``POST``, no body), rename (``PUT``), delete."""

    def __init__(self, service: MetadefService, links: Links) -> None:
        super().__init__(service, links, TAGS, _STAMPS)

    def on_post(
        self, req: falcon.Request, resp: falcon.Response, namespace: str, name: str
    ) -> None:
        resp.status = falcon.HTTP_201
        resp.media = self.service.create_member(self.ctx(req), namespace, TAGS, {"name": name})


def _properties(found: list[Ref]) -> Ref:
    """Glance lists properties by name."""
    return {"properties": {p["name"]: {k: v for k, v in p.items() if k != "name"} for p in found}}


def object_routes(service: MetadefService, links: Links) -> list[tuple[str, Any]]:
    """The routes of objects, properties and tags, relative to a namespace's URL."""
    objects = {"objects": None, "schema": "v2/schemas/metadefs/objects"}
    return [
        (
            "/objects",
            MemberCollection(service, links, OBJECTS, lambda found: {**objects, "objects": found}),
        ),
        ("/objects/{name}", MemberItem(service, links, OBJECTS)),
        ("/properties", MemberCollection(service, links, PROPERTIES, _properties, _STAMPS)),
        ("/properties/{name}", MemberItem(service, links, PROPERTIES, _STAMPS)),
        ("/tags", NamespaceTagCollection(service, links)),
        ("/tags/{name}", NamespaceTagItem(service, links)),
    ]


class ResourceTypeCollection(_Resource):
    """``GET /v2/metadefs/resource_types``: every resource type."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"resource_types": self.service.list_resource_types(self.ctx(req))}


class ResourceTypeAssociationCollection(_Resource):
    """The resource types a namespace applies to: list, associate one."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, namespace: str) -> None:
        found = self.service.list_associations(self.ctx(req), namespace)
        resp.media = {"resource_type_associations": found}

    @falcon.before(_body("resource_type", read_only=_STAMPS))
    def on_post(self, req: falcon.Request, resp: falcon.Response, namespace: str) -> None:
        resp.status = falcon.HTTP_201
        resp.media = self.service.create_association(self.ctx(req), namespace, self.body(req))


class ResourceTypeAssociationItem(_Resource):
    def on_delete(
        self, req: falcon.Request, resp: falcon.Response, namespace: str, name: str
    ) -> None:
        self.service.delete_association(self.ctx(req), namespace, name)
        resp.status = falcon.HTTP_204
