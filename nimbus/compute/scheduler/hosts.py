"""The scheduler's in-memory host table, refreshed incrementally from the database.

Every compute node is one row of :class:`~nimbus.filters.HostArrays`.  A
refresh reads only the nodes whose ``updated_at`` moved since the previous
refresh began (less ``[scheduler] refresh_slack``, for transactions that
commit late and for clock differences between machines), skipping the rows
this scheduler's own claims changed last: it read those back inside the
claim.  Every ``heartbeat_refresh_interval`` it asks which compute
services missed their heartbeats (see :meth:`HostCache._check_heartbeats`)
and counts the rows, whose change (a deleted node or service) makes the next
refresh a full one.  Aggregates are small: any change reloads them all.
"""

from __future__ import annotations

import datetime
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import sqlalchemy as sa
from oslo_config import cfg

from nimbus.compute.scheduler.inventory import COMPUTE_BINARY, epoch
from nimbus.compute.scheduler.models import (
    Aggregate,
    AggregateHost,
    AggregateMetadata,
    ComputeNode,
    Service,
)
from nimbus.db.api import Database
from nimbus.filters.types import AggregateInfo, HostArrays, Ints

__all__ = ["HostCache", "NODE_COLUMNS"]

LOG = logging.getLogger(__name__)

_N = ComputeNode.__table__.c
_S = Service.__table__.c

#: The node columns a refresh (and a claim's read-back) selects, in order.
NODE_COLUMNS = (
    _N.id,
    _N.uuid,
    _N.host,
    _N.hypervisor_hostname,
    _N.hypervisor_type,
    _N.hypervisor_version,
    _N.vcpus,
    _N.memory_mb,
    _N.local_gb,
    _N.vcpus_used,
    _N.memory_mb_used,
    _N.local_gb_used,
    _N.running_vms,
    _N.cpu_info,
    _N.supported_instances,
    _N.cpu_allocation_ratio,
    _N.ram_allocation_ratio,
    _N.disk_allocation_ratio,
    _N.reserved_host_memory_mb,
    _N.reserved_host_disk_mb,
    _N.reserved_host_cpus,
    _N.disk_available_least,
    _N.generation,
    _N.updated_at,
)
_SERVICE_COLUMNS = (_S.host, _S.disabled, _S.forced_down, _S.last_seen_up, _S.updated_at)
_RATIOS = (
    ("cpu_ratio", "cpu_allocation_ratio"),
    ("ram_ratio", "ram_allocation_ratio"),
    ("disk_ratio", "disk_allocation_ratio"),
)
_RESERVED = (
    ("reserved_ram", "reserved_host_memory_mb"),
    ("reserved_disk_mb", "reserved_host_disk_mb"),
    ("reserved_cpus", "reserved_host_cpus"),
)
_FAR_PAST = datetime.datetime(1970, 1, 1)


def _utc(seconds: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).replace(tzinfo=None)


def _floats(values: Iterable[Any]) -> np.ndarray[Any, np.dtype[np.float64]]:
    return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)


