"""Fixtures of the identity managers' tests: a bootstrapped service on SQLite, callers."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
from oslo_config import cfg

from nimbus.context import RequestContext
from nimbus.db import Database, migration
from nimbus.identity import bootstrap, credentials
from nimbus.identity.service import IdentityService
from nimbus.identity.token.keys import KeyRepository
from nimbus.policy import INTERNAL


@pytest.fixture
def service(conf: cfg.ConfigOpts) -> Iterator[IdentityService]:
    """An identity service on a fresh SQLite database, bootstrapped, with no catalog."""
    db = Database(conf)
    migration.upgrade(db)
    KeyRepository.from_conf(conf).initialize()
    credentials.key_repository(conf).initialize()
    svc = IdentityService(conf, db)
    bootstrap.bootstrap(svc, admin_password="secret", catalog=[])
    try:
        yield svc
    finally:
        db.dispose()


@dataclasses.dataclass
class Callers:
    """Contexts of callers with different rights, and what they stand on."""

    admin: RequestContext
    reader: RequestContext
    member: RequestContext
    admin_project_id: str
    member_project_id: str
    other_domain_id: str


@pytest.fixture
def callers(service: IdentityService) -> Callers:
    """The cloud admin, a cloud reader, and a member of a project in another domain."""
    admin_project = service.resources.projects.get_by(
        name=service.conf.identity.admin_project_name, domain_id="default"
    )
    admin = service.users.get_user_by_name("admin", "default")
    other = service.resources.create_domain(INTERNAL, name="other")
    project = service.resources.create_project(INTERNAL, name="team", domain_id=other["id"])
    user = service.users.create_user(INTERNAL, name="mia", domain_id=other["id"], password="pw")

    def ctx(
        user_id: str, project: dict, roles: list[str], is_admin_project: bool
    ) -> RequestContext:
        return RequestContext(
            user_id=user_id,
            project_id=project["id"],
            project_domain_id=project["domain_id"],
            roles=roles,
            is_admin_project=is_admin_project,
            authenticated=True,
        )

    return Callers(
        admin=ctx(admin.id, admin_project, ["admin", "member", "reader"], True),
        # Reading the whole cloud takes the reader role on the system, as in Keystone.
        reader=RequestContext(
            user_id=admin.id, system_scope="all", roles=["reader"], authenticated=True
        ),
        member=ctx(user.id, project, ["member", "reader"], False),
        admin_project_id=admin_project["id"],
        member_project_id=project["id"],
        other_domain_id=other["id"],
    )
