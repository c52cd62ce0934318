"""The identity API's route table (Keystone v3), one line per route."""

from __future__ import annotations

from typing import Any

from nimbus.api.app import Links
from nimbus.api.identity import (
    auth,
    catalog,
    groups,
    projects,
    role_assignments,
    roles,
    users,
    versions,
)
from nimbus.api.identity.base import Collection, Item
from nimbus.api.versions import VersionDocument, Versions
from nimbus.identity.service import IdentityService
from nimbus.policy import Enforcer

_P = "/v3/projects/{project_id}"
_D = "/v3/domains/{domain_id}"
_ID = "/v3/OS-INHERIT/domains/{domain_id}"


def routes(service: IdentityService, enforcer: Enforcer, links: Links) -> list[tuple[str, Any]]:
    """Return (template, resource) pairs relative to the identity root."""
    deps = (service, enforcer, links)

    def grants(target: str, actor: str, inherited: bool = False) -> tuple[Any, Any]:
        kwargs = {"target": target, "actor": actor, "inherited": inherited}
        return roles.GrantList(*deps, **kwargs), roles.Grants(*deps, **kwargs)

    (pul, pu), (pgl, pg) = grants("project", "user"), grants("project", "group")
    (dul, du), (dgl, dg) = grants("domain", "user"), grants("domain", "group")
    (iul, iu), (igl, ig) = grants("domain", "user", True), grants("domain", "group", True)
    return [
        ("/", Versions(links, [versions.V3], wrapped=True)),
        ("/v3", VersionDocument(links, versions.V3)),
        ("/v3/auth/tokens", auth.Tokens(*deps)),
        ("/v3/auth/catalog", auth.Catalog(*deps)),
        ("/v3/auth/projects", auth.Projects(*deps)),
        ("/v3/auth/domains", auth.Domains(*deps)),
        ("/v3/domains", Collection(projects.DOMAINS, *deps)),
        ("/v3/domains/{domain_id}", Item(projects.DOMAINS, *deps)),
        ("/v3/projects", Collection(projects.PROJECTS, *deps)),
        ("/v3/projects/{project_id}", Item(projects.PROJECTS, *deps)),
        ("/v3/users", Collection(users.USERS, *deps)),
        ("/v3/users/{user_id}", Item(users.USERS, *deps)),
        ("/v3/users/{user_id}/password", users.UserPassword(*deps)),
        ("/v3/users/{user_id}/projects", users.UserProjects(*deps)),
        ("/v3/users/{user_id}/groups", users.UserGroups(*deps)),
        ("/v3/groups", Collection(groups.GROUPS, *deps)),
        ("/v3/groups/{group_id}", groups.GroupItem(groups.GROUPS, *deps)),
        ("/v3/groups/{group_id}/users", groups.GroupUsers(*deps)),
        ("/v3/groups/{group_id}/users/{user_id}", groups.GroupUser(*deps)),
        ("/v3/roles", Collection(roles.ROLES, *deps)),
        ("/v3/roles/{role_id}", Item(roles.ROLES, *deps)),
        ("/v3/roles/{role_id}/implies", roles.ImpliedRoles(*deps)),
        ("/v3/roles/{role_id}/implies/{implied_role_id}", roles.ImpliedRole(*deps)),
        ("/v3/role_inferences", roles.RoleInferences(*deps)),
        (_P + "/users/{user_id}/roles", pul),
        (_P + "/users/{user_id}/roles/{role_id}", pu),
        (_P + "/groups/{group_id}/roles", pgl),
        (_P + "/groups/{group_id}/roles/{role_id}", pg),
        (_D + "/users/{user_id}/roles", dul),
        (_D + "/users/{user_id}/roles/{role_id}", du),
        (_D + "/groups/{group_id}/roles", dgl),
        (_D + "/groups/{group_id}/roles/{role_id}", dg),
        (_ID + "/users/{user_id}/roles/inherited_to_projects", iul),
        (_ID + "/users/{user_id}/roles/{role_id}/inherited_to_projects", iu),
        (_ID + "/groups/{group_id}/roles/inherited_to_projects", igl),
        (_ID + "/groups/{group_id}/roles/{role_id}/inherited_to_projects", ig),
        ("/v3/role_assignments", role_assignments.RoleAssignments(*deps)),
        ("/v3/services", catalog.CatalogCollection(catalog.SERVICES, *deps)),
        ("/v3/services/{service_id}", catalog.CatalogItem(catalog.SERVICES, *deps)),
        ("/v3/endpoints", catalog.CatalogCollection(catalog.ENDPOINTS, *deps)),
        ("/v3/endpoints/{endpoint_id}", catalog.CatalogItem(catalog.ENDPOINTS, *deps)),
        ("/v3/regions", catalog.RegionCollection(catalog.REGIONS, *deps)),
        ("/v3/regions/{region_id}", catalog.RegionItem(catalog.REGIONS, *deps)),
    ]


def is_public(method: str, path: str) -> bool:
    """Tell whether a route needs no token: discovery and issuing tokens."""
    if path in ("/", "/v3"):
        # Other methods get 405 from the router, not 401.
        return True
    return path == "/v3/auth/tokens" and method == "POST"
