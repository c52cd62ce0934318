"""``/v3/groups`` through the whole identity app (Falcon's simulator, SQLite)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from oslo_config import cfg

from tests.functional.api.identity._helpers import IdentityAPI, assert_error

LINK_ROOT = "http://falconframework.org/identity/v3"


@pytest.fixture
def api(conf: cfg.ConfigOpts) -> Iterator[IdentityAPI]:
    identity = IdentityAPI(conf)
    yield identity
    identity.close()


@pytest.fixture
def group(api: IdentityAPI) -> dict[str, Any]:
    return api.created("/groups", "group", {"name": "ops", "description": "Operators"})


@pytest.fixture
def user(api: IdentityAPI) -> dict[str, Any]:
    return api.created("/users", "user", {"name": "alice", "password": "pw"})


# -- CRUD ---------------------------------------------------------------------


def test_create_group_defaults_to_the_callers_domain(api: IdentityAPI) -> None:
    result = api.call("POST", "/groups", {"group": {"name": "ops"}})

    assert result.status_code == 201
    group = result.json["group"]
    assert group == {
        "id": group["id"],
        "name": "ops",
        "domain_id": api.domain_id,
        "description": "",
        "links": {"self": f"{LINK_ROOT}/groups/{group['id']}"},
    }


def test_create_group_in_a_domain_keeps_extra_attributes(api: IdentityAPI) -> None:
    domain = api.created("/domains", "domain", {"name": "other"})

    group = api.created(
        "/groups",
        "group",
        {"name": "ops", "domain_id": domain["id"], "description": "d", "team": "blue"},
    )

    assert group["domain_id"] == domain["id"]
    assert group["description"] == "d"
    assert group["team"] == "blue"
    assert api.call("GET", f"/groups/{group['id']}").json["group"]["team"] == "blue"


def test_get_group(api: IdentityAPI, group: dict[str, Any]) -> None:
    result = api.call("GET", f"/groups/{group['id']}")

    assert result.status_code == 200
    assert result.json == {"group": group}


def test_update_group(api: IdentityAPI, group: dict[str, Any]) -> None:
    body = {"group": {"name": "sre", "description": None, "id": group["id"], "pager": True}}

    result = api.call("PATCH", f"/groups/{group['id']}", body)

    assert result.status_code == 200
    updated = result.json["group"]
    assert (updated["name"], updated["description"], updated["pager"]) == ("sre", "", True)
    assert api.call("GET", f"/groups/{group['id']}").json["group"] == updated


def test_update_group_accepts_its_own_domain(api: IdentityAPI, group: dict[str, Any]) -> None:
    body = {"group": {"domain_id": api.domain_id, "description": "x"}}

    result = api.call("PATCH", f"/groups/{group['id']}", body)

    assert result.status_code == 200
    assert result.json["group"]["description"] == "x"


def test_delete_group(api: IdentityAPI, group: dict[str, Any]) -> None:
    result = api.call("DELETE", f"/groups/{group['id']}")

    assert result.status_code == 204
    assert result.text == ""
    assert_error(api.call("GET", f"/groups/{group['id']}"), 404)


def test_duplicate_name_in_a_domain_conflicts(api: IdentityAPI, group: dict[str, Any]) -> None:
    assert_error(api.call("POST", "/groups", {"group": {"name": group["name"]}}), 409)


# -- listing ----------------------------------------------------------------------


def test_list_groups_filters(api: IdentityAPI) -> None:
    other = api.created("/domains", "domain", {"name": "other"})
    a = api.created("/groups", "group", {"name": "a"})
    b = api.created("/groups", "group", {"name": "b"})
    c = api.created("/groups", "group", {"name": "a", "domain_id": other["id"]})

    def names(**params: str) -> list[str]:
        result = api.call("GET", "/groups", params=params)
        assert result.status_code == 200
        return sorted(g["id"] for g in result.json["groups"])

    assert names() == sorted([a["id"], b["id"], c["id"]])
    assert names(name="a") == sorted([a["id"], c["id"]])
    assert names(domain_id=other["id"]) == [c["id"]]
    assert names(name="a", domain_id=api.domain_id) == [a["id"]]
    assert names(name="nobody") == []


def test_list_groups_links(api: IdentityAPI, group: dict[str, Any]) -> None:
    body = api.call("GET", "/groups", params={"name": "ops"}).json

    assert body["groups"] == [group]
    assert body["links"] == {
        "self": f"{LINK_ROOT}/groups?name=ops",
        "previous": None,
        "next": None,
    }


def test_list_groups_pages(api: IdentityAPI) -> None:
    ids = sorted(api.created("/groups", "group", {"name": f"g{i}"})["id"] for i in range(5))

    first = api.call("GET", "/groups", params={"limit": "2"}).json
    assert [g["id"] for g in first["groups"]] == ids[:2]
    assert "marker=" + ids[1] in first["links"]["next"]

    second = api.follow(first["links"]["next"]).json
    assert [g["id"] for g in second["groups"]] == ids[2:4]

    third = api.follow(second["links"]["next"]).json
    assert [g["id"] for g in third["groups"]] == ids[4:]
    assert third["links"]["next"] is None


@pytest.mark.parametrize("limit", ["0", "-1", "many"])
def test_list_groups_bad_limit(api: IdentityAPI, limit: str) -> None:
    assert_error(api.call("GET", "/groups", params={"limit": limit}), 400)


# -- membership -------------------------------------------------------------------


def test_membership_lifecycle(
    api: IdentityAPI, group: dict[str, Any], user: dict[str, Any]
) -> None:
    path = f"/groups/{group['id']}/users/{user['id']}"
    assert api.call("HEAD", path).status_code == 404

    assert api.call("PUT", path).status_code == 204
    assert api.call("PUT", path).status_code == 204  # adding twice is harmless
    assert api.call("HEAD", path).status_code == 204
    assert api.call("GET", path).status_code == 204

    members = api.call("GET", f"/groups/{group['id']}/users").json
    assert [u["id"] for u in members["users"]] == [user["id"]]
    assert members["users"][0]["links"]["self"] == f"{LINK_ROOT}/users/{user['id']}"
    assert "password" not in members["users"][0]
    groups = api.call("GET", f"/users/{user['id']}/groups").json["groups"]
    assert [g["id"] for g in groups] == [group["id"]]

    assert api.call("DELETE", path).status_code == 204
    assert api.call("HEAD", path).status_code == 404
    assert_error(api.call("GET", path), 404)
    assert_error(api.call("DELETE", path), 404)
    assert api.call("GET", f"/groups/{group['id']}/users").json["users"] == []


def test_list_users_in_group_filters(api: IdentityAPI, group: dict[str, Any]) -> None:
    alice = api.created("/users", "user", {"name": "alice"})
    bob = api.created("/users", "user", {"name": "bob", "enabled": False})
    for member in (alice, bob):
        api.call("PUT", f"/groups/{group['id']}/users/{member['id']}")

    def members(**params: str) -> list[str]:
        result = api.call("GET", f"/groups/{group['id']}/users", params=params)
        assert result.status_code == 200
        return sorted(u["name"] for u in result.json["users"])

    assert members() == ["alice", "bob"]
    assert members(name="bob") == ["bob"]
    assert members(enabled="false") == ["bob"]
    assert members(enabled="true") == ["alice"]
    assert members(domain_id="elsewhere") == []


def test_deleting_a_group_removes_its_memberships(
    api: IdentityAPI, group: dict[str, Any], user: dict[str, Any]
) -> None:
    api.call("PUT", f"/groups/{group['id']}/users/{user['id']}")

    api.call("DELETE", f"/groups/{group['id']}")

    assert api.call("GET", f"/users/{user['id']}/groups").json["groups"] == []


def test_group_roles_reach_members(
    api: IdentityAPI, group: dict[str, Any], user: dict[str, Any]
) -> None:
    project = api.created("/projects", "project", {"name": "shared"})
    member = api.call("GET", "/roles", params={"name": "member"}).json["roles"][0]
    grant = f"/projects/{project['id']}/groups/{group['id']}/roles/{member['id']}"
    assert api.call("PUT", grant).status_code == 204

    api.call("PUT", f"/groups/{group['id']}/users/{user['id']}")

    assert api.issue_token("alice", "pw", "shared")


# -- errors -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        None,
        {},
        {"group": "ops"},
        {"group": {}},
        {"group": {"name": ""}},
        {"group": {"name": "   "}},
        {"group": {"name": None}},
        {"group": {"name": 5}},
        {"group": {"name": "x" * 256}},
        {"group": {"name": "ops", "description": 5}},
        {"group": {"name": "ops", "domain_id": 5}},
        {"group": {"name": "ops", "domain_id": ""}},
        {"group": {"name": "ops", "domain_id": "no-such-domain"}},
        {"groups": {"name": "ops"}},
    ],
)
def test_create_group_bad_body(api: IdentityAPI, body: Any) -> None:
    assert_error(api.call("POST", "/groups", body), 400)


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"name": ""},
        {"name": None},
        {"description": ["x"]},
        {"domain_id": "other"},
        {"domain_id": None},
        {"id": "other"},
    ],
)
def test_update_group_bad_body(api: IdentityAPI, group: dict[str, Any], changes: Any) -> None:
    assert_error(api.call("PATCH", f"/groups/{group['id']}", {"group": changes}), 400)
    assert api.call("GET", f"/groups/{group['id']}").json["group"] == group


def test_malformed_json(api: IdentityAPI) -> None:
    result = api.client.simulate_post(
        "/identity/v3/groups",
        body=b"{not json",
        headers={"X-Auth-Token": api.admin_token, "Content-Type": "application/json"},
    )
    assert_error(result, 400)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/groups/nope"),
        ("PATCH", "/groups/nope"),
        ("DELETE", "/groups/nope"),
        ("GET", "/groups/nope/users"),
        ("PUT", "/groups/nope/users/{user}"),
        ("HEAD", "/groups/nope/users/{user}"),
        ("GET", "/groups/nope/users/{user}"),
        ("DELETE", "/groups/nope/users/{user}"),
        ("PUT", "/groups/{group}/users/nope"),
        ("HEAD", "/groups/{group}/users/nope"),
        ("DELETE", "/groups/{group}/users/nope"),
    ],
)
def test_unknown_ids(
    api: IdentityAPI, group: dict[str, Any], user: dict[str, Any], method: str, path: str
) -> None:
    body = {"group": {"name": "x"}} if method == "PATCH" else None
    result = api.call(method, path.format(group=group["id"], user=user["id"]), body)
    if method == "HEAD":
        assert result.status_code == 404
    else:
        assert_error(result, 404)


def test_no_token(api: IdentityAPI) -> None:
    result = api.client.simulate_get("/identity/v3/groups")
    assert_error(result, 401)


# -- policy -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/groups", {"group": {"name": "mine"}}),
        ("PATCH", "/groups/{group}", {"group": {"name": "mine"}}),
        ("DELETE", "/groups/{group}", None),
        ("PUT", "/groups/{group}/users/{user}", None),
        ("DELETE", "/groups/{group}/users/{user}", None),
        # Reading groups is for cloud readers too.
        ("GET", "/groups", None),
        ("GET", "/groups/{group}", None),
        ("GET", "/groups/{group}/users", None),
        ("GET", "/groups/{group}/users/{user}", None),
    ],
)
def test_member_is_forbidden(
    api: IdentityAPI,
    group: dict[str, Any],
    user: dict[str, Any],
    method: str,
    path: str,
    body: Any,
) -> None:
    api.call("PUT", f"/groups/{group['id']}/users/{user['id']}")
    token = api.member_token()

    result = api.call(method, path.format(group=group["id"], user=user["id"]), body, token=token)

    message = assert_error(result, 403)
    assert "identity:" in message
    assert api.call("GET", f"/groups/{group['id']}").json["group"] == group
    assert api.call("HEAD", f"/groups/{group['id']}/users/{user['id']}").status_code == 204
    assert len(api.call("GET", "/groups").json["groups"]) == 1
