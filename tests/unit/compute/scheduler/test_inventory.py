"""HostInventory: services, heartbeats, compute nodes, statistics and aggregates in SQL."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from nimbus import exception
from nimbus.compute.scheduler import HostInventory, models
from nimbus.compute.scheduler import migrations as scheduler_migrations
from nimbus.db import Database


def test_the_migration_builds_the_models(database: Database) -> None:
    with database.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), models.Base.metadata)
    assert diff == []


def test_the_migration_goes_down_and_up_again(database: Database) -> None:
    import sqlalchemy as sa

    scheduler_migrations.downgrade(database)

    assert "compute_nodes" not in sa.inspect(database.engine).get_table_names()
    scheduler_migrations.upgrade(database)
    assert "compute_nodes" in sa.inspect(database.engine).get_table_names()


def test_heartbeat_creates_then_updates(inventory: HostInventory) -> None:
    first = inventory.service_heartbeat("h1", "nimbus-compute", "compute.h1")
    again = inventory.service_heartbeat("h1", "nimbus-compute", "compute.h1")
    assert first["id"] == again["id"] and again["up"] is True
    assert again["last_seen_up"] >= first["last_seen_up"]
    assert [s["host"] for s in inventory.list_services(binary="nimbus-compute")] == ["h1"]
    assert inventory.list_services(binary="nimbus-conductor") == []


def test_service_status_and_up(inventory: HostInventory, database: Database) -> None:
    service = inventory.service_heartbeat("h1", "nimbus-compute", "compute.h1")
    off = inventory.set_service_status(service["id"], disabled=True, reason="maintenance")
    assert (off["disabled"], off["disabled_reason"]) == (True, "maintenance")
    on = inventory.set_service_status(("h1", "nimbus-compute"), disabled=False)
    assert (on["disabled"], on["disabled_reason"]) == (False, None)
    down = inventory.set_service_status(service["id"], forced_down=True)
    assert down["up"] is False
    with pytest.raises(exception.NotFound):
        inventory.set_service_status(("h9", "nimbus-compute"), disabled=True)
    late = datetime.datetime(2030, 1, 1)
    stale = {"forced_down": False, "last_seen_up": late - datetime.timedelta(seconds=61)}
    fresh = {"forced_down": False, "last_seen_up": late - datetime.timedelta(seconds=60)}
    assert not inventory.service_is_up(stale, late)
    assert inventory.service_is_up(fresh, late)


def test_update_node_keeps_usage(
    inventory: HostInventory, add_host: Any, database: Database
) -> None:
    node = add_host("h1")
    import sqlalchemy as sa

    with database.engine.begin() as conn:
        conn.execute(sa.update(models.ComputeNode).values(vcpus_used=3, running_vms=1))
    again = add_host("h1", vcpus=16, disk_available_least=40)
    assert again["id"] == node["id"] and again["generation"] == node["generation"] + 1
    assert (again["vcpus"], again["vcpus_used"], again["running_vms"]) == (16, 3, 1)
    assert again["supported_instances"] == [("x86_64", "qemu", "hvm")]
    assert inventory.get_node(node["uuid"])["disk_available_least"] == 40
    stats = inventory.statistics()
    assert (stats["count"], stats["vcpus"], stats["vcpus_used"]) == (1, 16, 3)
    assert stats["free_ram_mb"] == 8192 + 512


def test_delete_service_takes_its_nodes(inventory: HostInventory, add_host: Any) -> None:
    add_host("h1")
    (service,) = inventory.list_services()
    inventory.delete_service(service["id"])
    assert inventory.list_nodes() == [] and inventory.list_services() == []
    with pytest.raises(exception.NotFound):
        inventory.delete_service(service["id"])


def test_aggregates(inventory: HostInventory, add_host: Any) -> None:
    add_host("h1")
    agg = inventory.create_aggregate("rack1", "az1")
    assert agg["availability_zone"] == "az1" and agg["hosts"] == []
    with pytest.raises(exception.Conflict):
        inventory.create_aggregate("rack1")
    agg = inventory.add_host(agg["id"], "h1")
    assert agg["hosts"] == ["h1"]
    with pytest.raises(exception.NotFound):
        inventory.add_host(agg["id"], "nowhere")
    other = inventory.create_aggregate("rack2", "az2")
    with pytest.raises(exception.Conflict, match="zone az1"):
        inventory.add_host(other["id"], "h1")
    agg = inventory.set_metadata(agg["id"], {"ssd": "true", "cpu_allocation_ratio": "8"})
    agg = inventory.set_metadata(agg["id"], {"ssd": None})
    assert agg["metadata"] == {"availability_zone": "az1", "cpu_allocation_ratio": "8"}
    agg = inventory.update_aggregate(agg["id"], name="rack-one", availability_zone="az3")
    assert (agg["name"], agg["availability_zone"]) == ("rack-one", "az3")
    with pytest.raises(exception.InvalidState):
        inventory.delete_aggregate(agg["id"])
    inventory.remove_host(agg["id"], "h1")
    inventory.delete_aggregate(agg["id"])
    assert [a["name"] for a in inventory.list_aggregates()] == ["rack2"]
    with pytest.raises(exception.NotFound):
        inventory.get_aggregate(agg["id"])
