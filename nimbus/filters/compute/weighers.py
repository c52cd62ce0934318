"""The in-tree compute weighers: ``ram``, ``cpu``, ``disk`` and ``num_instances``."""

from __future__ import annotations

from nimbus.filters.base import BaseHostWeigher
from nimbus.filters.types import Floats, HostArrays, HostState, Ints, RequestSpec

__all__ = ["CPUWeigher", "DiskWeigher", "NumInstancesWeigher", "RAMWeigher"]


class RAMWeigher(BaseHostWeigher):
    """Prefer hosts with more free RAM (``ram_weight_multiplier``; negative stacks)."""

    multiplier_option = "ram_weight_multiplier"
    minval = 0.0

    def weigh(self, host_state: HostState, spec: RequestSpec) -> float:
        return host_state.free_ram_mb

    def weigh_all(self, hosts: HostArrays, idx: Ints, spec: RequestSpec) -> Floats | None:
        return hosts.free_ram_mb(idx)


class CPUWeigher(BaseHostWeigher):
    """Prefer hosts with more free vCPUs (``cpu_weight_multiplier``)."""

    multiplier_option = "cpu_weight_multiplier"
    minval = 0.0

    def weigh(self, host_state: HostState, spec: RequestSpec) -> float:
        return host_state.free_vcpus

    def weigh_all(self, hosts: HostArrays, idx: Ints, spec: RequestSpec) -> Floats | None:
        return hosts.free_vcpus(idx)


class DiskWeigher(BaseHostWeigher):
    """Prefer hosts with more free disk (``disk_weight_multiplier``)."""

    multiplier_option = "disk_weight_multiplier"
    minval = 0.0

    def weigh(self, host_state: HostState, spec: RequestSpec) -> float:
        return host_state.free_disk_mb

    def weigh_all(self, hosts: HostArrays, idx: Ints, spec: RequestSpec) -> Floats | None:
        return hosts.free_disk_gb(idx) * 1024


class NumInstancesWeigher(BaseHostWeigher):
    """Weigh hosts by their number of instances (``num_instances_weight_multiplier``, 0.0)."""

    multiplier_option = "num_instances_weight_multiplier"

    def weigh(self, host_state: HostState, spec: RequestSpec) -> float:
        return float(host_state.num_instances)

    def weigh_all(self, hosts: HostArrays, idx: Ints, spec: RequestSpec) -> Floats | None:
        return hosts.running_vms[idx].astype(float)
