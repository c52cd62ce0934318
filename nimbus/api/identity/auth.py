"""``/v3/auth``: issue, validate and revoke tokens; the caller's catalog and scopes."""

from __future__ import annotations

from typing import Any

import falcon

from nimbus import exception
from nimbus.api import validation
from nimbus.api.identity.base import Resource

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


def _allow_expired(req: falcon.Request) -> bool:
    return bool(validation.bool_param(req, "allow_expired"))


class Tokens(Resource):
    """``/v3/auth/tokens``."""

    @staticmethod
    def _auth(req: falcon.Request) -> dict[str, Any]:
        """Return the validated ``auth`` body; each named method must be described."""
        auth = validation.body(req, "auth", AUTH_SCHEMA)
        for method in auth["identity"]["methods"]:
            if method in ("password", "token") and method not in auth["identity"]:
                raise exception.ValidationError(
                    field=f"auth/identity/{method}", reason=f"'{method}' is a required property"
                )
        return auth

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        data = self.service.auth.authenticate(self._auth(req))
        include_catalog = req.get_param("nocatalog", default=None) is None
        resp.status = falcon.HTTP_201
        resp.set_header("X-Subject-Token", data.token_id)
        resp.media = self.service.auth.render(data, include_catalog=include_catalog)

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        data = self.service.auth.validate_token(
            self.ctx(req), _subject(req), allow_expired=_allow_expired(req)
        )
        resp.set_header("X-Subject-Token", data.token_id)
        include_catalog = req.get_param("nocatalog", default=None) is None
        resp.content_type = falcon.MEDIA_JSON
        resp.data = self.service.auth.render_json(data, include_catalog=include_catalog)

    def on_head(self, req: falcon.Request, resp: falcon.Response) -> None:
        data = self.service.auth.check_token(
            self.ctx(req), _subject(req), allow_expired=_allow_expired(req)
        )
        resp.set_header("X-Subject-Token", data.token_id)
        resp.status = falcon.HTTP_200

    def on_delete(self, req: falcon.Request, resp: falcon.Response) -> None:
        self.service.auth.revoke_token(
            self.ctx(req), _subject(req), allow_expired=_allow_expired(req)
        )
        resp.status = falcon.HTTP_204


class Catalog(Resource):
    """``GET /v3/auth/catalog``: the catalog of the caller's token."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {
            "catalog": self.service.catalog.catalog_for_caller(self.ctx(req)),
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
        projects = self.service.assignments.list_caller_projects(self.ctx(req))
        resp.media = self.listing(req, "projects", projects, None)


class System(Resource):
    """``GET /v3/auth/system``: the system, if the caller may scope to it."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        allowed = self.service.assignments.caller_has_system_roles(self.ctx(req))
        resp.media = {
            "system": [{"all": True}] if allowed else [],
            "links": {"self": self.links.url(req, "/v3/auth/system")},
        }


class Domains(Resource):
    """``GET /v3/auth/domains``: the domains the caller may scope to."""

    collection = "/v3/domains"

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        domains = self.service.assignments.list_caller_domains(self.ctx(req))
        resp.media = self.listing(req, "domains", domains, None)
