"""``GET /v3/role_assignments``: who holds which role where, stored or effective."""

from __future__ import annotations

from typing import Any

import falcon

from nimbus import exception
from nimbus.api import validation
from nimbus.api.identity.base import Resource
from nimbus.identity.assignment import Grant


class RoleAssignments(Resource):
    """List role assignments with Keystone's filters.

    ``effective`` expands group grants to their members, inherited domain
    grants to the domain's projects, and roles to the roles they imply.
    """

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        user_id = req.get_param("user.id")
        group_id = req.get_param("group.id")
        role_id = req.get_param("role.id")
        project_id = req.get_param("scope.project.id")
        domain_id = req.get_param("scope.domain.id")
        inherited = req.get_param("scope.OS-INHERIT:inherited_to")
        effective = bool(validation.bool_param(req, "effective"))
        names = bool(validation.bool_param(req, "include_names"))
        self.authorize(req, "identity:list_role_assignments", {"target.user.id": user_id})
        if project_id and domain_id:
            raise exception.ValidationError(
                field="scope", reason="give scope.project.id or scope.domain.id, not both"
            )
        if effective and group_id:
            raise exception.ValidationError(
                field="group.id", reason="cannot be combined with effective"
            )
        if inherited is not None and inherited != "projects":
            raise exception.ValidationError(
                field="scope.OS-INHERIT:inherited_to", reason="the only value is 'projects'"
            )
        grants = (
            self._effective(user_id, project_id, domain_id)
            if effective
            else (
                self.service.assignments.list_grants(
                    user_id=user_id,
                    group_id=group_id,
                    project_id=project_id,
                    domain_id=domain_id,
                    inherited=True if inherited else None,
                )
            )
        )
        if role_id is not None:
            grants = [g for g in grants if g.role_id == role_id]
        if effective:
            grants = [g for g in grants if not g.inherited]
        refs = [self._render(req, g, names) for g in _unique(grants)]
        resp.media = {
            "role_assignments": refs,
            "links": {
                "self": self.links.url(req, "/v3/role_assignments"),
                "previous": None,
                "next": None,
            },
        }

    def _effective(
        self, user_id: str | None, project_id: str | None, domain_id: str | None
    ) -> list[Grant]:
        svc = self.service
        actors: list[tuple[str | None, str | None]] = []
        if user_id is not None:
            actors.append((user_id, None))
            actors += [(None, gid) for gid in svc.users.group_ids_for_user(user_id)]
        stored: list[Grant] = []
        if actors:
            for uid, gid in actors:
                stored += svc.assignments.list_grants(user_id=uid, group_id=gid)
        else:
            stored = svc.assignments.list_grants()
        result: list[Grant] = []
        for grant in stored:
            users = (
                [grant.user_id]
                if grant.user_id
                else [
                    uid
                    for uid in svc.users.user_ids_in_group(grant.group_id or "")
                    if user_id is None or uid == user_id
                ]
            )
            if grant.inherited and grant.domain_id:
                targets = [
                    ("project", p["id"])
                    for p in svc.resources.list_projects(domain_id=grant.domain_id)
                ]
            elif grant.project_id:
                targets = [("project", grant.project_id)]
            else:
                targets = [("domain", grant.domain_id)]
            roles = svc.assignments.expand_implied([grant.role_id])
            for uid in users:
                for kind, target in targets:
                    if project_id is not None and (kind != "project" or target != project_id):
                        continue
                    if domain_id is not None and (kind != "domain" or target != domain_id):
                        continue
                    for rid in sorted(roles):
                        result.append(
                            Grant(
                                role_id=rid,
                                user_id=uid,
                                project_id=target if kind == "project" else None,
                                domain_id=target if kind == "domain" else None,
                                via_group_id=grant.group_id,
                            )
                        )
        return result

    def _render(self, req: falcon.Request, grant: Grant, names: bool) -> dict[str, Any]:
        svc = self.service
        ref: dict[str, Any] = {"role": {"id": grant.role_id}}
        if names:
            role = svc.assignments.get_role(grant.role_id)
            ref["role"]["name"] = role["name"]
        if grant.user_id is not None:
            ref["user"] = {"id": grant.user_id}
            if names:
                user = svc.users.get_user(grant.user_id)
                domain = svc.resources.get_domain(user.domain_id)
                ref["user"].update(
                    name=user.name, domain={"id": domain["id"], "name": domain["name"]}
                )
        else:
            ref["group"] = {"id": grant.group_id}
            if names:
                group = svc.users.get_group(grant.group_id or "")
                domain = svc.resources.get_domain(group.domain_id)
                ref["group"].update(
                    name=group.name, domain={"id": domain["id"], "name": domain["name"]}
                )
        if grant.project_id is not None:
            scope: dict[str, Any] = {"project": {"id": grant.project_id}}
            if names:
                project = svc.resources.get_project(grant.project_id)
                domain = svc.resources.get_domain(project["domain_id"])
                scope["project"].update(
                    name=project["name"], domain={"id": domain["id"], "name": domain["name"]}
                )
            target_path = f"/v3/projects/{grant.project_id}"
        else:
            scope = {"domain": {"id": grant.domain_id}}
            if names:
                scope["domain"]["name"] = svc.resources.get_domain(grant.domain_id or "")["name"]
            target_path = f"/v3/domains/{grant.domain_id}"
        if grant.inherited:
            scope["OS-INHERIT:inherited_to"] = "projects"
            target_path = "/v3/OS-INHERIT" + target_path
        ref["scope"] = scope
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
        ref["links"] = links
        return ref


def _unique(grants: list[Grant]) -> list[Grant]:
    seen = set()
    result = []
    for grant in grants:
        key = (
            grant.role_id,
            grant.user_id,
            grant.group_id,
            grant.project_id,
            grant.domain_id,
            grant.inherited,
        )
        if key not in seen:
            seen.add(key)
            result.append(grant)
    return result
