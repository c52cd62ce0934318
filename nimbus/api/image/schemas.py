"""``/v2/schemas/*``: the JSON schemas clients may read."""

from __future__ import annotations

import falcon
from oslo_config import cfg

from nimbus.image import schema

_DOCUMENTS = {
    "image": schema.image_schema,
    "images": schema.images_schema,
    "member": lambda conf: schema.member_schema(),
    "members": lambda conf: schema.members_schema(),
    "task": lambda conf: schema.task_schema(),
    "tasks": lambda conf: schema.tasks_schema(),
}


class Schema:
    """One schema document (``image``, ``images``, ``member``, ``members``, ``task``, ``tasks``)."""

    def __init__(self, conf: cfg.ConfigOpts, name: str) -> None:
        self.document = _DOCUMENTS[name](conf)

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = self.document
