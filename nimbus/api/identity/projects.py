"""``/v3/domains`` and ``/v3/projects``."""

from __future__ import annotations

from nimbus.api import validation
from nimbus.api.identity.base import Collection, Item, create_with_extra, paged_crud
from nimbus.api.resource import Crud, bool_value
from nimbus.identity.service import IdentityService

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
_PROJECT_COLUMNS = ("name", "domain_id", "description", "enabled", "parent_id")


def _clean(values: dict) -> dict:
    return {k: v for k, v in values.items() if k not in _IGNORED}


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


class _Domains:
    member_key, collection_key, collection = "domain", "domains", "/v3/domains"
    make_crud = staticmethod(_domain_crud)
    clean = staticmethod(_clean)


class DomainCollection(_Domains, Collection):
    filters = {"name": str, "enabled": bool_value}
    schema = DOMAIN_CREATE


class DomainItem(_Domains, Item):
    schema = DOMAIN_UPDATE


class _Projects:
    member_key, collection_key, collection = "project", "projects", "/v3/projects"
    make_crud = staticmethod(_project_crud)
    clean = staticmethod(_clean)


class ProjectCollection(_Projects, Collection):
    filters = {
        "name": str,
        "domain_id": str,
        "enabled": bool_value,
        "parent_id": str,
        "is_domain": bool_value,
    }
    schema = PROJECT_CREATE


class ProjectItem(_Projects, Item):
    schema = PROJECT_UPDATE
