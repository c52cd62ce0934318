"""``/v3/groups``: groups and their members."""

from __future__ import annotations

from typing import Any

import falcon

from nimbus import exception
from nimbus.api import validation
from nimbus.api.identity.base import Deferred, Resource
from nimbus.drivers.identity import ListQuery
from nimbus.identity.users import group_dict, user_dict

_COMMON = {
    "name": validation.NAME,
    "description": validation.DESCRIPTION,
}
GROUP_CREATE = {
    "type": "object",
    "properties": {**_COMMON, "domain_id": validation.nullable(validation.ID)},
    "required": ["name"],
}
GROUP_UPDATE = {
    "type": "object",
    # ``id`` and ``domain_id`` may be sent back unchanged, as Keystone allows.
    "properties": {**_COMMON, "id": validation.ID, "domain_id": validation.ID},
    "minProperties": 1,
}


def _values(body: dict[str, Any]) -> dict[str, Any]:
    """Drop what is never stored: links and a null ``domain_id`` ("not given")."""
    return {k: v for k, v in body.items() if k != "links" and not (k == "domain_id" and v is None)}


def _same_id(changes: dict[str, Any], group_id: str) -> dict[str, Any]:
    """Pop ``id`` from *changes*; it may only repeat the id in the URL.

    :raises ValidationError: the body names another group.
    """
    if changes.pop("id", group_id) != group_id:
        raise exception.ValidationError(field="group/id", reason="cannot be changed")
    return changes


class GroupCollection(Resource):
    collection = "/v3/groups"

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        page = self.page(req)
        groups = self.service.users.list_groups(
            self.ctx(req),
            ListQuery(
                domain_id=req.get_param("domain_id"),
                name=req.get_param("name"),
                limit=page.limit,
                marker=page.marker,
            ),
        )
        resp.media = self.listing(req, "groups", [group_dict(g) for g in groups], page)

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        values = _values(validation.body(req, "group", GROUP_CREATE))
        values.pop("id", None)  # ids are always assigned by nimbus
        group = self.service.users.create_group(
            self.ctx(req),
            name=values.pop("name"),
            domain_id=values.pop("domain_id", None),
            **values,
        )
        resp.status = falcon.HTTP_201
        resp.media = {"group": self.with_links(req, group_dict(group))}


class GroupItem(Resource):
    collection = "/v3/groups"

    def on_get(self, req: falcon.Request, resp: falcon.Response, group_id: str) -> None:
        group = self.service.users.get_group(self.ctx(req), group_id)
        resp.media = {"group": self.with_links(req, group_dict(group))}

    def on_patch(self, req: falcon.Request, resp: falcon.Response, group_id: str) -> None:
        changes = Deferred(
            lambda: _same_id(_values(validation.body(req, "group", GROUP_UPDATE)), group_id)
        )
        group = self.service.users.update_group(self.ctx(req), group_id, changes)
        resp.media = {"group": self.with_links(req, group_dict(group))}

    def on_delete(self, req: falcon.Request, resp: falcon.Response, group_id: str) -> None:
        self.service.users.delete_group(self.ctx(req), group_id)
        resp.status = falcon.HTTP_204


class GroupUsers(Resource):
    """``GET /v3/groups/{group_id}/users``: a group's members."""

    collection = "/v3/users"

    def on_get(self, req: falcon.Request, resp: falcon.Response, group_id: str) -> None:
        page = self.page(req)
        users = self.service.users.list_users_in_group(
            self.ctx(req),
            group_id,
            ListQuery(
                domain_id=req.get_param("domain_id"),
                name=req.get_param("name"),
                enabled=validation.bool_param(req, "enabled"),
                limit=page.limit,
                marker=page.marker,
            ),
        )
        resp.media = self.listing(req, "users", [user_dict(u) for u in users], page)


class GroupUser(Resource):
    """``/v3/groups/{group_id}/users/{user_id}``: one membership."""

    def on_put(
        self, req: falcon.Request, resp: falcon.Response, group_id: str, user_id: str
    ) -> None:
        self.service.users.add_user_to_group(self.ctx(req), user_id, group_id)
        resp.status = falcon.HTTP_204

    def on_head(
        self, req: falcon.Request, resp: falcon.Response, group_id: str, user_id: str
    ) -> None:
        self.service.users.check_user_in_group(self.ctx(req), user_id, group_id)
        resp.status = falcon.HTTP_204

    def on_get(
        self, req: falcon.Request, resp: falcon.Response, group_id: str, user_id: str
    ) -> None:
        self.on_head(req, resp, group_id, user_id)

    def on_delete(
        self, req: falcon.Request, resp: falcon.Response, group_id: str, user_id: str
    ) -> None:
        self.service.users.remove_user_from_group(self.ctx(req), user_id, group_id)
        resp.status = falcon.HTTP_204
