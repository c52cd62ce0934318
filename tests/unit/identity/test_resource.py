"""Domains and projects: policy, default and parent domains, conflicts."""

from __future__ import annotations

import dataclasses

import pytest

from nimbus import exception
from nimbus.identity.service import IdentityService
from nimbus.policy import INTERNAL
from tests.unit.identity.conftest import Callers


def test_a_reader_cannot_create_a_domain(service: IdentityService, callers: Callers) -> None:
    with pytest.raises(exception.PolicyNotAuthorized, match="identity:create_domain"):
        service.resources.create_domain(callers.reader, name="sneaky")
    assert service.resources.domains.list(callers.reader, filters={"name": "sneaky"}) == []


def test_a_member_reads_only_its_own_domain_and_project(
    service: IdentityService, callers: Callers
) -> None:
    member = callers.member
    assert service.resources.domains.get(member, callers.other_domain_id)["name"] == "other"
    assert service.resources.projects.get(member, callers.member_project_id)["name"] == "team"
    with pytest.raises(exception.PolicyNotAuthorized, match="identity:get_domain"):
        service.resources.domains.get(member, "default")
    with pytest.raises(exception.PolicyNotAuthorized, match="identity:get_project"):
        service.resources.projects.get(member, callers.admin_project_id)
    with pytest.raises(exception.PolicyNotAuthorized, match="identity:list_projects"):
        service.resources.list_projects(member)


def test_a_project_defaults_to_the_callers_domain(
    service: IdentityService, callers: Callers
) -> None:
    elsewhere = dataclasses.replace(callers.admin, project_domain_id=callers.other_domain_id)
    project = service.resources.create_project(elsewhere, name="p2")
    assert project["domain_id"] == callers.other_domain_id
    assert service.resources.create_project(INTERNAL, name="p3")["domain_id"] == "default"


def test_a_project_under_a_parent_takes_the_parents_domain(
    service: IdentityService, callers: Callers
) -> None:
    child = service.resources.create_project(
        callers.admin, name="child", parent_id=callers.member_project_id
    )
    assert child["domain_id"] == callers.other_domain_id
    assert child["parent_id"] == callers.member_project_id
    with pytest.raises(exception.ValidationError, match="project/parent_id.*nope does not exist"):
        service.resources.create_project(callers.admin, name="orphan", parent_id="nope")


def test_names_collide_and_unknown_ids_are_not_found(
    service: IdentityService, callers: Callers
) -> None:
    with pytest.raises(exception.Conflict, match="Duplicate entry found with name other"):
        service.resources.create_domain(callers.admin, name="other")
    with pytest.raises(
        exception.Conflict,
        match=f"Duplicate entry found with name team at domain ID {callers.other_domain_id}",
    ):
        service.resources.create_project(
            callers.admin, name="team", domain_id=callers.other_domain_id
        )
    with pytest.raises(exception.NotFound, match="Could not find domain: nope."):
        service.resources.domains.get(callers.admin, "nope")
    with pytest.raises(exception.NotFound, match="Could not find project: nope."):
        service.resources.update_project(callers.admin, "nope", {"name": "x"})


def test_deleting_a_domain_deletes_what_is_in_it(
    service: IdentityService, callers: Callers
) -> None:
    """As Keystone: its projects (children first), users, groups and their grants go too."""
    domain_id = callers.other_domain_id
    child = service.resources.create_project(
        INTERNAL, name="child", domain_id=domain_id, parent_id=callers.member_project_id
    )
    group = service.users.create_group(INTERNAL, name="crew", domain_id=domain_id)
    elsewhere = service.users.create_user(INTERNAL, name="stays", password="pw")
    with pytest.raises(exception.Forbidden, match="disable it first"):
        service.resources.delete_domain(callers.admin, domain_id)
    service.resources.update_domain(callers.admin, domain_id, {"enabled": False})
    with pytest.raises(exception.PolicyNotAuthorized):
        service.resources.delete_domain(callers.member, domain_id)

    service.resources.delete_domain(callers.admin, domain_id)

    with pytest.raises(exception.NotFound):
        service.resources.domains.get(callers.admin, domain_id)
    for project_id in (child["id"], callers.member_project_id):
        with pytest.raises(exception.NotFound):
            service.resources.projects.get(INTERNAL, project_id)
    with pytest.raises(exception.NotFound):
        service.users.get_user(INTERNAL, callers.member.user_id or "")
    with pytest.raises(exception.NotFound):
        service.users.get_group(INTERNAL, group.id)
    assert service.assignments.list_grants(user_id=callers.member.user_id) == []
    assert service.users.get_user(INTERNAL, elsewhere.id).name == "stays"


