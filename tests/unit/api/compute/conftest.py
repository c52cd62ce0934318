"""Fixtures of the compute API's unit tests: the real services and policy in Falcon's simulator.

The flavor, key pair and quota services are real, on SQLite under the
test's state directory, with nimbus's default policy; tokens are checked
by a stand-in validator that knows ``admin`` (a cloud admin of project
``p1``), ``member`` (user ``u2``, member of ``p1``) and ``other`` (user
``u3``, member of ``p2``).
"""

from __future__ import annotations

from collections.abc import Iterator

import falcon.testing
import pytest
from oslo_config import cfg

from nimbus import exception
from nimbus.api.app import create_app
from nimbus.api.compute import compute_api
from nimbus.compute import FlavorService, KeypairService, QuotaService
from nimbus.context import RequestContext
from nimbus.db import Database, migration
from nimbus.policy import Enforcer

CONTEXTS = {
    "admin": RequestContext(
        user_id="u1",
        project_id="p1",
        roles=["admin", "member", "reader"],
        is_admin_project=True,
    ),
    "member": RequestContext(user_id="u2", project_id="p1", roles=["member", "reader"]),
    "other": RequestContext(user_id="u3", project_id="p2", roles=["member", "reader"]),
}


class Tokens:
    """A token validator knowing the tokens of :data:`CONTEXTS`."""

    def context_for_token(self, token: str) -> RequestContext:
        if token not in CONTEXTS:
            raise exception.Unauthorized()
        return CONTEXTS[token]


@pytest.fixture
def database(conf: cfg.ConfigOpts) -> Iterator[Database]:
    """nimbus's schema in a SQLite file under the test's state directory."""
    database = Database(conf)
    migration.upgrade(database)
    yield database
    database.dispose()


@pytest.fixture
def quotas(conf: cfg.ConfigOpts, database: Database) -> QuotaService:
    """The quota service, with nimbus's default policy."""
    return QuotaService(conf, database, Enforcer(conf))


@pytest.fixture
def keypairs(conf: cfg.ConfigOpts, database: Database, quotas: QuotaService) -> KeypairService:
    """The key pair service, its limit from *quotas*, counted there."""
    service = KeypairService(
        conf,
        database,
        Enforcer(conf),
        limit=lambda project_id: quotas.limit_of(project_id, "key_pairs"),
    )
    quotas.register_counter("key_pairs", lambda ctx, project: service.count(ctx.user_id or ""))
    return service


@pytest.fixture
def flavors(conf: cfg.ConfigOpts, database: Database) -> FlavorService:
    """The flavor service, with nimbus's default policy."""
    return FlavorService(conf, database, Enforcer(conf))


@pytest.fixture
def client(
    flavors: FlavorService, keypairs: KeypairService, quotas: QuotaService
) -> falcon.testing.TestClient:
    """A simulator client of the compute API at ``/``, sending the admin's token."""
    app = create_app(
        [compute_api(flavors, keypairs, quotas)],
        validator=Tokens(),
        auth_uri="http://identity.test/v3",
        max_body_size=65536,
        mounted=False,
    )
    return falcon.testing.TestClient(app, headers={"X-Auth-Token": "admin"})
