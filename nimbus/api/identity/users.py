"""``/v3/users``: users, their passwords, projects and groups."""

from __future__ import annotations

from typing import Any

import falcon

from nimbus.api import validation
from nimbus.api.identity.base import (
    USER_FILTERS,
    Deferred,
    Kind,
    Resource,
    list_query,
    may_create,
)
from nimbus.api.resource import Crud
from nimbus.context import RequestContext
from nimbus.identity.service import IdentityService
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
USER_CREATE = validation.create_schema(
    {**_COMMON, "domain_id": validation.nullable(validation.ID)}, "name"
)
# ``id`` and ``domain_id`` may be sent back unchanged, as Keystone allows.
USER_UPDATE = validation.update_schema({**_COMMON, "id": validation.ID, "domain_id": validation.ID})
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


def crud(service: IdentityService) -> Crud:
    """Return the user calls of the identity service."""
    users = service.users

    def create(ctx: RequestContext, values: dict[str, Any]) -> dict[str, Any]:
        return user_dict(users.create_user(ctx, **values))

    return Crud(
        list=lambda ctx, query: [user_dict(u) for u in users.list_users(ctx, list_query(query))],
        create=create,
        get=lambda ctx, user_id: user_dict(users.get_user(ctx, user_id)),
        update=lambda ctx, user_id, changes: user_dict(users.update_user(ctx, user_id, changes)),
        delete=users.delete_user,
        may_create=may_create(users, "user"),
    )


USERS = Kind("user", "users", "/v3/users", crud, USER_CREATE, USER_UPDATE, USER_FILTERS, _values)


class UserPassword(Resource):
    """``POST /v3/users/{user_id}/password``: change a password, giving the current one."""

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
        resp.media = self.listing(req, "projects", refs)


class UserGroups(Resource):
    """``GET /v3/users/{user_id}/groups``."""

    collection = "/v3/groups"

    def on_get(self, req: falcon.Request, resp: falcon.Response, user_id: str) -> None:
        groups = self.service.users.list_groups_for_user(self.ctx(req), user_id)
        resp.media = self.listing(req, "groups", [group_dict(g) for g in groups])
