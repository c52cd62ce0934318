"""The compute API (Nova v2.1) as a :class:`~nimbus.api.app.ServiceAPI`."""

from __future__ import annotations

import functools

from nimbus.api import errors
from nimbus.api.app import ServiceAPI
from nimbus.api.compute import routes, versions
from nimbus.api.microversion import Negotiation
from nimbus.compute import FlavorService, KeypairService, QuotaService, ServerService
from nimbus.compute.groups import ServerGroupService
from nimbus.compute.hosts import HostService

__all__ = ["compute_api"]


def compute_api(
    flavors: FlavorService,
    keypairs: KeypairService,
    quotas: QuotaService,
    servers: ServerService,
    hosts: HostService,
    groups: ServerGroupService,
) -> ServiceAPI:
    """Return the compute API bound to its services."""
    return ServiceAPI(
        name="compute",
        error_format=errors.FORMATS["nova"],
        routes=functools.partial(routes.routes, flavors, keypairs, quotas, servers, hosts, groups),
        is_public=routes.is_public,
        middleware=(
            Negotiation(
                "compute",
                versions.MIN_VERSION,
                versions.MAX_VERSION,
                legacy_header="X-OpenStack-Nova-API-Version",
            ),
        ),
    )
