"""``/v3/domains`` and ``/v3/projects``."""

from __future__ import annotations

import falcon

from nimbus.api import validation
from nimbus.api.identity.base import Deferred, Resource

DOMAIN_CREATE = {
    "type": "object",
    "properties": {
        "name": {**validation.NAME, "maxLength": 64},
        "description": validation.DESCRIPTION,
        "enabled": validation.BOOLEAN,
        "id": validation.nullable(validation.ID),
        "tags": {"type": "array"},
        "options": {"type": "object"},
    },
    "required": ["name"],
}
DOMAIN_UPDATE = {
    "type": "object",
    "properties": {
        "name": {**validation.NAME, "maxLength": 64},
        "description": validation.DESCRIPTION,
        "enabled": validation.BOOLEAN,
        "tags": {"type": "array"},
        "options": {"type": "object"},
    },
    "not": {"anyOf": [{"required": ["id"]}, {"required": ["domain_id"]}]},
    "minProperties": 1,
}
PROJECT_CREATE = {
    "type": "object",
    "properties": {
        "name": {**validation.NAME, "maxLength": 64},
        "description": validation.DESCRIPTION,
        "enabled": validation.BOOLEAN,
        "domain_id": validation.nullable(validation.ID),
        "parent_id": validation.nullable(validation.ID),
        "is_domain": {"type": "boolean", "enum": [False]},
        "tags": {"type": "array"},
        "options": {"type": "object"},
    },
    "required": ["name"],
}
PROJECT_UPDATE = {
    "type": "object",
    "properties": {
        "name": {**validation.NAME, "maxLength": 64},
        "description": validation.DESCRIPTION,
        "enabled": validation.BOOLEAN,
        "tags": {"type": "array"},
        "options": {"type": "object"},
    },
    "not": {
        "anyOf": [
            {"required": ["id"]},
            {"required": ["domain_id"]},
            {"required": ["parent_id"]},
            {"required": ["is_domain"]},
        ]
    },
    "minProperties": 1,
}
_IGNORED = ("tags", "options", "is_domain", "links")


def _clean(values: dict) -> dict:
    return {k: v for k, v in values.items() if k not in _IGNORED}


class DomainCollection(Resource):
    collection = "/v3/domains"

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        page = self.page(req)
        refs = self.service.resources.list_domains(
            self.ctx(req),
            name=req.get_param("name"),
            enabled=validation.bool_param(req, "enabled"),
            page=page,
        )
        resp.media = self.listing(req, "domains", refs, page)

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        values = _clean(validation.body(req, "domain", DOMAIN_CREATE))
        ref = self.service.resources.create_domain(
            self.ctx(req),
            name=values.pop("name"),
            description=values.pop("description", None),
            enabled=values.pop("enabled", True),
            domain_id=values.pop("id", None),
            extra=values,
        )
        resp.status = falcon.HTTP_201
        resp.media = {"domain": self.with_links(req, ref)}


class DomainItem(Resource):
    collection = "/v3/domains"

    def on_get(self, req: falcon.Request, resp: falcon.Response, domain_id: str) -> None:
        ref = self.service.resources.get_domain(self.ctx(req), domain_id)
        resp.media = {"domain": self.with_links(req, ref)}

    def on_patch(self, req: falcon.Request, resp: falcon.Response, domain_id: str) -> None:
        changes = Deferred(lambda: _clean(validation.body(req, "domain", DOMAIN_UPDATE)))
        ref = self.service.resources.update_domain(self.ctx(req), domain_id, changes)
        resp.media = {"domain": self.with_links(req, ref)}

    def on_delete(self, req: falcon.Request, resp: falcon.Response, domain_id: str) -> None:
        self.service.resources.delete_domain(self.ctx(req), domain_id)
        resp.status = falcon.HTTP_204


class ProjectCollection(Resource):
    collection = "/v3/projects"

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        page = self.page(req)
        refs = self.service.resources.list_projects(
            self.ctx(req),
            name=req.get_param("name"),
            domain_id=req.get_param("domain_id"),
            enabled=validation.bool_param(req, "enabled"),
            parent_id=req.get_param("parent_id"),
            is_domain=validation.bool_param(req, "is_domain"),
            page=page,
        )
        resp.media = self.listing(req, "projects", refs, page)

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        values = _clean(validation.body(req, "project", PROJECT_CREATE))
        ref = self.service.resources.create_project(
            self.ctx(req),
            name=values.pop("name"),
            domain_id=values.pop("domain_id", None),
            description=values.pop("description", None),
            enabled=values.pop("enabled", True),
            parent_id=values.pop("parent_id", None),
            extra={k: v for k, v in values.items() if v is not None},
        )
        resp.status = falcon.HTTP_201
        resp.media = {"project": self.with_links(req, ref)}


class ProjectItem(Resource):
    collection = "/v3/projects"

    def on_get(self, req: falcon.Request, resp: falcon.Response, project_id: str) -> None:
        ref = self.service.resources.get_project(self.ctx(req), project_id)
        resp.media = {"project": self.with_links(req, ref)}

    def on_patch(self, req: falcon.Request, resp: falcon.Response, project_id: str) -> None:
        changes = Deferred(lambda: _clean(validation.body(req, "project", PROJECT_UPDATE)))
        ref = self.service.resources.update_project(self.ctx(req), project_id, changes)
        resp.media = {"project": self.with_links(req, ref)}

    def on_delete(self, req: falcon.Request, resp: falcon.Response, project_id: str) -> None:
        self.service.resources.delete_project(self.ctx(req), project_id)
        resp.status = falcon.HTTP_204
