"""``/v2/images``: create, list, show, patch and delete images; tags and actions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import falcon

from nimbus.api import hooks, resource
from nimbus.api.app import Links
from nimbus.api.image import imports
from nimbus.api.image.base import Glance, Resource
from nimbus.image import ImageService, patch, schema

__all__ = ["Deactivate", "ImageCollection", "ImageItem", "ImageTag", "Reactivate"]


def _crud(service: ImageService) -> resource.Crud:
    return resource.Crud(
        create=service.create, get=service.get, update=service.update, delete=service.delete
    )


class ImageCollection(Glance, resource.Collection):
    """``GET`` lists images (Glance's filters and pages), ``POST`` creates one."""

    collection = "/v2/images"
    collection_key = "images"
    bare = True
    location = True
    # Listing is Glance's own (its filters and paging), not the Crud's.
    responders: ClassVar[Mapping[str, str]] = {"create": "on_post"}

    def __init__(self, service: ImageService, links: Links) -> None:
        super().__init__(_crud(service), links)
        self.images = service

    def create_values(self, req: falcon.Request) -> dict[str, Any]:
        return schema.create_values(self.images.conf, self.body(req))

    def on_post(self, req: falcon.Request, resp: falcon.Response, **params: str) -> None:
        super().on_post(req, resp, **params)
        resp.set_headers(imports.import_headers(self.images.stores))

    def on_get(self, req: falcon.Request, resp: falcon.Response, **params: str) -> None:
        query = self.images.list_query(req.params)
        images, more = self.images.list(self.ctx(req), query)
        page = resource.ListParams(limit=query.limit)
        resp.media = self.listing(req, self.collection_key, images, page, more=more)


class ImageItem(Glance, resource.Item):
    """``GET`` shows an image, ``PATCH`` applies a JSON patch, ``DELETE`` deletes it."""

    collection = "/v2/images"
    bare = True

    def __init__(self, service: ImageService, links: Links) -> None:
        super().__init__(_crud(service), links)

    def update_values(self, req: falcon.Request, item_id: str) -> Any:
        return patch.parse(self.body(req), hooks.media_type(req, default=""))

    @falcon.before(hooks.content_type(*patch.MEDIA_TYPES, default="", accept_patch=True))
    def on_patch(self, req: falcon.Request, resp: falcon.Response, **params: str) -> None:
        super().on_patch(req, resp, **params)


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
