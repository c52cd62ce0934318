"""The identity service's periodic tasks: revocation events are pruned while it runs."""

from __future__ import annotations

import datetime
from collections.abc import Iterator

import pytest
from oslo_config import cfg

from nimbus.db import Database, migration
from nimbus.identity import tasks
from nimbus.identity.service import IdentityService


@pytest.fixture
def identity(conf: cfg.ConfigOpts) -> Iterator[IdentityService]:
    database = Database(conf)
    migration.upgrade(database)
    yield IdentityService(conf, database)
    database.dispose()


def test_the_prune_task_runs_at_start_and_on_the_interval(
    conf: cfg.ConfigOpts, identity: IdentityService
) -> None:
    conf.set_override("revocation_prune_interval", 120.0, group="token")
    (task,) = tasks.periodic_tasks(conf, identity)
    assert (task.name, task.interval, task.at_start) == ("identity.prune_revocations", 120.0, True)


def test_the_prune_task_deletes_only_events_no_token_can_match(
    conf: cfg.ConfigOpts, identity: IdentityService
) -> None:
    revocations = identity.revocations
    now = datetime.datetime.now(datetime.UTC)
    old = now - revocations.retention - datetime.timedelta(minutes=5)
    revocations.revoke(user_id="gone", issued_before=old)
    revocations.revoke(user_id="recent", issued_before=now)
    (task,) = tasks.periodic_tasks(conf, identity)
    assert task.func() == 1
    assert [event.user_id for event in revocations.events()] == ["recent"]
    assert task.func() == 0


def test_the_default_interval_is_ten_minutes(
    conf: cfg.ConfigOpts, identity: IdentityService
) -> None:
    (task,) = tasks.periodic_tasks(conf, identity)
    assert task.interval == 600.0
