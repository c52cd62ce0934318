"""Fixtures of the identity API's unit tests: the route table over a real service on SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import falcon
import falcon.testing
import pytest
from oslo_config import cfg

from nimbus.api import errors
from nimbus.api.app import Links
from nimbus.api.identity.routes import routes
from nimbus.context import RequestContext
from nimbus.db import Database, migration
from nimbus.identity import bootstrap
from nimbus.identity.service import IdentityService
from nimbus.identity.token.keys import KeyRepository


@pytest.fixture
def service(conf: cfg.ConfigOpts) -> Iterator[IdentityService]:
    """An identity service on a fresh SQLite database, bootstrapped, with no catalog."""
    db = Database(conf)
    migration.upgrade(db)
    KeyRepository.from_conf(conf).initialize()
    svc = IdentityService(conf, db)
    bootstrap.bootstrap(svc, admin_password="secret", catalog=[])
    try:
        yield svc
    finally:
        db.dispose()


class _AsAdmin:
    """Stands in for the token middleware: every request is the cloud admin's."""

    def __init__(self, service: IdentityService) -> None:
        project = service.resources.get_project_by_name(
            service.conf.identity.admin_project_name, "default"
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
