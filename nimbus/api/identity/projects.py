"""``/v3/domains`` and ``/v3/projects``."""

from __future__ import annotations

from typing import Any

import falcon

from nimbus import exception
from nimbus.api import validation
from nimbus.api.identity.base import Kind, Resource, create_with_extra, paged_crud
from nimbus.api.resource import Crud, bool_value
from nimbus.identity.resource import MAX_TAGS
from nimbus.identity.service import IdentityService

#: One project tag, as Keystone takes it: no ``/`` (it is a path segment) and no ``,``
#: (the list filters split on it).
TAG = {"type": "string", "minLength": 1, "maxLength": 255, "pattern": r"^[^,/]*\Z"}
TAGS = {"type": "array", "items": TAG, "maxItems": MAX_TAGS, "uniqueItems": True}

_COMMON = {
    "name": {**validation.NAME, "maxLength": 64},
    "description": validation.DESCRIPTION,
    "enabled": validation.BOOLEAN,
}
_ANY = {"tags": {"type": "array"}, "options": {"type": "object"}}


DOMAIN_CREATE = validation.create_schema(
    {**_COMMON, "id": validation.nullable(validation.ID), **_ANY}, "name"
)
DOMAIN_UPDATE = validation.update_schema({**_COMMON, **_ANY}, "id", "domain_id")
PROJECT_CREATE = validation.create_schema(
    {
        **_COMMON,
        "domain_id": validation.nullable(validation.ID),
        "parent_id": validation.nullable(validation.ID),
        "is_domain": validation.BOOLEAN,
        **_ANY,
        "tags": TAGS,
    },
    "name",
)
PROJECT_UPDATE = validation.update_schema(
    {**_COMMON, **_ANY, "tags": TAGS}, "id", "domain_id", "parent_id", "is_domain"
)
_IGNORED = ("tags", "options", "is_domain", "links")
_PROJECT_COLUMNS = (
    "name",
    "domain_id",
    "description",
    "enabled",
    "parent_id",
    "tags",
    "is_domain",
)


def _clean(values: dict) -> dict:
    return {k: v for k, v in values.items() if k not in _IGNORED}


def _clean_project(values: dict) -> dict:
    return {k: v for k, v in values.items() if k in ("tags", "is_domain") or k not in _IGNORED}


def _domain_crud(service: IdentityService) -> Crud:
    resources = service.resources
    create = create_with_extra(
        resources.create_domain,
        ("name", "description", "enabled", "id"),
        rename={"id": "domain_id"},
    )
    return paged_crud(resources, "domain", "domains", create)


def _project_crud(service: IdentityService) -> Crud:
    resources = service.resources
    create = create_with_extra(resources.create_project, _PROJECT_COLUMNS, drop_nulls=True)
    return paged_crud(resources, "project", "projects", create)


DOMAINS = Kind(
    "domain",
    "domains",
    "/v3/domains",
    _domain_crud,
    DOMAIN_CREATE,
    DOMAIN_UPDATE,
    {"name": str, "enabled": bool_value},
    _clean,
)
PROJECTS = Kind(
    "project",
    "projects",
    "/v3/projects",
    _project_crud,
    PROJECT_CREATE,
    PROJECT_UPDATE,
    {
        "name": str,
        "domain_id": str,
        "enabled": bool_value,
        "parent_id": str,
        "is_domain": bool_value,
    },
    _clean_project,
)


def _tag(tag: str) -> str:
    validation.validate(TAG, tag, "tag")
    return tag


class ProjectTags(Resource):
    """``/v3/projects/{project_id}/tags``: list (GET), replace (PUT), clear (DELETE)."""

    def _tags(self, req: falcon.Request, resp: falcon.Response, tags: list[str]) -> None:
        resp.media = {"tags": tags, "links": {"self": self.links.url(req, req.path)}}

    def on_get(self, req: falcon.Request, resp: falcon.Response, project_id: str) -> None:
        tags = self.service.resources.list_project_tags(self.ctx(req), project_id)
        self._tags(req, resp, tags)

    def on_put(self, req: falcon.Request, resp: falcon.Response, project_id: str) -> None:
        ctx = self.ctx(req)
        resources = self.service.resources
        # Policy before the body, as Keystone.
        resources.authorize(ctx, "identity:update_project_tags", {"target.project.id": project_id})
        document: Any = req.context.get("json")
        if not isinstance(document, dict) or "tags" not in document:
            raise exception.ValidationError(field="tags", reason="'tags' is a required property")
        validation.validate(TAGS, document["tags"], "tags")
        self._tags(req, resp, resources.set_project_tags(ctx, project_id, document["tags"]))

    def on_delete(self, req: falcon.Request, resp: falcon.Response, project_id: str) -> None:
        self.service.resources.clear_project_tags(self.ctx(req), project_id)
        resp.status = falcon.HTTP_204


class ProjectTag(Resource):
    """``/v3/projects/{project_id}/tags/{tag}``: check (GET, HEAD), add (PUT), remove (DELETE)."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, project_id: str, tag: str) -> None:
        self.service.resources.check_project_tag(self.ctx(req), project_id, tag)
        resp.status = falcon.HTTP_204

    on_head = on_get

    def on_put(self, req: falcon.Request, resp: falcon.Response, project_id: str, tag: str) -> None:
        ctx = self.ctx(req)
        resources = self.service.resources
        resources.authorize(ctx, "identity:create_project_tag", {"target.project.id": project_id})
        resources.add_project_tag(ctx, project_id, _tag(tag))
        resp.status = falcon.HTTP_201
        resp.location = self.links.url(req, req.path)

    def on_delete(
        self, req: falcon.Request, resp: falcon.Response, project_id: str, tag: str
    ) -> None:
        self.service.resources.delete_project_tag(self.ctx(req), project_id, tag)
        resp.status = falcon.HTTP_204
