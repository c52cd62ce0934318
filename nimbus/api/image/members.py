"""``/v2/images/{image_id}/members``: share images with other projects."""

from __future__ import annotations

from typing import Any

import falcon

from nimbus.api import hooks
from nimbus.api.image.base import Resource
from nimbus.image import schema

ADD = {
    "type": "object",
    "properties": {"member": {"type": "string", "minLength": 1, "maxLength": 255}},
    "required": ["member"],
    "additionalProperties": False,
}
# openstacksdk sends the whole member back (``member`` included); as in
# Glance, only ``status`` counts.
UPDATE = {
    "type": "object",
    "properties": {
        "status": {"type": "string", "enum": list(schema.MEMBER_STATUSES)},
        "member": {"type": "string"},
        "member_id": {"type": "string"},
        "image_id": {"type": "string"},
    },
    "required": ["status"],
}


def _view(member: dict[str, Any]) -> dict[str, Any]:
    return {**member, "schema": "/v2/schemas/member"}


class MemberCollection(Resource):
    def on_get(self, req: falcon.Request, resp: falcon.Response, image_id: str) -> None:
        members = self.service.list_members(self.ctx(req), image_id)
        resp.media = {"members": [_view(m) for m in members], "schema": "/v2/schemas/members"}

    @falcon.before(hooks.validate(ADD, root="member"))
    def on_post(self, req: falcon.Request, resp: falcon.Response, image_id: str) -> None:
        member_id = self.body(req)["member"]
        resp.media = _view(self.service.add_member(self.ctx(req), image_id, member_id))


class MemberItem(Resource):
    def on_get(
        self, req: falcon.Request, resp: falcon.Response, image_id: str, member_id: str
    ) -> None:
        resp.media = _view(self.service.get_member(self.ctx(req), image_id, member_id))

    @falcon.before(hooks.validate(UPDATE, root="member"))
    def on_put(
        self, req: falcon.Request, resp: falcon.Response, image_id: str, member_id: str
    ) -> None:
        status = self.body(req)["status"]
        resp.media = _view(self.service.update_member(self.ctx(req), image_id, member_id, status))

    def on_delete(
        self, req: falcon.Request, resp: falcon.Response, image_id: str, member_id: str
    ) -> None:
        self.service.delete_member(self.ctx(req), image_id, member_id)
        resp.status = falcon.HTTP_204
