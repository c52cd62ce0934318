"""The Scheduler: decisions, claims, releases, reschedules and NoValidHost's message."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

from nimbus import exception
from nimbus.compute.scheduler import (
    HostInventory,
    RequestSpec,
    Scheduler,
    ServerGroupSpec,
    models,
)
from nimbus.db import Database
from nimbus.filters import BaseHostFilter, HostState

Make = Callable[..., Scheduler]
FLAVOR = {"vcpus": 2, "memory_mb": 2048, "root_gb": 20}


def usage(database: Database) -> dict[str, tuple[int, int, int, int]]:
    with database.engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                models.ComputeNode.host,
                models.ComputeNode.vcpus_used,
                models.ComputeNode.memory_mb_used,
                models.ComputeNode.local_gb_used,
                models.ComputeNode.running_vms,
            )
        ).all()
    return {host: (v, m, d, n) for host, v, m, d, n in rows}


def allocations(database: Database) -> dict[str, str]:
    with database.engine.connect() as conn:
        rows = conn.execute(sa.select(models.Allocation.instance_uuid, models.Allocation.host))
        return dict(rows.all())


def test_a_claim_is_recorded_with_the_decision(
    add_host: Any, make_scheduler: Make, database: Database
) -> None:
    add_host("h1")
    (selection,) = make_scheduler().select_destinations(RequestSpec(**FLAVOR), ["vm-1"])
    assert (selection.host, selection.nodename) == ("h1", "h1")
    assert usage(database)["h1"] == (2, 2048, 20, 1)
    assert allocations(database) == {"vm-1": "h1"}


def test_later_instances_see_the_earlier_ones(
    add_host: Any, make_scheduler: Make, database: Database
) -> None:
    add_host("h1")
    add_host("h2", memory_mb=4096 + 512)
    # 8 GiB and 4 GiB free: room for six 2 GiB instances, no more.
    picks = [
        s.host for s in make_scheduler().select_destinations(RequestSpec(**FLAVOR), list("abcdef"))
    ]
    assert sorted(picks) == ["h1"] * 4 + ["h2"] * 2
    assert usage(database) == {"h1": (8, 8192, 80, 4), "h2": (4, 4096, 40, 2)}
    with pytest.raises(exception.NoValidHost, match=r"ram: 2 -> 0 hosts"):
        make_scheduler().select_destinations(RequestSpec(**FLAVOR), ["g"])


def test_anti_affinity_spreads_a_request(add_host: Any, make_scheduler: Make) -> None:
    for name in ("h1", "h2", "h3"):
        add_host(name)
    group = ServerGroupSpec(uuid="g", policy="anti-affinity")
    spec = RequestSpec(**FLAVOR, group=group)
    assert sorted(s.host for s in make_scheduler().select_destinations(spec, ["a", "b", "c"])) == [
        "h1",
        "h2",
        "h3",
    ]
    member_spec = RequestSpec(
        **FLAVOR, group=ServerGroupSpec(uuid="g", policy="anti-affinity", members=("a", "b", "c"))
    )
    with pytest.raises(exception.NoValidHost, match="server_group_anti_affinity: 3 -> 0"):
        make_scheduler().select_destinations(member_spec, ["d"])


def test_affinity_follows_the_first_member(add_host: Any, make_scheduler: Make) -> None:
    for name in ("h1", "h2", "h3"):
        add_host(name)
    spec = RequestSpec(**FLAVOR, group=ServerGroupSpec(uuid="g", policy="affinity"))
    hosts = {s.host for s in make_scheduler().select_destinations(spec, ["a", "b", "c"])}
    assert len(hosts) == 1


def test_hints_use_the_allocations(add_host: Any, make_scheduler: Make) -> None:
    add_host("h1")
    add_host("h2")
    scheduler = make_scheduler()
    (first,) = scheduler.select_destinations(RequestSpec(**FLAVOR), ["vm-1"])
    spec = RequestSpec(**FLAVOR, scheduler_hints={"different_host": ["vm-1"]})
    (apart,) = scheduler.select_destinations(spec, ["vm-2"])
    assert apart.host != first.host
    spec = RequestSpec(**FLAVOR, scheduler_hints={"same_host": ["vm-1"]})
    (near,) = scheduler.select_destinations(spec, ["vm-3"])
    assert near.host == first.host


def test_the_same_instance_keeps_its_claim(
    add_host: Any, make_scheduler: Make, database: Database
) -> None:
    add_host("h1")
    add_host("h2")
    scheduler = make_scheduler()
    (first,) = scheduler.select_destinations(RequestSpec(**FLAVOR), ["vm-1"])
    (again,) = make_scheduler().select_destinations(RequestSpec(**FLAVOR), ["vm-1"])
    assert again.host == first.host
    assert sum(n for *_, n in usage(database).values()) == 1


def test_release_gives_the_room_back(
    add_host: Any, make_scheduler: Make, database: Database
) -> None:
    add_host("h1")
    scheduler = make_scheduler()
    scheduler.select_destinations(RequestSpec(**FLAVOR), ["vm-1"])
    assert scheduler.release("vm-1") is True
    assert scheduler.release("vm-1") is False
    assert usage(database)["h1"] == (0, 0, 0, 0) and allocations(database) == {}


def test_alternates_and_reschedule(
    add_host: Any, make_scheduler: Make, database: Database, conf: Any
) -> None:
    for name in ("h1", "h2", "h3", "h4"):
        add_host(name)
    scheduler = make_scheduler()
    (selection,) = scheduler.select_destinations(RequestSpec(**FLAVOR), ["vm-1"])
    assert len(selection.alternates) == conf.scheduler.max_attempts - 1 == 2
    assert selection.host not in {a.host for a in selection.alternates}
    moved = scheduler.reschedule(RequestSpec(**FLAVOR), "vm-1", selection.alternates)
    assert moved.host == selection.alternates[0].host
    assert moved.alternates == selection.alternates[1:]
    assert allocations(database) == {"vm-1": moved.host}
    assert usage(database)[selection.host] == (0, 0, 0, 0)


def test_a_full_alternate_is_skipped(
    add_host: Any, make_scheduler: Make, database: Database
) -> None:
    for name in ("h1", "h2", "h3"):
        add_host(name)
    scheduler = make_scheduler()
    (selection,) = scheduler.select_destinations(RequestSpec(**FLAVOR), ["vm-1"])
    full = selection.alternates[0].host
    big = RequestSpec(vcpus=1, memory_mb=8192)
    scheduler.select_destinations(dataclasses.replace(big, force_hosts=(full,)), ["hog"])
    moved = scheduler.reschedule(RequestSpec(**FLAVOR), "vm-1", selection.alternates)
    assert moved.host == selection.alternates[1].host


def test_another_schedulers_claim_is_respected(
    add_host: Any, make_scheduler: Make, database: Database, conf: Any
) -> None:
    add_host("h1")
    add_host("h2")
    one, two = make_scheduler(), make_scheduler()
    conf.set_override("refresh_interval", 3600.0, group="scheduler")
    one.select_destinations(RequestSpec(**FLAVOR), ["warm-1"])
    two.select_destinations(RequestSpec(**FLAVOR), ["warm-2"])
    whole = RequestSpec(vcpus=1, memory_mb=6144)
    # Both caches think both hosts have 6 GiB free; the second claim on the
    # same host fails in the database and moves on.
    picks = [s.host for s in one.select_destinations(whole, ["x1"])]
    picks += [s.host for s in two.select_destinations(whole, ["x2"])]
    assert sorted(picks) == ["h1", "h2"]
    with pytest.raises(exception.NoValidHost, match="claimed by other requests"):
        two.select_destinations(whole, ["x3"])
    for _vcpus, memory, _disk, _n in usage(database).values():
        assert memory <= 8192


def test_no_valid_host_explains_and_undoes(
    add_host: Any, make_scheduler: Make, database: Database
) -> None:
    add_host("h1")
    add_host("h2", vcpus=1)
    scheduler = make_scheduler()
    with pytest.raises(exception.NoValidHost) as info:
        scheduler.select_destinations(RequestSpec(vcpus=9, memory_mb=64), ["a"])
    assert str(info.value) == (
        "No valid host was found. compute: 2 -> 2 hosts; availability_zone: 2 -> 2 hosts; "
        "ram: 2 -> 2 hosts; disk: 2 -> 2 hosts; "
        "core: 2 -> 0 hosts (h1: asked 9 vCPUs, host has 8 in all; h2: asked 9 vCPUs, 4 free)"
    )
    # The third instance fits nowhere: the first two claims are undone.
    with pytest.raises(exception.NoValidHost) as info:
        scheduler.select_destinations(RequestSpec(vcpus=1, memory_mb=6000), ["a", "b", "c"])
    assert "ram: 2 -> 0 hosts (h1: asked 6000 MB of RAM, 2192 free; " in str(info.value)
    assert allocations(database) == {} and set(usage(database).values()) == {(0, 0, 0, 0)}


def test_no_hosts_at_all(make_scheduler: Make) -> None:
    with pytest.raises(exception.NoValidHost, match="There are no compute nodes"):
        make_scheduler().select_destinations(RequestSpec(**FLAVOR), ["a"])


def test_disabled_and_dead_services_are_filtered(
    add_host: Any, make_scheduler: Make, inventory: HostInventory, database: Database
) -> None:
    add_host("h1")
    add_host("h2")
    scheduler = make_scheduler()
    scheduler.select_destinations(RequestSpec(**FLAVOR), ["warm"])
    inventory.set_service_status(("h1", "nimbus-compute"), disabled=True)
    with database.engine.begin() as conn:
        conn.execute(
            sa.update(models.Service)
            .where(models.Service.host == "h2")
            .values(last_seen_up=sa.func.datetime("now", "-120 seconds"))
        )
    with pytest.raises(exception.NoValidHost) as info:
        scheduler.select_destinations(RequestSpec(**FLAVOR), ["vm"])
    assert "compute: 2 -> 0 hosts" in str(info.value)
    assert "disabled" in str(info.value) and "heartbeat" in str(info.value)


def test_ratios_per_aggregate_and_node(
    add_host: Any, make_scheduler: Make, inventory: HostInventory, database: Database
) -> None:
    node = add_host("h1", vcpus=2)
    agg = inventory.create_aggregate("dense")
    inventory.add_host(agg["id"], "h1")
    inventory.set_metadata(agg["id"], {"cpu_allocation_ratio": "1.0"})
    small = RequestSpec(vcpus=2, memory_mb=64)
    scheduler = make_scheduler()
    scheduler.select_destinations(small, ["a"])
    with pytest.raises(exception.NoValidHost, match="core: 1 -> 0"):
        scheduler.select_destinations(small, ["b"])
    inventory.set_node_overrides(node["id"], cpu_allocation_ratio=2.0)
    scheduler.select_destinations(small, ["b"])
    assert usage(database)["h1"][0] == 4


def test_availability_zone_and_forced_hosts(
    add_host: Any, make_scheduler: Make, inventory: HostInventory
) -> None:
    add_host("h1")
    add_host("h2")
    agg = inventory.create_aggregate("zone", "az1")
    inventory.add_host(agg["id"], "h2")
    scheduler = make_scheduler()
    (s,) = scheduler.select_destinations(RequestSpec(**FLAVOR, availability_zone="az1"), ["a"])
    assert s.host == "h2"
    (s,) = scheduler.select_destinations(RequestSpec(**FLAVOR, availability_zone="nova"), ["b"])
    assert s.host == "h1"
    (s,) = scheduler.select_destinations(RequestSpec(**FLAVOR, ignore_hosts=("h2",)), ["c"])
    assert s.host == "h1"
    (s,) = scheduler.select_destinations(
        RequestSpec(**FLAVOR, force_hosts=("h2",), availability_zone="elsewhere"), ["d"]
    )
    assert s.host == "h2"


class OddHostsOnly(BaseHostFilter):
    """Pass hosts whose name ends in an odd digit (a filter with only host_passes)."""

    seen: list[str]

    def host_passes(self, host_state: HostState, spec: RequestSpec) -> bool:
        self.seen.append(host_state.host)
        if int(host_state.host[-1]) % 2 == 0:
            return self.reject(host_state, "even")
        return True


def test_a_filter_without_columnar_form_sees_the_survivors(
    add_host: Any, make_scheduler: Make, conf: Any
) -> None:
    from nimbus.filters.compute.resources import RamFilter

    for i in range(1, 6):
        add_host(f"h{i}", memory_mb=512 + (4096 if i < 4 else 1024))
    flt = OddHostsOnly(conf)
    flt.seen = []
    scheduler = make_scheduler(filters=[RamFilter(conf), flt])
    # h1 and h3 take two each; the fifth instance finds only h2 with room.
    with pytest.raises(exception.NoValidHost) as info:
        scheduler.select_destinations(RequestSpec(memory_mb=2048, vcpus=1), list("abcde"))
    assert "h4" not in flt.seen and "h5" not in flt.seen
    assert set(flt.seen) == {"h1", "h2", "h3"}
    assert str(info.value).endswith("ram: 5 -> 1 hosts; OddHostsOnly: 1 -> 0 hosts (h2: even)")


def test_weight_multipliers_stack_or_spread(add_host: Any, make_scheduler: Make, conf: Any) -> None:
    add_host("h1")
    add_host("h2", memory_mb=4096 + 512)
    conf.set_override("ram_weight_multiplier", -1.0, group="scheduler")
    (s,) = make_scheduler().select_destinations(RequestSpec(**FLAVOR), ["a"])
    assert s.host == "h2"


def test_the_cache_sees_new_hosts_and_deleted_ones(
    add_host: Any, make_scheduler: Make, inventory: HostInventory
) -> None:
    add_host("h1")
    scheduler = make_scheduler()
    scheduler.select_destinations(RequestSpec(**FLAVOR), ["a"])
    add_host("h2", memory_mb=65536)
    (s,) = scheduler.select_destinations(RequestSpec(**FLAVOR), ["b"])
    assert s.host == "h2"
    service = inventory.list_services(host="h2")[0]
    scheduler.release("b")
    inventory.delete_service(service["id"])
    (s,) = scheduler.select_destinations(RequestSpec(**FLAVOR), ["c"])
    assert s.host == "h1" and scheduler.hosts.size == 1
