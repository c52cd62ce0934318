"""``/v3/domains`` and ``/v3/projects``."""

from __future__ import annotations

from nimbus.api import validation
from nimbus.api.identity.base import Kind, create_with_extra, paged_crud
from nimbus.api.resource import Crud, bool_value
from nimbus.identity.service import IdentityService

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
        "is_domain": {"type": "boolean", "enum": [False]},
        **_ANY,
    },
    "name",
)
PROJECT_UPDATE = validation.update_schema(
    {**_COMMON, **_ANY}, "id", "domain_id", "parent_id", "is_domain"
)
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
    _clean,
)
