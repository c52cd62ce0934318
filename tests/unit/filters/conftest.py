"""Fixtures of the filter tests: host states made to measure, filters on a fixed clock."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from oslo_config import cfg

from nimbus.filters import AggregateInfo, HostState

NOW = 1_800_000_000.0


def host(**values: Any) -> HostState:
    """Return a healthy 16-vCPU, 32 GiB, 500 GB x86_64 host, changed by *values*."""
    base: dict[str, Any] = {
        "index": 0,
        "host": "host-a",
        "nodename": "host-a",
        "uuid": "node-a",
        "hypervisor_type": "qemu",
        "hypervisor_version": 8002000,
        "vcpus_total": 16,
        "vcpus_used": 0,
        "total_usable_ram_mb": 32768,
        "memory_mb_used": 0,
        "total_usable_disk_gb": 500,
        "local_gb_used": 0,
        "disk_available_least": None,
        "num_instances": 0,
        "cpu_info": {},
        "supported_instances": (("x86_64", "qemu", "hvm"),),
        "aggregates": (),
        "cpu_allocation_ratio": 4.0,
        "ram_allocation_ratio": 1.0,
        "disk_allocation_ratio": 1.0,
        "reserved_host_memory_mb": 512,
        "reserved_host_disk_mb": 0,
        "reserved_host_cpus": 0,
        "service_disabled": False,
        "service_forced_down": False,
        "last_seen_up": NOW - 5,
    }
    base.update(values)
    return HostState(**base)


def aggregate(agg_id: int, **metadata: str) -> AggregateInfo:
    """Return aggregate *agg_id* with *metadata*."""
    return AggregateInfo(id=agg_id, name=f"agg-{agg_id}", metadata=metadata)


@pytest.fixture
def make(conf: cfg.ConfigOpts) -> Callable[[type], Any]:
    """Make a filter or weigher class with the test config (and the fixed clock)."""

    def _make(cls: type) -> Any:
        try:
            return cls(conf, clock=lambda: NOW)
        except TypeError:
            return cls(conf)

    return _make
