"""``/v3/credentials``: users' secrets (EC2 key pairs and others), encrypted at rest."""

from __future__ import annotations

from typing import Any

import falcon

from nimbus.api import validation
from nimbus.api.identity.base import Item, Kind, create_with_extra, page_of
from nimbus.api.resource import Crud, ListParams
from nimbus.context import RequestContext
from nimbus.identity.service import IdentityService

_PROPERTIES = {
    "blob": {"type": "string"},
    "project_id": {"type": ["string", "null"]},
    "type": {"type": "string"},
    "user_id": {"type": "string"},
}
# Keystone's schemas: extra attributes are kept; an ec2 credential names its project.
CREDENTIAL_CREATE = {
    **validation.create_schema(
        {**_PROPERTIES, "id": {"type": "string"}}, "blob", "type", "user_id"
    ),
    "if": {"properties": {"type": {"const": "ec2"}}},
    "then": {"required": ["blob", "type", "user_id", "project_id"]},
}
CREDENTIAL_UPDATE = {"type": "object", "properties": _PROPERTIES, "minProperties": 1}


def _clean(values: dict[str, Any]) -> dict[str, Any]:
    # The id is chosen by nimbus (Keystone ignores one in the body); links are ours.
    return {k: v for k, v in values.items() if k not in ("id", "links")}


def _crud(service: IdentityService) -> Crud:
    credentials = service.credentials

    def list_page(ctx: RequestContext, query: ListParams) -> list[dict[str, Any]]:
        return credentials.list_credentials(ctx, **query.filters, page=page_of(query))

    return Crud(
        list=list_page,
        create=create_with_extra(
            credentials.create_credential, ("user_id", "type", "blob", "project_id")
        ),
        get=credentials.get_credential,
        update=credentials.update_credential,
        delete=credentials.delete_credential,
    )


CREDENTIALS = Kind(
    "credential",
    "credentials",
    "/v3/credentials",
    _crud,
    CREDENTIAL_CREATE,
    CREDENTIAL_UPDATE,
    {"user_id": str, "type": str},
    _clean,
)


class CredentialItem(Item):
    """One credential; as Keystone, the body is validated before the policy check."""

    def update_values(self, req: falcon.Request, item_id: str) -> Any:
        return self.parse(req, item_id)
