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

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        assignments = self.service.assignments.list_role_assignments(
            self.ctx(req),
            user_id=req.get_param("user.id"),
            group_id=req.get_param("group.id"),
            role_id=req.get_param("role.id"),
            project_id=req.get_param("scope.project.id"),
            domain_id=req.get_param("scope.domain.id"),
            inherited_to=req.get_param("scope.OS-INHERIT:inherited_to"),
            effective=bool(validation.bool_param(req, "effective")),
            include_names=bool(validation.bool_param(req, "include_names")),
        )
        resp.media = {
            "role_assignments": [
                {**a.ref, "links": self._links(req, a.grant)} for a in assignments
            ],
            "links": {
                "self": self.links.url(req, "/v3/role_assignments"),
                "previous": None,
                "next": None,
            },
        }

    def _links(self, req: falcon.Request, grant: Grant) -> dict[str, Any]:
        if grant.project_id is not None:
            target_path = f"/v3/projects/{grant.project_id}"
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
