"""The compute service's descriptor: Nova v2.1 under ``/compute``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from oslo_config import cfg

from nimbus.descriptor import CatalogEntry, Cloud, ServiceDescriptor, SetupOptions

if TYPE_CHECKING:
    from nimbus.api.app import ServiceAPI
    from nimbus.compute.backend import ComputeBackend
    from nimbus.periodic import PeriodicTask

__all__ = ["ComputeDescriptor"]


class ComputeDescriptor(ServiceDescriptor):
    """Servers on hypervisor hosts, their flavors, key pairs and quotas (Nova v2.1)."""

    name = "compute"
    # Tokens are checked by the identity service; servers boot images.
    requires = ("identity", "image")
    option_modules = ("nimbus.conf.compute", "nimbus.conf.scheduler", "nimbus.conf.compute_drivers")
    policy_module = "nimbus.policies.compute"
    migrations = ("nimbus.compute.migrations", "nimbus.compute.scheduler.migrations")

    def build(self, cloud: Cloud) -> dict[str, Any]:
        from nimbus.compute import FlavorService, KeypairService, QuotaService, ServerService
        from nimbus.compute.backend import Bus

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

        # The bus is made on first use: building the API needs none.
        def bus() -> Bus:
            return Bus(cloud.transport)

        from nimbus.compute.groups import ServerGroupService

        groups = ServerGroupService(conf, cloud.database, cloud.enforcer, quotas)
        servers = ServerService(
            conf,
            cloud.database,
            cloud.enforcer,
            flavors=flavors,
            keypairs=keypairs,
            quotas=quotas,
            get_image=lambda ctx, image_id: cloud.image.get(ctx, image_id),
            conductor=lambda *args, **kwargs: bus().conductor(*args, **kwargs),
            agent=lambda *args, **kwargs: bus().agent(*args, **kwargs),
            groups=groups,
            create_image=lambda ctx, values: cloud.image.create(ctx, values),
        )
        from nimbus.compute.hosts import HostService
        from nimbus.compute.scheduler import HostInventory

        hosts = HostService(conf, HostInventory(conf, cloud.database), cloud.enforcer)
        return {
            "compute_hosts": hosts,
            "compute_groups": groups,
            "compute_flavors": flavors,
            "compute_keypairs": keypairs,
            "compute_quotas": quotas,
            "compute_servers": servers,
        }

    def api(self, cloud: Cloud) -> ServiceAPI:
        from nimbus.api.compute import compute_api

        return compute_api(
            cloud.compute_flavors,
            cloud.compute_keypairs,
            cloud.compute_quotas,
            cloud.compute_servers,
            cloud.compute_hosts,
            cloud.compute_groups,
        )

    def catalog(self, conf: cfg.ConfigOpts, base_url: str) -> list[CatalogEntry]:
        return [
            CatalogEntry(
                "compute", "nova", base_url + "/v2.1", "nimbus compute service (Nova v2.1)"
            )
        ]

    def setup(self, cloud: Cloud, options: SetupOptions) -> object:
        if options.embedded:
            # The in-process bus of an earlier run is gone, with the builds it
            # carried: those not yet on a host end now (the agent settles the
            # others when it starts).
            cloud.compute_servers.reap(builds_older_than=0)
        return None

    def periodic_tasks(self, cloud: Cloud) -> list[PeriodicTask]:
        from nimbus.periodic import PeriodicTask

        return [
            PeriodicTask(
                "compute.reap_stuck_servers",
                cloud.compute_servers.reap,
                interval=float(cloud.conf.compute.reap_interval),
                deadline=60.0,
                at_start=False,
            )
        ]

    def has_embedded_backend(self, conf: cfg.ConfigOpts) -> bool:
        return bool(conf.compute.embedded_backend)

    def embedded_backend(self, cloud: Cloud) -> ComputeBackend | None:
        """Return the scheduler, conductor and agents ``nimbus up`` runs in its process."""
        from nimbus.compute.backend import ComputeBackend

        if not self.has_embedded_backend(cloud.conf):
            return None
        count = int(cloud.conf.compute.fake_hosts)
        host = cloud.conf.host
        hosts = [f"{host}-{n}" for n in range(1, count + 1)] if count else [host]
        return ComputeBackend(cloud, hosts=hosts)
