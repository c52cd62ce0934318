"""The compute scheduler: host inventory, cached host table, filters' driver and claims."""

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
