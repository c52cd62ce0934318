"""``/v3/services``, ``/v3/endpoints`` and ``/v3/regions``: the service catalog."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import falcon

from nimbus import exception
from nimbus.api import validation
from nimbus.api.identity.base import (
    Collection,
    Item,
    Kind,
    _Crud,
    create_with_extra,
    may_create,
    paged_crud,
)
from nimbus.api.resource import Crud
from nimbus.context import RequestContext
from nimbus.identity.catalog import INTERFACES
from nimbus.identity.service import IdentityService

_TYPE = {"type": "string", "minLength": 1, "maxLength": 255}
# Region ids appear in URLs: no "/", and no control characters (PostgreSQL refuses NUL).
_REGION_ID = {
    "type": "string",
    "minLength": 1,
    "maxLength": 255,
    "pattern": r"^[^\x00-\x1f\x7f/]+\Z",  # \Z: $ would let a trailing newline through
}
# Keystone's length limit; the rest is checked by _check_url, with plainer messages.
_URL = {"type": "string", "minLength": 1, "maxLength": 225}

SERVICE_CREATE = validation.create_schema(
    {
        "type": _TYPE,
        "name": validation.NAME,
        "description": validation.DESCRIPTION,
        "enabled": validation.BOOLEAN,
    },
    "type",
)
SERVICE_UPDATE = validation.update_schema({**SERVICE_CREATE["properties"], "id": validation.ID})
ENDPOINT_CREATE = validation.create_schema(
    {
        "service_id": validation.ID,
        "interface": {"type": "string", "enum": list(INTERFACES)},
        "url": _URL,
        "region_id": validation.nullable(_REGION_ID),
        # The v2-era name of region_id, still sent by old clients.
        "region": validation.nullable(_REGION_ID),
        "enabled": validation.BOOLEAN,
    },
    "service_id",
    "interface",
    "url",
)
ENDPOINT_UPDATE = validation.update_schema({**ENDPOINT_CREATE["properties"], "id": validation.ID})
REGION_CREATE = validation.create_schema(
    {
        "id": validation.nullable(_REGION_ID),
        "description": validation.DESCRIPTION,
        "parent_region_id": validation.nullable(_REGION_ID),
    }
)
REGION_UPDATE = validation.update_schema({**REGION_CREATE["properties"], "id": _REGION_ID})

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


def _service_crud(service: IdentityService) -> Crud:
    catalog = service.catalog
    create = create_with_extra(
        catalog.create_service, ("type", "name", "description", "enabled"), blank=("description",)
    )
    return paged_crud(catalog, "service", "services", create)


def _endpoint_crud(service: IdentityService) -> Crud:
    catalog = service.catalog
    columns = ("service_id", "interface", "url", "region_id", "region", "enabled")
    return paged_crud(
        catalog, "endpoint", "endpoints", create_with_extra(catalog.create_endpoint, columns)
    )


def _create_region(
    catalog: Any, ctx: RequestContext, values: dict[str, Any], region_id: str | None
) -> dict[str, Any]:
    """Create a region; its id from the URL (*region_id*) or the body."""
    return catalog.create_region(
        ctx,
        region_id=region_id or values.pop("id", None),
        description=values.pop("description", None) or "",
        parent_region_id=values.pop("parent_region_id", None),
        extra={k: v for k, v in values.items() if k not in ("links", "id")},
        id_in_url=region_id is not None,
    )


def _region_crud(service: IdentityService) -> Crud:
    catalog = service.catalog
    return paged_crud(
        catalog, "region", "regions", lambda ctx, values: _create_region(catalog, ctx, values, None)
    )


def _check_endpoint(values: dict[str, Any]) -> dict[str, Any]:
    if "url" in values:
        _check_url(values["url"])
    return values


@dataclasses.dataclass(frozen=True)
class CatalogKind(Kind):
    """A catalog kind: bodies may repeat the URL's id; some read a null description as blank.

    :param check: checks what the schema cannot.
    :param blank_description: whether an update reads a null ``description`` as ``""``.
    """

    check: Callable[[dict[str, Any]], dict[str, Any]] = lambda values: values
    blank_description: bool = True


class _CatalogParse(_Crud):
    kind: CatalogKind

    def parse(self, req: falcon.Request, item_id: str | None = None) -> dict[str, Any]:
        body = validation.body(req, self.member_key, self.schema())
        values = _values(body, item_id, self.member_key)
        if item_id and self.kind.blank_description:
            values = _blank_description(values)
        return self.kind.check(values)


class CatalogCollection(_CatalogParse, Collection):
    pass


class CatalogItem(_CatalogParse, Item):
    pass


SERVICES = CatalogKind(
    "service",
    "services",
    "/v3/services",
    _service_crud,
    SERVICE_CREATE,
    SERVICE_UPDATE,
    {"type": str, "name": str},
)
ENDPOINTS = CatalogKind(
    "endpoint",
    "endpoints",
    "/v3/endpoints",
    _endpoint_crud,
    ENDPOINT_CREATE,
    ENDPOINT_UPDATE,
    {"service_id": str, "interface": str, "region_id": str},
    check=_check_endpoint,
    blank_description=False,
)
REGIONS = CatalogKind(
    "region",
    "regions",
    "/v3/regions",
    _region_crud,
    REGION_CREATE,
    REGION_UPDATE,
    {"parent_region_id": str},
)


class RegionCollection(CatalogCollection):
    def parse(self, req: falcon.Request, item_id: str | None = None) -> dict[str, Any]:
        # The create call needs the body's id.
        return validation.body(req, "region", REGION_CREATE)


class RegionItem(CatalogItem):
    def on_put(self, req: falcon.Request, resp: falcon.Response, region_id: str) -> None:
        """Create a region with the id given in the URL."""
        may_create(self.identity.catalog, "region")(self.ctx(req))
        validation.validate(_REGION_ID, region_id, "region_id")
        values = _values(validation.body(req, "region", REGION_CREATE), region_id, "region")
        ref = _create_region(self.identity.catalog, self.ctx(req), values, region_id)
        resp.status = falcon.HTTP_201
        resp.media = self.one(req, ref)
