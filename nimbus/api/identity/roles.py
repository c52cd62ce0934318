"""``/v3/roles``, implied roles, and role grants on projects and domains."""

from __future__ import annotations

from typing import Any

import falcon

from nimbus import exception
from nimbus.api import validation
from nimbus.api.identity.base import Resource
from nimbus.identity.assignment import Grant

ROLE_CREATE = {
    "type": "object",
    "properties": {
        "name": validation.NAME,
        "description": validation.DESCRIPTION,
        "domain_id": {"type": "null"},
        "options": {"type": "object"},
    },
    "required": ["name"],
}
ROLE_UPDATE = {
    "type": "object",
    "properties": {
        "name": validation.NAME,
        "description": validation.DESCRIPTION,
        "options": {"type": "object"},
    },
    "not": {"anyOf": [{"required": ["id"]}, {"required": ["domain_id"]}]},
    "minProperties": 1,
}


def _values(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in ("options", "domain_id", "links")}


class RoleCollection(Resource):
    collection = "/v3/roles"

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self.authorize(req, "identity:list_roles")
        page = self.page(req)
        if req.get_param("domain_id"):
            refs: list = []  # nimbus has no domain-specific roles
        else:
            refs = self.service.assignments.list_roles(name=req.get_param("name"), page=page)
        resp.media = self.listing(req, "roles", refs, page)

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        self.authorize(req, "identity:create_role")
        values = _values(validation.body(req, "role", ROLE_CREATE))
        ref = self.service.assignments.create_role(
            name=values.pop("name"), description=values.pop("description", None), extra=values
        )
        resp.status = falcon.HTTP_201
        resp.media = {"role": self.with_links(req, ref)}


class RoleItem(Resource):
    collection = "/v3/roles"

    def on_get(self, req: falcon.Request, resp: falcon.Response, role_id: str) -> None:
        self.authorize(req, "identity:get_role")
        resp.media = {"role": self.with_links(req, self.service.assignments.get_role(role_id))}

    def on_patch(self, req: falcon.Request, resp: falcon.Response, role_id: str) -> None:
        self.authorize(req, "identity:update_role")
        changes = _values(validation.body(req, "role", ROLE_UPDATE))
        ref = self.service.assignments.update_role(role_id, changes)
        self.service.auth.forget_cached()
        resp.media = {"role": self.with_links(req, ref)}

    def on_delete(self, req: falcon.Request, resp: falcon.Response, role_id: str) -> None:
        self.authorize(req, "identity:delete_role")
        self.service.assignments.delete_role(role_id)
        self.service.auth.forget_cached()
        resp.status = falcon.HTTP_204


def _role_ref(resource: Resource, req: falcon.Request, role: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": role["id"],
        "name": role["name"],
        "links": {"self": resource.links.url(req, f"/v3/roles/{role['id']}")},
    }


class ImpliedRoles(Resource):
    """``GET /v3/roles/{role_id}/implies``."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, role_id: str) -> None:
        self.authorize(req, "identity:list_implied_roles")
        pairs = self.service.assignments.list_implied_roles(role_id)
        prior = self.service.assignments.get_role(role_id)
        implied = self.service.assignments.list_roles(ids=[i for _, i in pairs]) if pairs else []
        resp.media = {
            "role_inference": {
                "prior_role": _role_ref(self, req, prior),
                "implies": [_role_ref(self, req, r) for r in implied],
            },
            "links": {"self": self.links.url(req, f"/v3/roles/{role_id}/implies")},
        }


class ImpliedRole(Resource):
    """``/v3/roles/{role_id}/implies/{implied_role_id}``."""

    def _body(self, req: falcon.Request, role_id: str, implied_role_id: str) -> dict:
        return {
            "role_inference": {
                "prior_role": _role_ref(self, req, self.service.assignments.get_role(role_id)),
                "implies": _role_ref(self, req, self.service.assignments.get_role(implied_role_id)),
            },
            "links": {
                "self": self.links.url(req, f"/v3/roles/{role_id}/implies/{implied_role_id}")
            },
        }

    def _exists(self, role_id: str, implied_role_id: str) -> None:
        if (role_id, implied_role_id) not in self.service.assignments.list_implied_roles(role_id):
            raise exception.NotFound(kind="implied role", id=f"{role_id} -> {implied_role_id}")

    def on_put(
        self, req: falcon.Request, resp: falcon.Response, role_id: str, implied_role_id: str
    ) -> None:
        self.authorize(req, "identity:create_implied_role")
        self.service.assignments.create_implied_role(role_id, implied_role_id)
        self.service.auth.forget_cached()
        resp.status = falcon.HTTP_201
        resp.media = self._body(req, role_id, implied_role_id)

    def on_get(
        self, req: falcon.Request, resp: falcon.Response, role_id: str, implied_role_id: str
    ) -> None:
        self.authorize(req, "identity:list_implied_roles")
        self._exists(role_id, implied_role_id)
        resp.media = self._body(req, role_id, implied_role_id)

    def on_head(
        self, req: falcon.Request, resp: falcon.Response, role_id: str, implied_role_id: str
    ) -> None:
        self.authorize(req, "identity:list_implied_roles")
        self._exists(role_id, implied_role_id)
        resp.status = falcon.HTTP_204

    def on_delete(
        self, req: falcon.Request, resp: falcon.Response, role_id: str, implied_role_id: str
    ) -> None:
        self.authorize(req, "identity:delete_implied_role")
        self.service.assignments.delete_implied_role(role_id, implied_role_id)
        self.service.auth.forget_cached()
        resp.status = falcon.HTTP_204


class RoleInferences(Resource):
    """``GET /v3/role_inferences``: every implication, grouped by prior role."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self.authorize(req, "identity:list_role_inference_rules")
        pairs = self.service.assignments.list_implied_roles()
        roles = {r["id"]: r for r in self.service.assignments.list_roles()}
        grouped: dict[str, list[str]] = {}
        for prior, implied in pairs:
            grouped.setdefault(prior, []).append(implied)
        resp.media = {
            "role_inferences": [
                {
                    "prior_role": _role_ref(self, req, roles[prior]),
                    "implies": [_role_ref(self, req, roles[i]) for i in implied],
                }
                for prior, implied in grouped.items()
            ],
            "links": {"self": self.links.url(req, "/v3/role_inferences")},
        }


