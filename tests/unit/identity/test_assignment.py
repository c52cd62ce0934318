"""Roles and assignments: policy, effective listings, names, and cached tokens."""

from __future__ import annotations

from unittest import mock

import pytest

from nimbus import exception
from nimbus.identity.assignment import Grant
from nimbus.identity.service import IdentityService
from nimbus.policy import INTERNAL
from tests.unit.identity.conftest import Callers


def _role_id(service: IdentityService, name: str) -> str:
    return service.assignments.roles.get_by(name=name)["id"]


def _triples(assignments) -> set[tuple[str | None, str | None, str | None, str | None]]:
    return {
        (a.grant.role_id, a.grant.user_id, a.grant.project_id, a.grant.via_group_id)
        for a in assignments
    }


def test_a_reader_cannot_grant(service: IdentityService, callers: Callers) -> None:
    grant = Grant(
        role_id=_role_id(service, "admin"),
        user_id=callers.member.user_id,
        project_id=callers.member_project_id,
    )
    with pytest.raises(exception.PolicyNotAuthorized, match="identity:create_grant"):
        service.assignments.create_grant(callers.reader, grant)
    with pytest.raises(exception.NotFound, match="role assignment"):
        service.assignments.check_grant(callers.reader, grant)


def test_a_member_lists_only_its_own_assignments(
    service: IdentityService, callers: Callers
) -> None:
    me = callers.member.user_id
    assert service.assignments.list_role_assignments(callers.member, user_id=me) == []
    with pytest.raises(exception.PolicyNotAuthorized, match="identity:list_role_assignments"):
        service.assignments.list_role_assignments(callers.member, user_id=callers.admin.user_id)
    with pytest.raises(exception.PolicyNotAuthorized):
        service.assignments.list_role_assignments(callers.member)


def test_effective_assignments_expand_groups_and_implied_roles(
    service: IdentityService, callers: Callers
) -> None:
    admin, member, reader = (_role_id(service, n) for n in ("admin", "member", "reader"))
    me = callers.member.user_id or ""
    project = callers.member_project_id
    group = service.users.create_group(INTERNAL, name="devs", domain_id=callers.other_domain_id)
    service.users.add_user_to_group(INTERNAL, me, group.id)
    service.assignments.create_grant(
        callers.admin, Grant(role_id=member, group_id=group.id, project_id=project)
    )

    stored = service.assignments.list_role_assignments(callers.admin, user_id=me)
    assert stored == []
    effective = service.assignments.list_role_assignments(callers.admin, user_id=me, effective=True)
    assert _triples(effective) == {(member, me, project, group.id), (reader, me, project, group.id)}
    # A direct grant of a role the group gives too is listed once, as the direct one.
    service.assignments.create_grant(
        callers.admin, Grant(role_id=member, user_id=me, project_id=project)
    )
    effective = service.assignments.list_role_assignments(callers.admin, user_id=me, effective=True)
    assert _triples(effective) == {(member, me, project, None), (reader, me, project, None)}
    only_reader = service.assignments.list_role_assignments(
        callers.admin, user_id=me, effective=True, role_id=reader
    )
    assert _triples(only_reader) == {(reader, me, project, None)}
    assert admin not in {a.grant.role_id for a in effective}


def test_inherited_grants_reach_every_project_of_the_domain(
    service: IdentityService, callers: Callers
) -> None:
    reader = _role_id(service, "reader")
    me = callers.member.user_id or ""
    second = service.resources.create_project(
        INTERNAL, name="second", domain_id=callers.other_domain_id
    )
    service.assignments.create_grant(
        callers.admin,
        Grant(role_id=reader, user_id=me, domain_id=callers.other_domain_id, inherited=True),
    )
    stored = service.assignments.list_role_assignments(
        callers.admin, user_id=me, inherited_to="projects"
    )
    assert [a.ref["scope"]["OS-INHERIT:inherited_to"] for a in stored] == ["projects"]
    effective = service.assignments.list_role_assignments(callers.admin, user_id=me, effective=True)
    assert {a.grant.project_id for a in effective} == {callers.member_project_id, second["id"]}
    assert {p["id"] for p in service.assignments.list_caller_projects(callers.member)} == {
        callers.member_project_id,
        second["id"],
    }


