"""Property tests: every in-tree filter's columnar form agrees with its ``host_passes``.

Random hosts (capacities, usage, ratios, reserved amounts, services,
aggregates, supported instances, instances on them) meet random requests
(flavors, zones, projects, hints, server groups, image properties, json
queries); on every host both forms must give the same answer, and every
weigher's raw weights and multipliers must match its per-host ones.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oslo_config import cfg

from nimbus.conf import new_config
from nimbus.filters import AggregateInfo, HostState, RequestSpec, ServerGroupSpec
from nimbus.filters.compute import (
    affinity,
    aggregates,
    image_properties,
    json_filter,
    resources,
    service,
    weighers,
)
from nimbus.filters.testing import disagreements, weight_disagreements

NOW = 1_800_000_000.0
UUIDS = [f"vm-{i}" for i in range(8)]
AGGREGATES = [
    AggregateInfo(1, "az1", {"availability_zone": "az1"}),
    AggregateInfo(2, "az2", {"availability_zone": "az2"}),
    AggregateInfo(3, "kept", {"filter_tenant_id": "p1,p2"}),
    AggregateInfo(4, "kept2", {"filter_tenant_id_b": "p3"}),
    AggregateInfo(5, "heavy", {"ram_weight_multiplier": "-1.5", "cpu_weight_multiplier": "2"}),
    AggregateInfo(6, "odd", {"disk_weight_multiplier": "not a number", "ssd": "true"}),
]
SUPPORTED = [
    (),
    (("x86_64", "qemu", "hvm"),),
    (("aarch64", "qemu", "hvm"),),
    (("x86_64", "kvm", "hvm"), ("i686", "kvm", "hvm")),
]
FILTERS = [
    service.ComputeFilter,
    resources.RamFilter,
    resources.DiskFilter,
    resources.CoreFilter,
    aggregates.AvailabilityZoneFilter,
    aggregates.AggregateMultiTenancyIsolation,
    affinity.DifferentHostFilter,
    affinity.SameHostFilter,
    affinity.ServerGroupAffinityFilter,
    affinity.ServerGroupAntiAffinityFilter,
    image_properties.ImagePropertiesFilter,
    json_filter.JsonFilter,
]
WEIGHERS = [
    weighers.RAMWeigher,
    weighers.CPUWeigher,
    weighers.DiskWeigher,
    weighers.NumInstancesWeigher,
]
QUERIES = [
    None,
    [">=", "$free_ram_mb", 2048],
    ["and", [">", "$vcpus_total", 8], ["<=", "$num_instances", 3]],
    ["or", ["=", "$vcpus_used", 0], ["not", ["<", "$free_disk_mb", 10240]]],
    ["in", "$vcpus_total", 8, 16],
    ["=", "$host", "host-1"],
    ["<", "$free_vcpus", "$vcpus_total"],
]

_CONF: cfg.ConfigOpts | None = None


def _conf() -> cfg.ConfigOpts:
    global _CONF
    if _CONF is None:
        _CONF = new_config()
        _CONF([], default_config_files=[])
    return _CONF


@st.composite
def hosts(draw: Any) -> list[HostState]:
    count = draw(st.integers(1, 6))
    placed = draw(st.lists(st.integers(0, count - 1), min_size=len(UUIDS), max_size=len(UUIDS)))
    states = []
    for i in range(count):
        vcpus = draw(st.sampled_from([1, 4, 16, 64]))
        memory = draw(st.sampled_from([1024, 4096, 32768]))
        disk = draw(st.sampled_from([10, 100, 1000]))
        states.append(
            HostState(
                index=i,
                host=f"host-{i % 3}",
                nodename=f"node-{i}",
                uuid=f"uuid-{i}",
                hypervisor_type="qemu",
                hypervisor_version=draw(st.sampled_from([7000000, 8002000])),
                vcpus_total=vcpus,
                vcpus_used=draw(st.integers(0, vcpus * 4)),
                total_usable_ram_mb=memory,
                memory_mb_used=draw(st.integers(0, memory * 2)),
                total_usable_disk_gb=disk,
                local_gb_used=draw(st.integers(0, disk)),
                disk_available_least=draw(st.none() | st.integers(0, disk)),
                num_instances=draw(st.integers(0, 10)),
                cpu_info={},
                supported_instances=draw(st.sampled_from(SUPPORTED)),
                aggregates=tuple(
                    draw(
                        st.lists(st.sampled_from(AGGREGATES), max_size=3, unique_by=lambda a: a.id)
                    )
                ),
                cpu_allocation_ratio=draw(st.sampled_from([1.0, 4.0, 16.0])),
                ram_allocation_ratio=draw(st.sampled_from([1.0, 1.5])),
                disk_allocation_ratio=draw(st.sampled_from([0.5, 1.0, 2.0])),
                reserved_host_memory_mb=draw(st.sampled_from([0, 512])),
                reserved_host_disk_mb=draw(st.sampled_from([0, 2048])),
                reserved_host_cpus=draw(st.sampled_from([0, 1])),
                service_disabled=draw(st.booleans()),
                service_forced_down=draw(st.booleans()),
                last_seen_up=draw(st.none() | st.floats(NOW - 120, NOW + 5)),
                instances=frozenset(u for u, node in zip(UUIDS, placed, strict=True) if node == i),
            )
        )
    return states


@st.composite
def specs(draw: Any) -> RequestSpec:
    hints: dict[str, list[str]] = {}
    if draw(st.booleans()):
        hints["different_host"] = draw(st.lists(st.sampled_from(UUIDS), max_size=3))
    if draw(st.booleans()):
        hints["same_host"] = draw(st.lists(st.sampled_from(UUIDS), max_size=3))
    query = draw(st.sampled_from(QUERIES))
    if query is not None:
        hints["query"] = [json.dumps(query)]
    group = None
    if draw(st.booleans()):
        group = ServerGroupSpec(
            uuid="g",
            policy=draw(st.sampled_from(["affinity", "anti-affinity", "soft-affinity"])),
            members=tuple(draw(st.lists(st.sampled_from(UUIDS), max_size=4))),
            max_server_per_host=draw(st.integers(1, 3)),
            hosts=tuple(
                draw(st.lists(st.sampled_from(["host-0", "host-1", "host-9"]), max_size=2))
            ),
        )
    props = draw(
        st.dictionaries(
            st.sampled_from(
                ["hw_architecture", "img_hv_type", "hw_vm_mode", "img_hv_requested_version"]
            ),
            st.sampled_from(
                ["x86_64", "aarch64", "qemu", "kvm", "hvm", ">=8000000", "7.0.0", "junk"]
            ),
            max_size=3,
        )
    )
    return RequestSpec(
        project_id=draw(st.sampled_from([None, "p1", "p3", "p9"])),
        memory_mb=draw(st.sampled_from([0, 512, 2048, 8192])),
        vcpus=draw(st.integers(0, 8)),
        root_gb=draw(st.integers(0, 200)),
        ephemeral_gb=draw(st.integers(0, 20)),
        swap_mb=draw(st.sampled_from([0, 512, 4096])),
        availability_zone=draw(st.sampled_from([None, "az1", "az2", "nova"])),
        scheduler_hints=hints,
        group=group,
        image_properties=props,
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(states=hosts(), spec=specs())
def test_columnar_filters_agree_with_host_passes(
    states: list[HostState], spec: RequestSpec
) -> None:
    for cls in FILTERS:
        flt = cls(_conf(), clock=lambda: NOW)
        assert disagreements(flt, states, spec, NOW) == [], cls.__name__


@settings(max_examples=150, deadline=None)
@given(states=hosts(), spec=specs())
def test_columnar_weighers_agree_with_weigh(states: list[HostState], spec: RequestSpec) -> None:
    for cls in WEIGHERS:
        assert weight_disagreements(cls(_conf()), states, spec) == [], cls.__name__
