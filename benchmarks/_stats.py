"""Figures the benchmarks share: percentiles, CPU time from /proc, strict JSON."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

__all__ = ["cpu_seconds", "jsonable", "machine_cpu_seconds", "percentile"]


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of sorted values (NaN when there are none)."""
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def cpu_seconds(pids: Sequence[int]) -> tuple[float, float]:
    """Return the user and system CPU seconds the processes *pids* used so far.

    Processes that are gone are left out.
    """
    tick = os.sysconf("SC_CLK_TCK")
    user = system = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii") as f:
                # The command name may hold spaces; the fields after it do not.
                fields = f.read().rpartition(")")[2].split()
        except OSError:
            continue
        user += int(fields[11]) / tick
        system += int(fields[12]) / tick
    return user, system


def machine_cpu_seconds() -> tuple[float, float]:
    """Return the machine's busy and total CPU seconds since boot (NaN without /proc/stat)."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except OSError:
        return math.nan, math.nan
    tick = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields) - idle) / tick, sum(fields) / tick


def jsonable(value: Any) -> Any:
    """Return *value* with NaN as null and tuples as lists, for strict JSON."""
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value
