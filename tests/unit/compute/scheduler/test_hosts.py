"""The cached host table: what a refresh picks up from others, and what it skips."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nimbus.compute.scheduler import HostInventory, RequestSpec, Scheduler

Make = Callable[..., Scheduler]


def test_refresh_sees_others_changes(
    add_host: Any, make_scheduler: Make, inventory: HostInventory
) -> None:
    add_host("h1")
    add_host("h2")
    one, two = make_scheduler(), make_scheduler()
    one.cache.refresh()
    two.cache.refresh()
    (selection,) = one.select_destinations(RequestSpec(vcpus=2, memory_mb=2048), ["vm"])
    i = two.cache.arrays.host_code_of[selection.host]
    two.cache.refresh(force=True)
    assert two.hosts.memory_mb_used[i] == 2048 and two.hosts.running_vms[i] == 1
    add_host("h1", vcpus=32)
    agg = inventory.create_aggregate("dense")
    inventory.add_host(agg["id"], "h2")
    inventory.set_metadata(agg["id"], {"ram_allocation_ratio": "2.0"})
    inventory.set_service_status(("h2", "nimbus-compute"), disabled=True)
    two.cache.refresh(force=True)
    h1, h2 = two.cache.arrays.host_code_of["h1"], two.cache.arrays.host_code_of["h2"]
    assert two.hosts.vcpus[h1] == 32
    assert two.hosts.ram_ratio[h2] == 2.0 and two.hosts.ram_ratio[h1] == 1.0
    assert bool(two.hosts.disabled[h2]) and not bool(two.hosts.disabled[h1])


def test_own_claims_are_not_read_again(
    add_host: Any, make_scheduler: Make, monkeypatch: Any
) -> None:
    add_host("h1")
    scheduler = make_scheduler()
    scheduler.select_destinations(RequestSpec(vcpus=1, memory_mb=64), ["a"])
    applied: list[int] = []
    original = scheduler.cache._apply_nodes

    def spy(rows: Any) -> None:
        applied.append(len(rows))
        original(rows)

    monkeypatch.setattr(scheduler.cache, "_apply_nodes", spy)
    scheduler.cache.refresh(force=True)
    assert sum(applied) == 0
    add_host("h1", local_gb=200)
    scheduler.cache.refresh(force=True)
    assert sum(applied) == 1 and scheduler.hosts.local_gb[0] == 200
