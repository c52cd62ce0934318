"""Fixtures of the compute API's unit tests: the real services and policy in Falcon's simulator.

The flavor, key pair and quota services are real, on SQLite under the
test's state directory, with nimbus's default policy; tokens are checked
by a stand-in validator that knows ``admin`` (a cloud admin of project
``p1``), ``member`` (user ``u2``, member of ``p1``) and ``other`` (user
``u3``, member of ``p2``).
"""

from __future__ import annotations

import types
import uuid
from collections.abc import Iterator
from typing import Any

import falcon.testing
import pytest
from oslo_config import cfg

from nimbus import exception, messaging
from nimbus.api.app import create_app
from nimbus.api.compute import compute_api
from nimbus.compute import FlavorService, KeypairService, QuotaService, ServerService
from nimbus.compute.backend import Bus, ComputeBackend
from nimbus.compute.groups import ServerGroupService
from nimbus.compute.hosts import HostService
from nimbus.compute.scheduler import HostInventory
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


#: The images the stand-in image service knows: one active, one still queued.
IMAGES = {
    "11111111-1111-1111-1111-111111111111": {
        "id": "11111111-1111-1111-1111-111111111111",
        "status": "active",
        "size": 1024,
        "min_ram": 0,
        "min_disk": 0,
        "hw_architecture": "x86_64",
    },
    "22222222-2222-2222-2222-222222222222": {
        "id": "22222222-2222-2222-2222-222222222222",
        "status": "queued",
    },
}
IMAGE = "11111111-1111-1111-1111-111111111111"


def get_image(ctx: RequestContext, image_id: str) -> dict[str, Any]:
    if image_id not in IMAGES:
        raise exception.NotFound(kind="image", id=image_id)
    return IMAGES[image_id]


@pytest.fixture
def transport(conf: cfg.ConfigOpts) -> Iterator[messaging.Transport]:
    """A memory bus of the test's own (its own exchange)."""
    conf.set_override("exchange", f"test-{uuid.uuid4().hex}", group="messaging")
    conf.set_override("report_interval", 3600, group="compute")
    found = messaging.get_transport(conf)
    yield found
    found.close()


@pytest.fixture
def backend(
    conf: cfg.ConfigOpts, database: Database, transport: messaging.Transport
) -> Iterator[ComputeBackend]:
    """Scheduler, conductor and two fake compute hosts, ``h1`` and ``h2``, on *transport*."""
    cloud = types.SimpleNamespace(conf=conf, database=database, transport=transport)
    running = ComputeBackend(cloud, hosts=["h1", "h2"])  # type: ignore[arg-type]
    running.start()
    yield running
    running.stop()


@pytest.fixture
def servers(
    conf: cfg.ConfigOpts,
    database: Database,
    flavors: FlavorService,
    keypairs: KeypairService,
    quotas: QuotaService,
    transport: messaging.Transport,
    groups: ServerGroupService,
) -> ServerService:
    """The server service, its casts on *transport*."""
    bus = Bus(transport)
    return ServerService(
        conf,
        database,
        Enforcer(conf),
        flavors=flavors,
        keypairs=keypairs,
        quotas=quotas,
        get_image=get_image,
        conductor=bus.conductor,
        agent=bus.agent,
        groups=groups,
    )


@pytest.fixture
def groups(conf: cfg.ConfigOpts, database: Database, quotas: QuotaService) -> ServerGroupService:
    """Server groups, within *quotas*."""
    return ServerGroupService(conf, database, Enforcer(conf), quotas)


@pytest.fixture
def hosts(conf: cfg.ConfigOpts, database: Database) -> HostService:
    """Services, hypervisors and zones, from the scheduler's inventory."""
    return HostService(conf, HostInventory(conf, database), Enforcer(conf))


@pytest.fixture
def client(
    flavors: FlavorService,
    keypairs: KeypairService,
    quotas: QuotaService,
    servers: ServerService,
    hosts: HostService,
    groups: ServerGroupService,
) -> falcon.testing.TestClient:
    """A simulator client of the compute API at ``/``, sending the admin's token."""
    app = create_app(
        [compute_api(flavors, keypairs, quotas, servers, hosts, groups)],
        validator=Tokens(),
        auth_uri="http://identity.test/v3",
        max_body_size=65536,
        mounted=False,
    )
    return falcon.testing.TestClient(app, headers={"X-Auth-Token": "admin"})
