"""``/v3/groups``: groups and their members."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import falcon

from nimbus.api import validation
from nimbus.api.identity.base import USER_FILTERS, Kind, Resource, list_query, may_create
from nimbus.api.resource import Crud, Link, LinkCalls
from nimbus.context import RequestContext
from nimbus.identity.service import IdentityService
from nimbus.identity.users import group_dict, user_dict

_COMMON = {
    "name": validation.NAME,
    "description": validation.DESCRIPTION,
}
GROUP_CREATE = validation.create_schema(
    {**_COMMON, "domain_id": validation.nullable(validation.ID)}, "name"
)
# ``id`` and ``domain_id`` may be sent back unchanged, as Keystone allows.
GROUP_UPDATE = validation.update_schema(
    {**_COMMON, "id": validation.ID, "domain_id": validation.ID}
)


def _values(body: dict[str, Any]) -> dict[str, Any]:
    """Drop what is never stored: links and a null ``domain_id`` ("not given")."""
    return {k: v for k, v in body.items() if k != "links" and not (k == "domain_id" and v is None)}


def crud(service: IdentityService) -> Crud:
    """Return the group calls of the identity service."""
    users = service.users

    def create(ctx: RequestContext, values: dict[str, Any]) -> dict[str, Any]:
        values.pop("id", None)  # ids are always assigned by nimbus
        return group_dict(users.create_group(ctx, **values))

    return Crud(
        list=lambda ctx, query: [group_dict(g) for g in users.list_groups(ctx, list_query(query))],
        create=create,
        get=lambda ctx, group_id: group_dict(users.get_group(ctx, group_id)),
        update=lambda ctx, group_id, changes: group_dict(
            users.update_group(ctx, group_id, changes)
        ),
        delete=users.delete_group,
        may_create=may_create(users, "group"),
    )


GROUPS = Kind(
    "group",
    "groups",
    "/v3/groups",
    crud,
    GROUP_CREATE,
    GROUP_UPDATE,
    {"domain_id": str, "name": str},
    _values,
)


class GroupUsers(Resource):
    """``GET /v3/groups/{group_id}/users``: a group's members."""

    collection = "/v3/users"

    def on_get(self, req: falcon.Request, resp: falcon.Response, group_id: str) -> None:
        query = self.list_params(req, USER_FILTERS)
        users = self.service.users.list_users_in_group(self.ctx(req), group_id, list_query(query))
        resp.media = self.listing(req, "users", [user_dict(u) for u in users], query)


class GroupUser(Link, Resource):
    """``/v3/groups/{group_id}/users/{user_id}``: one membership."""

    def calls(self) -> LinkCalls:
        users = self.service.users
        return users.add_user_to_group, users.check_user_in_group, users.remove_user_from_group

    def arguments(self, params: Mapping[str, str]) -> tuple[Any, ...]:
        return params["user_id"], params["group_id"]
