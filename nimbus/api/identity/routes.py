"""The identity API's route table (Keystone v3): a line per route, a loop for the grants."""

from __future__ import annotations

from typing import Any

from nimbus.api.app import Links
from nimbus.api.identity import (
    auth,
    catalog,
    credentials,
    groups,
    projects,
    role_assignments,
    roles,
    users,
    versions,
)
from nimbus.api.identity.base import Collection, Item, Kind
from nimbus.api.versions import VersionDocument, Versions
from nimbus.identity.service import IdentityService
from nimbus.policy import Enforcer

#: Where role grants live: (URL prefix, target, inherited, URL suffix).
_GRANT_PLACES = (
    ("/v3/projects/{project_id}", "project", False, ""),
    ("/v3/domains/{domain_id}", "domain", False, ""),
    ("/v3/OS-INHERIT/domains/{domain_id}", "domain", True, "/inherited_to_projects"),
    ("/v3/system", "system", False, ""),
)


def _grant_routes(deps: tuple[Any, ...]) -> list[tuple[str, Any]]:
    """The role-grant routes: a list and one grant, per actor and place."""
    table: list[tuple[str, Any]] = []
    for prefix, target, inherited, suffix in _GRANT_PLACES:
        for actor in ("user", "group"):
            kwargs = {"target": target, "actor": actor, "inherited": inherited}
            roles_of = f"{prefix}/{actor}s/{{{actor}_id}}/roles"
            table.append((roles_of + suffix, roles.GrantList(*deps, **kwargs)))
            table.append((roles_of + "/{role_id}" + suffix, roles.Grants(*deps, **kwargs)))
    return table


def _kind_routes(
    kind: Kind, deps: tuple[Any, ...], collection: type = Collection, item: type = Item
) -> list[tuple[str, Any]]:
    """A kind's collection (``/v3/users``) and item (``/v3/users/{user_id}``) routes."""
    return [
        (kind.collection, collection(kind, *deps)),
        (f"{kind.collection}/{{{kind.member_key}_id}}", item(kind, *deps)),
    ]


def routes(service: IdentityService, enforcer: Enforcer, links: Links) -> list[tuple[str, Any]]:
    """Return (template, resource) pairs relative to the identity root."""
    deps = (service, enforcer, links)

    return [
        ("/", Versions(links, [versions.V3], wrapped=True)),
        ("/v3", VersionDocument(links, versions.V3)),
        ("/v3/auth/tokens", auth.Tokens(*deps)),
        ("/v3/auth/catalog", auth.Catalog(*deps)),
        ("/v3/auth/projects", auth.Projects(*deps)),
        ("/v3/auth/domains", auth.Domains(*deps)),
        ("/v3/auth/system", auth.System(*deps)),
        *_kind_routes(projects.DOMAINS, deps),
        *_kind_routes(projects.PROJECTS, deps),
        ("/v3/projects/{project_id}/tags", projects.ProjectTags(*deps)),
        ("/v3/projects/{project_id}/tags/{tag}", projects.ProjectTag(*deps)),
        *_kind_routes(users.USERS, deps),
        ("/v3/users/{user_id}/password", users.UserPassword(*deps)),
        ("/v3/users/{user_id}/projects", users.UserProjects(*deps)),
        ("/v3/users/{user_id}/groups", users.UserGroups(*deps)),
        *_kind_routes(groups.GROUPS, deps),
        ("/v3/groups/{group_id}/users", groups.GroupUsers(*deps)),
        ("/v3/groups/{group_id}/users/{user_id}", groups.GroupUser(*deps)),
        *_kind_routes(roles.ROLES, deps),
        ("/v3/roles/{role_id}/implies", roles.ImpliedRoles(*deps)),
        ("/v3/roles/{role_id}/implies/{implied_role_id}", roles.ImpliedRole(*deps)),
        ("/v3/role_inferences", roles.RoleInferences(*deps)),
        *_grant_routes(deps),
        ("/v3/role_assignments", role_assignments.RoleAssignments(*deps)),
        *_kind_routes(credentials.CREDENTIALS, deps, item=credentials.CredentialItem),
        *_kind_routes(catalog.SERVICES, deps, catalog.CatalogCollection, catalog.CatalogItem),
        *_kind_routes(catalog.ENDPOINTS, deps, catalog.CatalogCollection, catalog.CatalogItem),
        *_kind_routes(catalog.REGIONS, deps, catalog.RegionCollection, catalog.RegionItem),
    ]


def is_public(method: str, path: str) -> bool:
    """Tell whether a route needs no token: discovery and issuing tokens."""
    if path in ("/", "/v3"):
        # Other methods get 405 from the router, not 401.
        return True
    return path == "/v3/auth/tokens" and method == "POST"
