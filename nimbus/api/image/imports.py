"""Interoperable image import: ``/stage``, ``/import``, ``/v2/info/*`` and image tasks."""

from __future__ import annotations

import falcon
from oslo_config import cfg

from nimbus.api.app import Links
from nimbus.api.image.base import Resource
from nimbus.api.image.image_data import DataUpload
from nimbus.image import ImageService, TaskService
from nimbus.image.task_service import IMPORT_METHODS

__all__ = ["ImageStage", "ImageTasks", "ImportImage", "ImportInfo", "StoresInfo", "import_headers"]


def import_headers(conf: cfg.ConfigOpts) -> dict[str, str]:
    """Return the headers Glance adds to an image create: the import methods and stores."""
    return {
        "OpenStack-image-import-methods": ",".join(IMPORT_METHODS),
        "OpenStack-image-store-ids": conf.image.store,
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
        self.tasks.import_image(self.ctx(req), image_id, self.body(req))
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

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {
            "import-methods": {
                "description": "Import methods available.",
                "type": "array",
                "value": list(IMPORT_METHODS),
            }
        }


class StoresInfo:
    """``GET /v2/info/stores``: the one store image data goes to."""

    def __init__(self, conf: cfg.ConfigOpts) -> None:
        self.conf = conf

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        store = self.conf.image.store
        resp.media = {
            "stores": [{"id": store, "description": f"The {store} image store", "default": True}]
        }
