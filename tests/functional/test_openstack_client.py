"""The real ``openstack`` client against a real ``nimbus up`` (gunicorn, SQLite).

This is the issue's acceptance scenario, run as a new user would run it:
source the openrc that ``nimbus up`` wrote, then drive the cloud with
python-openstackclient.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from nimbus.testing.server import Server, nimbus_up

BIN = Path(sys.executable).parent


def _openstack() -> str:
    found = shutil.which("openstack", path=str(BIN)) or shutil.which("openstack")
    if found is None:
        pytest.fail("python-openstackclient is not installed (install the 'client' extra)")
    return found


class Cloud:
    """A running ``nimbus up`` and a way to call the client against it."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.port = server.port
        self.admin_env = server.openrc()

    def run(self, *args: str, env: dict[str, str] | None = None, check: bool = True):
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
        full_env.update(env or self.admin_env)
        result = subprocess.run(
            [_openstack(), *args],
            env=full_env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"openstack {' '.join(args)} failed ({result.returncode}):\n{result.stderr}"
            )
        return result

    def json(self, *args: str, env: dict[str, str] | None = None):
        return json.loads(self.run(*args, "-f", "json", env=env).stdout)

    def as_user(self, name: str, password: str, project: str) -> dict[str, str]:
        return {
            **self.admin_env,
            "OS_USERNAME": name,
            "OS_PASSWORD": password,
            "OS_PROJECT_NAME": project,
        }

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
