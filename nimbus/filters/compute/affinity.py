"""Filters on where other instances are: hints and server groups."""

from __future__ import annotations

import numpy as np

from nimbus.filters.base import BaseHostFilter
from nimbus.filters.types import Bools, Facts, HostArrays, HostState, Ints, RequestSpec

__all__ = [
    "DifferentHostFilter",
    "SameHostFilter",
    "ServerGroupAffinityFilter",
    "ServerGroupAntiAffinityFilter",
]


def _nodes_of(facts: Facts, uuids: tuple[str, ...]) -> list[int]:
    return sorted({facts.node_of[u] for u in uuids if u in facts.node_of})


class DifferentHostFilter(BaseHostFilter):
    """Pass hosts holding none of the instances of the ``different_host`` hint."""

    name = "different_host"

    def host_passes(self, host_state: HostState, spec: RequestSpec) -> bool:
        there = host_state.instances.intersection(spec.hint("different_host"))
        if there:
            return self.reject(host_state, f"holds {', '.join(sorted(there))}")
        return True

    def filter_all(
        self, hosts: HostArrays, idx: Ints, spec: RequestSpec, facts: Facts
    ) -> Bools | None:
        ok: Bools = ~np.isin(idx, _nodes_of(facts, spec.hint("different_host")))
        return ok


class SameHostFilter(BaseHostFilter):
    """Pass hosts holding one of the instances of the ``same_host`` hint (if given)."""

    name = "same_host"

    def host_passes(self, host_state: HostState, spec: RequestSpec) -> bool:
        wanted = spec.hint("same_host")
        if wanted and not host_state.instances.intersection(wanted):
            return self.reject(host_state, f"holds none of {', '.join(wanted)}")
        return True

    def filter_all(
        self, hosts: HostArrays, idx: Ints, spec: RequestSpec, facts: Facts
    ) -> Bools | None:
        wanted = spec.hint("same_host")
        if not wanted:
            return np.ones(idx.size, dtype=np.bool_)
        ok: Bools = np.isin(idx, _nodes_of(facts, wanted))
        return ok


class ServerGroupAntiAffinityFilter(BaseHostFilter):
    """Pass hosts with fewer than ``max_server_per_host`` members of an anti-affinity group."""

    name = "server_group_anti_affinity"

    def host_passes(self, host_state: HostState, spec: RequestSpec) -> bool:
        group = spec.group
        if group is None or group.policy != "anti-affinity":
            return True
        members = host_state.instances.intersection(group.members)
        if len(members) >= group.max_server_per_host:
            return self.reject(
                host_state,
                f"holds {len(members)} of group {group.uuid} "
                f"(max_server_per_host {group.max_server_per_host})",
            )
        return True

    def filter_all(
        self, hosts: HostArrays, idx: Ints, spec: RequestSpec, facts: Facts
    ) -> Bools | None:
        group = spec.group
        if group is None or group.policy != "anti-affinity":
            return np.ones(idx.size, dtype=np.bool_)
        counts: dict[int, int] = {}
        for uuid in set(group.members):
            node = facts.node_of.get(uuid)
            if node is not None:
                counts[node] = counts.get(node, 0) + 1
        full = [node for node, count in counts.items() if count >= group.max_server_per_host]
        ok: Bools = ~np.isin(idx, full)
        return ok


class ServerGroupAffinityFilter(BaseHostFilter):
    """Pass only the hosts of an affinity group's members, once it has any."""

    name = "server_group_affinity"

    def host_passes(self, host_state: HostState, spec: RequestSpec) -> bool:
        group = spec.group
        if group is None or group.policy != "affinity" or not group.hosts:
            return True
        if host_state.host not in group.hosts:
            return self.reject(
                host_state, f"group {group.uuid} is on {', '.join(sorted(group.hosts))}"
            )
        return True

    def filter_all(
        self, hosts: HostArrays, idx: Ints, spec: RequestSpec, facts: Facts
    ) -> Bools | None:
        group = spec.group
        if group is None or group.policy != "affinity" or not group.hosts:
            return np.ones(idx.size, dtype=np.bool_)
        codes = [hosts.host_code_of[h] for h in group.hosts if h in hosts.host_code_of]
        ok: Bools = np.isin(hosts.host_code[idx], codes)
        return ok
