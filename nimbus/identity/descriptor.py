"""The identity service's descriptor: Keystone v3 under ``/identity``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from oslo_config import cfg

from nimbus.descriptor import CatalogEntry, Cloud, ServiceDescriptor, SetupOptions

if TYPE_CHECKING:
    from nimbus.api.app import ServiceAPI
    from nimbus.descriptor import TokenValidator
    from nimbus.periodic import PeriodicTask

__all__ = ["IdentityDescriptor"]


class IdentityDescriptor(ServiceDescriptor):
    """Tokens, domains, projects, users, groups, roles and the catalog (Keystone v3)."""

    name = "identity"
    option_modules = ("nimbus.conf.identity",)
    policy_module = "nimbus.policies.identity"
    migrations = ("nimbus.identity.migrations",)

    def build(self, cloud: Cloud) -> dict[str, Any]:
        from nimbus.identity.service import IdentityService

        service = IdentityService(
            cloud.conf, cloud.database, enforcer=cloud.enforcer, changes=cloud.changes
        )
        return {"identity": service}

    def api(self, cloud: Cloud) -> ServiceAPI:
        from nimbus.api.identity import identity_api

        return identity_api(cloud.identity, cloud.enforcer)

    def catalog(self, conf: cfg.ConfigOpts, base_url: str) -> list[CatalogEntry]:
        return [
            CatalogEntry("identity", "keystone", f"{base_url}/v3", "nimbus identity (Keystone v3)")
        ]

    def token_validator(self, cloud: Cloud) -> TokenValidator:
        validator: TokenValidator = cloud.identity
        return validator

    def auth_uri(self, cloud: Cloud, base_url: str, *, served: bool) -> str | None:
        if served:
            return f"{base_url}/v3"
        # Not served here: name the identity endpoint the catalog advertises.
        from nimbus.policy import INTERNAL

        catalog = cloud.identity.catalog
        for endpoint in catalog.endpoints.list(INTERNAL, filters={"interface": "public"}):
            service = catalog.services.get(INTERNAL, endpoint["service_id"])
            if service["type"] == "identity" and endpoint["enabled"]:
                url: str = endpoint["url"]
                return url.rstrip("/")
        return None

    def client_environment(
        self, conf: cfg.ConfigOpts, base_url: str, admin_password: str
    ) -> dict[str, str]:
        return {
            "OS_AUTH_URL": f"{base_url}/v3",
            "OS_IDENTITY_API_VERSION": "3",
            "OS_AUTH_TYPE": "password",
            "OS_USERNAME": "admin",
            "OS_PASSWORD": admin_password,
            "OS_PROJECT_NAME": conf.identity.admin_project_name,
            "OS_USER_DOMAIN_NAME": conf.identity.admin_project_domain_name,
            "OS_PROJECT_DOMAIN_NAME": conf.identity.admin_project_domain_name,
        }

    def setup(self, cloud: Cloud, options: SetupOptions) -> object:
        from nimbus.identity.bootstrap import bootstrap
        from nimbus.identity.credentials import key_repository
        from nimbus.identity.token.keys import KeyRepository

        KeyRepository.from_conf(cloud.conf).initialize()
        key_repository(cloud.conf).initialize()
        result = bootstrap(
            cloud.identity,
            admin_password=options.admin_password,
            catalog=list(options.catalog),
            region_id=options.region_id,
        )
        # Events older than any token that could still be accepted are dead weight.
        cloud.identity.revocations.prune()
        return (
            f"admin user {result.user_id} in project {result.project_id}"
            f" (domain {result.domain_id})"
        )

    def periodic_tasks(self, cloud: Cloud) -> list[PeriodicTask]:
        from nimbus.identity import tasks

        return tasks.periodic_tasks(cloud.conf, cloud.identity)
