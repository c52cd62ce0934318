"""The compute scheduler: filter, weigh and claim, in one decision.

:meth:`Scheduler.select_destinations` runs the enabled filters in order over
the cached host table (each filter's columnar form where it has one, its
``host_passes`` on the hosts left where it has not), weighs the survivors,
and claims the best host with a conditional UPDATE (see
:mod:`nimbus.compute.scheduler.claims`).  A claim that finds the host full
(another scheduler took the room) re-reads that host and tries the next.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import threading
import time
import uuid as uuidlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import sqlalchemy as sa
from oslo_config import cfg
from sqlalchemy import exc, orm

from nimbus import exception, registry
from nimbus.compute.scheduler import claims
from nimbus.compute.scheduler.hosts import HostCache
from nimbus.compute.scheduler.models import Allocation
from nimbus.conf import scheduler as scheduler_opts
from nimbus.db.api import Database
from nimbus.filters.base import BaseHostFilter, BaseHostWeigher, normalize
from nimbus.filters.types import Facts, Floats, HostArrays, Ints, RequestSpec, ServerGroupSpec

__all__ = ["Destination", "FILTERS_NAMESPACE", "Scheduler", "Selection", "WEIGHERS_NAMESPACE"]

LOG = logging.getLogger(__name__)

FILTERS_NAMESPACE = "nimbus.filters.compute"
WEIGHERS_NAMESPACE = "nimbus.weighers.compute"
#: How many hosts beyond the ones needed are ranked before a full sort.
_SPARE = 16
_LOCATE = sa.select(Allocation.instance_uuid, Allocation.node_id).where(
    Allocation.instance_uuid.in_(sa.bindparam("uuids", expanding=True))
)
_SAMPLES = 3


@dataclasses.dataclass(frozen=True)
class Destination:
    """A host and node an instance may go to."""

    host: str
    nodename: str
    node_uuid: str


@dataclasses.dataclass(frozen=True)
class Selection:
    """Where one instance was claimed, and where to try next if its build fails."""

    instance_uuid: str
    host: str
    nodename: str
    node_uuid: str
    alternates: tuple[Destination, ...] = ()


class _Ranking:
    """Hosts that passed, best first: the best few sorted now, the rest on demand."""

    def __init__(self, idx: Ints, total: Floats, wanted: int) -> None:
        self._idx = idx
        self._total = total
        if idx.size > wanted:
            head = np.argpartition(-total, wanted)[:wanted]
            self._rest: Ints | None = np.ones(idx.size, dtype=np.bool_)
            self._rest[head] = False
        else:
            head = np.arange(idx.size)
            self._rest = None
        self.best = self._sorted(head)

    def _sorted(self, positions: Ints) -> list[int]:
        order = positions[np.lexsort((self._idx[positions], -self._total[positions]))]
        return [int(i) for i in self._idx[order]]

    def extend(self) -> bool:
        """Sort the rest in too; ``False`` when there was none."""
        if self._rest is None:
            return False
        rest = np.nonzero(self._rest)[0]
        self._rest = None
        self.best = self.best + self._sorted(rest)
        return bool(rest.size)


@dataclasses.dataclass
class _Step:
    name: str
    before: int
    after: int
    removed: Ints


class Scheduler:
    """Pick and claim compute nodes for instances.

    :param conf: the nimbus config (``[scheduler]`` options).
    :param database: nimbus's database.
    :param filters: the filters to run, in order (default: ``enabled_filters``
        loaded from their entry points).
    :param weighers: the weighers (default: ``enabled_weighers``).
    :param clock: seconds since the epoch, injected for tests.
    :param rng: chooses among the best ``host_subset_size`` hosts.
    """

    def __init__(
        self,
        conf: cfg.ConfigOpts,
        database: Database,
        *,
        filters: Sequence[BaseHostFilter] | None = None,
        weighers: Sequence[BaseHostWeigher] | None = None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        scheduler_opts.register_opts(conf)
        self.conf = conf
        self.db = database
        self.clock = clock
        self.rng = rng or random.Random()
        self.id = str(uuidlib.uuid4())
        if filters is None:
            names = list(conf.scheduler.enabled_filters)
            filters = registry.load_ordered(
                FILTERS_NAMESPACE, names, conf, expected=BaseHostFilter, clock=clock
            )
            self.filters = list(zip(names, filters, strict=True))
        else:
            self.filters = [(f.label, f) for f in filters]
        if weighers is None:
            weighers = registry.load_ordered(
                WEIGHERS_NAMESPACE, list(conf.scheduler.enabled_weighers), conf,
                expected=BaseHostWeigher,
            )  # fmt: skip
        self.weighers = list(weighers)
        self.cache = HostCache(conf, database, scheduler_id=self.id, clock=clock)
        self._lock = threading.Lock()

    # -- the decision ---------------------------------------------------------------

    def select_destinations(
        self, spec: RequestSpec, instance_uuids: Sequence[str]
    ) -> list[Selection]:
        """Choose and claim a node for each of *instance_uuids*.

        An instance that already holds a claim keeps it (the conductor
        retries after a crash).  Later instances see the earlier ones'
        usage and, for groups, their hosts.

        :raises NoValidHost: some instance fits nowhere; the claims this
            call made are released again.
        """
        with self._lock:
            self.cache.refresh()
            made: list[str] = []
            try:
                return self._select(spec, instance_uuids, made)
            except BaseException:
                for uuid in made:
                    self._release(uuid)
                raise

    def _select(
        self, spec: RequestSpec, instance_uuids: Sequence[str], made: list[str]
    ) -> list[Selection]:
        referenced = {*spec.hint("different_host"), *spec.hint("same_host")}
        if spec.group is not None:
            referenced.update(spec.group.members)
        # An instance that holds a claim already keeps it: its claim's INSERT
        # fails and the claim found is returned (see _try_claim).
        node_of = self._locate(referenced)
        selections = []
        placed: list[str] = []
        for uuid in instance_uuids:
            own = {u: n for u, n in node_of.items() if u != uuid}
            current = self._spec_for(spec, placed, own)
            facts = Facts(node_of=own, now=self.clock())
            if uuid in node_of:
                # Claimed by an earlier try of this request: keep it.
                try:
                    order = self._decide(current, facts).best
                except exception.NoValidHost:
                    order = []
                i = node_of[uuid]
                selection = self._make_selection(uuid, i, [j for j in order if j != i])
            else:
                try:
                    ranking = self._decide(current, facts)
                except exception.NoValidHost:
                    held = self._held(uuid)
                    if held is None:
                        raise
                    ranking = _Ranking(np.zeros(0, dtype=np.int64), np.zeros(0), 0)
                selection, i, new = self._claim_first(uuid, current, ranking)
                if new:
                    made.append(uuid)
            node_of[uuid] = i
            placed.append(uuid)
            selections.append(selection)
        return selections

    def _spec_for(
        self, spec: RequestSpec, placed: Sequence[str], node_of: dict[str, int]
    ) -> RequestSpec:
        group = spec.group
        if group is None:
            return spec
        members = tuple(dict.fromkeys([*group.members, *placed]))
        hosts = group.hosts or tuple(
            sorted({self.cache.arrays.host[node_of[u]] for u in members if u in node_of})
        )
        return dataclasses.replace(
            spec, group=dataclasses.replace(group, members=members, hosts=hosts)
        )

    def _locate(self, uuids: set[str]) -> dict[str, int]:
        """Return the cache index of the node of each instance in *uuids* that has a claim."""
        if not uuids:
            return {}
        with self.db.engine.connect() as conn:
            rows = conn.execute(_LOCATE, {"uuids": sorted(uuids)}).all()
        missing = {node for _u, node in rows if node not in self.cache.index_of}
        for node in missing:
            self.cache.refresh_node(node)
        return {u: self.cache.index_of[n] for u, n in rows if n in self.cache.index_of}

    def _held(self, uuid: str) -> claims.Claimed | None:
        with self.db.reader() as session:
            return claims.existing(session, uuid)

    def _index(self, held: claims.Claimed) -> int:
        if held.node_id not in self.cache.index_of:
            self.cache.refresh_node(held.node_id)
        return self.cache.index_of[held.node_id]

    def _candidates(self, spec: RequestSpec) -> tuple[Ints, bool]:
        arrays = self.cache.arrays
        idx = np.arange(arrays.size, dtype=np.int64)
        codes = arrays.host_code_of
        if spec.ignore_hosts:
            ignored = [codes[h] for h in spec.ignore_hosts if h in codes]
            idx = idx[~np.isin(arrays.host_code[idx], ignored)]
        if spec.force_hosts:
            forced = [codes[h] for h in spec.force_hosts if h in codes]
            return idx[np.isin(arrays.host_code[idx], forced)], True
        return idx, False

    def _decide(self, spec: RequestSpec, facts: Facts) -> _Ranking:
        """Return the hosts that pass, best first (at least the best few in order)."""
        idx, forced = self._candidates(spec)
        arrays = self.cache.arrays
        if idx.size == 0:
            raise exception.NoValidHost(reason=self._no_hosts_reason(spec))
        steps: list[_Step] = []
        if not forced:
            for name, flt in self.filters:
                before = idx.size
                mask = flt.filter_all(arrays, idx, spec, facts)
                if mask is None:
                    mask = np.fromiter(
                        (flt.host_passes(arrays.state(int(i), facts), spec) for i in idx),
                        dtype=np.bool_,
                        count=idx.size,
                    )
                steps.append(_Step(name, before, int(mask.sum()), idx[~mask]))
                idx = idx[mask]
                if idx.size == 0:
                    raise exception.NoValidHost(reason=self._explain(steps, spec, facts))
        return self._weigh(idx, spec)

    def _weigh(self, idx: Ints, spec: RequestSpec) -> _Ranking:
        arrays = self.cache.arrays
        total = np.zeros(idx.size, dtype=np.float64)
        for weigher in self.weighers:
            multipliers = weigher.multipliers(arrays, idx)
            if not multipliers.any():
                continue
            raw = weigher.weigh_all(arrays, idx, spec)
            if raw is None:
                raw = np.array([weigher.weigh(arrays.state(int(i)), spec) for i in idx])
            total += multipliers * normalize(raw, weigher.minval, weigher.maxval)
        wanted = self.conf.scheduler.host_subset_size + self.conf.scheduler.max_attempts + _SPARE
        return _Ranking(idx, total, wanted)

    def _fallback(self, i: int) -> dict[str, float]:
        return self.cache.aggregate_fallbacks(i)

    def _claim_first(
        self, uuid: str, spec: RequestSpec, ranking: _Ranking
    ) -> tuple[Selection, int, bool]:
        """Claim the best host that still has room; return it, its index, and if it is new."""
        request = claims.Request(spec.vcpus, spec.memory_mb, spec.disk_gb, spec.project_id)
        order = ranking.best
        subset = min(self.conf.scheduler.host_subset_size, len(order))
        if subset > 1:
            pick = self.rng.randrange(subset)
            order.insert(0, order.pop(pick))
        failed: set[int] = set()
        position = 0
        while True:
            if position == len(order):
                if not ranking.extend():
                    break
                order = ranking.best
            i = order[position]
            position += 1
            outcome = self._try_claim(uuid, i, request)
            if isinstance(outcome, claims.Claimed):
                i = self._index(outcome)
            elif not outcome:
                failed.add(i)
                self.cache.refresh_node(int(self.cache.arrays.node_id[i]))
                continue
            if len(order) - position < self.conf.scheduler.max_attempts:
                ranking.extend()
                order = ranking.best
            remaining = [j for j in order if j != i and j not in failed]
            return self._make_selection(uuid, i, remaining), i, outcome is True
        held = self._held(uuid)
        if held is not None:
            i = self._index(held)
            return self._make_selection(uuid, i, []), i, False
        raise exception.NoValidHost(
            reason=f"all {len(order)} hosts that passed the filters were claimed "
            "by other requests meanwhile"
        )

    def _try_claim(self, uuid: str, i: int, request: claims.Request) -> claims.Claimed | bool:
        arrays = self.cache.arrays
        node_id = int(arrays.node_id[i])
        fallback = self._fallback(i)

        def _claim(session: orm.Session) -> Any:
            return claims.claim(
                session,
                instance_uuid=uuid,
                node_id=node_id,
                host=arrays.host[i],
                request=request,
                fallback=fallback,
                me=self.id,
            )

        try:
            row = self.db.write(_claim)
        except exc.IntegrityError:
            # The instance was claimed meanwhile (a retry racing its first try).
            held = self._held(uuid)
            if held is None:
                raise
            return held
        if row is None:
            return False
        self.cache.apply_rows([row])
        return True

    def _make_selection(self, uuid: str, i: int, remaining: Sequence[int]) -> Selection:
        arrays = self.cache.arrays
        alternates = tuple(
            Destination(arrays.host[j], arrays.nodename[j], arrays.uuid[j])
            for j in remaining[: self.conf.scheduler.max_attempts - 1]
        )
        return Selection(uuid, arrays.host[i], arrays.nodename[i], arrays.uuid[i], alternates)

    # -- explaining -------------------------------------------------------------------

    def _no_hosts_reason(self, spec: RequestSpec) -> str:
        if self.cache.arrays.size == 0:
            return "There are no compute nodes."
        if spec.force_hosts:
            return f"None of the forced hosts {', '.join(spec.force_hosts)} is known."
        return f"Every host is in ignore_hosts ({', '.join(spec.ignore_hosts)})."

    def _explain(self, steps: Sequence[_Step], spec: RequestSpec, facts: Facts) -> str:
        arrays = self.cache.arrays
        parts = []
        for step in steps:
            text = f"{step.name}: {step.before} -> {step.after} hosts"
            if step.after == 0:
                flt = dict(self.filters)[step.name]
                reasons = []
                for i in step.removed[:_SAMPLES]:
                    state = arrays.state(int(i), facts)
                    flt.host_passes(state, spec)
                    why = state.rejection[1] if state.rejection else "rejected"
                    reasons.append(f"{state.host}: {why}")
                if step.removed.size > _SAMPLES:
                    reasons.append(f"{step.removed.size - _SAMPLES} more")
                text += f" ({'; '.join(reasons)})"
            parts.append(text)
        return "; ".join(parts)

    # -- releases and moves --------------------------------------------------------------

    def _release(self, uuid: str) -> bool:
        row = self.db.write(lambda session: claims.release(session, uuid, me=self.id))
        if row is None:
            return False
        self.cache.apply_rows([row])
        return True

    def release(self, instance_uuid: str) -> bool:
        """Give back the claim of *instance_uuid*; ``False`` if it held none."""
        with self._lock:
            return self._release(instance_uuid)

    def reschedule(
        self, spec: RequestSpec, instance_uuid: str, alternates: Sequence[Destination]
    ) -> Selection:
        """Move a failed build's claim to the first of *alternates* that has room.

        The failed host's claim is released whatever happens.

        :raises NoValidHost: none of the alternates has room.
        """
        request = claims.Request(spec.vcpus, spec.memory_mb, spec.disk_gb, spec.project_id)
        with self._lock:
            self.cache.refresh()
            self._release(instance_uuid)
            by_uuid = {self.cache.arrays.uuid[i]: i for i in self.cache.index_of.values()}
            candidates = [by_uuid[d.node_uuid] for d in alternates if d.node_uuid in by_uuid]
            for position, i in enumerate(candidates):
                outcome = self._try_claim(instance_uuid, i, request)
                if isinstance(outcome, claims.Claimed):
                    i = self._index(outcome)
                    return self._make_selection(instance_uuid, i, [j for j in candidates if j != i])
                if outcome:
                    return self._make_selection(instance_uuid, i, candidates[position + 1 :])
            raise exception.NoValidHost(
                reason=f"none of the {len(alternates)} alternate hosts has room left"
            )

    def group_spec(self, group: ServerGroupSpec) -> ServerGroupSpec:
        """Return *group* with the hosts of its members filled in from their claims."""
        with self._lock:
            self.cache.refresh()
            node_of = self._locate(set(group.members))
            hosts = sorted({self.cache.arrays.host[i] for i in node_of.values()})
            return dataclasses.replace(group, hosts=tuple(hosts))

    @property
    def hosts(self) -> HostArrays:
        """Return the cached host table (for tests and diagnostics)."""
        return self.cache.arrays
