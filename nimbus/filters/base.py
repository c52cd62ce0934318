"""Base classes of scheduler filters and weighers.

A filter decides whether one host may take the request
(:meth:`BaseHostFilter.host_passes`, the reference semantics, which a third
party's filter alone needs) and may also decide for many hosts at once over
the scheduler's columns (:meth:`BaseHostFilter.filter_all`), which is how
in-tree filters stay fast at 100,000 hosts.  Both forms must agree; the
property tests in ``tests/unit/filters`` hold the in-tree ones to it.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Callable, Hashable, Sequence
from typing import Any, ClassVar

import numpy as np
from oslo_config import cfg

from nimbus.filters.types import Bools, Facts, Floats, HostArrays, HostState, Ints, RequestSpec

__all__ = ["BaseHostFilter", "BaseHostWeigher", "normalize"]

_TABLE_CACHE_SIZE = 64


class _CodeTables:
    """Per-code answers (one per distinct aggregate set, say), remembered per key."""

    def __init__(self) -> None:
        self._tables: dict[Hashable, Any] = {}

    def get(self, key: Hashable, count: int, decide: Callable[[int], Any], dtype: Any) -> Any:
        table = self._tables.get(key)
        if table is None or len(table) != count:
            table = np.array([decide(code) for code in range(count)], dtype=dtype)
            if len(self._tables) >= _TABLE_CACHE_SIZE:
                self._tables.clear()
            self._tables[key] = table
        return table


class BaseHostFilter(abc.ABC):
    """A test every candidate host must pass for a request to land on it.

    :param conf: the nimbus config (``[scheduler]`` options).
    :param clock: seconds since the epoch, injected for tests.
    """

    #: The entry-point name, used in "no valid host" messages.
    name: ClassVar[str] = ""

    def __init__(self, conf: cfg.ConfigOpts, *, clock: Callable[[], float] = time.time) -> None:
        self.conf = conf
        self.clock = clock
        self._codes = _CodeTables()

    @property
    def label(self) -> str:
        """Return the name messages use: the entry-point name or the class name."""
        return self.name or type(self).__name__

    @abc.abstractmethod
    def host_passes(self, host_state: HostState, spec: RequestSpec) -> bool:
        """Tell whether *host_state* may take one instance of *spec*.

        A rejection should go through :meth:`reject`, which records why.
        """

    def filter_all(
        self, hosts: HostArrays, idx: Ints, spec: RequestSpec, facts: Facts
    ) -> Bools | None:
        """Return which of the hosts *idx* pass, as a boolean mask, or ``None``.

        ``None`` (the default) means the filter has no columnar form: the
        scheduler then calls :meth:`host_passes` on each host left.
        """
        return None

    def reject(self, host_state: HostState, reason: str) -> bool:
        """Record why *host_state* fails this filter; return ``False``."""
        host_state.rejection = (self.label, reason)
        return False

    def per_code(
        self,
        key: Hashable,
        count: int,
        decide: Callable[[int], bool],
    ) -> Bools:
        """Return ``decide(code)`` for every code below *count*, remembered under *key*."""
        table: Bools = self._codes.get(key, count, decide, np.bool_)
        return table


class BaseHostWeigher(abc.ABC):
    """A preference among the hosts that passed the filters.

    Raw weights are normalised to 0..1 over the hosts being weighed
    (:func:`normalize`, with :attr:`minval` / :attr:`maxval` fixed where the
    weigher sets them), multiplied by :meth:`weight_multiplier` and summed
    over the weighers; the highest total wins.

    :param conf: the nimbus config (``[scheduler]`` options).
    """

    #: The ``[scheduler]`` option (and aggregate metadata key) of the multiplier.
    multiplier_option: ClassVar[str] = ""
    minval: ClassVar[float | None] = None
    maxval: ClassVar[float | None] = None

    def __init__(self, conf: cfg.ConfigOpts) -> None:
        self.conf = conf
        self._codes = _CodeTables()

    @abc.abstractmethod
    def weigh(self, host_state: HostState, spec: RequestSpec) -> float:
        """Return the raw (not yet normalised) weight of *host_state*."""

    def weigh_all(self, hosts: HostArrays, idx: Ints, spec: RequestSpec) -> Floats | None:
        """Return the raw weights of the hosts *idx*, or ``None`` (no columnar form)."""
        return None

    def weight_multiplier(self, host_state: HostState) -> float:
        """Return the multiplier for *host_state*: its aggregates' smallest, or the option."""
        return self._multiplier_of(host_state.aggregates)

    def _multiplier_of(self, aggregates: Sequence[Any]) -> float:
        values = []
        for agg in aggregates:
            raw = agg.metadata.get(self.multiplier_option)
            if raw is None:
                continue
            try:
                values.append(float(raw))
            except ValueError:
                continue
        if values:
            return min(values)
        return float(getattr(self.conf.scheduler, self.multiplier_option))

    def multipliers(self, hosts: HostArrays, idx: Ints) -> Floats:
        """Return :meth:`weight_multiplier` of every host *idx*, decided per aggregate set."""
        table = self._codes.get(
            ("multiplier", hosts.agg_version, len(hosts.agg_sets)),
            len(hosts.agg_sets),
            lambda code: self._multiplier_of(hosts.agg_sets[code]),
            np.float64,
        )
        result: Floats = table[hosts.agg_code[idx]]
        return result


def normalize(weights: Floats, minval: float | None = None, maxval: float | None = None) -> Floats:
    """Scale *weights* to 0..1 between *minval* and *maxval* (their own by default).

    All weights equal (or an empty range) gives zeros, as Nova does.
    """
    if weights.size == 0:
        return weights.astype(np.float64)
    low = float(weights.min()) if minval is None else minval
    high = float(weights.max()) if maxval is None else maxval
    if high <= low:
        return np.zeros(weights.shape, dtype=np.float64)
    scaled: Floats = (weights - low) / (high - low)
    return scaled
