"""``/v3/groups``: groups and their members."""

from __future__ import annotations

from typing import Any

import falcon

from nimbus import exception
from nimbus.api import validation
from nimbus.api.identity.base import Resource
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


def _unchanged(changes: dict[str, Any], key: str, current: str) -> None:
    """Pop *key* from *changes*; it may only repeat the *current* value.

    :raises ValidationError: the value differs from the current one.
    """
    value = changes.pop(key, current)
    if value != current:
        raise exception.ValidationError(field=f"group/{key}", reason="cannot be changed")


class GroupCollection(Resource):
    collection = "/v3/groups"

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self.authorize(req, "identity:list_groups")
        page = self.page(req)
        groups = self.service.users.list_groups(
            ListQuery(
                domain_id=req.get_param("domain_id"),
                name=req.get_param("name"),
                limit=page.limit,
                marker=page.marker,
            )
        )
        resp.media = self.listing(req, "groups", [group_dict(g) for g in groups], page)

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        self.authorize(req, "identity:create_group")
        values = _values(validation.body(req, "group", GROUP_CREATE))
        values.pop("id", None)  # ids are always assigned by nimbus
        domain_id = (
            values.pop("domain_id", None)
            or self.ctx(req).project_domain_id
            or self.service.conf.identity.default_domain_id
        )
        group = self.service.users.create_group(
            name=values.pop("name"), domain_id=domain_id, **values
        )
        resp.status = falcon.HTTP_201
        resp.media = {"group": self.with_links(req, group_dict(group))}


class GroupItem(Resource):
    collection = "/v3/groups"

    def on_get(self, req: falcon.Request, resp: falcon.Response, group_id: str) -> None:
        self.authorize(req, "identity:get_group", {"target.group.id": group_id})
        resp.media = {
            "group": self.with_links(req, group_dict(self.service.users.get_group(group_id)))
        }

    def on_patch(self, req: falcon.Request, resp: falcon.Response, group_id: str) -> None:
        self.authorize(req, "identity:update_group", {"target.group.id": group_id})
        changes = _values(validation.body(req, "group", GROUP_UPDATE))
        _unchanged(changes, "id", group_id)
        if "domain_id" in changes:
            _unchanged(changes, "domain_id", self.service.users.get_group(group_id).domain_id)
        group = self.service.users.update_group(group_id, changes)
        resp.media = {"group": self.with_links(req, group_dict(group))}

    def on_delete(self, req: falcon.Request, resp: falcon.Response, group_id: str) -> None:
        self.authorize(req, "identity:delete_group", {"target.group.id": group_id})
        self.service.users.delete_group(group_id)
        # Members lose the roles the group carried.
        self.service.auth.forget_cached()
        resp.status = falcon.HTTP_204


class GroupUsers(Resource):
    """``GET /v3/groups/{group_id}/users``: a group's members."""

    collection = "/v3/users"

    def on_get(self, req: falcon.Request, resp: falcon.Response, group_id: str) -> None:
        self.authorize(req, "identity:list_users_in_group", {"target.group.id": group_id})
        page = self.page(req)
        users = self.service.users.list_users_in_group(
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

    @staticmethod
    def _target(group_id: str, user_id: str) -> dict[str, str]:
        return {"target.group.id": group_id, "target.user.id": user_id}

    def on_put(
        self, req: falcon.Request, resp: falcon.Response, group_id: str, user_id: str
    ) -> None:
        self.authorize(req, "identity:add_user_to_group", self._target(group_id, user_id))
        self.service.users.add_user_to_group(user_id, group_id)
        # The new member gains the group's roles at once.
        self.service.auth.forget_cached()
        resp.status = falcon.HTTP_204

    def on_head(
        self, req: falcon.Request, resp: falcon.Response, group_id: str, user_id: str
    ) -> None:
        self.authorize(req, "identity:check_user_in_group", self._target(group_id, user_id))
        if not self.service.users.check_user_in_group(user_id, group_id):
            raise exception.NotFound(kind="membership", id=f"user {user_id} in group {group_id}")
        resp.status = falcon.HTTP_204

    def on_get(
        self, req: falcon.Request, resp: falcon.Response, group_id: str, user_id: str
    ) -> None:
        self.on_head(req, resp, group_id, user_id)

    def on_delete(
        self, req: falcon.Request, resp: falcon.Response, group_id: str, user_id: str
    ) -> None:
        self.authorize(req, "identity:remove_user_from_group", self._target(group_id, user_id))
        self.service.users.remove_user_from_group(user_id, group_id)
        self.service.auth.forget_cached()
        resp.status = falcon.HTTP_204
