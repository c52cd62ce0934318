"""``GET /v3/role_assignments``: who holds which role where, stored or effective."""

from __future__ import annotations

from typing import Any

import falcon

from nimbus.api import validation
from nimbus.api.identity.base import Resource
from nimbus.identity.assignment import Grant


class RoleAssignments(Resource):
    """List role assignments with Keystone's filters.

    ``effective`` expands group grants to their members, inherited domain
    grants to the domain's projects, and roles to the roles they imply.
    """

    #: Query parameter -> keyword of ``list_role_assignments``.
    _FILTERS = {
        "user.id": "user_id",
        "group.id": "group_id",
        "role.id": "role_id",
        "scope.project.id": "project_id",
        "scope.domain.id": "domain_id",
        "scope.OS-INHERIT:inherited_to": "inherited_to",
        "scope.system": "system",
    }

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        assignments = self.service.assignments.list_role_assignments(
            self.ctx(req), **self._query(req)
        )
        refs = [{**a.ref, "links": self._links(req, a.grant)} for a in assignments]
        self_link = self.url(req, "/v3/role_assignments")
        links = {"self": self_link, "previous": None, "next": None}
        resp.media = {"role_assignments": refs, "links": links}

    def _query(self, req: falcon.Request) -> dict[str, Any]:
        query: dict[str, Any] = {kw: req.get_param(p) for p, kw in self._FILTERS.items()}
        for flag in ("effective", "include_names"):
            query[flag] = bool(validation.bool_param(req, flag))
        return query

    def _links(self, req: falcon.Request, grant: Grant) -> dict[str, Any]:
        if grant.project_id is not None:
            target_path = f"/v3/projects/{grant.project_id}"
        elif grant.system is not None:
            target_path = "/v3/system"
        else:
            target_path = f"/v3/domains/{grant.domain_id}"
        if grant.inherited:
            target_path = "/v3/OS-INHERIT" + target_path
        actor_path = f"/users/{grant.user_id}" if grant.user_id else f"/groups/{grant.group_id}"
        suffix = "/inherited_to_projects" if grant.inherited else ""
        links = {
            "assignment": self.links.url(
                req, f"{target_path}{actor_path}/roles/{grant.role_id}{suffix}"
            )
        }
        if grant.via_group_id is not None:
            links["membership"] = self.links.url(
                req, f"/v3/groups/{grant.via_group_id}/users/{grant.user_id}"
            )
        return links
