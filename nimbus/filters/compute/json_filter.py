"""The ``json`` filter: the ``query`` scheduler hint, a JSON prefix expression on host state."""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from nimbus.filters.base import BaseHostFilter
from nimbus.filters.types import Bools, Facts, HostArrays, HostState, Ints, RequestSpec

__all__ = ["JsonFilter"]

_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "=": operator.eq,
    "<": operator.lt,
    ">": operator.gt,
    "<=": operator.le,
    ">=": operator.ge,
}

#: Host state attributes the columnar form reads, as functions of the columns.
_COLUMNS: dict[str, Callable[[HostArrays, Ints], Any]] = {
    "free_ram_mb": lambda h, i: h.free_ram_mb(i),
    "free_disk_mb": lambda h, i: h.free_disk_gb(i) * 1024,
    "free_disk_gb": lambda h, i: h.free_disk_gb(i),
    "free_vcpus": lambda h, i: h.free_vcpus(i),
    "vcpus_total": lambda h, i: h.vcpus[i],
    "vcpus_used": lambda h, i: h.vcpus_used[i],
    "total_usable_ram_mb": lambda h, i: h.memory_mb[i],
    "memory_mb_used": lambda h, i: h.memory_mb_used[i],
    "total_usable_disk_gb": lambda h, i: h.local_gb[i],
    "local_gb_used": lambda h, i: h.local_gb_used[i],
    "num_instances": lambda h, i: h.running_vms[i],
    "hypervisor_version": lambda h, i: h.hypervisor_version[i],
}


class _Unvectorisable(Exception):
    """The query reads something the columns do not hold."""


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class JsonFilter(BaseHostFilter):
    """Pass hosts that satisfy the ``query`` hint, e.g. ``[">=", "$free_ram_mb", 1024]``."""

    name = "json"

    @staticmethod
    def query(spec: RequestSpec) -> Any:
        """Return the parsed ``query`` hint, or ``None`` when there is none."""
        values = spec.hint("query")
        if not values or not values[0]:
            return None
        return json.loads(values[0])

    # -- reference semantics ------------------------------------------------------

    def _lookup(self, host_state: HostState, path: str) -> Any:
        value: Any = host_state
        for part in path.split("."):
            if isinstance(value, dict):
                value = value.get(part)
            else:
                value = getattr(value, part, None)
            if value is None:
                return None
        return value

    def _evaluate(self, host_state: HostState, query: Any) -> Any:
        if not isinstance(query, list) or not query:
            return True
        args = []
        for arg in query[1:]:
            if isinstance(arg, list):
                arg = self._evaluate(host_state, arg)
            elif isinstance(arg, str) and arg.startswith("$"):
                arg = self._lookup(host_state, arg[1:])
            if arg is not None:
                args.append(arg)
        return self._apply(query[0], args)

    @staticmethod
    def _apply(command: Any, args: Sequence[Any]) -> Any:
        if command in _COMPARE:
            if len(args) < 2:
                return False
            return all(_COMPARE[command](args[0], other) for other in args[1:])
        if command == "in":
            return len(args) >= 2 and args[0] in args[1:]
        if command == "not":
            return bool(args) and not args[0]
        if command == "or":
            return any(args)
        if command == "and":
            return all(args)
        raise ValueError(f"unknown json filter operator {command!r}")

    def host_passes(self, host_state: HostState, spec: RequestSpec) -> bool:
        query = self.query(spec)
        if query is None:
            return True
        try:
            passed = bool(self._evaluate(host_state, query))
        except (TypeError, ValueError) as ex:
            return self.reject(host_state, f"query {query!r} cannot be evaluated: {ex}")
        if not passed:
            return self.reject(host_state, f"does not satisfy {json.dumps(query)}")
        return True

    # -- columnar form --------------------------------------------------------------

    def _columns(self, hosts: HostArrays, idx: Ints, query: Any) -> Any:
        if not isinstance(query, list) or not query:
            return True
        args = []
        for arg in query[1:]:
            if isinstance(arg, list):
                arg = self._columns(hosts, idx, arg)
            elif isinstance(arg, str) and arg.startswith("$"):
                column = _COLUMNS.get(arg[1:])
                if column is None:
                    raise _Unvectorisable(arg)
                arg = column(hosts, idx)
            elif not _is_number(arg):
                raise _Unvectorisable(arg)
            args.append(arg)
        command = query[0]
        if command in _COMPARE:
            if len(args) < 2:
                return False
            result = np.ones(idx.size, dtype=np.bool_)
            for other in args[1:]:
                result = result & _COMPARE[command](args[0], other)
            return result
        if command == "in":
            if len(args) < 2:
                return False
            found = np.zeros(idx.size, dtype=np.bool_)
            for other in args[1:]:
                found = found | (args[0] == other)
            return found
        if command == "not":
            return np.logical_not(args[0]) if args else False
        if command == "or":
            return (
                np.logical_or.reduce([np.broadcast_to(a, idx.shape) for a in args])
                if args
                else False
            )
        if command == "and":
            return (
                np.logical_and.reduce([np.broadcast_to(a, idx.shape) for a in args])
                if args
                else True
            )
        raise _Unvectorisable(command)

    def filter_all(
        self, hosts: HostArrays, idx: Ints, spec: RequestSpec, facts: Facts
    ) -> Bools | None:
        query = self.query(spec)
        if query is None:
            return np.ones(idx.size, dtype=np.bool_)
        try:
            result = self._columns(hosts, idx, query)
        except _Unvectorisable:
            return None
        ok: Bools = np.broadcast_to(np.asarray(result, dtype=np.bool_), idx.shape).copy()
        return ok
