"""First-start set-up: the Default domain, the admin, the default roles, the catalog.

Running it again is safe: it creates what is missing and points the catalog
endpoints at the current URLs, and changes the admin password only when one
is given.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from nimbus import exception
from nimbus.descriptor import CatalogEntry
from nimbus.drivers.identity.types import User
from nimbus.identity.assignment import SYSTEM, Grant
from nimbus.identity.catalog import INTERFACES
from nimbus.identity.common import INTERNAL
from nimbus.identity.service import IdentityService

__all__ = ["CatalogEntry", "DEFAULT_ROLES", "bootstrap"]

LOG = logging.getLogger(__name__)

#: Roles created at bootstrap, each implying the next.
DEFAULT_ROLES = ("admin", "member", "reader")


@dataclasses.dataclass(frozen=True)
class BootstrapResult:
    """Ids of what bootstrap made or found."""

    domain_id: str
    project_id: str
    user_id: str
    role_ids: dict[str, str]


def _ensure_role(service: IdentityService, name: str) -> str:
    try:
        return service.assignments.roles.get_by(name=name)["id"]
    except exception.NotFound:
        LOG.info("Creating role %s", name)
        return service.assignments.roles.create(INTERNAL, {"name": name})["id"]


def _restore_admin(service: IdentityService, user: User, password: str) -> None:
    """Enable the existing admin and give it *password*, changing only what differs.

    As ``keystone-manage bootstrap``: a password change revokes the user's
    tokens, so a start-up that passes the stored password changes nothing.
    """
    changes: dict[str, Any] = {} if user.enabled else {"enabled": True}
    try:
        service.users.authenticate(user.id, password)
    except (exception.AuthenticationFailed, exception.UserLockedOut):
        changes["password"] = password
    if changes:
        service.users.update_user(INTERNAL, user.id, changes)


def bootstrap(
    service: IdentityService,
    *,
    admin_password: str | None,
    catalog: list[CatalogEntry],
    region_id: str = "RegionOne",
    admin_user: str = "admin",
) -> BootstrapResult:
    """Create the base identity records and the catalog, idempotently.

    :param admin_password: the admin's password; required when the admin
        user does not exist yet; given for an existing one, it replaces a
        different password (which revokes the admin's tokens) and a disabled
        admin is enabled again.
    :param catalog: the services to advertise (public, internal and admin
        endpoints all get the same URL).
    :raises ValidationError: the admin user must be created but no password
        was given.
    """
    conf = service.conf
    domain_id = conf.identity.default_domain_id
    try:
        service.resources.domains.get(INTERNAL, domain_id)
    except exception.NotFound:
        LOG.info("Creating domain %s", domain_id)
        service.resources.create_domain(
            INTERNAL,
            domain_id=domain_id,
            name=conf.identity.admin_project_domain_name,
            description="The default domain",
        )
    role_ids = {name: _ensure_role(service, name) for name in DEFAULT_ROLES}
    for prior, implied in zip(DEFAULT_ROLES, DEFAULT_ROLES[1:], strict=False):
        service.assignments.create_implied_role(INTERNAL, role_ids[prior], role_ids[implied])

    project_name = conf.identity.admin_project_name
    try:
        project_id = service.resources.projects.get_by(name=project_name, domain_id=domain_id)["id"]
    except exception.NotFound:
        LOG.info("Creating project %s", project_name)
        project_id = service.resources.create_project(
            INTERNAL,
            name=project_name,
            domain_id=domain_id,
            description="Bootstrap project for the cloud",
        )["id"]

    try:
        user = service.users.get_user_by_name(admin_user, domain_id)
        if admin_password is not None:
            _restore_admin(service, user, admin_password)
    except exception.NotFound:
        if admin_password is None:
            raise exception.ValidationError(
                field="admin_password", reason="the admin user does not exist yet; give a password"
            ) from None
        LOG.info("Creating user %s", admin_user)
        user = service.users.create_user(
            INTERNAL,
            name=admin_user,
            domain_id=domain_id,
            password=admin_password,
            default_project_id=project_id,
        )
    # The admin role on the admin project and, as keystone-manage bootstrap
    # gives it, on the system (creating a grant again changes nothing).
    for target in ({"project_id": project_id}, {"system": SYSTEM}):
        service.assignments.create_grant(
            INTERNAL, Grant(role_id=role_ids["admin"], user_id=user.id, **target)
        )

    try:
        service.catalog.regions.get(INTERNAL, region_id)
    except exception.NotFound:
        service.catalog.create_region(INTERNAL, region_id=region_id)
    for entry in catalog:
        _ensure_service(service, entry, region_id)
    return BootstrapResult(domain_id, project_id, user.id, role_ids)


def _ensure_service(service: IdentityService, entry: CatalogEntry, region_id: str) -> None:
    found = service.catalog.services.list(
        INTERNAL, filters={"type": entry.type, "name": entry.name}
    )
    if found:
        service_id = found[0]["id"]
    else:
        LOG.info("Adding %s (%s) to the catalog", entry.name, entry.type)
        service_id = service.catalog.create_service(
            INTERNAL, type=entry.type, name=entry.name, description=entry.description
        )["id"]
    existing = {
        ep["interface"]: ep
        for ep in service.catalog.endpoints.list(
            INTERNAL, filters={"service_id": service_id, "region_id": region_id}
        )
    }
    for interface in INTERFACES:
        endpoint = existing.get(interface)
        if endpoint is None:
            service.catalog.create_endpoint(
                INTERNAL,
                service_id=service_id,
                interface=interface,
                url=entry.url,
                region_id=region_id,
            )
        elif endpoint["url"] != entry.url:
            service.catalog.update_endpoint(INTERNAL, endpoint["id"], {"url": entry.url})