class HostCache:
    """The compute nodes as columns, kept in step with the database.

    :param conf: the nimbus config (``[scheduler]`` options).
    :param database: nimbus's database.
    :param scheduler_id: the ``updated_by`` this scheduler's claims write.
    :param clock: seconds since the epoch (monotonic enough), injected for tests.
    """

    def __init__(
        self,
        conf: cfg.ConfigOpts,
        database: Database,
        *,
        scheduler_id: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.conf = conf
        self.db = database
        self.scheduler_id = scheduler_id
        self.clock = clock
        self.lock = threading.RLock()
        self._reset()

    def _reset(self) -> None:
        self.arrays = HostArrays(0)
        self.index_of: dict[int, int] = {}
        self._raw = {name: np.zeros(0) for _, name in (*_RATIOS, *_RESERVED)}
        self._nodes_of_host: dict[str, list[int]] = {}
        self._service_of_host: dict[str, tuple[bool, bool, float]] = {}
        self._aggs_of_host: dict[str, tuple[int, ...]] = {}
        self._aggregates: dict[int, AggregateInfo] = {}
        self._agg_code_of: dict[tuple[int, ...], int] = {(): 0}
        self._si_code_of: dict[str, int] = {"[]": 0}
        self._json: dict[str, Any] = {}
        self._ratio_tables: dict[tuple[str, int, int], np.ndarray[Any, np.dtype[np.float64]]] = {}
        self._since = _FAR_PAST
        self._agg_state: tuple[Any, ...] | None = None
        self._last_refresh = -np.inf
        self._last_heartbeats = -np.inf
        self._loaded = False

    # -- refreshing -------------------------------------------------------------

    def refresh(self, *, force: bool = False) -> None:
        """Bring the table up to date (at most every ``refresh_interval`` unless *force*)."""
        conf = self.conf.scheduler
        now = self.clock()
        with self.lock:
            if not self._loaded:
                self._full_load()
                return
            if not force and now - self._last_refresh < conf.refresh_interval:
                return
            heartbeats = force or now - self._last_heartbeats >= conf.heartbeat_refresh_interval
            with self.db.reader() as session:
                if heartbeats and self._counts_changed(session):
                    self._reset()
                    self._full_load()
                    return
                self._refresh_aggregates(session)
                since = self._since - datetime.timedelta(seconds=conf.refresh_slack)
                self._since = _utc(now)
                rows = session.execute(
                    sa.select(*NODE_COLUMNS).where(
                        _N.updated_at > since,
                        sa.or_(_N.updated_by.is_(None), _N.updated_by != self.scheduler_id),
                    )
                ).all()
                self._apply_nodes(rows)
                services = session.execute(
                    sa.select(*_SERVICE_COLUMNS).where(
                        _S.binary == COMPUTE_BINARY, _S.updated_at > since
                    )
                ).all()
                self._apply_services(services)
                if heartbeats:
                    self._check_heartbeats(session)
                    self._last_heartbeats = now
            self._last_refresh = now

    def refresh_node(self, node_id: int) -> None:
        """Read one node again (after a claim on it failed)."""
        with self.db.reader() as session:
            rows = session.execute(sa.select(*NODE_COLUMNS).where(_N.id == node_id)).all()
        with self.lock:
            self._apply_nodes(rows)

    def _check_heartbeats(self, session: Any) -> None:
        """Find the compute services whose heartbeat is older than ``service_down_time``.

        Reading every heartbeat would cost one row per host every few
        seconds; the services that are down are few, and an index on
        ``last_seen_up`` finds them.  Every other host's heartbeat is known
        to be at most ``service_down_time`` old now, which is what the
        cache records for it.
        """
        now = self.clock()
        cutoff = datetime.datetime.fromtimestamp(
            now - self.conf.scheduler.service_down_time, datetime.UTC
        ).replace(tzinfo=None)
        stale = session.execute(
            sa.select(_S.host, _S.last_seen_up).where(
                _S.binary == COMPUTE_BINARY,
                sa.or_(_S.last_seen_up.is_(None), _S.last_seen_up < cutoff),
            )
        ).all()
        arrays = self.arrays
        arrays.last_seen_up[arrays.has_service] = now
        for host, seen in stale:
            value = np.nan if seen is None else epoch(seen)
            disabled, forced_down, _ = self._service_of_host.get(host, (False, False, value))
            self._service_of_host[host] = (disabled, forced_down, value)
            for i in self._nodes_of_host.get(host, ()):
                arrays.last_seen_up[i] = value

    def _counts_changed(self, session: Any) -> bool:
        nodes = session.scalar(sa.select(sa.func.count()).select_from(ComputeNode))
        services = session.scalar(sa.select(sa.func.count()).where(_S.binary == COMPUTE_BINARY))
        return bool(nodes != len(self.index_of) or services != len(self._service_of_host))

    def _full_load(self) -> None:
        now = self.clock()
        self._since = _utc(now)
        with self.db.reader() as session:
            self._refresh_aggregates(session)
            self._apply_nodes(session.execute(sa.select(*NODE_COLUMNS)).all())
            self._apply_services(
                session.execute(
                    sa.select(*_SERVICE_COLUMNS).where(_S.binary == COMPUTE_BINARY)
                ).all()
            )
        self._loaded = True
        self._last_refresh = self._last_heartbeats = now

    def _refresh_aggregates(self, session: Any) -> None:
        state = tuple(
            session.execute(sa.select(sa.func.count(), sa.func.max(Aggregate.updated_at))).one()
        )
        if state == self._agg_state:
            return
        self._agg_state = state
        metadata: dict[int, dict[str, str]] = {}
        for agg_id, key, value in session.execute(
            sa.select(
                AggregateMetadata.aggregate_id, AggregateMetadata.key, AggregateMetadata.value
            )
        ):
            metadata.setdefault(agg_id, {})[key] = value
        self._aggregates = {
            agg_id: AggregateInfo(id=agg_id, name=name, metadata=metadata.get(agg_id, {}))
            for agg_id, name in session.execute(sa.select(Aggregate.id, Aggregate.name))
        }
        members: dict[str, list[int]] = {}
        for agg_id, host in session.execute(
            sa.select(AggregateHost.aggregate_id, AggregateHost.host)
        ):
            members.setdefault(host, []).append(agg_id)
        self._aggs_of_host = {host: tuple(sorted(ids)) for host, ids in members.items()}
        arrays = self.arrays
        arrays.agg_sets = [()]
        self._agg_code_of = {(): 0}
        arrays.sets_changed()
        for host, nodes in self._nodes_of_host.items():
            code = self._agg_code(host)
            for i in nodes:
                arrays.agg_code[i] = code
        self._effective(np.arange(arrays.size))

    def _agg_code(self, host: str) -> int:
        ids = self._aggs_of_host.get(host, ())
        code = self._agg_code_of.get(ids)
        if code is None:
            code = len(self.arrays.agg_sets)
            self._agg_code_of[ids] = code
            self.arrays.agg_sets.append(tuple(self._aggregates[i] for i in ids))
        return code

    def _si_code(self, text: str) -> int:
        code = self._si_code_of.get(text)
        if code is None:
            code = len(self.arrays.si_sets)
            self._si_code_of[text] = code
            self.arrays.si_sets.append(tuple(tuple(s) for s in json.loads(text)))
            self.arrays.sets_changed()
        return code

    def _parsed(self, text: str) -> Any:
        value = self._json.get(text)
        if value is None:
            value = json.loads(text or "{}")
            self._json[text] = value
        return value

    def _host_code(self, host: str) -> int:
        code = self.arrays.host_code_of.get(host)
        if code is None:
            code = len(self.arrays.host_names)
            self.arrays.host_code_of[host] = code
            self.arrays.host_names.append(host)
        return code

    def apply_rows(self, rows: Sequence[Sequence[Any]]) -> None:
        """Take node rows (selected as :data:`NODE_COLUMNS`) into the table."""
        with self.lock:
            self._apply_nodes(rows)

    def _apply_nodes(self, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        arrays = self.arrays
        new = [row for row in rows if row[0] not in self.index_of]
        if new:
            start = arrays.size
            arrays.grow(start + len(new))
            for name in self._raw:
                self._raw[name] = np.concatenate([self._raw[name], np.full(len(new), np.nan)])
            for offset, row in enumerate(new):
                i = start + offset
                self.index_of[row[0]] = i
                host = row[2]
                self._nodes_of_host.setdefault(host, []).append(i)
                arrays.host[i] = host
                arrays.host_code[i] = self._host_code(host)
                arrays.agg_code[i] = self._agg_code(host)
                service = self._service_of_host.get(host)
                if service is not None:
                    self._set_service(i, service)
        idx = np.array([self.index_of[row[0]] for row in rows], dtype=np.int64)
        columns = list(zip(*rows, strict=True))
        (node_id, uuid, _host, nodename, hv_type, hv_version, vcpus, memory, disk, vcpus_used,
         memory_used, disk_used, vms, cpu_info, supported, cpu_r, ram_r, disk_r, res_ram,
         res_disk, res_cpus, least, generation, updated) = columns  # fmt: skip
        arrays.node_id[idx] = node_id
        arrays.hypervisor_version[idx] = hv_version
        arrays.vcpus[idx] = vcpus
        arrays.memory_mb[idx] = memory
        arrays.local_gb[idx] = disk
        arrays.vcpus_used[idx] = vcpus_used
        arrays.memory_mb_used[idx] = memory_used
        arrays.local_gb_used[idx] = disk_used
        arrays.running_vms[idx] = vms
        arrays.generation[idx] = generation
        arrays.disk_least[idx] = _floats(least)
        arrays.si_code[idx] = [self._si_code(text) for text in supported]
        for position, i in enumerate(idx.tolist()):
            arrays.uuid[i] = uuid[position]
            arrays.nodename[i] = nodename[position]
            arrays.hypervisor_type[i] = hv_type[position]
            arrays.cpu_info[i] = self._parsed(cpu_info[position])
        for name, values in (
            ("cpu_allocation_ratio", cpu_r),
            ("ram_allocation_ratio", ram_r),
            ("disk_allocation_ratio", disk_r),
            ("reserved_host_memory_mb", res_ram),
            ("reserved_host_disk_mb", res_disk),
            ("reserved_host_cpus", res_cpus),
        ):
            self._raw[name][idx] = _floats(values)
        self._effective(idx)

    def _effective(self, idx: Ints) -> None:
        """Work out the ratios and reserved amounts of hosts *idx*: node, aggregate, option."""
        if idx.size == 0:
            return
        arrays = self.arrays
        conf = self.conf.scheduler
        codes = arrays.agg_code[idx]
        for column, option in _RATIOS:
            table = self._ratio_table(option)
            fallback = np.where(np.isnan(table[codes]), float(getattr(conf, option)), table[codes])
            raw = self._raw[option][idx]
            getattr(arrays, column)[idx] = np.where(np.isnan(raw), fallback, raw)
        for column, option in _RESERVED:
            raw = self._raw[option][idx]
            getattr(arrays, column)[idx] = np.where(
                np.isnan(raw), float(getattr(conf, option)), raw
            ).astype(np.int64)

    def _ratio_table(self, option: str) -> np.ndarray[Any, np.dtype[np.float64]]:
        arrays = self.arrays
        key = (option, arrays.agg_version, len(arrays.agg_sets))
        table = self._ratio_tables.get(key)
        if table is None:
            table = np.array(
                [self._aggregate_ratio(aggs, option) for aggs in arrays.agg_sets], dtype=np.float64
            )
            self._ratio_tables = {k: v for k, v in self._ratio_tables.items() if k[1] == key[1]}
            self._ratio_tables[key] = table
        return table

    @staticmethod
    def _aggregate_ratio(aggregates: Sequence[AggregateInfo], option: str) -> float:
        values = []
        for agg in aggregates:
            try:
                values.append(float(agg.metadata[option]))
            except (KeyError, ValueError):
                continue
        return min(values) if values else np.nan

    def aggregate_fallbacks(self, i: int) -> dict[str, float]:
        """Return the ratios host *i* has when its node sets none (aggregate, then option)."""
        conf = self.conf.scheduler
        result = {}
        for _column, option in _RATIOS:
            value = self._aggregate_ratio(
                self.arrays.agg_sets[int(self.arrays.agg_code[i])], option
            )
            result[option] = float(getattr(conf, option)) if np.isnan(value) else value
        for _column, option in _RESERVED:
            result[option] = float(getattr(conf, option))
        return result

    def _set_service(self, i: int, service: tuple[bool, bool, float]) -> None:
        arrays = self.arrays
        arrays.has_service[i] = True
        arrays.disabled[i], arrays.forced_down[i], arrays.last_seen_up[i] = service

    def _apply_services(self, rows: Sequence[Sequence[Any]]) -> None:
        for host, disabled, forced_down, seen, _updated in rows:
            service = (bool(disabled), bool(forced_down), np.nan if seen is None else epoch(seen))
            self._service_of_host[host] = service
            for i in self._nodes_of_host.get(host, ()):
                self._set_service(i, service)
