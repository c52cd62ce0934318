"""Fixtures for the API tests: the whole app in-process, on SQLite in tmp.

The app is built exactly as ``nimbus up`` builds it (``prepare`` then
``nimbus.wsgi.build_services`` and ``build_app``), and driven through
Falcon's simulator.  :class:`Identity` wraps the simulator with the few
calls every test needs: a request as the admin (or as anyone), issuing
tokens, creating resources and checking Keystone-shaped errors.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import falcon
import falcon.testing
import pytest
from oslo_config import cfg

import nimbus.cmd.up
import nimbus.wsgi

ROOT = "/identity/v3"
ADMIN_PASSWORD = "secret"
MEMBER_PASSWORD = "member-secret"

#: Marks "send the admin's token" (the default of :meth:`Identity.request`).
ADMIN = object()
#: Marks "send no body" (``None`` is sent as the JSON document ``null``).
NO_BODY = object()


def error_body(result: falcon.testing.Result, code: int, *, has_body: bool = True) -> Any:
    """Check what every error answer has and return its parsed body (None without one).

    :param code: the status expected.
    :param has_body: false for HEAD, whose answer carries headers only.
    """
    assert result.status_code == code, f"{result.status}: {result.text[:500]}"
    assert result.headers.get("content-type", "").startswith("application/json"), result.headers
    assert result.headers.get("x-openstack-request-id", "").startswith("req-"), result.headers
    if not has_body:
        assert result.content == b""
        return None
    return json.loads(result.text)


def assert_error(result: falcon.testing.Result, code: int, *, has_body: bool = True) -> str:
    """Check a Keystone-shaped error response and return its message (see :func:`error_body`)."""
    body = error_body(result, code, has_body=has_body)
    if body is None:
        return ""
    assert set(body) == {"error"}, body
    error = body["error"]
    assert error["code"] == code
    assert isinstance(error["title"], str) and error["title"]
    assert isinstance(error["message"], str) and error["message"].strip()
    return error["message"]


@dataclasses.dataclass(frozen=True)
class Member:
    """A user who holds one role (``member`` unless told) on a project of its own."""

    user: dict[str, Any]
    project: dict[str, Any]
    password: str
    token: str


class Identity:
    """The identity API behind Falcon's simulator, called as the admin by default.

    :param client: the simulator client of the whole app.
    :param conf: the config the app was built from.
    """

    def __init__(self, client: falcon.testing.TestClient, conf: cfg.ConfigOpts) -> None:
        self.client = client
        self.conf = conf
        self.domain_id = conf.identity.default_domain_id
        self.admin_password = ADMIN_PASSWORD
        self.admin_token = self.issue("admin", ADMIN_PASSWORD, project="admin")
        self.admin_user = self.request("GET", "/users", params={"name": "admin"}).json["users"][0]
        self.admin_project = self.request("GET", "/projects", params={"name": "admin"}).json[
            "projects"
        ][0]

    assert_error = staticmethod(assert_error)

    def request(
        self,
        method: str,
        path: str,
        body: Any = NO_BODY,
        *,
        token: Any = ADMIN,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        raw: bytes | str | None = None,
    ) -> falcon.testing.Result:
        """Send one request to ``/identity/v3<path>``.

        :param body: a document sent as JSON.
        :param token: the ``X-Auth-Token`` (the admin's by default, none for ``None``).
        :param raw: a body sent as is, instead of *body*.
        """
        sent = dict(headers or {})
        if token is ADMIN:
            token = self.admin_token
        if token is not None:
            sent.setdefault("X-Auth-Token", token)
        kwargs: dict[str, Any] = {}
        if raw is not None:
            kwargs["body"] = raw
            sent.setdefault("Content-Type", "application/json")
        elif body is not NO_BODY:
            kwargs["json"] = body
        return self.client.simulate_request(
            method, ROOT + path, headers=sent, params=params, **kwargs
        )

    def follow(self, url: str, *, token: Any = ADMIN) -> falcon.testing.Result:
        """GET an absolute URL the API handed out (a ``links.next``)."""
        parts = urlsplit(url)
        return self.client.simulate_get(
            parts.path,
            query_string=parts.query,
            headers={"X-Auth-Token": self.admin_token if token is ADMIN else token},
        )

    # -- tokens --------------------------------------------------------------

    def authenticate(
        self, auth: dict[str, Any], *, params: Mapping[str, str] | None = None
    ) -> falcon.testing.Result:
        """POST ``{"auth": auth}`` to ``/v3/auth/tokens`` without a token."""
        return self.request("POST", "/auth/tokens", {"auth": auth}, token=None, params=params)

    def password_auth(
        self,
        user: str,
        password: str,
        *,
        project: str | None = None,
        domain: str | None = None,
        by_id: bool = False,
    ) -> dict[str, Any]:
        """Return a password ``auth`` object for a user (by name in the default domain).

        :param project: scope to this project name (in the default domain),
            or project id when *by_id*.
        :param domain: scope to this domain id.
        :param by_id: *user* and *project* are ids.
        """
        if by_id:
            user_ref: dict[str, Any] = {"id": user, "password": password}
        else:
            user_ref = {"name": user, "domain": {"id": self.domain_id}, "password": password}
        auth: dict[str, Any] = {
            "identity": {"methods": ["password"], "password": {"user": user_ref}}
        }
        if project is not None:
            ref = {"id": project} if by_id else {"name": project, "domain": {"id": self.domain_id}}
            auth["scope"] = {"project": ref}
        elif domain is not None:
            auth["scope"] = {"domain": {"id": domain}}
        return auth

    def issue(self, user: str, password: str, **scope: Any) -> str:
        """Return a new token (see :meth:`password_auth` for the arguments)."""
        result = self.authenticate(self.password_auth(user, password, **scope))
        assert result.status_code == 201, result.text
        return result.headers["X-Subject-Token"]

    def works(self, token: str) -> bool:
        """Tell whether *token* is accepted as the caller's token."""
        result = self.request("GET", "/auth/projects", token=token)
        if result.status_code == 401:
            return False
        assert result.status_code == 200, result.text
        return True

    # -- resources -----------------------------------------------------------

    def created(self, path: str, key: str, attrs: dict[str, Any]) -> dict[str, Any]:
        """POST ``{key: attrs}`` to *path* as the admin and return the new resource."""
        result = self.request("POST", path, {key: attrs})
        assert result.status_code == 201, result.text
        return result.json[key]

    def role(self, name: str) -> dict[str, Any]:
        """Return the role called *name*."""
        roles = self.request("GET", "/roles", params={"name": name}).json["roles"]
        assert len(roles) == 1, roles
        return roles[0]

    def put(self, path: str) -> None:
        """PUT *path* as the admin (a grant or a membership) and expect 204."""
        result = self.request("PUT", path)
        assert result.status_code == 204, result.text


@pytest.fixture
def services(conf: cfg.ConfigOpts) -> Iterator[nimbus.wsgi.Services]:
    """Every service, on a SQLite database prepared as ``nimbus up`` does."""
    nimbus.cmd.up.prepare(conf, ADMIN_PASSWORD)
    built = nimbus.wsgi.build_services(conf)
    yield built
    built.database.dispose()


@pytest.fixture
def app(services: nimbus.wsgi.Services) -> falcon.App:
    """The all-in-one WSGI app (identity under ``/identity``)."""
    return nimbus.wsgi.build_app(services)


@pytest.fixture
def client(app: falcon.App) -> falcon.testing.TestClient:
    """Falcon's simulator client for :func:`app`."""
    return falcon.testing.TestClient(app)


@pytest.fixture
def identity(client: falcon.testing.TestClient, conf: cfg.ConfigOpts) -> Identity:
    """Helpers around :func:`client`, holding a token of the cloud admin."""
    return Identity(client, conf)


@pytest.fixture
def admin_token(identity: Identity) -> str:
    """A token of the admin, scoped to the admin project."""
    return identity.admin_token


@pytest.fixture
def make_member(identity: Identity) -> Callable[..., Member]:
    """Return a factory of users who hold a role on a new project of their own.

    The factory takes an optional ``role`` name (``member`` by default).
    """

    def make(role: str = "member") -> Member:
        suffix = uuid.uuid4().hex[:10]
        project = identity.created("/projects", "project", {"name": f"proj-{suffix}"})
        user = identity.created(
            "/users", "user", {"name": f"user-{suffix}", "password": MEMBER_PASSWORD}
        )
        role_id = identity.role(role)["id"]
        identity.put(f"/projects/{project['id']}/users/{user['id']}/roles/{role_id}")
        token = identity.issue(user["name"], MEMBER_PASSWORD, project=project["name"])
        return Member(user=user, project=project, password=MEMBER_PASSWORD, token=token)

    return make
