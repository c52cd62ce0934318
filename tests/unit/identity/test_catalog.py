"""Regions, services and endpoints: policy, the legacy region, conflicts."""

from __future__ import annotations

import json

import pytest

from nimbus import exception
from nimbus.identity.assignment import Grant
from nimbus.identity.service import IdentityService
from tests.unit.identity.conftest import Callers


def test_a_reader_lists_but_cannot_create(service: IdentityService, callers: Callers) -> None:
    assert service.catalog.services.list(callers.reader) == []
    with pytest.raises(exception.PolicyNotAuthorized, match="identity:create_service"):
        service.catalog.create_service(callers.reader, type="compute")
    with pytest.raises(exception.PolicyNotAuthorized, match="identity:list_services"):
        service.catalog.services.list(callers.member)
    assert service.catalog.services.list(callers.admin) == []


def test_anyone_reads_regions(service: IdentityService, callers: Callers) -> None:
    assert service.catalog.regions.get(callers.member, "RegionOne")["id"] == "RegionOne"
    with pytest.raises(exception.PolicyNotAuthorized, match="identity:create_region"):
        service.catalog.create_region(callers.member, region_id="mine", id_in_url=True)


def test_the_legacy_region_is_created_when_missing(
    service: IdentityService, callers: Callers
) -> None:
    svc = service.catalog.create_service(callers.admin, type="compute")
    endpoint = service.catalog.create_endpoint(
        callers.admin,
        service_id=svc["id"],
        interface="public",
        url="http://compute.example/",
        region="Far",
    )
    assert endpoint["region_id"] == "Far"
    assert service.catalog.regions.get(callers.admin, "Far")["id"] == "Far"
    # An existing region is used as it is; region_id wins over region.
    moved = service.catalog.update_endpoint(callers.admin, endpoint["id"], {"region": "RegionOne"})
    assert moved["region_id"] == "RegionOne"
    kept = service.catalog.update_endpoint(
        callers.admin, endpoint["id"], {"region_id": "Far", "region": "Elsewhere"}
    )
    assert kept["region_id"] == "Far"
    with pytest.raises(exception.NotFound):
        service.catalog.regions.get(callers.admin, "Elsewhere")


def test_a_reader_cannot_create_a_region_through_an_endpoint(
    service: IdentityService, callers: Callers
) -> None:
    with pytest.raises(exception.PolicyNotAuthorized, match="identity:create_endpoint"):
        service.catalog.create_endpoint(
            callers.reader, service_id="x", interface="public", url="http://x/", region="Sly"
        )
    with pytest.raises(exception.NotFound):
        service.catalog.regions.get(callers.admin, "Sly")


def test_region_conflicts_cycles_and_not_found(service: IdentityService, callers: Callers) -> None:
    with pytest.raises(exception.Conflict, match="Duplicate ID, RegionOne"):
        service.catalog.create_region(callers.admin, region_id="RegionOne")
    service.catalog.create_region(callers.admin, region_id="Child", parent_region_id="RegionOne")
    with pytest.raises(exception.ValidationError, match="its own ancestor"):
        service.catalog.update_region(callers.admin, "RegionOne", {"parent_region_id": "Child"})
    with pytest.raises(exception.Conflict, match="still has endpoints or children"):
        service.catalog.delete_region(callers.admin, "RegionOne")
    with pytest.raises(exception.NotFound, match="Could not find endpoint: nope."):
        service.catalog.endpoints.get(callers.admin, "nope")
    with pytest.raises(exception.ValidationError, match="service nope does not exist"):
        service.catalog.create_endpoint(
            callers.admin, service_id="nope", interface="public", url="http://x/"
        )


def test_writes_refresh_the_token_catalog(service: IdentityService, callers: Callers) -> None:
    assert service.catalog.catalog_for(user_id="u", project_id="p") == []
    svc = service.catalog.create_service(callers.admin, type="compute", name="nova")
    service.catalog.create_endpoint(
        callers.admin, service_id=svc["id"], interface="public", url="http://c/$(project_id)s"
    )
    [entry] = service.catalog.catalog_for(user_id="u", project_id="p")
    assert [e["url"] for e in entry["endpoints"]] == ["http://c/p"]
    with pytest.raises(exception.Forbidden, match="unscoped"):
        service.catalog.catalog_for_caller(
            type(callers.admin)(user_id="u", roles=["admin"], authenticated=True)
        )


def test_a_validated_tokens_body_is_encoded_once_and_again_after_catalog_changes(
    service: IdentityService, callers: Callers
) -> None:
    me = callers.member.user_id or ""
    project = callers.member_project_id
    [member] = [r for r in service.assignments.roles.list(callers.admin) if r["name"] == "member"]
    service.assignments.create_grant(
        callers.admin, Grant(role_id=member["id"], user_id=me, project_id=project)
    )
    auth = {
        "identity": {"methods": ["password"], "password": {"user": {"id": me, "password": "pw"}}},
        "scope": {"project": {"id": project}},
    }
    token = service.auth.authenticate(auth).token_id
    data = service.auth.validate(token)
    first = service.auth.render_json(data)
    assert json.loads(first) == service.auth.render(data)
    assert service.auth.render_json(service.auth.validate(token)) is first
    without = service.auth.render_json(data, include_catalog=False)
    assert "catalog" not in json.loads(without)["token"]

    svc = service.catalog.create_service(callers.admin, type="compute", name="nova")
    service.catalog.create_endpoint(
        callers.admin, service_id=svc["id"], interface="public", url="http://c/$(project_id)s"
    )
    again = json.loads(service.auth.render_json(service.auth.validate(token)))
    [entry] = again["token"]["catalog"]
    assert entry["endpoints"][0]["url"] == f"http://c/{project}"

    # A role change drops the cached validation, and its body with it.
    admin = [r for r in service.assignments.roles.list(callers.admin) if r["name"] == "admin"][0]
    service.assignments.create_grant(
        callers.admin, Grant(role_id=admin["id"], user_id=me, project_id=project)
    )
    roles = json.loads(service.auth.render_json(service.auth.validate(token)))["token"]["roles"]
    assert "admin" in {r["name"] for r in roles}
