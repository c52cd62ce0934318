"""What crosses the scheduler's boundary: the request, one host's state, the host table.

A *host* here is one compute node (a hypervisor) and the service that runs
it; ``host`` is the service's host name, ``nodename`` the hypervisor's.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "AggregateInfo",
    "Facts",
    "HostArrays",
    "HostState",
    "RequestSpec",
    "ServerGroupSpec",
]

#: Versions of host tables' coded sets, unique in the process (keys of per-code caches).
_VERSIONS = itertools.count(1)

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]


@dataclasses.dataclass(frozen=True)
class ServerGroupSpec:
    """The server group an instance joins: its policy and its members' uuids."""

    uuid: str
    policy: str
    members: tuple[str, ...] = ()
    max_server_per_host: int = 1
    #: Hosts of the members that hold a claim (the scheduler fills it in).
    hosts: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class RequestSpec:
    """What one boot (or move) asks of the scheduler.

    ``scheduler_hints`` maps a hint name (``different_host``, ``same_host``,
    ``query``, ``group``) to a tuple of strings, as Nova's API accepts them.
    """

    project_id: str | None = None
    user_id: str | None = None
    memory_mb: int = 0
    vcpus: int = 0
    root_gb: int = 0
    ephemeral_gb: int = 0
    swap_mb: int = 0
    extra_specs: Mapping[str, str] = dataclasses.field(default_factory=dict)
    image_properties: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    availability_zone: str | None = None
    scheduler_hints: Mapping[str, Sequence[str]] = dataclasses.field(default_factory=dict)
    group: ServerGroupSpec | None = None
    ignore_hosts: tuple[str, ...] = ()
    force_hosts: tuple[str, ...] = ()
    num_instances: int = 1

    @property
    def disk_gb(self) -> int:
        """Return the disk an instance takes, in GB (swap rounded up to whole GB)."""
        return self.root_gb + self.ephemeral_gb + -(-self.swap_mb // 1024)

    def hint(self, name: str) -> tuple[str, ...]:
        """Return the values of scheduler hint *name* (empty when not given)."""
        value = self.scheduler_hints.get(name, ())
        if isinstance(value, str):
            return (value,)
        return tuple(value)


@dataclasses.dataclass(frozen=True)
class AggregateInfo:
    """A host aggregate as filters see it: its name and metadata."""

    id: int
    name: str
    metadata: Mapping[str, str]


@dataclasses.dataclass
class HostState:
    """One host as :meth:`BaseHostFilter.host_passes` sees it.

    Capacities follow Nova's vocabulary: ``free_ram_mb`` is what may still be
    given out under the allocation ratio, minus the reserved memory;
    ``instances`` holds the uuids of the instances on this host that the
    request refers to (hints, server group members, earlier instances of
    the same request), which is what affinity filters need.
    """

    index: int
    host: str
    nodename: str
    uuid: str
    hypervisor_type: str
    hypervisor_version: int
    vcpus_total: int
    vcpus_used: int
    total_usable_ram_mb: int
    memory_mb_used: int
    total_usable_disk_gb: int
    local_gb_used: int
    disk_available_least: int | None
    num_instances: int
    cpu_info: Mapping[str, Any]
    supported_instances: tuple[tuple[str, str, str], ...]
    aggregates: tuple[AggregateInfo, ...]
    cpu_allocation_ratio: float
    ram_allocation_ratio: float
    disk_allocation_ratio: float
    reserved_host_memory_mb: int
    reserved_host_disk_mb: int
    reserved_host_cpus: int
    service_disabled: bool
    service_forced_down: bool
    last_seen_up: float | None
    instances: frozenset[str] = frozenset()
    #: ``(filter name, reason)`` of the filter that rejected the host last.
    rejection: tuple[str, str] | None = None

    @property
    def free_ram_mb(self) -> float:
        """Return the RAM still to give out under the ratio, in MB."""
        return (
            self.total_usable_ram_mb * self.ram_allocation_ratio
            - self.reserved_host_memory_mb
            - self.memory_mb_used
        )

    @property
    def free_vcpus(self) -> float:
        """Return the vCPUs still to give out under the ratio."""
        return (
            self.vcpus_total * self.cpu_allocation_ratio - self.reserved_host_cpus - self.vcpus_used
        )

    @property
    def free_disk_gb(self) -> float:
        """Return the disk still to give out under the ratio, in GB.

        A node that reports ``disk_available_least`` counts at most that
        much as free (Nova's rule for thin-provisioned disks).
        """
        free = (
            self.total_usable_disk_gb * self.disk_allocation_ratio
            - self.reserved_host_disk_mb / 1024
            - self.local_gb_used
        )
        if self.disk_available_least is not None:
            free = min(free, self.disk_available_least - self.reserved_host_disk_mb / 1024)
        return free

    @property
    def free_disk_mb(self) -> float:
        """Return :attr:`free_disk_gb` in MB."""
        return self.free_disk_gb * 1024

    def metadata_values(self, key: str) -> list[str]:
        """Return the values of aggregate metadata *key* over the host's aggregates."""
        return [agg.metadata[key] for agg in self.aggregates if key in agg.metadata]


@dataclasses.dataclass(frozen=True)
class Facts:
    """Per-decision knowledge the affinity filters share.

    :param node_of: node index of each instance the request refers to and
        that has a claim (hints, group members, earlier instances of the
        same request).
    :param now: the decision's clock (seconds since the epoch).
    """

    node_of: Mapping[str, int]
    now: float


class HostArrays:
    """Every cached host as columns: one numpy array (or list) per attribute.

    Row ``i`` of each column is node ``i``.  Aggregates and supported
    instances are coded: ``agg_code[i]`` indexes :attr:`agg_sets` (the
    host's aggregates), ``si_code[i]`` indexes :attr:`si_sets`, so a filter
    on them decides once per distinct value.  The effective ratios and
    reserved amounts (node, then aggregate, then configuration) are
    columns too.
    """

    _INT_COLUMNS = (
        "node_id",
        "host_code",
        "vcpus",
        "vcpus_used",
        "memory_mb",
        "memory_mb_used",
        "local_gb",
        "local_gb_used",
        "running_vms",
        "hypervisor_version",
        "agg_code",
        "si_code",
        "reserved_ram",
        "reserved_disk_mb",
        "reserved_cpus",
        "generation",
    )
    _FLOAT_COLUMNS = ("disk_least", "cpu_ratio", "ram_ratio", "disk_ratio", "last_seen_up")
    _BOOL_COLUMNS = ("disabled", "forced_down", "has_service")

    def __init__(self, size: int = 0) -> None:
        for name in self._INT_COLUMNS:
            setattr(self, name, np.zeros(size, dtype=np.int64))
        for name in self._FLOAT_COLUMNS:
            setattr(self, name, np.full(size, np.nan, dtype=np.float64))
        for name in self._BOOL_COLUMNS:
            setattr(self, name, np.zeros(size, dtype=np.bool_))
        self.host: list[str] = [""] * size
        self.nodename: list[str] = [""] * size
        self.uuid: list[str] = [""] * size
        self.hypervisor_type: list[str] = [""] * size
        self.cpu_info: list[Mapping[str, Any]] = [{}] * size
        self.host_names: list[str] = []
        self.host_code_of: dict[str, int] = {}
        #: Grow when :attr:`agg_sets` / :attr:`si_sets` are rebuilt (keys of per-code caches).
        self.agg_version = next(_VERSIONS)
        self.si_version = next(_VERSIONS)
        self.agg_sets: list[tuple[AggregateInfo, ...]] = [()]
        self.si_sets: list[tuple[tuple[str, str, str], ...]] = [()]
        self.size = size

    # Declared for type checkers; set in __init__.
    node_id: Ints
    host_code: Ints
    vcpus: Ints
    vcpus_used: Ints
    memory_mb: Ints
    memory_mb_used: Ints
    local_gb: Ints
    local_gb_used: Ints
    running_vms: Ints
    hypervisor_version: Ints
    agg_code: Ints
    si_code: Ints
    reserved_ram: Ints
    reserved_disk_mb: Ints
    reserved_cpus: Ints
    generation: Ints
    disk_least: Floats
    cpu_ratio: Floats
    ram_ratio: Floats
    disk_ratio: Floats
    last_seen_up: Floats
    disabled: Bools
    forced_down: Bools
    has_service: Bools

    def sets_changed(self) -> None:
        """Give :attr:`agg_sets` and :attr:`si_sets` new versions (call after changing them)."""
        self.agg_version = next(_VERSIONS)
        self.si_version = next(_VERSIONS)

    def grow(self, size: int) -> None:
        """Extend every column to *size* rows (new rows zero, NaN or empty)."""
        extra = size - self.size
        if extra <= 0:
            return
        for name in self._INT_COLUMNS:
            setattr(self, name, np.concatenate([getattr(self, name), np.zeros(extra, np.int64)]))
        for name in self._FLOAT_COLUMNS:
            setattr(self, name, np.concatenate([getattr(self, name), np.full(extra, np.nan)]))
        for name in self._BOOL_COLUMNS:
            setattr(self, name, np.concatenate([getattr(self, name), np.zeros(extra, np.bool_)]))
        for name in ("host", "nodename", "uuid", "hypervisor_type"):
            getattr(self, name).extend([""] * extra)
        self.cpu_info.extend([{}] * extra)
        self.size = size

    # -- derived columns (over the candidate indices *idx*) ---------------------

    def free_ram_mb(self, idx: Ints) -> Floats:
        """Return :attr:`HostState.free_ram_mb` of the hosts *idx*."""
        return (
            self.memory_mb[idx] * self.ram_ratio[idx]
            - self.reserved_ram[idx]
            - self.memory_mb_used[idx]
        )

    def free_vcpus(self, idx: Ints) -> Floats:
        """Return :attr:`HostState.free_vcpus` of the hosts *idx*."""
        return (
            self.vcpus[idx] * self.cpu_ratio[idx] - self.reserved_cpus[idx] - self.vcpus_used[idx]
        )

    def free_disk_gb(self, idx: Ints) -> Floats:
        """Return :attr:`HostState.free_disk_gb` of the hosts *idx*."""
        reserved = self.reserved_disk_mb[idx] / 1024
        free = self.local_gb[idx] * self.disk_ratio[idx] - reserved - self.local_gb_used[idx]
        least = self.disk_least[idx] - reserved
        return np.where(np.isnan(least), free, np.fmin(free, least))

    def state(self, i: int, facts: Facts | None = None) -> HostState:
        """Return host *i* as a :class:`HostState`."""
        least = self.disk_least[i]
        seen = self.last_seen_up[i]
        instances: frozenset[str] = frozenset()
        if facts is not None:
            instances = frozenset(u for u, node in facts.node_of.items() if node == i)
        return HostState(
            index=i,
            host=self.host[i],
            nodename=self.nodename[i],
            uuid=self.uuid[i],
            hypervisor_type=self.hypervisor_type[i],
            hypervisor_version=int(self.hypervisor_version[i]),
            vcpus_total=int(self.vcpus[i]),
            vcpus_used=int(self.vcpus_used[i]),
            total_usable_ram_mb=int(self.memory_mb[i]),
            memory_mb_used=int(self.memory_mb_used[i]),
            total_usable_disk_gb=int(self.local_gb[i]),
            local_gb_used=int(self.local_gb_used[i]),
            disk_available_least=None if np.isnan(least) else int(least),
            num_instances=int(self.running_vms[i]),
            cpu_info=self.cpu_info[i],
            supported_instances=self.si_sets[int(self.si_code[i])],
            aggregates=self.agg_sets[int(self.agg_code[i])],
            cpu_allocation_ratio=float(self.cpu_ratio[i]),
            ram_allocation_ratio=float(self.ram_ratio[i]),
            disk_allocation_ratio=float(self.disk_ratio[i]),
            reserved_host_memory_mb=int(self.reserved_ram[i]),
            reserved_host_disk_mb=int(self.reserved_disk_mb[i]),
            reserved_host_cpus=int(self.reserved_cpus[i]),
            service_disabled=bool(self.disabled[i]),
            service_forced_down=bool(self.forced_down[i]),
            last_seen_up=None if not self.has_service[i] or np.isnan(seen) else float(seen),
            instances=instances,
        )
