"""The compute API's route table (Nova v2.1), one line per route."""

from __future__ import annotations

from typing import Any

import falcon

from nimbus.api.app import Links
from nimbus.api.compute import flavors, groups, hosts, keypairs, quotas, servers, versions
from nimbus.api.compute.base import VERSION_PATH as V
from nimbus.api.versions import VersionDocument, Versions
from nimbus.compute import FlavorService, KeypairService, QuotaService, ServerService
from nimbus.compute.groups import ServerGroupService
from nimbus.compute.hosts import HostService

_F = V + "/flavors/{flavor_id}"
_Q = V + "/os-quota-sets/{project_id}"
_S = V + "/servers/{server_id}"


def routes(
    flavor_service: FlavorService,
    keypair_service: KeypairService,
    quota_service: QuotaService,
    server_service: ServerService,
    host_service: HostService,
    group_service: ServerGroupService,
    links: Links,
) -> list[tuple[str, Any]]:
    """Return (template, resource) pairs relative to the compute root."""
    fl = (flavor_service, links)
    sv = (server_service, links)
    hs = (host_service, links)
    return [
        # Nova answers its root with the list and 200.
        ("/", Versions(links, [versions.VERSION], status=falcon.HTTP_200)),
        (V, VersionDocument(links, versions.VERSION)),
        (V + "/flavors", flavors.FlavorCollection(*fl)),
        (V + "/flavors/detail", flavors.FlavorDetail(*fl)),
        (_F, flavors.FlavorItem(*fl)),
        (_F + "/action", flavors.FlavorAction(*fl)),
        (_F + "/os-flavor-access", flavors.FlavorAccess(*fl)),
        (_F + "/os-extra_specs", flavors.ExtraSpecs(*fl)),
        (_F + "/os-extra_specs/{key}", flavors.ExtraSpec(*fl)),
        (V + "/os-keypairs", keypairs.KeypairCollection(keypair_service, links)),
        (V + "/os-keypairs/{keypair_name}", keypairs.KeypairItem(keypair_service, links)),
        (_Q, quotas.QuotaSet(quota_service, links)),
        (_Q + "/defaults", quotas.QuotaDefaults(quota_service, links)),
        (_Q + "/detail", quotas.QuotaDetail(quota_service, links)),
        (V + "/limits", quotas.Limits(quota_service, links)),
        (V + "/servers", servers.ServerCollection(*sv)),
        (V + "/servers/detail", servers.ServerDetail(*sv)),
        (_S, servers.ServerItem(*sv)),
        (_S + "/action", servers.ServerAction(*sv)),
        (_S + "/metadata", servers.ServerMetadata(*sv)),
        (_S + "/metadata/{key}", servers.ServerMetadataItem(*sv)),
        (_S + "/os-instance-actions", servers.InstanceActions(*sv)),
        (_S + "/os-instance-actions/{request_id}", servers.InstanceAction(*sv)),
        (V + "/os-services", hosts.Services(*hs)),
        (V + "/os-services/{name}", hosts.ServiceItem(*hs)),
        (V + "/os-hypervisors", hosts.Hypervisors(*hs, detail=False)),
        (V + "/os-hypervisors/detail", hosts.Hypervisors(*hs, detail=True)),
        (V + "/os-hypervisors/statistics", hosts.HypervisorStatistics(*hs)),
        (V + "/os-hypervisors/{node_id}", hosts.Hypervisor(*hs)),
        (V + "/os-availability-zone", hosts.Zones(*hs, detail=False)),
        (V + "/os-availability-zone/detail", hosts.Zones(*hs, detail=True)),
        (V + "/os-server-groups", groups.ServerGroups(group_service, links)),
        (V + "/os-server-groups/{group_id}", groups.ServerGroup(group_service, links)),
    ]


def is_public(method: str, path: str) -> bool:
    """Tell whether a route needs no token: version discovery only."""
    return path in ("/", V, V + "/")
