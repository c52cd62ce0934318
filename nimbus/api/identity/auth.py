"""``/v3/auth``: issue, validate and revoke tokens; the caller's catalog and scopes."""

from __future__ import annotations

import falcon

from nimbus import exception
from nimbus.api import validation
from nimbus.api.identity.base import Resource
from nimbus.identity.auth import TokenData

_REF = {
    "type": "object",
    "properties": {
        "id": validation.ID,
        "name": {"type": "string", "minLength": 1, "maxLength": 255},
        "domain": {
            "type": "object",
            "properties": {"id": validation.ID, "name": {"type": "string", "maxLength": 255}},
        },
    },
}

AUTH_SCHEMA = {
    "type": "object",
    "properties": {
        "identity": {
            "type": "object",
            "properties": {
                "methods": {
                    "type": "array",
                    "items": {"type": "string", "maxLength": 64},
                    "minItems": 1,
                },
                "password": {
                    "type": "object",
                    "properties": {
                        "user": {
                            **_REF,
                            "properties": {
                                **_REF["properties"],
                                "password": {"type": "string", "maxLength": 65536},
                            },
                            "required": ["password"],
                        }
                    },
                    "required": ["user"],
                },
                "token": {
                    "type": "object",
                    "properties": {"id": {"type": "string", "minLength": 1, "maxLength": 1024}},
                    "required": ["id"],
                },
            },
            "required": ["methods"],
        },
        "scope": {
            "oneOf": [
                {"type": "string", "enum": ["unscoped"]},
                {
                    "type": "object",
                    "properties": {
                        "project": _REF,
                        "domain": _REF,
                        "system": {"type": "object"},
                    },
                    "minProperties": 1,
                    "maxProperties": 1,
                },
            ]
        },
    },
    "required": ["identity"],
}


def _subject(req: falcon.Request) -> str:
    token = req.get_header("X-Subject-Token")
    if not token:
        raise exception.ValidationError(field="X-Subject-Token", reason="the header is required")
    return token


class Tokens(Resource):
    """``/v3/auth/tokens``."""

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        auth = validation.body(req, "auth", AUTH_SCHEMA)
        for method in auth["identity"]["methods"]:
            if method in ("password", "token") and method not in auth["identity"]:
                raise exception.ValidationError(
                    field=f"auth/identity/{method}", reason=f"'{method}' is a required property"
                )
        data = self.service.auth.authenticate(auth)
        include_catalog = req.get_param("nocatalog", default=None) is None
        resp.status = falcon.HTTP_201
        resp.set_header("X-Subject-Token", data.token_id)
        resp.media = self.service.auth.render(data, include_catalog=include_catalog)

    def _subject_data(self, req: falcon.Request, action: str) -> TokenData:
        subject = _subject(req)
        allow_expired = bool(validation.bool_param(req, "allow_expired"))
        try:
            data = self.service.auth.validate(subject, allow_expired=allow_expired)
        except exception.Unauthorized as ex:
            # Keystone answers 404 for a subject token that is not valid;
            # 401 is kept for the caller's own token.
            raise exception.NotFound(kind="token", id="(subject token)") from ex
        self.authorize(req, action, {"target.token.user_id": data.user.id})
        return data

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        data = self._subject_data(req, "identity:validate_token")
        resp.set_header("X-Subject-Token", data.token_id)
        include_catalog = req.get_param("nocatalog", default=None) is None
        resp.media = self.service.auth.render(data, include_catalog=include_catalog)

    def on_head(self, req: falcon.Request, resp: falcon.Response) -> None:
        data = self._subject_data(req, "identity:check_token")
        resp.set_header("X-Subject-Token", data.token_id)
        resp.status = falcon.HTTP_200

    def on_delete(self, req: falcon.Request, resp: falcon.Response) -> None:
        data = self._subject_data(req, "identity:revoke_token")
        self.service.auth.revoke_token(data)
        resp.status = falcon.HTTP_204


class Catalog(Resource):
    """``GET /v3/auth/catalog``: the catalog of the caller's token."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        ctx = self.ctx(req)
        if ctx.project_id is None and ctx.domain_id is None:
            raise exception.Forbidden("An unscoped token has no catalog; scope it first.")
        resp.media = {
            "catalog": self.service.catalog.catalog_for(
                user_id=ctx.user_id, project_id=ctx.project_id
            ),
            "links": {
                "self": self.links.url(req, "/v3/auth/catalog"),
                "previous": None,
                "next": None,
            },
        }


class Projects(Resource):
    """``GET /v3/auth/projects``: the projects the caller may scope to."""

    collection = "/v3/projects"

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        ctx = self.ctx(req)
        projects = user_projects(self.service, ctx.user_id, enabled_only=True)
        resp.media = self.listing(req, "projects", projects, None)


class Domains(Resource):
    """``GET /v3/auth/domains``: the domains the caller may scope to."""

    collection = "/v3/domains"

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        ctx = self.ctx(req)
        _, domains, _ = self.service.assignments.targets_for_user(ctx.user_id)
        refs = [d for d in self.service.resources.list_domains(enabled=True) if d["id"] in domains]
        resp.media = self.listing(req, "domains", refs, None)


def user_projects(service, user_id: str, *, enabled_only: bool = False) -> list[dict]:
    """Return the projects *user_id* has a role on, directly, by group or inherited."""
    projects, _, inherited_domains = service.assignments.targets_for_user(user_id)
    refs = service.resources.list_projects(ids=projects) if projects else []
    for domain_id in sorted(inherited_domains):
        refs += [
            p
            for p in service.resources.list_projects(domain_id=domain_id)
            if p["id"] not in projects
        ]
    if enabled_only:
        refs = [p for p in refs if p["enabled"]]
    return sorted(refs, key=lambda p: p["id"])
