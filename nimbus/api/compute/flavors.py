"""``/flavors``: sizes of servers, their extra specs and access lists (Nova v2.1)."""

from __future__ import annotations

from typing import Any

import falcon

from nimbus import exception
from nimbus.api import hooks
from nimbus.api.compute.base import Resource, int_param, links_for
from nimbus.api.resource import bool_value
from nimbus.compute.flavors import FlavorQuery

_INT_MAX = 2**31 - 1
#: Nova's parameter types: a whole number given as a number or as digits.
_POSITIVE = {
    "type": ["integer", "string"],
    "pattern": r"^[0-9]*$",
    "minimum": 1,
    "minLength": 1,
}
_NON_NEGATIVE = {**_POSITIVE, "minimum": 0}
_NAME = {
    "type": "string",
    "minLength": 1,
    "maxLength": 255,
    # No leading or trailing blanks, no control characters.
    "pattern": r"^(?!\s)[^\x00-\x1f\x7f]*(?<!\s)$",
}
CREATE = {
    "type": "object",
    "properties": {
        "name": _NAME,
        "id": {
            "type": ["string", "number", "null"],
            "minLength": 1,
            "maxLength": 255,
            "pattern": r"^(?! )[a-zA-Z0-9. _-]+(?<! )$",
        },
        "ram": _POSITIVE,
        "vcpus": _POSITIVE,
        "disk": _NON_NEGATIVE,
        "OS-FLV-EXT-DATA:ephemeral": _NON_NEGATIVE,
        "swap": _NON_NEGATIVE,
        "rxtx_factor": {
            "type": ["number", "string"],
            "pattern": r"^[0-9]+(\.[0-9]+)?$",
            "minimum": 0,
            "exclusiveMinimum": 0,
            "maximum": 3.40282e38,
        },
        "os-flavor-access:is_public": {"type": ["boolean", "string"]},
    },
    "required": ["name", "ram", "vcpus", "disk"],
    "additionalProperties": False,
}
_SPEC_KEY = r"^[a-zA-Z0-9-_:. ]{1,255}$"
_SPEC_VALUE = {"type": ["string", "number", "boolean"], "minLength": 1, "maxLength": 255}
EXTRA_SPECS = {
    "type": "object",
    "properties": {
        "extra_specs": {
            "type": "object",
            "patternProperties": {_SPEC_KEY: _SPEC_VALUE},
            "additionalProperties": False,
        }
    },
    "required": ["extra_specs"],
    "additionalProperties": False,
}
ONE_SPEC = {
    "type": "object",
    "patternProperties": {_SPEC_KEY: _SPEC_VALUE},
    "additionalProperties": False,
    "minProperties": 1,
    "maxProperties": 1,
}
_TENANT = {
    "type": "object",
    "properties": {"tenant": {"type": "string", "minLength": 1, "maxLength": 255}},
    "required": ["tenant"],
    "additionalProperties": False,
}
ACTION = {
    "type": "object",
    "properties": {"addTenantAccess": _TENANT, "removeTenantAccess": _TENANT},
    "minProperties": 1,
    "maxProperties": 1,
    "additionalProperties": False,
}


def _whole(value: Any, field: str) -> int:
    number = int(value)
    if number > _INT_MAX:
        raise exception.ValidationError(field=field, reason=f"must be at most {_INT_MAX}")
    return number


def _spec_text(value: Any) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    return str(value)


def _create_values(given: dict[str, Any]) -> dict[str, Any]:
    """Return the flavor service's values for a validated create body."""
    flavor_id = given.get("id")
    public = given.get("os-flavor-access:is_public", True)
    return {
        "name": given["name"],
        "id": None if flavor_id is None else str(flavor_id),
        "memory_mb": _whole(given["ram"], "ram"),
        "vcpus": _whole(given["vcpus"], "vcpus"),
        "root_gb": _whole(given["disk"], "disk"),
        "ephemeral_gb": _whole(given.get("OS-FLV-EXT-DATA:ephemeral", 0), "ephemeral"),
        "swap": _whole(given.get("swap", 0), "swap"),
        "rxtx_factor": float(given.get("rxtx_factor", 1.0)),
        "is_public": public if isinstance(public, bool) else bool_value(public),
    }


def _is_public(req: falcon.Request) -> bool | None:
    """Return the ``is_public`` filter as Nova reads it (``none``: every flavor)."""
    raw = req.get_param("is_public", default=None)
    if raw is None:
        return True
    text = raw.strip().lower()
    if text == "none":
        return None
    if text in ("1", "t", "true", "on", "y", "yes"):
        return True
    if text in ("0", "f", "false", "off", "n", "no"):
        return False
    raise exception.BadRequest(reason=f"Invalid is_public filter [{raw}]")


