"""``/v3/users``: users, their passwords, projects and groups."""

from __future__ import annotations

import falcon

from nimbus.api import validation
from nimbus.api.identity.base import Deferred, Resource
from nimbus.drivers.identity import ListQuery
from nimbus.identity.users import group_dict, user_dict

_PASSWORD = {"type": ["string", "null"], "maxLength": 4096}
_COMMON = {
    "name": validation.NAME,
    "enabled": validation.BOOLEAN,
    "password": _PASSWORD,
    "default_project_id": validation.nullable(validation.ID),
    "description": validation.DESCRIPTION,
    "email": {"type": ["string", "null"], "maxLength": 255},
    "options": {"type": "object"},
}
USER_CREATE = {
    "type": "object",
    "properties": {**_COMMON, "domain_id": validation.nullable(validation.ID)},
    "required": ["name"],
}
USER_UPDATE = {
    "type": "object",
    "properties": _COMMON,
    "not": {"anyOf": [{"required": ["id"]}, {"required": ["domain_id"]}]},
    "minProperties": 1,
}
PASSWORD_CHANGE = {
    "type": "object",
    "properties": {
        "password": {"type": "string", "minLength": 1, "maxLength": 4096},
        "original_password": {"type": "string", "maxLength": 4096},
    },
    "required": ["password", "original_password"],
}


def _values(body: dict) -> dict:
    """Drop what nimbus does not store and nulls that mean "not given"."""
    return {
        k: v
        for k, v in body.items()
        if k not in ("options", "links", "id") and not (v is None and k != "default_project_id")
    }


class UserCollection(Resource):
    collection = "/v3/users"

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        page = self.page(req)
        users = self.service.users.list_users(
            self.ctx(req),
            ListQuery(
                domain_id=req.get_param("domain_id"),
                name=req.get_param("name"),
                enabled=validation.bool_param(req, "enabled"),
                limit=page.limit,
                marker=page.marker,
            ),
        )
        resp.media = self.listing(req, "users", [user_dict(u) for u in users], page)

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        values = _values(validation.body(req, "user", USER_CREATE))
        user = self.service.users.create_user(
            self.ctx(req),
            name=values.pop("name"),
            domain_id=values.pop("domain_id", None),
            **values,
        )
        resp.status = falcon.HTTP_201
        resp.media = {"user": self.with_links(req, user_dict(user))}


class UserItem(Resource):
    collection = "/v3/users"

    def on_get(self, req: falcon.Request, resp: falcon.Response, user_id: str) -> None:
        user = self.service.users.get_user(self.ctx(req), user_id)
        resp.media = {"user": self.with_links(req, user_dict(user))}

    def on_patch(self, req: falcon.Request, resp: falcon.Response, user_id: str) -> None:
        changes = Deferred(lambda: _values(validation.body(req, "user", USER_UPDATE)))
        user = self.service.users.update_user(self.ctx(req), user_id, changes)
        resp.media = {"user": self.with_links(req, user_dict(user))}

    def on_delete(self, req: falcon.Request, resp: falcon.Response, user_id: str) -> None:
        self.service.users.delete_user(self.ctx(req), user_id)
        resp.status = falcon.HTTP_204


class UserPassword(Resource):
    """``POST /v3/users/{user_id}/password``: change one's own password."""

    def on_post(self, req: falcon.Request, resp: falcon.Response, user_id: str) -> None:
        body = Deferred(lambda: validation.body(req, "user", PASSWORD_CHANGE))
        self.service.users.change_password(self.ctx(req), user_id, body)
        resp.status = falcon.HTTP_204


class UserProjects(Resource):
    """``GET /v3/users/{user_id}/projects``."""

    collection = "/v3/projects"

    def on_get(self, req: falcon.Request, resp: falcon.Response, user_id: str) -> None:
        refs = self.service.assignments.list_user_projects(
            self.ctx(req),
            user_id,
            enabled=validation.bool_param(req, "enabled"),
            name=req.get_param("name"),
        )
        resp.media = self.listing(req, "projects", refs, None)


class UserGroups(Resource):
    """``GET /v3/users/{user_id}/groups``."""

    collection = "/v3/groups"

    def on_get(self, req: falcon.Request, resp: falcon.Response, user_id: str) -> None:
        groups = self.service.users.list_groups_for_user(self.ctx(req), user_id)
        resp.media = self.listing(req, "groups", [group_dict(g) for g in groups], None)
