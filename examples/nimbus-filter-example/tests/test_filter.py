"""The example filter on its own, and inside nimbus's scheduler (found by its entry point)."""

from __future__ import annotations

import pathlib

import pytest
from nimbus import exception
from nimbus.compute.scheduler import HostInventory, RequestSpec, Scheduler
from nimbus.compute.scheduler import migrations as scheduler_migrations
from nimbus.conf import new_config
from nimbus.db import Database
from oslo_config import cfg

from nimbus_filter_example import MaxInstancesFilter


@pytest.fixture
def conf(tmp_path: pathlib.Path) -> cfg.ConfigOpts:
    config = new_config()
    config([], default_config_files=[])
    config.set_override("state_path", str(tmp_path))
    return config


def test_it_caps_instances_per_host(conf: cfg.ConfigOpts, tmp_path: pathlib.Path) -> None:
    database = Database(conf, url=f"sqlite:///{tmp_path}/s.sqlite")
    scheduler_migrations.upgrade(database)
    inventory = HostInventory(conf, database)
    for host in ("h1", "h2"):
        inventory.service_heartbeat(host, "nimbus-compute", f"compute.{host}")
        inventory.update_node(
            host, host, vcpus=64, memory_mb=65536, local_gb=1000, hypervisor_type="qemu",
            hypervisor_version=1, cpu_info={}, supported_instances=[["x86_64", "qemu", "hvm"]],
        )  # fmt: skip
    conf.set_override("enabled_filters", ["compute", "ram", "max_instances"], group="scheduler")
    MaxInstancesFilter(conf)  # registers [filter_example]
    conf.set_override("max_instances_per_host", 2, group="filter_example")
    scheduler = Scheduler(conf, database)
    assert any(isinstance(f, MaxInstancesFilter) for _name, f in scheduler.filters)
    spec = RequestSpec(vcpus=1, memory_mb=256)
    placed = scheduler.select_destinations(spec, ["a", "b", "c", "d"])
    assert sorted(s.host for s in placed) == ["h1", "h1", "h2", "h2"]
    with pytest.raises(
        exception.NoValidHost, match=r"max_instances: 2 -> 0 hosts \(h1: runs 2 of 2"
    ):
        scheduler.select_destinations(spec, ["e"])