def test_names_are_resolved_when_asked(service: IdentityService, callers: Callers) -> None:
    member = _role_id(service, "member")
    me = callers.member.user_id or ""
    service.assignments.create_grant(
        callers.admin, Grant(role_id=member, user_id=me, project_id=callers.member_project_id)
    )
    [plain] = service.assignments.list_role_assignments(callers.admin, user_id=me)
    assert plain.ref == {
        "role": {"id": member},
        "user": {"id": me},
        "scope": {"project": {"id": callers.member_project_id}},
    }
    [named] = service.assignments.list_role_assignments(
        callers.admin, user_id=me, include_names=True
    )
    other = {"id": callers.other_domain_id, "name": "other"}
    assert named.ref == {
        "role": {"id": member, "name": "member"},
        "user": {"id": me, "name": "mia", "domain": other},
        "scope": {"project": {"id": callers.member_project_id, "name": "team", "domain": other}},
    }


def test_filters_that_cannot_combine_are_refused(
    service: IdentityService, callers: Callers
) -> None:
    with pytest.raises(exception.ValidationError, match="give one of"):
        service.assignments.list_role_assignments(callers.admin, project_id="p", domain_id="d")
    with pytest.raises(exception.ValidationError, match="effective"):
        service.assignments.list_role_assignments(callers.admin, group_id="g", effective=True)


def test_grant_changes_are_seen_by_cached_tokens(
    service: IdentityService, callers: Callers
) -> None:
    me = callers.member.user_id or ""
    project = callers.member_project_id
    member = _role_id(service, "member")
    service.assignments.create_grant(
        callers.admin, Grant(role_id=member, user_id=me, project_id=project)
    )
    auth = {
        "identity": {"methods": ["password"], "password": {"user": {"id": me, "password": "pw"}}},
        "scope": {"project": {"id": project}},
    }
    token = service.auth.authenticate(auth).token_id
    assert {r["name"] for r in service.auth.validate(token).roles} == {"member", "reader"}
    service.assignments.create_grant(
        callers.admin, Grant(role_id=_role_id(service, "admin"), user_id=me, project_id=project)
    )
    roles = {r["name"] for r in service.auth.validate(token).roles}
    assert roles == {"admin", "member", "reader"}
    with mock.patch.object(service.auth, "forget_cached") as forget:
        service.assignments.update_role(callers.admin, member, {"description": "d"})
        service.assignments.create_implied_role(
            callers.admin,
            _role_id(service, "reader"),
            service.assignments.roles.create(callers.admin, {"name": "viewer"})["id"],
        )
    assert forget.call_count == 2


def test_roles_conflict_and_grants_need_their_parts(
    service: IdentityService, callers: Callers
) -> None:
    with pytest.raises(exception.Conflict, match="Duplicate entry found with name member"):
        service.assignments.roles.create(callers.admin, {"name": "member"})
    with pytest.raises(exception.NotFound, match="Could not find role: nope."):
        service.assignments.create_grant(
            callers.admin,
            Grant(
                role_id="nope",
                user_id=callers.member.user_id,
                project_id=callers.member_project_id,
            ),
        )
    with pytest.raises(exception.NotFound, match="Could not find project: nope."):
        service.assignments.create_grant(
            callers.admin,
            Grant(role_id="x", user_id=callers.member.user_id, project_id="nope"),
        )
    with pytest.raises(exception.ValidationError, match="already implies"):
        service.assignments.create_implied_role(
            callers.admin, _role_id(service, "reader"), _role_id(service, "admin")
        )
