"""Filters on host aggregates: ``availability_zone``, ``aggregate_multitenancy_isolation``."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from nimbus.filters.base import BaseHostFilter
from nimbus.filters.types import (
    AggregateInfo,
    Bools,
    Facts,
    HostArrays,
    HostState,
    Ints,
    RequestSpec,
)

__all__ = ["AggregateMultiTenancyIsolation", "AvailabilityZoneFilter"]

AZ_KEY = "availability_zone"
TENANT_PREFIX = "filter_tenant_id"


class AvailabilityZoneFilter(BaseHostFilter):
    """Pass hosts in the requested availability zone (aggregate metadata ``availability_zone``)."""

    name = "availability_zone"

    def zones(self, aggregates: Sequence[AggregateInfo]) -> set[str]:
        """Return the zones of a host in *aggregates* (the default zone when none)."""
        zones = {agg.metadata[AZ_KEY] for agg in aggregates if AZ_KEY in agg.metadata}
        return zones or {self.conf.scheduler.default_availability_zone}

    def host_passes(self, host_state: HostState, spec: RequestSpec) -> bool:
        if not spec.availability_zone:
            return True
        zones = self.zones(host_state.aggregates)
        if spec.availability_zone not in zones:
            return self.reject(
                host_state, f"in zone {', '.join(sorted(zones))}, not {spec.availability_zone}"
            )
        return True

    def filter_all(
        self, hosts: HostArrays, idx: Ints, spec: RequestSpec, facts: Facts
    ) -> Bools | None:
        zone = spec.availability_zone
        if not zone:
            return np.ones(idx.size, dtype=np.bool_)
        table = self.per_code(
            (hosts.agg_version, zone),
            len(hosts.agg_sets),
            lambda code: zone in self.zones(hosts.agg_sets[code]),
        )
        ok: Bools = table[hosts.agg_code[idx]]
        return ok


class AggregateMultiTenancyIsolation(BaseHostFilter):
    """Keep hosts of aggregates with ``filter_tenant_id*`` metadata for those projects."""

    name = "aggregate_multitenancy_isolation"

    @staticmethod
    def projects(aggregates: Sequence[AggregateInfo]) -> set[str]:
        """Return the projects the aggregates' ``filter_tenant_id*`` keys admit."""
        allowed: set[str] = set()
        for agg in aggregates:
            for key, value in agg.metadata.items():
                if key.startswith(TENANT_PREFIX):
                    allowed.update(v.strip() for v in value.split(",") if v.strip())
        return allowed

    def _passes(self, aggregates: Sequence[AggregateInfo], project: str | None) -> bool:
        allowed = self.projects(aggregates)
        return not allowed or project in allowed

    def host_passes(self, host_state: HostState, spec: RequestSpec) -> bool:
        if not self._passes(host_state.aggregates, spec.project_id):
            return self.reject(host_state, f"kept for other projects than {spec.project_id}")
        return True

    def filter_all(
        self, hosts: HostArrays, idx: Ints, spec: RequestSpec, facts: Facts
    ) -> Bools | None:
        project = spec.project_id
        table = self.per_code(
            (hosts.agg_version, project),
            len(hosts.agg_sets),
            lambda code: self._passes(hosts.agg_sets[code], project),
        )
        ok: Bools = table[hosts.agg_code[idx]]
        return ok
