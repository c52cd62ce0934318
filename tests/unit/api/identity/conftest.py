"""Fixtures of the identity API's unit tests: the route table over a real service on SQLite."""

# ``service`` is the identity managers' fixture: a bootstrapped service on SQLite.

from __future__ import annotations

from typing import Any

import falcon
import falcon.testing
import pytest

from nimbus.api import errors
from nimbus.api.app import Links
from nimbus.api.identity.routes import routes
from nimbus.context import RequestContext
from nimbus.identity.service import IdentityService
from tests.unit.identity.conftest import service


class _AsAdmin:
    """Stands in for the token middleware: every request is the cloud admin's."""

    def __init__(self, service: IdentityService) -> None:
        project = service.resources.projects.get_by(
            name=service.conf.identity.admin_project_name, domain_id="default"
        )
        self.ctx = RequestContext(
            user_id=service.users.get_user_by_name("admin", "default").id,
            project_id=project["id"],
            project_domain_id=project["domain_id"],
            roles=["admin", "member", "reader"],
            is_admin_project=True,
            authenticated=True,
        )

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.nimbus = self.ctx
        if req.content_length:
            req.context.json = req.get_media()


@pytest.fixture
def client(service: IdentityService) -> Any:
    """A test client of the identity routes, mounted at ``/``, as the cloud admin."""
    app = falcon.App(middleware=[_AsAdmin(service)])
    app.req_options.auto_parse_qs_csv = False
    errors.install(app, lambda path: errors.FORMATS["keystone"])
    links = Links(public_endpoint="http://keystone.test", mount="")
    for template, resource in routes(service, service.enforcer, links):
        app.add_route(template, resource)
    return falcon.testing.TestClient(app)


__all__ = ["client", "service"]