class _GrantBase(Resource):
    """Role grants of one actor on one target.

    Serves ``/v3/{projects|domains}/{target}/{users|groups}/{actor}/roles[/{role_id}]``
    and the ``OS-INHERIT`` variants.

    :param target: ``project`` or ``domain``.
    :param actor: ``user`` or ``group``.
    :param inherited: the OS-INHERIT routes (domain targets only).
    """

    collection = "/v3/roles"

    def __init__(self, *args: Any, target: str, actor: str, inherited: bool = False) -> None:
        super().__init__(*args)
        self.target = target
        self.actor = actor
        self.inherited = inherited

    def _check(self, params: dict[str, str]) -> tuple[str, str]:
        target_id = params[f"{self.target}_id"]
        actor_id = params[f"{self.actor}_id"]
        if self.target == "project":
            self.service.resources.get_project(target_id)
        else:
            self.service.resources.get_domain(target_id)
        if self.actor == "user":
            self.service.users.get_user(actor_id)
        else:
            self.service.users.get_group(actor_id)
        return target_id, actor_id

    def _grant(self, params: dict[str, str], role_id: str) -> Grant:
        target_id, actor_id = self._check(params)
        self.service.assignments.get_role(role_id)
        return Grant(
            role_id=role_id,
            user_id=actor_id if self.actor == "user" else None,
            group_id=actor_id if self.actor == "group" else None,
            project_id=target_id if self.target == "project" else None,
            domain_id=target_id if self.target == "domain" else None,
            inherited=self.inherited,
        )

    def _target(self, params: dict[str, str]) -> dict[str, str]:
        return {f"target.{self.target}.id": params[f"{self.target}_id"]}


class Grants(_GrantBase):
    """One role grant: assign (PUT), check (HEAD, GET), remove (DELETE)."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, **params: str) -> None:
        self.on_head(req, resp, **params)

    def on_put(self, req: falcon.Request, resp: falcon.Response, **params: str) -> None:
        self.authorize(req, "identity:create_grant", self._target(params))
        role_id = params.pop("role_id")
        self.service.assignments.create_grant(self._grant(params, role_id))
        self.service.auth.forget_cached()
        resp.status = falcon.HTTP_204

    def on_head(self, req: falcon.Request, resp: falcon.Response, **params: str) -> None:
        self.authorize(req, "identity:check_grant", self._target(params))
        role_id = params.pop("role_id")
        if not self.service.assignments.check_grant(self._grant(params, role_id)):
            raise exception.NotFound(kind="role assignment", id=role_id)
        resp.status = falcon.HTTP_204

    def on_delete(self, req: falcon.Request, resp: falcon.Response, **params: str) -> None:
        self.authorize(req, "identity:revoke_grant", self._target(params))
        role_id = params.pop("role_id")
        self.service.assignments.delete_grant(self._grant(params, role_id))
        self.service.auth.forget_cached()
        resp.status = falcon.HTTP_204


class GrantList(_GrantBase):
    """The roles one actor holds on one target (``.../roles``)."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, **params: str) -> None:
        self.authorize(req, "identity:list_grants", self._target(params))
        target_id, actor_id = self._check(params)
        grants = self.service.assignments.list_grants(
            **{f"{self.actor}_id": actor_id, f"{self.target}_id": target_id},
            inherited=self.inherited,
        )
        ids = {g.role_id for g in grants}
        refs = self.service.assignments.list_roles(ids=ids) if ids else []
        resp.media = self.listing(req, "roles", refs, None)
