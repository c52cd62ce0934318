"""Each in-tree compute filter's semantics, through ``host_passes`` and its columnar form."""

from __future__ import annotations

import importlib.util
import json
import pathlib
from collections.abc import Callable
from typing import Any

import pytest

from nimbus import registry
from nimbus.filters import BaseHostFilter, HostState, RequestSpec, ServerGroupSpec
from nimbus.filters.compute.affinity import (
    DifferentHostFilter,
    SameHostFilter,
    ServerGroupAffinityFilter,
    ServerGroupAntiAffinityFilter,
)
from nimbus.filters.compute.aggregates import (
    AggregateMultiTenancyIsolation,
    AvailabilityZoneFilter,
)
from nimbus.filters.compute.image_properties import ImagePropertiesFilter
from nimbus.filters.compute.json_filter import JsonFilter
from nimbus.filters.compute.resources import CoreFilter, DiskFilter, RamFilter
from nimbus.filters.compute.service import ComputeFilter
from nimbus.filters.testing import disagreements

_HERE = pathlib.Path(__file__).parent
_spec = importlib.util.spec_from_file_location("filter_fixtures", _HERE / "conftest.py")
assert _spec is not None and _spec.loader is not None
fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fixtures)
host, aggregate, NOW = fixtures.host, fixtures.aggregate, fixtures.NOW

Make = Callable[[type], Any]


def passes(flt: BaseHostFilter, state: HostState, spec: RequestSpec) -> bool:
    """Return host_passes, after checking that the columnar form says the same."""
    assert disagreements(flt, [state], spec, NOW) == []
    return flt.host_passes(state, spec)


def test_every_filter_is_registered_under_its_name() -> None:
    names = set(registry.installed_names("nimbus.filters.compute"))
    for cls in (
        ComputeFilter,
        RamFilter,
        DiskFilter,
        CoreFilter,
        AvailabilityZoneFilter,
        AggregateMultiTenancyIsolation,
        DifferentHostFilter,
        SameHostFilter,
        ServerGroupAffinityFilter,
        ServerGroupAntiAffinityFilter,
        ImagePropertiesFilter,
        JsonFilter,
    ):
        assert cls.name in names
        doc = (cls.__doc__ or "").strip()
        assert doc and "\n" not in doc, f"{cls.__name__} needs a one-line docstring"


# -- compute -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "ok", "why"),
    [
        ({}, True, None),
        ({"service_disabled": True}, False, "disabled"),
        ({"service_forced_down": True}, False, "forced down"),
        ({"last_seen_up": NOW - 61}, False, "61 s ago"),
        ({"last_seen_up": NOW - 60}, True, None),
        ({"last_seen_up": None}, False, "no compute service"),
    ],
)
def test_compute(make: Make, values: dict[str, Any], ok: bool, why: str | None) -> None:
    state = host(**values)
    flt = make(ComputeFilter)
    assert passes(flt, state, RequestSpec()) is ok
    if why:
        assert state.rejection is not None and why in state.rejection[1]
        assert state.rejection[0] == "compute"


# -- ram, disk, core -------------------------------------------------------------------


def test_ram_counts_ratio_reserved_and_usage(make: Make) -> None:
    flt = make(RamFilter)
    # 32768 * 1.0 - 512 reserved - 30000 used = 2256 MB free.
    state = host(memory_mb_used=30000)
    assert passes(flt, state, RequestSpec(memory_mb=2256))
    assert not passes(flt, state, RequestSpec(memory_mb=2257))
    assert state.rejection == ("ram", "asked 2257 MB of RAM, 2256 free")
    # A ratio of 1.5 gives room beyond the physical memory...
    assert passes(
        flt, host(memory_mb_used=30000, ram_allocation_ratio=1.5), RequestSpec(memory_mb=16000)
    )
    # ...but one instance is never bigger than the host.
    big = host(ram_allocation_ratio=4.0)
    assert not passes(flt, big, RequestSpec(memory_mb=40000))
    assert big.rejection is not None and "32768 in all" in big.rejection[1]


def test_disk_counts_root_ephemeral_swap_and_least(make: Make) -> None:
    flt = make(DiskFilter)
    state = host(local_gb_used=470)
    # 10 + 19 + 1 (1000 MB of swap rounds up to 1 GB) = 30 of the 30 GB left.
    assert passes(flt, state, RequestSpec(root_gb=10, ephemeral_gb=19, swap_mb=1000))
    assert not passes(flt, state, RequestSpec(root_gb=10, ephemeral_gb=19, swap_mb=1025))
    # disk_available_least caps what a thin-provisioned host offers.
    thin = host(local_gb_used=0, disk_allocation_ratio=2.0, disk_available_least=20)
    assert not passes(flt, thin, RequestSpec(root_gb=21))
    assert passes(flt, thin, RequestSpec(root_gb=20))
    # Reserved disk is in MB.
    assert not passes(flt, host(reserved_host_disk_mb=1024 * 491), RequestSpec(root_gb=10))


def test_core_counts_ratio_and_reserved(make: Make) -> None:
    flt = make(CoreFilter)
    # 16 * 4.0 - 2 reserved - 60 used = 2 left.
    state = host(vcpus_used=60, reserved_host_cpus=2)
    assert passes(flt, state, RequestSpec(vcpus=2))
    assert not passes(flt, state, RequestSpec(vcpus=3))
    assert not passes(flt, host(), RequestSpec(vcpus=17))  # more than the host's own


# -- aggregates -------------------------------------------------------------------------


