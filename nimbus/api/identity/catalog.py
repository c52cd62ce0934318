"""``/v3/services``, ``/v3/endpoints`` and ``/v3/regions``: the service catalog."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import falcon

from nimbus import exception
from nimbus.api import validation
from nimbus.api.identity.base import Deferred, Resource, page_of
from nimbus.identity.catalog import INTERFACES

_TYPE = {"type": "string", "minLength": 1, "maxLength": 255}
# Region ids appear in URLs: no "/", and no control characters (PostgreSQL refuses NUL).
_REGION_ID = {
    "type": "string",
    "minLength": 1,
    "maxLength": 255,
    "pattern": r"^[^\x00-\x1f\x7f/]+$",
}
# Keystone's length limit; the rest is checked by _check_url, with plainer messages.
_URL = {"type": "string", "minLength": 1, "maxLength": 225}

SERVICE_CREATE = {
    "type": "object",
    "properties": {
        "type": _TYPE,
        "name": validation.NAME,
        "description": validation.DESCRIPTION,
        "enabled": validation.BOOLEAN,
    },
    "required": ["type"],
}
SERVICE_UPDATE = {
    "type": "object",
    "properties": {**SERVICE_CREATE["properties"], "id": validation.ID},
    "minProperties": 1,
}
ENDPOINT_CREATE = {
    "type": "object",
    "properties": {
        "service_id": validation.ID,
        "interface": {"type": "string", "enum": list(INTERFACES)},
        "url": _URL,
        "region_id": validation.nullable(_REGION_ID),
        # The v2-era name of region_id, still sent by old clients.
        "region": validation.nullable(_REGION_ID),
        "enabled": validation.BOOLEAN,
    },
    "required": ["service_id", "interface", "url"],
}
ENDPOINT_UPDATE = {
    "type": "object",
    "properties": {**ENDPOINT_CREATE["properties"], "id": validation.ID},
    "minProperties": 1,
}
REGION_CREATE = {
    "type": "object",
    "properties": {
        "id": validation.nullable(_REGION_ID),
        "description": validation.DESCRIPTION,
        "parent_region_id": validation.nullable(_REGION_ID),
    },
}
REGION_UPDATE = {
    "type": "object",
    "properties": {**REGION_CREATE["properties"], "id": _REGION_ID},
    "minProperties": 1,
}

#: What CatalogManager fills in when it renders a token's catalog.
_PLACEHOLDERS = frozenset({"project_id", "tenant_id", "user_id"})
_PLACEHOLDER = re.compile(r"[$%]\((\w*)\)s")


def _check_url(url: str) -> None:
    """Refuse anything but an absolute http(s) URL with known placeholders.

    :raises ValidationError: the URL is not usable.
    """
    if any(c.isspace() or not c.isprintable() for c in url):
        raise exception.ValidationError(
            field="endpoint/url", reason="must not contain spaces or control characters"
        )
    for name in _PLACEHOLDER.findall(url):
        if name not in _PLACEHOLDERS:
            raise exception.ValidationError(
                field="endpoint/url",
                reason=f"unknown substitution '{name}'; use one of {sorted(_PLACEHOLDERS)}",
            )
    plain = _PLACEHOLDER.sub("x", url)
    if "$(" in plain or "%(" in plain:
        raise exception.ValidationError(field="endpoint/url", reason="malformed substitution")
    try:
        parts = urlsplit(plain)
        port = parts.port  # raises ValueError for a non-numeric or out-of-range port
    except ValueError as ex:
        raise exception.ValidationError(field="endpoint/url", reason=str(ex)) from ex
    if parts.scheme.lower() not in ("http", "https"):
        raise exception.ValidationError(field="endpoint/url", reason="must be an http(s) URL")
    if not parts.hostname:
        raise exception.ValidationError(field="endpoint/url", reason="has no host")
    if port == 0:
        raise exception.ValidationError(field="endpoint/url", reason="port 0 is not usable")


def _values(body: dict[str, Any], item_id: str | None, root: str) -> dict[str, Any]:
    """Drop links and the id; an id in the body must be the one in the URL.

    :param item_id: the id in the URL, ``None`` on a collection.
    :raises ValidationError: the body names another id than the URL.
    """
    given = body.get("id")
    if item_id is not None and given is not None and given != item_id:
        raise exception.ValidationError(
            field=f"{root}/id", reason=f"conflicting ids: {given!r} and {item_id!r}"
        )
    return {k: v for k, v in body.items() if k not in ("links", "id")}


def _blank_description(changes: dict[str, Any]) -> dict[str, Any]:
    """Read a null ``description`` as the empty one nimbus stores."""
    if "description" in changes:
        changes["description"] = changes["description"] or ""
    return changes


class ServiceCollection(Resource):
    collection = "/v3/services"

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        query = self.list_params(req)
        refs = self.service.catalog.list_services(
            self.ctx(req),
            type=req.get_param("type"),
            name=req.get_param("name"),
            page=page_of(query),
        )
        resp.media = self.listing(req, "services", refs, query)

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        values = _values(validation.body(req, "service", SERVICE_CREATE), None, "service")
        ref = self.service.catalog.create_service(
            self.ctx(req),
            type=values.pop("type"),
            name=values.pop("name", ""),
            description=values.pop("description", None) or "",
            enabled=values.pop("enabled", True),
            extra=values,
        )
        resp.status = falcon.HTTP_201
        resp.media = {"service": self.with_links(req, ref)}


class ServiceItem(Resource):
    collection = "/v3/services"

    def on_get(self, req: falcon.Request, resp: falcon.Response, service_id: str) -> None:
        ref = self.service.catalog.get_service(self.ctx(req), service_id)
        resp.media = {"service": self.with_links(req, ref)}

    def on_patch(self, req: falcon.Request, resp: falcon.Response, service_id: str) -> None:
        changes = Deferred(
            lambda: _blank_description(
                _values(validation.body(req, "service", SERVICE_UPDATE), service_id, "service")
            )
        )
        ref = self.service.catalog.update_service(self.ctx(req), service_id, changes)
        resp.media = {"service": self.with_links(req, ref)}

    def on_delete(self, req: falcon.Request, resp: falcon.Response, service_id: str) -> None:
        self.service.catalog.delete_service(self.ctx(req), service_id)
        resp.status = falcon.HTTP_204


class _EndpointResource(Resource):
    collection = "/v3/endpoints"

    @staticmethod
    def _endpoint_values(
        req: falcon.Request, schema: dict[str, Any], endpoint_id: str | None
    ) -> dict[str, Any]:
        """Validate an endpoint body (``region`` is the legacy name of ``region_id``)."""
        values = _values(validation.body(req, "endpoint", schema), endpoint_id, "endpoint")
        if "url" in values:
            _check_url(values["url"])
        return values


class EndpointCollection(_EndpointResource):
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        query = self.list_params(req)
        refs = self.service.catalog.list_endpoints(
            self.ctx(req),
            service_id=req.get_param("service_id"),
            interface=req.get_param("interface"),
            region_id=req.get_param("region_id"),
            page=page_of(query),
        )
        resp.media = self.listing(req, "endpoints", refs, query)

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        values = self._endpoint_values(req, ENDPOINT_CREATE, None)
        ref = self.service.catalog.create_endpoint(
            self.ctx(req),
            service_id=values.pop("service_id"),
            interface=values.pop("interface"),
            url=values.pop("url"),
            region_id=values.pop("region_id", None),
            region=values.pop("region", None),
            enabled=values.pop("enabled", True),
            extra=values,
        )
        resp.status = falcon.HTTP_201
        resp.media = {"endpoint": self.with_links(req, ref)}


class EndpointItem(_EndpointResource):
    def on_get(self, req: falcon.Request, resp: falcon.Response, endpoint_id: str) -> None:
        ref = self.service.catalog.get_endpoint(self.ctx(req), endpoint_id)
        resp.media = {"endpoint": self.with_links(req, ref)}

    def on_patch(self, req: falcon.Request, resp: falcon.Response, endpoint_id: str) -> None:
        changes = Deferred(lambda: self._endpoint_values(req, ENDPOINT_UPDATE, endpoint_id))
        ref = self.service.catalog.update_endpoint(self.ctx(req), endpoint_id, changes)
        resp.media = {"endpoint": self.with_links(req, ref)}

    def on_delete(self, req: falcon.Request, resp: falcon.Response, endpoint_id: str) -> None:
        self.service.catalog.delete_endpoint(self.ctx(req), endpoint_id)
        resp.status = falcon.HTTP_204


class _RegionResource(Resource):
    collection = "/v3/regions"

    def _create(self, req: falcon.Request, resp: falcon.Response, region_id: str | None) -> None:
        """Create a region from the request body; its id from the URL or the body."""
        body = validation.body(req, "region", REGION_CREATE)
        values = _values(body, region_id, "region")
        ref = self.service.catalog.create_region(
            self.ctx(req),
            region_id=region_id or body.get("id"),
            description=values.pop("description", None) or "",
            parent_region_id=values.pop("parent_region_id", None),
            extra=values,
            id_in_url=region_id is not None,
        )
        resp.status = falcon.HTTP_201
        resp.media = {"region": self.with_links(req, ref)}


class RegionCollection(_RegionResource):
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        query = self.list_params(req)
        refs = self.service.catalog.list_regions(
            self.ctx(req), parent_region_id=req.get_param("parent_region_id"), page=page_of(query)
        )
        resp.media = self.listing(req, "regions", refs, query)

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        self._create(req, resp, None)


class RegionItem(_RegionResource):
    def on_get(self, req: falcon.Request, resp: falcon.Response, region_id: str) -> None:
        ref = self.service.catalog.get_region(self.ctx(req), region_id)
        resp.media = {"region": self.with_links(req, ref)}

    def on_put(self, req: falcon.Request, resp: falcon.Response, region_id: str) -> None:
        """Create a region with the id given in the URL."""
        validation.validate(_REGION_ID, region_id, "region_id")
        self._create(req, resp, region_id)

    def on_patch(self, req: falcon.Request, resp: falcon.Response, region_id: str) -> None:
        changes = Deferred(
            lambda: _blank_description(
                _values(validation.body(req, "region", REGION_UPDATE), region_id, "region")
            )
        )
        ref = self.service.catalog.update_region(self.ctx(req), region_id, changes)
        resp.media = {"region": self.with_links(req, ref)}

    def on_delete(self, req: falcon.Request, resp: falcon.Response, region_id: str) -> None:
        self.service.catalog.delete_region(self.ctx(req), region_id)
        resp.status = falcon.HTTP_204
