"""The identity resources: request -> manager call -> Keystone response."""

from __future__ import annotations

from typing import Any

from nimbus.identity.service import IdentityService

URL = "http://keystone.test"


def _error(result: Any, code: int) -> dict[str, Any]:
    assert result.status_code == code, result.text
    error: dict[str, Any] = result.json["error"]
    assert set(error) == {"code", "title", "message"}
    assert error["code"] == code
    return error


def test_create_user_is_201_with_links_and_stored(client: Any, service: IdentityService) -> None:
    result = client.simulate_post("/v3/users", json={"user": {"name": "ann", "password": "pw"}})
    assert result.status_code == 201
    user = result.json["user"]
    assert user["name"] == "ann"
    assert user["domain_id"] == "default"
    assert "password" not in user
    assert user["links"] == {"self": f"{URL}/v3/users/{user['id']}"}
    assert service.users.get_user_by_name("ann", "default").id == user["id"]


def test_list_users_pages_with_next_link_and_filters(client: Any) -> None:
    for name in ("b1", "b2", "b3"):
        client.simulate_post("/v3/users", json={"user": {"name": name}})
    first = client.simulate_get("/v3/users", params={"limit": "2"}).json
    assert len(first["users"]) == 2
    assert first["links"]["self"] == f"{URL}/v3/users?limit=2"
    assert first["links"]["next"].startswith(f"{URL}/v3/users?limit=2&marker=")
    named = client.simulate_get("/v3/users", params={"name": "b2"}).json["users"]
    assert [u["name"] for u in named] == ["b2"]


def test_get_patch_delete_project(client: Any) -> None:
    project = client.simulate_post("/v3/projects", json={"project": {"name": "p"}}).json["project"]
    path = f"/v3/projects/{project['id']}"
    patched = client.simulate_patch(path, json={"project": {"description": "d"}})
    assert patched.json["project"]["description"] == "d"
    assert client.simulate_get(path).json["project"]["description"] == "d"
    assert client.simulate_delete(path).status_code == 204
    _error(client.simulate_get(path), 404)


def test_invalid_update_body_is_400(client: Any) -> None:
    role = client.simulate_post("/v3/roles", json={"role": {"name": "r"}}).json["role"]
    _error(client.simulate_patch(f"/v3/roles/{role['id']}", json={"role": {"id": "x"}}), 400)


def test_group_update_may_not_name_another_group(client: Any) -> None:
    group = client.simulate_post("/v3/groups", json={"group": {"name": "g"}}).json["group"]
    path = f"/v3/groups/{group['id']}"
    _error(client.simulate_patch(path, json={"group": {"id": "other"}}), 400)
    same = client.simulate_patch(path, json={"group": {"id": group["id"], "name": "h"}})
    assert same.json["group"]["name"] == "h"


def test_region_put_uses_the_url_id_and_service_description_blank(client: Any) -> None:
    result = client.simulate_put("/v3/regions/north", json={"region": {}})
    assert result.status_code == 201
    assert result.json["region"]["id"] == "north"
    assert result.json["region"]["links"]["self"] == f"{URL}/v3/regions/north"
    svc = client.simulate_post("/v3/services", json={"service": {"type": "compute"}}).json
    path = f"/v3/services/{svc['service']['id']}"
    patched = client.simulate_patch(path, json={"service": {"description": None}})
    assert patched.json["service"]["description"] == ""


def test_endpoint_url_is_checked(client: Any) -> None:
    svc = client.simulate_post("/v3/services", json={"service": {"type": "compute"}}).json
    body = {"service_id": svc["service"]["id"], "interface": "public", "url": "ftp://x"}
    _error(client.simulate_post("/v3/endpoints", json={"endpoint": body}), 400)


def test_role_assignments_list_the_admin_grant(client: Any) -> None:
    body = client.simulate_get("/v3/role_assignments", params={"effective": "1"}).json
    assert body["links"] == {"self": f"{URL}/v3/role_assignments", "previous": None, "next": None}
    assert any(a["role"]["id"] for a in body["role_assignments"])
    assert all("assignment" in a["links"] for a in body["role_assignments"])


def test_a_project_acting_as_a_domain(client: Any) -> None:
    body = {"project": {"name": "acme", "domain_id": None, "is_domain": True}}
    result = client.simulate_post("/v3/projects", json=body)
    assert result.status_code == 201, result.text
    project = result.json["project"]
    path = f"/v3/projects/{project['id']}"
    assert (project["is_domain"], project["domain_id"], project["parent_id"]) == (True, None, None)
    assert project["links"] == {"self": f"{URL}{path}"}
    listed = client.simulate_get("/v3/projects", params={"is_domain": "True"}).json["projects"]
    assert project["id"] in {p["id"] for p in listed}
    plain = client.simulate_get("/v3/projects").json["projects"]
    assert project["id"] not in {p["id"] for p in plain}
    assert all(p["is_domain"] is False for p in plain)
    domains = client.simulate_get("/v3/domains").json["domains"]
    assert project["id"] in {d["id"] for d in domains}
    assert client.simulate_get(path).json["project"] == project

    _error(client.simulate_patch(path, json={"project": {"is_domain": False}}), 400)
    _error(client.simulate_delete(path), 403)
    client.simulate_patch(path, json={"project": {"enabled": False}})
    assert client.simulate_delete(path).status_code == 204
    _error(client.simulate_get(f"/v3/domains/{project['id']}"), 404)


def test_is_domain_must_be_a_boolean_and_a_root(client: Any) -> None:
    for project in (
        {"name": "x", "is_domain": "yes"},
        {"name": "x", "is_domain": True, "domain_id": "default"},
    ):
        _error(client.simulate_post("/v3/projects", json={"project": project}), 400)