def test_a_project_acting_as_a_domain_is_a_domain(
    service: IdentityService, callers: Callers
) -> None:
    """As Keystone: it is a root project, listed with is_domain, and a domain too."""
    resources = service.resources
    made = resources.create_project(callers.admin, name="acme", is_domain=True, description="d")
    assert made == {
        "id": made["id"],
        "name": "acme",
        "description": "d",
        "enabled": True,
        "domain_id": None,
        "parent_id": None,
        "is_domain": True,
        "tags": [],
        "options": {},
    }
    assert resources.domains.get(callers.reader, made["id"])["name"] == "acme"
    assert resources.get_project(callers.reader, made["id"]) == made
    as_domains = resources.list_projects(callers.reader, is_domain=True)
    assert made["id"] in {p["id"] for p in as_domains}
    assert all(p["is_domain"] for p in as_domains)
    assert resources.list_projects(callers.reader, is_domain=True, name="acme") == [made]
    assert resources.list_projects(callers.reader, is_domain=True, domain_id="default") == []
    plain = resources.list_projects(callers.reader) + resources.list_projects(
        callers.reader, is_domain=False
    )
    assert made["id"] not in {p["id"] for p in plain}
    assert not any(p["is_domain"] for p in plain)
    # Projects go in it as in any domain.
    inside = resources.create_project(callers.admin, name="inside", domain_id=made["id"])
    assert inside["parent_id"] == made["id"]

    for bad in ({"domain_id": "default"}, {"parent_id": callers.admin_project_id}):
        with pytest.raises(exception.ValidationError, match="only root projects"):
            resources.create_project(callers.admin, name="nested", is_domain=True, **bad)
    with pytest.raises(exception.Conflict, match="acting as domains with the same name: acme"):
        resources.create_project(callers.admin, name="acme", is_domain=True)
    with pytest.raises(exception.PolicyNotAuthorized, match="identity:create_project"):
        resources.create_project(callers.member, name="mine", is_domain=True)
    with pytest.raises(exception.PolicyNotAuthorized, match="identity:get_project"):
        resources.get_project(callers.member, made["id"])


def test_a_domain_is_updated_and_deleted_as_a_project(
    service: IdentityService, callers: Callers
) -> None:
    resources = service.resources
    made = resources.create_project(callers.admin, name="acme", is_domain=True)
    inside = resources.create_project(callers.admin, name="inside", domain_id=made["id"])
    with pytest.raises(exception.PolicyNotAuthorized, match="identity:update_project"):
        resources.update_project(callers.member, made["id"], {"enabled": False})
    with pytest.raises(exception.Forbidden, match="disable it first"):
        resources.delete_project(callers.admin, made["id"])
    changed = resources.update_project(
        callers.admin, made["id"], {"enabled": False, "tags": ["x"], "description": "gone"}
    )
    assert (changed["enabled"], changed["is_domain"], changed["tags"]) == (False, True, [])
    assert resources.domains.get(INTERNAL, made["id"])["description"] == "gone"

    resources.delete_project(callers.admin, made["id"])

    for get in (resources.domains.get, resources.get_project):
        with pytest.raises(exception.NotFound):
            get(INTERNAL, made["id"])
    with pytest.raises(exception.NotFound):
        resources.get_project(INTERNAL, inside["id"])


def test_a_domain_id_never_names_a_project(service: IdentityService, callers: Callers) -> None:
    with pytest.raises(exception.Conflict, match=f"Duplicate ID, {callers.admin_project_id}"):
        service.resources.create_domain(
            callers.admin, name="clash", domain_id=callers.admin_project_id
        )
