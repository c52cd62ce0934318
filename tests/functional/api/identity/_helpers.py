"""An in-process identity API for functional tests, driven through Falcon's simulator."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlsplit

import falcon.testing
from oslo_config import cfg

import nimbus.api.app
import nimbus.api.identity
import nimbus.api.policy
import nimbus.db
import nimbus.db.migration
import nimbus.identity.bootstrap
import nimbus.identity.service
from nimbus.identity.token.keys import KeyRepository
from tests.functional.api.conftest import assert_error

__all__ = ["ADMIN_PASSWORD", "ROOT", "IdentityAPI", "assert_error"]

ROOT = "/identity/v3"
ADMIN_PASSWORD = "secret"


class IdentityAPI:
    """A bootstrapped identity service behind the real app, and an admin token.

    :param conf: a test config whose state lives in a temporary directory.
    """

    def __init__(self, conf: cfg.ConfigOpts) -> None:
        self.conf = conf
        self.db = nimbus.db.Database(conf)
        nimbus.db.migration.upgrade(self.db)
        KeyRepository.from_conf(conf).initialize()
        self.service = nimbus.identity.service.IdentityService(conf, self.db)
        nimbus.identity.bootstrap.bootstrap(self.service, admin_password=ADMIN_PASSWORD, catalog=[])
        enforcer = nimbus.api.policy.Enforcer(conf)
        app = nimbus.api.app.create_app(
            [nimbus.api.identity.identity_api(self.service, enforcer)],
            validator=self.service,
            auth_uri="http://localhost/identity/v3",
            max_body_size=conf.api.max_request_body_size,
        )
        self.client = falcon.testing.TestClient(app)
        self.domain_id = conf.identity.default_domain_id
        self.admin_token = self.issue_token("admin", ADMIN_PASSWORD, "admin")

    def close(self) -> None:
        """Release the database's connections."""
        self.db.dispose()

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        token: str | None = None,
        params: dict[str, str] | None = None,
    ) -> falcon.testing.Result:
        """Send one request to ``/identity/v3<path>``, as admin unless *token* is given."""
        headers = {"X-Auth-Token": token or self.admin_token}
        return self.client.simulate_request(
            method, ROOT + path, json=body, params=params, headers=headers
        )

    def follow(self, url: str) -> falcon.testing.Result:
        """GET an absolute URL the API returned (a ``links.next``), as admin."""
        parts = urlsplit(url)
        return self.client.simulate_get(
            parts.path, query_string=parts.query, headers={"X-Auth-Token": self.admin_token}
        )

    def issue_token(self, user: str, password: str, project: str) -> str:
        """Return a project-scoped token for a user of the default domain."""
        domain = {"id": self.domain_id}
        auth = {
            "identity": {
                "methods": ["password"],
                "password": {"user": {"name": user, "domain": domain, "password": password}},
            },
            "scope": {"project": {"name": project, "domain": domain}},
        }
        result = self.client.simulate_post(f"{ROOT}/auth/tokens", json={"auth": auth})
        assert result.status_code == 201, result.text
        return result.headers["X-Subject-Token"]

    def member_token(self) -> str:
        """Return the token of a new user who is only ``member`` of a new project."""
        suffix = uuid.uuid4().hex[:8]
        project = self.created("/projects", "project", {"name": f"p-{suffix}"})
        user = self.created("/users", "user", {"name": f"u-{suffix}", "password": "pw"})
        roles = self.call("GET", "/roles", params={"name": "member"}).json["roles"]
        result = self.call(
            "PUT", f"/projects/{project['id']}/users/{user['id']}/roles/{roles[0]['id']}"
        )
        assert result.status_code == 204, result.text
        return self.issue_token(user["name"], "pw", project["name"])

    def created(self, path: str, key: str, attrs: dict[str, Any]) -> dict[str, Any]:
        """POST ``{key: attrs}`` to *path* as admin and return the new resource."""
        result = self.call("POST", path, {key: attrs})
        assert result.status_code == 201, result.text
        return result.json[key]