class _Flavors(Resource):
    collection = "/flavors"

    def render_flavor(self, req: falcon.Request, flavor: dict[str, Any], *, detail: bool) -> dict:
        view: dict[str, Any] = {
            "id": flavor["id"],
            "name": flavor["name"],
            "links": links_for(self, req, f"/flavors/{flavor['id']}"),
        }
        if detail:
            view.update(
                {
                    "ram": flavor["memory_mb"],
                    "disk": flavor["root_gb"],
                    "vcpus": flavor["vcpus"],
                    "OS-FLV-EXT-DATA:ephemeral": flavor["ephemeral_gb"],
                    "OS-FLV-DISABLED:disabled": flavor["disabled"],
                    "os-flavor-access:is_public": flavor["is_public"],
                    "rxtx_factor": flavor["rxtx_factor"],
                    # Before microversion 2.75 no swap is shown as "".
                    "swap": flavor["swap"] or "",
                }
            )
        return view

    def query(self, req: falcon.Request) -> FlavorQuery:
        limit = self.pages.limit(req)
        return FlavorQuery(
            is_public=_is_public(req),
            min_ram=int_param(req, "minRam"),
            min_disk=int_param(req, "minDisk"),
            limit=limit,
            marker=req.get_param("marker", default=None) or None,
            sort_key=req.get_param("sort_key", default=None) or "flavorid",
            sort_dir=(req.get_param("sort_dir", default=None) or "asc").lower(),
        )

    def page(self, req: falcon.Request, *, detail: bool) -> dict[str, Any]:
        query = self.query(req)
        flavors = self.service.list(self.ctx(req), query)
        body: dict[str, Any] = {
            "flavors": [self.render_flavor(req, f, detail=detail) for f in flavors]
        }
        if query.limit is not None and len(flavors) >= query.limit and flavors:
            path = "/flavors/detail" if detail else "/flavors"
            next_url = self.pages.next_url(
                self.url(req, "/v2.1" + path), req, [{"id": flavors[-1]["id"]}], query.limit
            )
            body["flavors_links"] = [{"rel": "next", "href": next_url}]
        return body


class FlavorCollection(_Flavors):
    """``GET /flavors`` lists (ids, names, links); ``POST`` creates (cloud admins)."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = self.page(req, detail=False)

    @falcon.before(hooks.validate(CREATE, key="flavor"))
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        flavor = self.service.create(self.ctx(req), _create_values(self.body(req)["flavor"]))
        resp.media = {"flavor": self.render_flavor(req, flavor, detail=True)}


class FlavorDetail(_Flavors):
    """``GET /flavors/detail``: the flavors with their sizes."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = self.page(req, detail=True)


class FlavorItem(_Flavors):
    """``GET /flavors/{id}`` shows; ``DELETE`` deletes (cloud admins)."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, flavor_id: str) -> None:
        flavor = self.service.get(self.ctx(req), flavor_id)
        resp.media = {"flavor": self.render_flavor(req, flavor, detail=True)}

    def on_delete(self, req: falcon.Request, resp: falcon.Response, flavor_id: str) -> None:
        self.service.delete(self.ctx(req), flavor_id)
        resp.status = falcon.HTTP_202


def _access_view(flavor_id: str, projects: list[str]) -> dict[str, Any]:
    return {"flavor_access": [{"flavor_id": flavor_id, "tenant_id": p} for p in projects]}


class FlavorAccess(_Flavors):
    """``GET /flavors/{id}/os-flavor-access``: who may use a private flavor."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, flavor_id: str) -> None:
        resp.media = _access_view(flavor_id, self.service.access_list(self.ctx(req), flavor_id))


class FlavorAction(_Flavors):
    """``POST /flavors/{id}/action``: ``addTenantAccess`` / ``removeTenantAccess``."""

    @falcon.before(hooks.validate(ACTION))
    def on_post(self, req: falcon.Request, resp: falcon.Response, flavor_id: str) -> None:
        body = self.body(req)
        ctx = self.ctx(req)
        if "addTenantAccess" in body:
            projects = self.service.add_access(ctx, flavor_id, body["addTenantAccess"]["tenant"])
        else:
            projects = self.service.remove_access(
                ctx, flavor_id, body["removeTenantAccess"]["tenant"]
            )
        resp.media = _access_view(flavor_id, projects)


class ExtraSpecs(_Flavors):
    """``/flavors/{id}/os-extra_specs``: list (GET) and add or replace (POST)."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, flavor_id: str) -> None:
        resp.media = {"extra_specs": self.service.extra_specs(self.ctx(req), flavor_id)}

    @falcon.before(hooks.validate(EXTRA_SPECS))
    def on_post(self, req: falcon.Request, resp: falcon.Response, flavor_id: str) -> None:
        specs = {k: _spec_text(v) for k, v in self.body(req)["extra_specs"].items()}
        done = self.service.set_extra_specs(self.ctx(req), flavor_id, specs, verb="create")
        resp.media = {"extra_specs": done}


class ExtraSpec(_Flavors):
    """``/flavors/{id}/os-extra_specs/{key}``: show, set (PUT) and delete one."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, flavor_id: str, key: str) -> None:
        resp.media = {key: self.service.extra_spec(self.ctx(req), flavor_id, key)}

    @falcon.before(hooks.validate(ONE_SPEC))
    def on_put(self, req: falcon.Request, resp: falcon.Response, flavor_id: str, key: str) -> None:
        body = self.body(req)
        if key not in body:
            raise exception.BadRequest(reason="Request body and URI mismatch")
        specs = {key: _spec_text(body[key])}
        done = self.service.set_extra_specs(self.ctx(req), flavor_id, specs, verb="update")
        resp.media = done

    def on_delete(
        self, req: falcon.Request, resp: falcon.Response, flavor_id: str, key: str
    ) -> None:
        self.service.delete_extra_spec(self.ctx(req), flavor_id, key)
        resp.status = falcon.HTTP_202
