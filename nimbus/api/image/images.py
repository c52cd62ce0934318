"""``/v2/images``: create, list, show, patch and delete images; tags and actions."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import falcon

from nimbus import exception
from nimbus.api import validation
from nimbus.api.image.base import Resource, with_links
from nimbus.image import patch, query, schema

_PATCH_TYPES = ", ".join(patch.MEDIA_TYPES)


def _create_values(conf: Any, document: Any) -> dict[str, Any]:
    """Validate a create request's body (the bare image object)."""
    if not isinstance(document, dict):
        raise exception.BadRequest(reason="The request body must be a JSON object.")
    values: dict[str, Any] = {}
    for name, value in document.items():
        if name in schema.RESERVED:
            raise exception.Forbidden(message=f"Attribute '{name}' is reserved.")
        if name in schema.READ_ONLY and name != "id":
            raise exception.Forbidden(message=f"Attribute '{name}' is read-only.")
        if not name or len(name) > 255:
            raise exception.ValidationError(field=name[:40], reason="invalid property name")
        if value is None and name not in ("name", "disk_format", "container_format"):
            # null means "not given" (clients send explicit nulls).
            continue
        validation.validate(schema.property_schema(conf, name), value, name)
        values[name] = value
    return values


class ImageCollection(Resource):
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        conf = self.service.conf.image
        parsed = query.parse(
            req.params, default_limit=conf.limit_param_default, max_limit=conf.api_limit_max
        )
        images, more = self.service.list(self.ctx(req), parsed)
        params = {k: v for k, v in req.params.items() if k != "marker"}
        first = "/v2/images" + (f"?{urlencode(params, doseq=True)}" if params else "")
        body: dict[str, Any] = {
            "images": [with_links(image) for image in images],
            "first": first,
            "schema": "/v2/schemas/images",
        }
        if more and images:
            params["marker"] = images[-1]["id"]
            params["limit"] = str(parsed.limit)
            body["next"] = f"/v2/images?{urlencode(params, doseq=True)}"
        resp.media = body

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        values = _create_values(self.service.conf, req.context.json)
        image = self.service.create(self.ctx(req), values)
        resp.status = falcon.HTTP_201
        resp.location = self.links.url(req, f"/v2/images/{image['id']}")
        resp.media = with_links(image)


class ImageItem(Resource):
    def on_get(self, req: falcon.Request, resp: falcon.Response, image_id: str) -> None:
        resp.media = with_links(self.service.get(self.ctx(req), image_id))

    def on_patch(self, req: falcon.Request, resp: falcon.Response, image_id: str) -> None:
        content_type = (req.content_type or "").split(";")[0].strip().lower()
        if content_type not in patch.MEDIA_TYPES:
            raise falcon.HTTPUnsupportedMediaType(
                description=f"Unsupported Content-Type {content_type!r}: send {_PATCH_TYPES}.",
                headers={"Accept-Patch": _PATCH_TYPES},
            )
        changes = patch.parse(req.context.json)
        resp.media = with_links(self.service.update(self.ctx(req), image_id, changes))

    def on_delete(self, req: falcon.Request, resp: falcon.Response, image_id: str) -> None:
        self.service.delete(self.ctx(req), image_id)
        resp.status = falcon.HTTP_204


class ImageTag(Resource):
    def on_put(self, req: falcon.Request, resp: falcon.Response, image_id: str, tag: str) -> None:
        self.service.add_tag(self.ctx(req), image_id, tag)
        resp.status = falcon.HTTP_204

    def on_delete(
        self, req: falcon.Request, resp: falcon.Response, image_id: str, tag: str
    ) -> None:
        self.service.remove_tag(self.ctx(req), image_id, tag)
        resp.status = falcon.HTTP_204


class Deactivate(Resource):
    def on_post(self, req: falcon.Request, resp: falcon.Response, image_id: str) -> None:
        self.service.deactivate(self.ctx(req), image_id)
        resp.status = falcon.HTTP_204


class Reactivate(Resource):
    def on_post(self, req: falcon.Request, resp: falcon.Response, image_id: str) -> None:
        self.service.reactivate(self.ctx(req), image_id)
        resp.status = falcon.HTTP_204
