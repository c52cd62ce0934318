"""Helpers for testing filters: a host table built from host states, and an agreement check.

A filter's columnar form (:meth:`~nimbus.filters.BaseHostFilter.filter_all`)
must answer as its ``host_passes`` does; :func:`disagreements` tells where
they differ, for the in-tree filters' property tests and for a third
party's own.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from nimbus.filters.base import BaseHostFilter, BaseHostWeigher
from nimbus.filters.types import Facts, HostArrays, HostState, RequestSpec

__all__ = ["disagreements", "facts_of", "host_table", "weight_disagreements"]


def host_table(states: Sequence[HostState]) -> HostArrays:
    """Return a :class:`HostArrays` whose row ``i`` is ``states[i]``."""
    arrays = HostArrays(len(states))
    agg_codes: dict[tuple[object, ...], int] = {(): 0}
    si_codes: dict[tuple[tuple[str, str, str], ...], int] = {(): 0}
    for i, state in enumerate(states):
        arrays.host[i] = state.host
        arrays.nodename[i] = state.nodename
        arrays.uuid[i] = state.uuid
        arrays.hypervisor_type[i] = state.hypervisor_type
        arrays.cpu_info[i] = state.cpu_info
        if state.host not in arrays.host_code_of:
            arrays.host_code_of[state.host] = len(arrays.host_names)
            arrays.host_names.append(state.host)
        arrays.host_code[i] = arrays.host_code_of[state.host]
        arrays.node_id[i] = i + 1
        arrays.vcpus[i] = state.vcpus_total
        arrays.vcpus_used[i] = state.vcpus_used
        arrays.memory_mb[i] = state.total_usable_ram_mb
        arrays.memory_mb_used[i] = state.memory_mb_used
        arrays.local_gb[i] = state.total_usable_disk_gb
        arrays.local_gb_used[i] = state.local_gb_used
        arrays.running_vms[i] = state.num_instances
        arrays.hypervisor_version[i] = state.hypervisor_version
        least = state.disk_available_least
        arrays.disk_least[i] = np.nan if least is None else least
        arrays.cpu_ratio[i] = state.cpu_allocation_ratio
        arrays.ram_ratio[i] = state.ram_allocation_ratio
        arrays.disk_ratio[i] = state.disk_allocation_ratio
        arrays.reserved_ram[i] = state.reserved_host_memory_mb
        arrays.reserved_disk_mb[i] = state.reserved_host_disk_mb
        arrays.reserved_cpus[i] = state.reserved_host_cpus
        arrays.disabled[i] = state.service_disabled
        arrays.forced_down[i] = state.service_forced_down
        arrays.has_service[i] = state.last_seen_up is not None
        arrays.last_seen_up[i] = np.nan if state.last_seen_up is None else state.last_seen_up
        key = tuple((a.id, a.name, tuple(sorted(a.metadata.items()))) for a in state.aggregates)
        if key not in agg_codes:
            agg_codes[key] = len(arrays.agg_sets)
            arrays.agg_sets.append(state.aggregates)
        arrays.agg_code[i] = agg_codes[key]
        if state.supported_instances not in si_codes:
            si_codes[state.supported_instances] = len(arrays.si_sets)
            arrays.si_sets.append(state.supported_instances)
        arrays.si_code[i] = si_codes[state.supported_instances]
    return arrays


def facts_of(states: Sequence[HostState], now: float) -> Facts:
    """Return the facts of *states*: each state's ``instances`` placed on it."""
    return Facts(
        node_of={uuid: i for i, state in enumerate(states) for uuid in state.instances},
        now=now,
    )


def disagreements(
    flt: BaseHostFilter, states: Sequence[HostState], spec: RequestSpec, now: float
) -> list[tuple[int, bool, bool]]:
    """Return ``(index, host_passes, filter_all)`` wherever the two forms differ.

    The filter's ``clock`` should return *now*.  A filter without a
    columnar form agrees by definition.
    """
    arrays = host_table(states)
    idx = np.arange(len(states), dtype=np.int64)
    mask = flt.filter_all(arrays, idx, spec, facts_of(states, now))
    if mask is None:
        return []
    found = []
    for i, state in enumerate(states):
        expected = flt.host_passes(state, spec)
        if bool(mask[i]) != expected:
            found.append((i, expected, bool(mask[i])))
    return found


def weight_disagreements(
    weigher: BaseHostWeigher, states: Sequence[HostState], spec: RequestSpec
) -> list[tuple[int, float, float]]:
    """Return ``(index, weigh, weigh_all)`` wherever raw weights or multipliers differ."""
    arrays = host_table(states)
    idx = np.arange(len(states), dtype=np.int64)
    raw = weigher.weigh_all(arrays, idx, spec)
    multipliers = weigher.multipliers(arrays, idx)
    found = []
    for i, state in enumerate(states):
        if raw is not None and not np.isclose(raw[i], weigher.weigh(state, spec)):
            found.append((i, weigher.weigh(state, spec), float(raw[i])))
        if multipliers[i] != weigher.weight_multiplier(state):
            found.append((i, weigher.weight_multiplier(state), float(multipliers[i])))
    return found
