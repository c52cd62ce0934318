"""Two identity services on one database: the workers of one ``nimbus up``.

Each has its own engine and caches, as a gunicorn worker has; the ones
given the same :class:`~nimbus.common.changes.Changes` (made by the master
before it forks) see what the other revokes, disables, grants or adds to
the catalog at their next call, however long the re-read intervals are.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from oslo_config import cfg

from nimbus import exception
from nimbus.common.changes import Changes
from nimbus.db import Database
from nimbus.identity.assignment import Grant
from nimbus.identity.service import IdentityService
from nimbus.policy import INTERNAL

#: Longer than any test: only a stamp can make a worker re-read before it.
LONG = 3600


@pytest.fixture
def workers(
    conf: cfg.ConfigOpts, service: IdentityService
) -> Iterator[tuple[IdentityService, IdentityService]]:
    """Two services on the bootstrapped database, sharing change stamps."""
    conf.set_override("revocation_refresh_interval", LONG, group="token")
    changes = Changes()
    databases = [Database(conf), Database(conf)]
    first, second = (IdentityService(conf, db, changes=changes) for db in databases)
    try:
        yield first, second
    finally:
        for db in databases:
            db.dispose()


def _member_token(first: IdentityService) -> tuple[str, str, str]:
    """Return (user id, project id, token id) of a new member of a new project."""
    project = first.resources.create_project(INTERNAL, name="team", domain_id="default")
    user = first.users.create_user(INTERNAL, name="ada", domain_id="default", password="pw")
    member = first.assignments.roles.get_by(name="member")["id"]
    first.assignments.create_grant(
        INTERNAL, Grant(role_id=member, user_id=user.id, project_id=project["id"])
    )
    auth = {
        "identity": {
            "methods": ["password"],
            "password": {"user": {"id": user.id, "password": "pw"}},
        },
        "scope": {"project": {"id": project["id"]}},
    }
    return user.id, project["id"], first.auth.authenticate(auth).token_id


def _roles(service: IdentityService, token: str) -> set[str]:
    return {r["name"] for r in service.auth.validate(token).roles}


def test_a_token_revoked_through_one_worker_is_refused_by_the_other(workers) -> None:
    first, second = workers
    _, _, token = _member_token(first)
    assert _roles(second, token) == {"member", "reader"}

    first.auth.revoke_token(INTERNAL, token)

    with pytest.raises(exception.TokenNotFound, match="revoked"):
        second.auth.validate(token)


def test_a_user_disabled_through_one_worker_is_refused_by_the_other(workers) -> None:
    first, second = workers
    user_id, _, token = _member_token(first)
    assert _roles(second, token) == {"member", "reader"}

    first.users.update_user(INTERNAL, user_id, {"enabled": False})

    with pytest.raises(exception.TokenNotFound):
        second.auth.validate(token)


def test_a_role_granted_through_one_worker_is_in_the_others_cached_token(workers) -> None:
    first, second = workers
    user_id, project_id, token = _member_token(first)
    assert _roles(second, token) == {"member", "reader"}  # cached by the second now

    admin = first.assignments.roles.get_by(name="admin")["id"]
    first.assignments.create_grant(
        INTERNAL, Grant(role_id=admin, user_id=user_id, project_id=project_id)
    )

    assert _roles(second, token) == {"admin", "member", "reader"}


def test_a_catalog_change_through_one_worker_is_in_the_others_next_token(workers) -> None:
    first, second = workers
    assert second.catalog.catalog_for(user_id=None, project_id=None) == []  # rendered, cached

    created = first.catalog.create_service(INTERNAL, type="compute", name="nova")

    shown = second.catalog.catalog_for(user_id=None, project_id=None)
    assert [s["id"] for s in shown] == [created["id"]]


def test_workers_without_shared_stamps_keep_their_caches(
    conf: cfg.ConfigOpts, service: IdentityService
) -> None:
    # The split deployment's processes: the intervals decide, as before.
    conf.set_override("revocation_refresh_interval", LONG, group="token")
    databases = [Database(conf), Database(conf)]
    first, second = (IdentityService(conf, db) for db in databases)
    user_id, _, token = _member_token(first)
    assert _roles(second, token) == {"member", "reader"}

    first.users.update_user(INTERNAL, user_id, {"enabled": False})

    assert _roles(second, token) == {"member", "reader"}
    for db in databases:
        db.dispose()
