"""The ``compute`` filter: the host's compute service is enabled and alive."""

from __future__ import annotations

import numpy as np

from nimbus.filters.base import BaseHostFilter
from nimbus.filters.types import Bools, Facts, HostArrays, HostState, Ints, RequestSpec

__all__ = ["ComputeFilter"]


class ComputeFilter(BaseHostFilter):
    """Pass hosts whose compute service is enabled, not forced down and heartbeating."""

    name = "compute"

    def host_passes(self, host_state: HostState, spec: RequestSpec) -> bool:
        down_time = self.conf.scheduler.service_down_time
        if host_state.last_seen_up is None:
            return self.reject(host_state, "no compute service heartbeat")
        if host_state.service_disabled:
            return self.reject(host_state, "compute service disabled")
        if host_state.service_forced_down:
            return self.reject(host_state, "compute service forced down")
        age = self.clock() - host_state.last_seen_up
        if abs(age) > down_time:
            return self.reject(
                host_state, f"last heartbeat {age:.0f} s ago (service_down_time {down_time})"
            )
        return True

    def filter_all(
        self, hosts: HostArrays, idx: Ints, spec: RequestSpec, facts: Facts
    ) -> Bools | None:
        age = np.abs(facts.now - hosts.last_seen_up[idx])
        fresh = np.nan_to_num(age, nan=np.inf) <= self.conf.scheduler.service_down_time
        ok: Bools = hosts.has_service[idx] & ~hosts.disabled[idx] & ~hosts.forced_down[idx] & fresh
        return ok
