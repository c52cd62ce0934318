"""The ``ram``, ``disk`` and ``core`` filters: room under the allocation ratios."""

from __future__ import annotations

from typing import ClassVar

from nimbus.filters.base import BaseHostFilter
from nimbus.filters.types import Bools, Facts, Floats, HostArrays, HostState, Ints, RequestSpec

__all__ = ["CoreFilter", "DiskFilter", "RamFilter"]


class _ResourceFilter(BaseHostFilter):
    """Pass hosts with at least the requested amount free (the template of the three)."""

    unit: ClassVar[str] = ""

    def requested(self, spec: RequestSpec) -> int:
        """Return how much one instance of *spec* asks for."""
        raise NotImplementedError

    def free(self, host_state: HostState) -> float:
        """Return how much *host_state* may still give out."""
        raise NotImplementedError

    def free_all(self, hosts: HostArrays, idx: Ints) -> Floats:
        """Return :meth:`free` of every host *idx*."""
        raise NotImplementedError

    def physical(self, host_state: HostState) -> int | None:
        """Return the physical total one instance may never exceed (``None``: no such cap)."""
        return None

    def physical_all(self, hosts: HostArrays, idx: Ints) -> Ints | None:
        """Return :meth:`physical` of every host *idx*."""
        return None

    def host_passes(self, host_state: HostState, spec: RequestSpec) -> bool:
        asked = self.requested(spec)
        free = self.free(host_state)
        if free < asked:
            return self.reject(host_state, f"asked {asked} {self.unit}, {free:g} free")
        cap = self.physical(host_state)
        if cap is not None and asked > cap:
            return self.reject(host_state, f"asked {asked} {self.unit}, host has {cap} in all")
        return True

    def filter_all(
        self, hosts: HostArrays, idx: Ints, spec: RequestSpec, facts: Facts
    ) -> Bools | None:
        asked = self.requested(spec)
        ok: Bools = self.free_all(hosts, idx) >= asked
        cap = self.physical_all(hosts, idx)
        if cap is not None:
            ok &= cap >= asked
        return ok


class RamFilter(_ResourceFilter):
    """Pass hosts with enough RAM under ``ram_allocation_ratio`` minus the reserved memory."""

    name = "ram"
    unit = "MB of RAM"

    def requested(self, spec: RequestSpec) -> int:
        return spec.memory_mb

    def free(self, host_state: HostState) -> float:
        return host_state.free_ram_mb

    def free_all(self, hosts: HostArrays, idx: Ints) -> Floats:
        return hosts.free_ram_mb(idx)

    def physical(self, host_state: HostState) -> int | None:
        return host_state.total_usable_ram_mb

    def physical_all(self, hosts: HostArrays, idx: Ints) -> Ints | None:
        return hosts.memory_mb[idx]


class DiskFilter(_ResourceFilter):
    """Pass hosts with enough disk (root, ephemeral and swap) under ``disk_allocation_ratio``."""

    name = "disk"
    unit = "GB of disk"

    def requested(self, spec: RequestSpec) -> int:
        return spec.disk_gb

    def free(self, host_state: HostState) -> float:
        return host_state.free_disk_gb

    def free_all(self, hosts: HostArrays, idx: Ints) -> Floats:
        return hosts.free_disk_gb(idx)


class CoreFilter(_ResourceFilter):
    """Pass hosts with enough vCPUs under ``cpu_allocation_ratio`` minus the reserved ones."""

    name = "core"
    unit = "vCPUs"

    def requested(self, spec: RequestSpec) -> int:
        return spec.vcpus

    def free(self, host_state: HostState) -> float:
        return host_state.free_vcpus

    def free_all(self, hosts: HostArrays, idx: Ints) -> Floats:
        return hosts.free_vcpus(idx)

    def physical(self, host_state: HostState) -> int | None:
        return host_state.vcpus_total

    def physical_all(self, hosts: HostArrays, idx: Ints) -> Ints | None:
        return hosts.vcpus[idx]
