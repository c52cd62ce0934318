"""Interoperable image import: ``/stage``, ``/import``, ``/v2/info/*`` and image tasks."""

from __future__ import annotations

import falcon
from oslo_config import cfg

from nimbus.api.app import Links
from nimbus.api.image.base import Resource
from nimbus.api.image.image_data import DataUpload
from nimbus.image import ImageService, TaskService
from nimbus.image.stores import Stores
from nimbus.image.task_service import import_methods

__all__ = [
    "ImageStage",
    "ImageTasks",
    "ImportImage",
    "ImportInfo",
    "StoreImage",
    "StoresInfo",
    "import_headers",
]

#: The header naming the store an upload, stage or import goes to (Glance's).
STORE_HEADER = "X-Image-Meta-Store"


def import_headers(stores: Stores) -> dict[str, str]:
    """Return the headers Glance adds to an image create: the import methods and stores."""
    return {
        "OpenStack-image-import-methods": ",".join(import_methods(stores)),
        "OpenStack-image-store-ids": ",".join(stores),
    }


class ImageStage(DataUpload):
    """``PUT`` stages an image's data for a ``glance-direct`` import (204)."""

    stage = True


class ImportImage(Resource):
    """``POST`` starts an import of the image's data (202, no body)."""

    def __init__(self, service: ImageService, tasks: TaskService, links: Links) -> None:
        super().__init__(service, links)
        self.tasks = tasks

    def on_post(self, req: falcon.Request, resp: falcon.Response, image_id: str) -> None:
        self.tasks.import_image(
            self.ctx(req), image_id, self.body(req), store_header=req.get_header(STORE_HEADER)
        )
        resp.status = falcon.HTTP_202
        resp.content_type = "text/html; charset=UTF-8"
        resp.text = ""


class ImageTasks(Resource):
    """``GET`` lists the tasks of an image (Glance 2.12)."""

    def __init__(self, service: ImageService, tasks: TaskService, links: Links) -> None:
        super().__init__(service, links)
        self.tasks = tasks

    def on_get(self, req: falcon.Request, resp: falcon.Response, image_id: str) -> None:
        resp.media = {"tasks": self.tasks.list_for_image(self.ctx(req), image_id)}


class ImportInfo:
    """``GET /v2/info/import``: the import methods this cloud runs."""

    def __init__(self, stores: Stores) -> None:
        self.stores = stores

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {
            "import-methods": {
                "description": "Import methods available.",
                "type": "array",
                "value": list(import_methods(self.stores)),
            }
        }


class StoresInfo:
    """``GET /v2/info/stores``: every store image data may go to, the default one marked."""

    def __init__(self, conf: cfg.ConfigOpts, stores: Stores) -> None:
        self.conf = conf
        self.stores = stores

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        listed = []
        for store_id in self.stores:
            entry: dict[str, object] = {
                "id": store_id,
                "description": _description(self.conf, store_id, self.stores),
            }
            if store_id == self.stores.default:
                entry["default"] = True
            listed.append(entry)
        resp.media = {"stores": listed}


def _description(conf: cfg.ConfigOpts, store_id: str, stores: Stores) -> str:
    """Return a store's description: its class's first docstring line, with its id."""
    store = stores.stores[store_id]
    summary = (type(store).__doc__ or "").strip().splitlines()
    what = summary[0].rstrip(".") if summary else type(store).__name__
    return f"{store_id}: {what}"


class StoreImage(Resource):
    """``DELETE /v2/stores/{store_id}/{image_id}`` removes an image's data from one store (204)."""

    def on_delete(
        self, req: falcon.Request, resp: falcon.Response, store_id: str, image_id: str
    ) -> None:
        self.service.remove_from_store(self.ctx(req), store_id, image_id)
        resp.status = falcon.HTTP_204
