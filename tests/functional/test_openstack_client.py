"""The real ``openstack`` client against a real ``nimbus up`` (gunicorn, SQLite).

This is the issue's acceptance scenario, run as a new user would run it:
source the openrc that ``nimbus up`` wrote, then drive the cloud with
python-openstackclient.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from nimbus.testing.server import Server, nimbus_up
from tests.functional._openstack import OpenStackCLI


class Cloud(OpenStackCLI):
    """A running ``nimbus up`` and a way to call the client against it."""

    def __init__(self, server: Server) -> None:
        super().__init__(server)
        self.port = server.port

    def http(self, method: str, path: str, token: str | None = None):
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", method=method)
        if token:
            req.add_header("X-Auth-Token", token)
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as ex:
            return ex.code, json.loads(ex.read() or b"null")


@pytest.fixture(scope="module")
def cloud(tmp_path_factory) -> Iterator[Cloud]:
    state = tmp_path_factory.mktemp("cloud") / "state"
    with nimbus_up(
        state, log_path=state.parent / "nimbus-up.log", env={"NIMBUS_CONFIG_FILE": ""}
    ) as server:
        yield Cloud(server)
    assert server.returncode == 0, "nimbus up did not stop cleanly on SIGTERM"


def test_admin_session(cloud: Cloud) -> None:
    token = cloud.json("token", "issue")
    assert token["id"] and token["project_id"] and token["user_id"]
    catalog = cloud.json("catalog", "list")
    assert {"identity"} <= {entry["Type"] for entry in catalog}
    endpoints = cloud.json("endpoint", "list")
    assert {e["Interface"] for e in endpoints} == {"public", "internal", "admin"}


def test_user_lifecycle(cloud: Cloud) -> None:
    cloud.run("project", "create", "demo")
    cloud.run("user", "create", "--project", "demo", "--password", "secret", "alice")
    cloud.run("role", "add", "--project", "demo", "--user", "alice", "member")
    assignments = cloud.json("role", "assignment", "list", "--user", "alice", "--names")
    assert [(a["Role"], a["Project"]) for a in assignments] == [("member", "demo@Default")]

    alice = cloud.as_user("alice", "secret", "demo")
    first = cloud.json("token", "issue", env=alice)
    second = cloud.json("token", "issue", env=alice)
    assert cloud.http("GET", "/identity/v3/auth/projects", first["id"])[0] == 200

    # A revoked token is refused; the other one still works.
    cloud.run("token", "revoke", first["id"])
    status, body = cloud.http("GET", "/identity/v3/auth/projects", first["id"])
    assert status == 401 and body["error"]["code"] == 401
    assert cloud.http("GET", "/identity/v3/auth/projects", second["id"])[0] == 200

    # A new password ends every token issued before it.
    cloud.run("user", "set", "--password", "new", "alice")
    assert cloud.http("GET", "/identity/v3/auth/projects", second["id"])[0] == 401
    assert cloud.run("token", "issue", env=alice, check=False).returncode != 0
    assert cloud.json("token", "issue", env=cloud.as_user("alice", "new", "demo"))["id"]


def test_member_is_refused_admin_work(cloud: Cloud) -> None:
    cloud.run("project", "create", "memberland")
    cloud.run("user", "create", "--project", "memberland", "--password", "pw", "bob")
    cloud.run("role", "add", "--project", "memberland", "--user", "bob", "member")
    bob = cloud.as_user("bob", "pw", "memberland")
    before = {p["Name"] for p in cloud.json("project", "list")}

    denied = cloud.run("user", "list", env=bob, check=False)
    assert denied.returncode != 0
    assert "403" in denied.stderr and "identity:list_users" in denied.stderr

    denied = cloud.run("project", "create", "x", env=bob, check=False)
    assert denied.returncode != 0
    assert "403" in denied.stderr and "identity:create_project" in denied.stderr
    assert {p["Name"] for p in cloud.json("project", "list")} == before


def test_credential_lifecycle(cloud: Cloud) -> None:
    project_id = cloud.json("project", "create", "keys")["id"]
    user_id = cloud.json("user", "create", "--project", "keys", "--password", "pw", "carol")["id"]
    cloud.run("role", "add", "--project", "keys", "--user", "carol", "member")
    carol = cloud.as_user("carol", "pw", "keys")
    blob = json.dumps({"access": "carol-access", "secret": "carol-secret"})

    # As in Keystone, a member may not look users or projects up by name: ids it is.
    made = cloud.json(
        "credential", "create", "--type", "ec2", "--project", project_id, user_id, blob, env=carol
    )
    assert (made["type"], made["blob"], made["project_id"]) == ("ec2", blob, project_id)
    listed = cloud.json("credential", "list", "--user", "carol", "--type", "ec2")
    assert [c["ID"] for c in listed] == [made["id"]]
    assert [c["ID"] for c in cloud.json("credential", "list", env=carol)] == [made["id"]]

    new_blob = json.dumps({"access": "carol-access-2", "secret": "s2"})
    cloud.run(
        "credential",
        "set",
        "--user",
        user_id,
        "--type",
        "ec2",
        "--data",
        new_blob,
        made["id"],
        env=carol,
    )
    shown = cloud.json("credential", "show", made["id"], env=carol)
    assert (shown["id"], shown["blob"]) == (made["id"], new_blob)

    # The admin's own credentials stay out of carol's sight.
    theirs = cloud.json("credential", "create", "admin", "admin-secret")
    assert [c["ID"] for c in cloud.json("credential", "list", env=carol)] == [made["id"]]
    denied = cloud.run("credential", "show", theirs["id"], env=carol, check=False)
    assert denied.returncode != 0 and "identity:get_credential" in denied.stderr

    cloud.run("credential", "delete", made["id"], env=carol)
    cloud.run("credential", "delete", theirs["id"])
    assert cloud.json("credential", "list", "--user", "carol") == []
