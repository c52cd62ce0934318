"""The compute scheduler: host inventory, cached host table, filters' driver and claims.

The names load on first use: the compute API needs the inventory only,
and the scheduler's host table (numpy) stays out of processes that do not
schedule.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nimbus.compute.scheduler.inventory import HostInventory, service_is_up
    from nimbus.compute.scheduler.manager import Destination, Scheduler, Selection
    from nimbus.filters.types import RequestSpec, ServerGroupSpec

__all__ = [
    "Destination",
    "HostInventory",
    "RequestSpec",
    "Scheduler",
    "Selection",
    "ServerGroupSpec",
    "service_is_up",
]

_HOMES = {
    "HostInventory": "nimbus.compute.scheduler.inventory",
    "service_is_up": "nimbus.compute.scheduler.inventory",
    "Destination": "nimbus.compute.scheduler.manager",
    "Scheduler": "nimbus.compute.scheduler.manager",
    "Selection": "nimbus.compute.scheduler.manager",
    "RequestSpec": "nimbus.filters.types",
    "ServerGroupSpec": "nimbus.filters.types",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)
