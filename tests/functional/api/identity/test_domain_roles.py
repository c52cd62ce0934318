"""Domain-specific roles through the whole identity app."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.functional.api.conftest import Identity, Member, assert_error


@pytest.fixture
def domain(identity: Identity) -> dict[str, Any]:
    return identity.created("/domains", "domain", {"name": "dr"})


@pytest.fixture
def domain_role(identity: Identity, domain: dict[str, Any]) -> dict[str, Any]:
    return identity.created("/roles", "role", {"name": "dr-auditor", "domain_id": domain["id"]})


def test_a_domain_role_is_listed_with_its_domain_only(
    identity: Identity, domain: dict[str, Any], domain_role: dict[str, Any]
) -> None:
    assert domain_role["domain_id"] == domain["id"]
    listed = identity.request("GET", "/roles", params={"domain_id": domain["id"]}).json["roles"]
    assert listed == [domain_role]
    global_roles = identity.request("GET", "/roles").json["roles"]
    assert domain_role["id"] not in [r["id"] for r in global_roles]
    assert {"admin", "member", "reader"} <= {r["name"] for r in global_roles}
    assert all(r["domain_id"] is None for r in global_roles)

    assert identity.request("DELETE", f"/roles/{domain_role['id']}").status_code == 204
    assert identity.request("GET", "/roles", params={"domain_id": domain["id"]}).json["roles"] == []


def test_a_domain_role_needs_an_existing_domain(identity: Identity) -> None:
    assert_error(
        identity.request("POST", "/roles", {"role": {"name": "x", "domain_id": "nope"}}), 404
    )
    assert_error(identity.request("POST", "/roles", {"role": {"name": "x", "domain_id": 7}}), 400)


def test_a_domain_role_grants_no_token_role_but_what_it_implies(
    identity: Identity, domain: dict[str, Any], domain_role: dict[str, Any]
) -> None:
    project = identity.created("/projects", "project", {"name": "p", "domain_id": domain["id"]})
    user = identity.created(
        "/users", "user", {"name": "dru", "password": "pw", "domain_id": domain["id"]}
    )
    identity.put(f"/projects/{project['id']}/users/{user['id']}/roles/{domain_role['id']}")
    query = {"scope.project.id": project["id"], "user.id": user["id"], "effective": "true"}

    assert identity.request("GET", "/role_assignments", params=query).json["role_assignments"] == []
    # Implying a global role carries that one into tokens.
    reader = identity.role("reader")
    implies = identity.request("PUT", f"/roles/{domain_role['id']}/implies/{reader['id']}")
    assert implies.status_code == 201
    effective = identity.request("GET", "/role_assignments", params=query).json["role_assignments"]
    assert [a["role"]["id"] for a in effective] == [reader["id"]]
    auth = {
        "identity": {
            "methods": ["password"],
            "password": {"user": {"id": user["id"], "password": "pw"}},
        },
        "scope": {"project": {"id": project["id"]}},
    }
    token = identity.authenticate(auth).json["token"]
    assert [r["name"] for r in token["roles"]] == ["reader"]


def test_domain_roles_imply_others_but_no_global_role_implies_one(
    identity: Identity, domain: dict[str, Any], domain_role: dict[str, Any]
) -> None:
    other = identity.created("/domains", "domain", {"name": "dr2"})
    same = identity.created("/roles", "role", {"name": "dr-same", "domain_id": domain["id"]})
    elsewhere = identity.created("/roles", "role", {"name": "dr-else", "domain_id": other["id"]})
    member = identity.role("member")

    for implied in (same, elsewhere, member):
        path = f"/roles/{domain_role['id']}/implies/{implied['id']}"
        assert identity.request("PUT", path).status_code == 201
    assert_error(identity.request("PUT", f"/roles/{member['id']}/implies/{domain_role['id']}"), 403)


def test_a_domain_role_stays_in_its_domain(
    identity: Identity,
    domain_role: dict[str, Any],
    make_member: Callable[..., Member],
) -> None:
    member = make_member()  # a project of the default domain
    path = f"/projects/{member.project['id']}/users/{member.user['id']}/roles/{domain_role['id']}"
    assert_error(identity.request("PUT", path), 403)
    system = f"/system/users/{member.user['id']}/roles/{domain_role['id']}"
    assert_error(identity.request("PUT", system), 400)
    assert_error(
        identity.request("POST", "/roles", {"role": {"name": "m"}}, token=member.token), 403
    )
