"""System scope through the whole identity app: system grants, system tokens, who is an admin."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from oslo_config import cfg

from tests.functional.api.conftest import MEMBER_PASSWORD, Identity, Member, assert_error

LINK_ROOT = "http://falconframework.org/identity/v3"


def system_auth(identity: Identity, user: str, password: str) -> dict[str, Any]:
    auth = identity.password_auth(user, password)
    auth["scope"] = {"system": {"all": True}}
    return auth


def system_token(identity: Identity, user: str, password: str) -> str:
    result = identity.authenticate(system_auth(identity, user, password))
    assert result.status_code == 201, result.text
    return result.headers["X-Subject-Token"]


@pytest.fixture
def member(make_member: Callable[..., Member]) -> Member:
    return make_member()


@pytest.fixture
def actor(identity: Identity, request: pytest.FixtureRequest) -> tuple[str, str]:
    """A new user or group: (``users`` or ``groups``, its id)."""
    kind = request.param
    attrs = {"name": f"sys-{kind}"}
    if kind == "users":
        attrs["password"] = MEMBER_PASSWORD
    return kind, identity.created(f"/{kind}", kind[:-1], attrs)["id"]


@pytest.mark.parametrize("actor", ["users", "groups"], indirect=True)
def test_system_grant_is_given_checked_listed_and_taken(
    identity: Identity, actor: tuple[str, str]
) -> None:
    kind, actor_id = actor
    reader = identity.role("reader")
    one = f"/system/{kind}/{actor_id}/roles/{reader['id']}"

    assert identity.request("HEAD", one).status_code == 404
    assert identity.request("PUT", one).status_code == 204
    assert identity.request("PUT", one).status_code == 204  # again: no change
    assert identity.request("HEAD", one).status_code == 204
    assert identity.request("GET", one).status_code == 204
    listed = identity.request("GET", f"/system/{kind}/{actor_id}/roles")
    assert listed.status_code == 200
    assert [r["id"] for r in listed.json["roles"]] == [reader["id"]]
    assert listed.json["links"]["self"] == f"{LINK_ROOT}/system/{kind}/{actor_id}/roles"

    assert identity.request("DELETE", one).status_code == 204
    assert identity.request("HEAD", one).status_code == 404
    assert identity.request("DELETE", one).status_code == 404
    assert identity.request("GET", f"/system/{kind}/{actor_id}/roles").json["roles"] == []


def test_system_grants_name_existing_actors_and_roles(identity: Identity) -> None:
    reader = identity.role("reader")
    assert_error(identity.request("PUT", f"/system/users/nobody/roles/{reader['id']}"), 404)
    user = identity.admin_user["id"]
    assert_error(identity.request("PUT", f"/system/users/{user}/roles/nothing"), 404)
    assert_error(identity.request("GET", "/system/groups/nobody/roles"), 404)


def test_the_bootstrapped_admin_holds_admin_on_the_system(identity: Identity) -> None:
    result = identity.authenticate(system_auth(identity, "admin", identity.admin_password))

    assert result.status_code == 201, result.text
    token = result.json["token"]
    assert token["system"] == {"all": True}
    assert "project" not in token and "domain" not in token
    assert {r["name"] for r in token["roles"]} == {"admin", "member", "reader"}
    assert any(s["type"] == "identity" for s in token["catalog"])
    shown = identity.request(
        "GET", "/auth/tokens", headers={"X-Subject-Token": result.headers["X-Subject-Token"]}
    )
    assert shown.status_code == 200
    assert shown.json["token"]["system"] == {"all": True}
    system = identity.request("GET", "/auth/system", token=result.headers["X-Subject-Token"])
    assert system.json == {"system": [{"all": True}], "links": {"self": f"{LINK_ROOT}/auth/system"}}


def test_a_user_without_system_roles_cannot_scope_to_the_system(
    identity: Identity, member: Member
) -> None:
    result = identity.authenticate(system_auth(identity, member.user["name"], member.password))

    assert_error(result, 401)
    assert identity.request("GET", "/auth/system", token=member.token).json["system"] == []
    bad = identity.password_auth(member.user["name"], member.password)
    bad["scope"] = {"system": {"all": False}}
    assert_error(identity.authenticate(bad), 400)


def test_system_roles_come_through_groups_and_implications(
    identity: Identity, member: Member
) -> None:
    group = identity.created("/groups", "group", {"name": "auditors"})
    identity.put(f"/groups/{group['id']}/users/{member.user['id']}")
    identity.put(f"/system/groups/{group['id']}/roles/{identity.role('member')['id']}")

    token = identity.authenticate(system_auth(identity, member.user["name"], member.password))

    assert token.status_code == 201, token.text
    # member implies reader.
    assert {r["name"] for r in token.json["token"]["roles"]} == {"member", "reader"}


def test_system_reader_reads_everything_and_changes_nothing(
    identity: Identity, member: Member
) -> None:
    identity.put(f"/system/users/{member.user['id']}/roles/{identity.role('reader')['id']}")
    token = system_token(identity, member.user["name"], member.password)

    assert identity.request("GET", "/users", token=token).status_code == 200
    assert identity.request("GET", "/projects", token=token).status_code == 200
    assert identity.request("GET", "/role_assignments", token=token).status_code == 200
    assert_error(identity.request("POST", "/users", {"user": {"name": "x"}}, token=token), 403)
    reader_id = identity.role("reader")["id"]
    admin_id = identity.admin_user["id"]
    assert_error(
        identity.request("DELETE", f"/system/users/{admin_id}/roles/{reader_id}", token=token),
        403,
    )


def test_a_project_reader_does_not_read_the_cloud(
    identity: Identity, make_member: Callable[..., Member]
) -> None:
    reader = make_member("reader")

    assert_error(identity.request("GET", "/users", token=reader.token), 403)
    assert_error(identity.request("GET", "/projects", token=reader.token), 403)


def test_a_project_member_neither_sees_nor_touches_system_grants(
    identity: Identity, member: Member
) -> None:
    admin_id = identity.admin_user["id"]
    admin_role = identity.role("admin")["id"]
    own = f"/system/users/{member.user['id']}/roles/{admin_role}"

    assert_error(identity.request("PUT", own, token=member.token), 403)
    assert_error(
        identity.request("GET", f"/system/users/{admin_id}/roles", token=member.token), 403
    )
    assert_error(
        identity.request(
            "HEAD", f"/system/users/{admin_id}/roles/{admin_role}", token=member.token
        ),
        403,
        has_body=False,
    )
    assert_error(
        identity.request(
            "DELETE", f"/system/users/{admin_id}/roles/{admin_role}", token=member.token
        ),
        403,
    )
    assert (
        identity.request("HEAD", f"/system/users/{admin_id}/roles/{admin_role}").status_code == 204
    )


def test_role_assignments_show_the_system_scope(identity: Identity) -> None:
    admin_id = identity.admin_user["id"]
    admin_role = identity.role("admin")["id"]

    result = identity.request("GET", "/role_assignments", params={"scope.system": "all"})

    assert result.status_code == 200
    assert result.json["role_assignments"] == [
        {
            "role": {"id": admin_role},
            "user": {"id": admin_id},
            "scope": {"system": {"all": True}},
            "links": {"assignment": f"{LINK_ROOT}/system/users/{admin_id}/roles/{admin_role}"},
        }
    ]
    every = identity.request("GET", "/role_assignments", params={"user.id": admin_id}).json
    assert {"system": {"all": True}} in [a["scope"] for a in every["role_assignments"]]
    effective = identity.request(
        "GET", "/role_assignments", params={"scope.system": "all", "effective": "true"}
    ).json["role_assignments"]
    assert {a["role"]["id"] for a in effective} == {
        identity.role(name)["id"] for name in ("admin", "member", "reader")
    }
    assert_error(identity.request("GET", "/role_assignments", params={"scope.system": "some"}), 400)


def test_taking_the_last_system_role_ends_the_system_token(
    identity: Identity, member: Member
) -> None:
    reader = identity.role("reader")["id"]
    grant = f"/system/users/{member.user['id']}/roles/{reader}"
    identity.put(grant)
    token = system_token(identity, member.user["name"], member.password)
    assert identity.works(token)

    assert identity.request("DELETE", grant).status_code == 204

    assert not identity.works(token)


# -- who is a cloud admin -------------------------------------------------------


def test_the_admin_role_on_any_project_is_the_clouds_by_default(
    identity: Identity, make_member: Callable[..., Member]
) -> None:
    """Keystone's rule, which OpenStack's clients and tempest rely on."""
    project_admin = make_member("admin")

    assert identity.request("GET", "/users", token=project_admin.token).status_code == 200
    created = identity.request(
        "POST", "/domains", {"domain": {"name": "d1"}}, token=project_admin.token
    )
    assert created.status_code == 201
    shown = identity.request(
        "GET", "/auth/tokens", headers={"X-Subject-Token": project_admin.token}
    ).json["token"]
    assert "is_admin_project" not in shown


def test_with_admin_project_only_the_admin_project_makes_cloud_admins(
    identity: Identity, make_member: Callable[..., Member], conf: cfg.ConfigOpts
) -> None:
    conf.set_override("admin_project_only", True, group="identity")
    project_admin = make_member("admin")

    assert_error(identity.request("GET", "/users", token=project_admin.token), 403)
    assert_error(
        identity.request("POST", "/domains", {"domain": {"name": "d2"}}, token=project_admin.token),
        403,
    )
    shown = identity.request(
        "GET", "/auth/tokens", headers={"X-Subject-Token": project_admin.token}
    ).json["token"]
    assert shown["is_admin_project"] is False
    # The admin project's admin and the system admin still are.
    admin = identity.issue("admin", identity.admin_password, project="admin")
    assert identity.request("GET", "/users", token=admin).status_code == 200
    system_admin = system_token(identity, "admin", identity.admin_password)
    assert identity.request("GET", "/users", token=system_admin).status_code == 200
