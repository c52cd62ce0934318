"""``/v2/tasks``: Glance's tasks (create one, list them, show one)."""

from __future__ import annotations

from typing import Any

import falcon

from nimbus.api import resource
from nimbus.api.app import Links
from nimbus.api.image.base import Glance
from nimbus.image import TaskService

__all__ = ["TaskCollection", "TaskItem"]


class _Resource(Glance, resource.Resource):
    service: TaskService

    def __init__(self, service: TaskService, links: Links) -> None:
        super().__init__(service, links)

    def render(self, req: falcon.Request, ref: dict[str, Any]) -> dict[str, Any]:
        return ref


class TaskCollection(_Resource):
    """``GET`` lists tasks (filters ``status``, ``type``; sorted, paged), ``POST`` creates one."""

    collection = "/v2/tasks"

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        query = self.service.query(req.params)
        tasks, more = self.service.list(self.ctx(req), query)
        page = resource.ListParams(limit=query.limit)
        resp.media = self.listing(req, "tasks", tasks, page, more=more)

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        task = self.service.create(self.ctx(req), self.body(req))
        resp.status = falcon.HTTP_201
        resp.location = task["self"]
        resp.media = task


class TaskItem(_Resource):
    """``GET`` shows a task; tasks are never deleted by hand (405, as Glance)."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, task_id: str) -> None:
        resp.media = self.service.get(self.ctx(req), task_id)
