"""The compute service's descriptor: Nova v2.1 under ``/compute``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from oslo_config import cfg

from nimbus.descriptor import CatalogEntry, Cloud, ServiceDescriptor

if TYPE_CHECKING:
    from nimbus.api.app import ServiceAPI

__all__ = ["ComputeDescriptor"]


class ComputeDescriptor(ServiceDescriptor):
    """Servers' flavors, key pairs and quotas (Nova v2.1)."""

    name = "compute"
    # Tokens are checked by the identity service; servers boot images.
    requires = ("identity", "image")
    option_modules = ("nimbus.conf.compute", "nimbus.conf.scheduler", "nimbus.conf.compute_drivers")
    policy_module = "nimbus.policies.compute"
    migrations = ("nimbus.compute.migrations", "nimbus.compute.scheduler.migrations")

    def build(self, cloud: Cloud) -> dict[str, Any]:
        from nimbus.compute import FlavorService, KeypairService, QuotaService

        conf = cloud.conf
        quotas = QuotaService(conf, cloud.database, cloud.enforcer)
        keypairs = KeypairService(
            conf,
            cloud.database,
            cloud.enforcer,
            limit=lambda project_id: quotas.limit_of(project_id, "key_pairs"),
        )
        quotas.register_counter(
            "key_pairs", lambda ctx, project_id: keypairs.count(ctx.user_id or "")
        )
        flavors = FlavorService(conf, cloud.database, cloud.enforcer)
        return {"compute_flavors": flavors, "compute_keypairs": keypairs, "compute_quotas": quotas}

    def api(self, cloud: Cloud) -> ServiceAPI:
        from nimbus.api.compute import compute_api

        return compute_api(cloud.compute_flavors, cloud.compute_keypairs, cloud.compute_quotas)

    def catalog(self, conf: cfg.ConfigOpts, base_url: str) -> list[CatalogEntry]:
        return [
            CatalogEntry(
                "compute", "nova", base_url + "/v2.1", "nimbus compute service (Nova v2.1)"
            )
        ]
