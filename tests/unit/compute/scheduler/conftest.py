"""Fixtures of the scheduler tests: the scheduler's tables in SQLite, hosts to order."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from oslo_config import cfg

from nimbus.compute.scheduler import HostInventory, Scheduler
from nimbus.compute.scheduler import migrations as scheduler_migrations
from nimbus.db import Database


@pytest.fixture
def database(conf: cfg.ConfigOpts, tmp_path: Any) -> Iterator[Database]:
    """The scheduler's branch migrated into a SQLite file."""
    db = Database(conf, url=f"sqlite:///{tmp_path}/scheduler.sqlite")
    scheduler_migrations.upgrade(db)
    yield db
    db.dispose()


@pytest.fixture
def inventory(conf: cfg.ConfigOpts, database: Database) -> HostInventory:
    return HostInventory(conf, database)


AddHost = Callable[..., dict[str, Any]]


@pytest.fixture
def add_host(inventory: HostInventory) -> AddHost:
    """Register a compute service and its node: 8 vCPUs, 8 GiB + 512 MB reserved, 100 GB."""

    def _add(name: str, **values: Any) -> dict[str, Any]:
        inventory.service_heartbeat(name, "nimbus-compute", f"compute.{name}")
        report: dict[str, Any] = {
            "vcpus": 8,
            "memory_mb": 8192 + 512,
            "local_gb": 100,
            "hypervisor_type": "qemu",
            "hypervisor_version": 8002000,
            "cpu_info": {"arch": "x86_64"},
            "supported_instances": [["x86_64", "qemu", "hvm"]],
        }
        report.update(values)
        return inventory.update_node(name, name, **report)

    return _add


@pytest.fixture
def make_scheduler(conf: cfg.ConfigOpts, database: Database) -> Callable[..., Scheduler]:
    """Make a scheduler that re-reads the database before every decision."""
    conf.set_override("refresh_interval", 0.0, group="scheduler")
    conf.set_override("heartbeat_refresh_interval", 0.0, group="scheduler")

    def _make(**kwargs: Any) -> Scheduler:
        return Scheduler(conf, database, **kwargs)

    return _make
