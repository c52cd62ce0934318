"""``/os-server-groups``: keep servers together or apart (Nova v2.1)."""

from __future__ import annotations

from typing import Any

import falcon

from nimbus.api import hooks
from nimbus.api.compute.base import Resource
from nimbus.api.resource import bool_value
from nimbus.compute.groups import POLICIES

CREATE = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": r"^(?!\s*$).+"},
        "policies": {
            "type": "array",
            "items": {"type": "string", "enum": list(POLICIES)},
            "minItems": 1,
            "maxItems": 1,
        },
    },
    "required": ["name", "policies"],
    "additionalProperties": False,
}


def _view(group: dict[str, Any]) -> dict[str, Any]:
    # Before microversion 2.64 a group has a list of policies and metadata.
    return {
        "id": group["id"],
        "name": group["name"],
        "policies": [group["policy"]],
        "members": group["members"],
        "metadata": {},
    }


class ServerGroups(Resource):
    """``GET /os-server-groups`` lists the project's groups; ``POST`` creates one."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        every = req.get_param("all_projects", default=None)
        found = self.service.list(
            self.ctx(req), all_projects=every is not None and bool_value(every)
        )
        resp.media = {"server_groups": [_view(g) for g in found]}

    @falcon.before(hooks.validate(CREATE, key="server_group"))
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        given = self.body(req)["server_group"]
        group = self.service.create(self.ctx(req), given["name"], given["policies"][0])
        resp.media = {"server_group": _view(group)}


class ServerGroup(Resource):
    """``GET /os-server-groups/{id}`` shows a group; ``DELETE`` deletes it."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, group_id: str) -> None:
        resp.media = {"server_group": _view(self.service.get(self.ctx(req), group_id))}

    def on_delete(self, req: falcon.Request, resp: falcon.Response, group_id: str) -> None:
        self.service.delete(self.ctx(req), group_id)
        resp.status = falcon.HTTP_204
