"""``/v3/groups`` through the whole identity app (Falcon's simulator, SQLite)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.functional.api.conftest import NO_BODY, Identity, Member, assert_error

LINK_ROOT = "http://falconframework.org/identity/v3"


@pytest.fixture
def member(make_member: Callable[..., Member]) -> Member:
    return make_member()


@pytest.fixture
def group(identity: Identity) -> dict[str, Any]:
    return identity.created("/groups", "group", {"name": "ops", "description": "Operators"})


@pytest.fixture
def user(identity: Identity) -> dict[str, Any]:
    return identity.created("/users", "user", {"name": "alice", "password": "pw"})


# -- CRUD ---------------------------------------------------------------------


def test_create_group_defaults_to_the_callers_domain(identity: Identity) -> None:
    result = identity.request("POST", "/groups", {"group": {"name": "ops"}})

    assert result.status_code == 201
    group = result.json["group"]
    assert group == {
        "id": group["id"],
        "name": "ops",
        "domain_id": identity.domain_id,
        "description": "",
        "links": {"self": f"{LINK_ROOT}/groups/{group['id']}"},
    }


def test_create_group_in_a_domain_keeps_extra_attributes(identity: Identity) -> None:
    domain = identity.created("/domains", "domain", {"name": "other"})

    group = identity.created(
        "/groups",
        "group",
        {"name": "ops", "domain_id": domain["id"], "description": "d", "team": "blue"},
    )

    assert group["domain_id"] == domain["id"]
    assert group["description"] == "d"
    assert group["team"] == "blue"
    assert identity.request("GET", f"/groups/{group['id']}").json["group"]["team"] == "blue"


def test_get_group(identity: Identity, group: dict[str, Any]) -> None:
    result = identity.request("GET", f"/groups/{group['id']}")

    assert result.status_code == 200
    assert result.json == {"group": group}


def test_update_group(identity: Identity, group: dict[str, Any]) -> None:
    body = {"group": {"name": "sre", "description": None, "id": group["id"], "pager": True}}

    result = identity.request("PATCH", f"/groups/{group['id']}", body)

    assert result.status_code == 200
    updated = result.json["group"]
    assert (updated["name"], updated["description"], updated["pager"]) == ("sre", "", True)
    assert identity.request("GET", f"/groups/{group['id']}").json["group"] == updated


def test_update_group_accepts_its_own_domain(identity: Identity, group: dict[str, Any]) -> None:
    body = {"group": {"domain_id": identity.domain_id, "description": "x"}}

    result = identity.request("PATCH", f"/groups/{group['id']}", body)

    assert result.status_code == 200
    assert result.json["group"]["description"] == "x"


def test_delete_group(identity: Identity, group: dict[str, Any]) -> None:
    result = identity.request("DELETE", f"/groups/{group['id']}")

    assert result.status_code == 204
    assert result.text == ""
    assert_error(identity.request("GET", f"/groups/{group['id']}"), 404)


def test_duplicate_name_in_a_domain_conflicts(identity: Identity, group: dict[str, Any]) -> None:
    assert_error(identity.request("POST", "/groups", {"group": {"name": group["name"]}}), 409)


# -- listing ----------------------------------------------------------------------


def test_list_groups_filters(identity: Identity) -> None:
    other = identity.created("/domains", "domain", {"name": "other"})
    a = identity.created("/groups", "group", {"name": "a"})
    b = identity.created("/groups", "group", {"name": "b"})
    c = identity.created("/groups", "group", {"name": "a", "domain_id": other["id"]})

    def names(**params: str) -> list[str]:
        result = identity.request("GET", "/groups", params=params)
        assert result.status_code == 200
        return sorted(g["id"] for g in result.json["groups"])

    assert names() == sorted([a["id"], b["id"], c["id"]])
    assert names(name="a") == sorted([a["id"], c["id"]])
    assert names(domain_id=other["id"]) == [c["id"]]
    assert names(name="a", domain_id=identity.domain_id) == [a["id"]]
    assert names(name="nobody") == []


def test_list_groups_links(identity: Identity, group: dict[str, Any]) -> None:
    body = identity.request("GET", "/groups", params={"name": "ops"}).json

    assert body["groups"] == [group]
    assert body["links"] == {
        "self": f"{LINK_ROOT}/groups?name=ops",
        "previous": None,
        "next": None,
    }


def test_list_groups_pages(identity: Identity) -> None:
    ids = sorted(identity.created("/groups", "group", {"name": f"g{i}"})["id"] for i in range(5))

    first = identity.request("GET", "/groups", params={"limit": "2"}).json
    assert [g["id"] for g in first["groups"]] == ids[:2]
    assert "marker=" + ids[1] in first["links"]["next"]

    second = identity.follow(first["links"]["next"]).json
    assert [g["id"] for g in second["groups"]] == ids[2:4]

    third = identity.follow(second["links"]["next"]).json
    assert [g["id"] for g in third["groups"]] == ids[4:]
    assert third["links"]["next"] is None


@pytest.mark.parametrize("limit", ["0", "-1", "many"])
def test_list_groups_bad_limit(identity: Identity, limit: str) -> None:
    assert_error(identity.request("GET", "/groups", params={"limit": limit}), 400)


# -- membership -------------------------------------------------------------------


def test_membership_lifecycle(
    identity: Identity, group: dict[str, Any], user: dict[str, Any]
) -> None:
    path = f"/groups/{group['id']}/users/{user['id']}"
    assert identity.request("HEAD", path).status_code == 404

    assert identity.request("PUT", path).status_code == 204
    assert identity.request("PUT", path).status_code == 204  # adding twice is harmless
    assert identity.request("HEAD", path).status_code == 204
    assert identity.request("GET", path).status_code == 204

    members = identity.request("GET", f"/groups/{group['id']}/users").json
    assert [u["id"] for u in members["users"]] == [user["id"]]
    assert members["users"][0]["links"]["self"] == f"{LINK_ROOT}/users/{user['id']}"
    assert "password" not in members["users"][0]
    groups = identity.request("GET", f"/users/{user['id']}/groups").json["groups"]
    assert [g["id"] for g in groups] == [group["id"]]

    assert identity.request("DELETE", path).status_code == 204
    assert identity.request("HEAD", path).status_code == 404
    assert_error(identity.request("GET", path), 404)
    assert_error(identity.request("DELETE", path), 404)
    assert identity.request("GET", f"/groups/{group['id']}/users").json["users"] == []


def test_list_users_in_group_filters(identity: Identity, group: dict[str, Any]) -> None:
    alice = identity.created("/users", "user", {"name": "alice"})
    bob = identity.created("/users", "user", {"name": "bob", "enabled": False})
    for member in (alice, bob):
        identity.request("PUT", f"/groups/{group['id']}/users/{member['id']}")

    def members(**params: str) -> list[str]:
        result = identity.request("GET", f"/groups/{group['id']}/users", params=params)
        assert result.status_code == 200
        return sorted(u["name"] for u in result.json["users"])

    assert members() == ["alice", "bob"]
    assert members(name="bob") == ["bob"]
    assert members(enabled="false") == ["bob"]
    assert members(enabled="true") == ["alice"]
    assert members(domain_id="elsewhere") == []


def test_deleting_a_group_removes_its_memberships(
    identity: Identity, group: dict[str, Any], user: dict[str, Any]
) -> None:
    identity.request("PUT", f"/groups/{group['id']}/users/{user['id']}")

    identity.request("DELETE", f"/groups/{group['id']}")

    assert identity.request("GET", f"/users/{user['id']}/groups").json["groups"] == []


def test_group_roles_reach_members(
    identity: Identity, group: dict[str, Any], user: dict[str, Any]
) -> None:
    project = identity.created("/projects", "project", {"name": "shared"})
    member = identity.request("GET", "/roles", params={"name": "member"}).json["roles"][0]
    grant = f"/projects/{project['id']}/groups/{group['id']}/roles/{member['id']}"
    assert identity.request("PUT", grant).status_code == 204

    identity.request("PUT", f"/groups/{group['id']}/users/{user['id']}")

    assert identity.issue("alice", "pw", project="shared")


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
        {"groups": {"name": "ops"}},
    ],
)
def test_create_group_bad_body(identity: Identity, body: Any) -> None:
    assert_error(identity.request("POST", "/groups", body), 400)


@pytest.mark.parametrize("kind", ["user", "group"])
def test_a_user_or_group_in_an_unknown_domain_is_not_found(identity: Identity, kind: str) -> None:
    body = {kind: {"name": "lost", "domain_id": "no-such-domain"}}

    result = identity.request("POST", f"/{kind}s", body)

    assert "no-such-domain" in assert_error(result, 404)
    assert identity.request("GET", f"/{kind}s", params={"name": "lost"}).json[f"{kind}s"] == []


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
def test_update_group_bad_body(identity: Identity, group: dict[str, Any], changes: Any) -> None:
    assert_error(identity.request("PATCH", f"/groups/{group['id']}", {"group": changes}), 400)
    assert identity.request("GET", f"/groups/{group['id']}").json["group"] == group


def test_malformed_json(identity: Identity) -> None:
    result = identity.client.simulate_post(
        "/identity/v3/groups",
        body=b"{not json",
        headers={"X-Auth-Token": identity.admin_token, "Content-Type": "application/json"},
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
    identity: Identity, group: dict[str, Any], user: dict[str, Any], method: str, path: str
) -> None:
    body = {"group": {"name": "x"}} if method == "PATCH" else NO_BODY
    result = identity.request(method, path.format(group=group["id"], user=user["id"]), body)
    if method == "HEAD":
        assert result.status_code == 404
    else:
        assert_error(result, 404)


def test_no_token(identity: Identity) -> None:
    result = identity.client.simulate_get("/identity/v3/groups")
    assert_error(result, 401)


# -- policy -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/groups", {"group": {"name": "mine"}}),
        ("PATCH", "/groups/{group}", {"group": {"name": "mine"}}),
        ("DELETE", "/groups/{group}", NO_BODY),
        ("PUT", "/groups/{group}/users/{user}", NO_BODY),
        ("DELETE", "/groups/{group}/users/{user}", NO_BODY),
        # Reading groups is for cloud readers too.
        ("GET", "/groups", NO_BODY),
        ("GET", "/groups/{group}", NO_BODY),
        ("GET", "/groups/{group}/users", NO_BODY),
        ("GET", "/groups/{group}/users/{user}", NO_BODY),
    ],
)
def test_member_is_forbidden(
    identity: Identity,
    member: Member,
    group: dict[str, Any],
    user: dict[str, Any],
    method: str,
    path: str,
    body: Any,
) -> None:
    identity.request("PUT", f"/groups/{group['id']}/users/{user['id']}")
    token = member.token

    result = identity.request(
        method, path.format(group=group["id"], user=user["id"]), body, token=token
    )

    message = assert_error(result, 403)
    assert "identity:" in message
    assert identity.request("GET", f"/groups/{group['id']}").json["group"] == group
    assert identity.request("HEAD", f"/groups/{group['id']}/users/{user['id']}").status_code == 204
    assert len(identity.request("GET", "/groups").json["groups"]) == 1
