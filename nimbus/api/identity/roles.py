"""``/v3/roles``, implied roles, and role grants on projects and domains."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import falcon

from nimbus.api import validation
from nimbus.api.identity.base import Kind, Resource, create_with_extra, paged_crud
from nimbus.api.resource import Crud, Link, LinkCalls
from nimbus.identity.assignment import SYSTEM, Grant
from nimbus.identity.service import IdentityService

_ROLE = {
    "name": validation.NAME,
    "description": validation.DESCRIPTION,
    "options": {"type": "object"},
}
ROLE_CREATE = validation.create_schema(
    {**_ROLE, "domain_id": validation.nullable(validation.ID)}, "name"
)
ROLE_UPDATE = validation.update_schema(_ROLE, "id", "domain_id")


def _values(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in ("options", "links")}


def _crud(service: IdentityService) -> Crud:
    assignments = service.assignments
    create = create_with_extra(
        lambda ctx, **values: assignments.create_role(ctx, values),
        ("name", "description", "domain_id"),
    )
    return paged_crud(assignments, "role", "roles", create)


ROLES = Kind(
    "role",
    "roles",
    "/v3/roles",
    _crud,
    ROLE_CREATE,
    ROLE_UPDATE,
    {"name": str, "domain_id": str},
    _values,
)


def _role_ref(resource: Resource, req: falcon.Request, role: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": role["id"],
        "name": role["name"],
        "links": {"self": resource.links.url(req, f"/v3/roles/{role['id']}")},
    }


def _inference(
    resource: Resource, req: falcon.Request, prior: dict[str, Any], implied: list[dict[str, Any]]
) -> dict[str, Any]:
    """Return one prior role and the roles it implies."""
    return {
        "prior_role": _role_ref(resource, req, prior),
        "implies": [_role_ref(resource, req, r) for r in implied],
    }


class ImpliedRoles(Resource):
    """``GET /v3/roles/{role_id}/implies``."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, role_id: str) -> None:
        prior, implied = self.service.assignments.list_implied_roles(self.ctx(req), role_id)
        resp.media = {
            "role_inference": _inference(self, req, prior, implied),
            "links": {"self": self.links.url(req, f"/v3/roles/{role_id}/implies")},
        }


class ImpliedRole(Resource):
    """``/v3/roles/{role_id}/implies/{implied_role_id}``."""

    def _body(self, req: falcon.Request, roles: tuple[dict[str, Any], dict[str, Any]]) -> dict:
        prior, implied = roles
        return {
            "role_inference": {
                "prior_role": _role_ref(self, req, prior),
                "implies": _role_ref(self, req, implied),
            },
            "links": {
                "self": self.links.url(req, f"/v3/roles/{prior['id']}/implies/{implied['id']}")
            },
        }

    def on_put(
        self, req: falcon.Request, resp: falcon.Response, role_id: str, implied_role_id: str
    ) -> None:
        roles = self.service.assignments.create_implied_role(
            self.ctx(req), role_id, implied_role_id
        )
        resp.status = falcon.HTTP_201
        resp.media = self._body(req, roles)

    def on_get(
        self, req: falcon.Request, resp: falcon.Response, role_id: str, implied_role_id: str
    ) -> None:
        roles = self.service.assignments.get_implied_role(self.ctx(req), role_id, implied_role_id)
        resp.media = self._body(req, roles)

    def on_head(
        self, req: falcon.Request, resp: falcon.Response, role_id: str, implied_role_id: str
    ) -> None:
        self.service.assignments.get_implied_role(self.ctx(req), role_id, implied_role_id)
        resp.status = falcon.HTTP_204

    def on_delete(
        self, req: falcon.Request, resp: falcon.Response, role_id: str, implied_role_id: str
    ) -> None:
        self.service.assignments.delete_implied_role(self.ctx(req), role_id, implied_role_id)
        resp.status = falcon.HTTP_204


class RoleInferences(Resource):
    """``GET /v3/role_inferences``: every implication, grouped by prior role."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        inferences = self.service.assignments.list_role_inferences(self.ctx(req))
        resp.media = {
            "role_inferences": [_inference(self, req, p, implied) for p, implied in inferences],
            "links": {"self": self.links.url(req, "/v3/role_inferences")},
        }


class _GrantBase(Resource):
    """Role grants of one actor on one target.

    Serves ``/v3/{projects|domains}/{target}/{users|groups}/{actor}/roles[/{role_id}]``,
    the ``OS-INHERIT`` variants and ``/v3/system/{users|groups}/{actor}/roles[/{role_id}]``.

    :param target: ``project``, ``domain`` or ``system``.
    :param actor: ``user`` or ``group``.
    :param inherited: the OS-INHERIT routes (domain targets only).
    """

    collection = "/v3/roles"

    def __init__(self, *args: Any, target: str, actor: str, inherited: bool = False) -> None:
        super().__init__(*args)
        self.target = target
        self.actor = actor
        self.inherited = inherited

    def _parties(self, params: Mapping[str, str]) -> dict[str, str]:
        """Return the actor and target of the URL as ``user_id=...``-style keywords."""
        target = (
            {"system": SYSTEM}
            if self.target == "system"
            else {f"{self.target}_id": params[f"{self.target}_id"]}
        )
        return {**target, f"{self.actor}_id": params[f"{self.actor}_id"]}

    def _grant(self, params: Mapping[str, str]) -> Grant:
        return Grant(role_id=params["role_id"], inherited=self.inherited, **self._parties(params))


class Grants(Link, _GrantBase):
    """One role grant: assign (PUT), check (HEAD, GET), remove (DELETE)."""

    def calls(self) -> LinkCalls:
        assignments = self.service.assignments
        return assignments.create_grant, assignments.check_grant, assignments.delete_grant

    def arguments(self, params: Mapping[str, str]) -> tuple[Any, ...]:
        return (self._grant(params),)


class GrantList(_GrantBase):
    """The roles one actor holds on one target (``.../roles``)."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, **params: str) -> None:
        refs = self.service.assignments.list_grant_roles(
            self.ctx(req), inherited=self.inherited, **self._parties(params)
        )
        resp.media = self.listing(req, "roles", refs, None)