def test_availability_zone(make: Make) -> None:
    flt = make(AvailabilityZoneFilter)
    zoned = host(aggregates=(aggregate(1, availability_zone="az1"), aggregate(2, ssd="true")))
    plain = host()
    assert passes(flt, zoned, RequestSpec(availability_zone="az1"))
    assert not passes(flt, zoned, RequestSpec(availability_zone="az2"))
    assert zoned.rejection == ("availability_zone", "in zone az1, not az2")
    # A host in no zone is in the default zone.
    assert passes(flt, plain, RequestSpec(availability_zone="nova"))
    assert not passes(flt, plain, RequestSpec(availability_zone="az1"))
    assert passes(flt, zoned, RequestSpec())


def test_multitenancy_isolation(make: Make) -> None:
    flt = make(AggregateMultiTenancyIsolation)
    kept = host(
        aggregates=(aggregate(1, filter_tenant_id="p1,p2"), aggregate(2, filter_tenant_id_2="p3"))
    )
    assert passes(flt, kept, RequestSpec(project_id="p2"))
    assert passes(flt, kept, RequestSpec(project_id="p3"))
    assert not passes(flt, kept, RequestSpec(project_id="p4"))
    assert passes(flt, host(aggregates=(aggregate(3, ssd="1"),)), RequestSpec(project_id="p4"))


# -- where other instances are -------------------------------------------------------------


def test_different_and_same_host(make: Make) -> None:
    different, same = make(DifferentHostFilter), make(SameHostFilter)
    holding = host(instances=frozenset({"vm-1"}))
    empty = host()
    spec = RequestSpec(scheduler_hints={"different_host": ["vm-1", "vm-9"]})
    assert not passes(different, holding, spec)
    assert holding.rejection == ("different_host", "holds vm-1")
    assert passes(different, empty, spec)
    spec = RequestSpec(scheduler_hints={"same_host": ["vm-1"]})
    assert passes(same, holding, spec)
    assert not passes(same, empty, spec)
    assert passes(same, empty, RequestSpec())


def test_anti_affinity_counts_members_per_host(make: Make) -> None:
    flt = make(ServerGroupAntiAffinityFilter)
    one = host(instances=frozenset({"m1", "other"}))
    group = ServerGroupSpec(uuid="g", policy="anti-affinity", members=("m1", "m2"))
    assert not passes(flt, one, RequestSpec(group=group))
    assert passes(flt, host(instances=frozenset({"other"})), RequestSpec(group=group))
    roomy = ServerGroupSpec(
        uuid="g", policy="anti-affinity", members=("m1", "m2"), max_server_per_host=2
    )
    assert passes(flt, one, RequestSpec(group=roomy))
    soft = ServerGroupSpec(uuid="g", policy="soft-anti-affinity", members=("m1",))
    assert passes(flt, one, RequestSpec(group=soft))


def test_affinity_keeps_to_the_members_hosts(make: Make) -> None:
    flt = make(ServerGroupAffinityFilter)
    group = ServerGroupSpec(uuid="g", policy="affinity", members=("m1",), hosts=("host-b",))
    assert not passes(flt, host(), RequestSpec(group=group))
    assert passes(flt, host(host="host-b"), RequestSpec(group=group))
    empty = ServerGroupSpec(uuid="g", policy="affinity")
    assert passes(flt, host(), RequestSpec(group=empty))


# -- image properties --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("props", "ok"),
    [
        ({}, True),
        ({"hw_architecture": "x86_64"}, True),
        ({"hw_architecture": "aarch64"}, False),
        ({"architecture": "X86_64", "img_hv_type": "qemu"}, True),
        ({"img_hv_type": "xen"}, False),
        ({"hw_vm_mode": "hvm"}, True),
        ({"img_hv_requested_version": ">=8.0.0"}, True),
        ({"img_hv_requested_version": ">=9000000"}, False),
        ({"img_hv_requested_version": "8.2"}, False),  # 8002 is not 8002000
        ({"img_hv_requested_version": "8.2.0"}, True),
    ],
)
def test_image_properties(make: Make, props: dict[str, str], ok: bool) -> None:
    flt = make(ImagePropertiesFilter)
    assert passes(flt, host(), RequestSpec(image_properties=props)) is ok


def test_image_properties_need_supported_instances(make: Make) -> None:
    flt = make(ImagePropertiesFilter)
    bare = host(supported_instances=())
    assert passes(flt, bare, RequestSpec())
    assert not passes(flt, bare, RequestSpec(image_properties={"hw_architecture": "x86_64"}))


# -- json ---------------------------------------------------------------------------------------


def _query(query: Any) -> RequestSpec:
    return RequestSpec(scheduler_hints={"query": [json.dumps(query)]})


@pytest.mark.parametrize(
    ("query", "ok"),
    [
        ([">=", "$free_ram_mb", 1024], True),
        ([">=", "$free_ram_mb", 1024000], False),
        (["and", [">", "$vcpus_total", 8], ["<", "$num_instances", 1]], True),
        (["or", ["=", "$vcpus_total", 1], ["=", "$vcpus_total", 2]], False),
        (["not", ["=", "$vcpus_total", 16]], False),
        (["in", "$vcpus_total", 8, 16, 32], True),
        (["=", "$host", "host-a"], True),  # no columnar form: host_passes decides
        (["=", "$cpu_info.vendor", "Intel"], True),
        (["<", "$free_disk_mb", "$total_usable_ram_mb"], False),
        (["=", "$nothing_like_this", 1], False),
    ],
)
def test_json(make: Make, query: Any, ok: bool) -> None:
    flt = make(JsonFilter)
    state = host(cpu_info={"vendor": "Intel"})
    assert passes(flt, state, _query(query)) is ok


def test_json_without_query_passes(make: Make) -> None:
    assert passes(make(JsonFilter), host(), RequestSpec())
