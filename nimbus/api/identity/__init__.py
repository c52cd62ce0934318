"""The identity API (Keystone v3) as a :class:`~nimbus.api.app.ServiceAPI`."""

from __future__ import annotations

from nimbus.api import errors
from nimbus.api.app import ServiceAPI
from nimbus.api.identity import routes
from nimbus.identity.service import IdentityService
from nimbus.policy import Enforcer

__all__ = ["identity_api"]


def identity_api(service: IdentityService, enforcer: Enforcer) -> ServiceAPI:
    """Return the identity API bound to *service*."""
    return ServiceAPI(
        name="identity",
        error_format=errors.FORMATS["keystone"],
        routes=lambda links: routes.routes(service, enforcer, links),
        is_public=routes.is_public,
    )
