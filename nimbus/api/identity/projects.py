"""``/v3/domains`` and ``/v3/projects``."""

from __future__ import annotations

import falcon

from nimbus import exception
from nimbus.api import validation
from nimbus.api.identity.base import Resource
from nimbus.drivers.identity import ListQuery

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
        self.authorize(req, "identity:list_domains")
        page = self.page(req)
        refs = self.service.resources.list_domains(
            name=req.get_param("name"), enabled=validation.bool_param(req, "enabled"), page=page
        )
        resp.media = self.listing(req, "domains", refs, page)

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        self.authorize(req, "identity:create_domain")
        values = _clean(validation.body(req, "domain", DOMAIN_CREATE))
        ref = self.service.resources.create_domain(
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
        self.authorize(req, "identity:get_domain", {"target.domain.id": domain_id})
        resp.media = {"domain": self.with_links(req, self.service.resources.get_domain(domain_id))}

    def on_patch(self, req: falcon.Request, resp: falcon.Response, domain_id: str) -> None:
        self.authorize(req, "identity:update_domain", {"target.domain.id": domain_id})
        changes = _clean(validation.body(req, "domain", DOMAIN_UPDATE))
        ref = self.service.resources.update_domain(domain_id, changes)
        resp.media = {"domain": self.with_links(req, ref)}

    def on_delete(self, req: falcon.Request, resp: falcon.Response, domain_id: str) -> None:
        self.authorize(req, "identity:delete_domain", {"target.domain.id": domain_id})

        def has_users(did: str) -> bool:
            return bool(self.service.users.list_users(ListQuery(domain_id=did, limit=1)))

        self.service.resources.delete_domain(domain_id, has_users=has_users)
        resp.status = falcon.HTTP_204


class ProjectCollection(Resource):
    collection = "/v3/projects"

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self.authorize(req, "identity:list_projects")
        page = self.page(req)
        if validation.bool_param(req, "is_domain"):
            refs: list = []
        else:
            refs = self.service.resources.list_projects(
                name=req.get_param("name"),
                domain_id=req.get_param("domain_id"),
                enabled=validation.bool_param(req, "enabled"),
                parent_id=req.get_param("parent_id"),
                page=page,
            )
        resp.media = self.listing(req, "projects", refs, page)

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        self.authorize(req, "identity:create_project")
        values = _clean(validation.body(req, "project", PROJECT_CREATE))
        domain_id = values.pop("domain_id", None)
        parent_id = values.pop("parent_id", None)
        if domain_id is None and parent_id is not None:
            try:
                domain_id = self.service.resources.get_project(parent_id)["domain_id"]
            except exception.NotFound as ex:
                raise exception.ValidationError(
                    field="project/parent_id", reason=f"project {parent_id} does not exist"
                ) from ex
        if domain_id is None:
            domain_id = (
                self.ctx(req).project_domain_id or self.service.conf.identity.default_domain_id
            )
        ref = self.service.resources.create_project(
            name=values.pop("name"),
            domain_id=domain_id,
            description=values.pop("description", None),
            enabled=values.pop("enabled", True),
            parent_id=parent_id,
            extra={k: v for k, v in values.items() if v is not None},
        )
        resp.status = falcon.HTTP_201
        resp.media = {"project": self.with_links(req, ref)}


class ProjectItem(Resource):
    collection = "/v3/projects"

    def on_get(self, req: falcon.Request, resp: falcon.Response, project_id: str) -> None:
        self.authorize(req, "identity:get_project", {"target.project.id": project_id})
        resp.media = {
            "project": self.with_links(req, self.service.resources.get_project(project_id))
        }

    def on_patch(self, req: falcon.Request, resp: falcon.Response, project_id: str) -> None:
        self.authorize(req, "identity:update_project", {"target.project.id": project_id})
        changes = _clean(validation.body(req, "project", PROJECT_UPDATE))
        ref = self.service.resources.update_project(project_id, changes)
        resp.media = {"project": self.with_links(req, ref)}

    def on_delete(self, req: falcon.Request, resp: falcon.Response, project_id: str) -> None:
        self.authorize(req, "identity:delete_project", {"target.project.id": project_id})
        self.service.resources.delete_project(project_id)
        resp.status = falcon.HTTP_204
