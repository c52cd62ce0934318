"""Compute drivers: the hypervisors that run guests."""

from nimbus.drivers.compute.base import ComputeDriver
from nimbus.drivers.compute.types import (
    Capability,
    ConsoleEndpoint,
    GuestInfo,
    GuestSpec,
    GuestStats,
    HostResources,
    PowerState,
    Vif,
    VolumeConnection,
)

__all__ = [
    "Capability",
    "ComputeDriver",
    "ConsoleEndpoint",
    "GuestInfo",
    "GuestSpec",
    "GuestStats",
    "HostResources",
    "PowerState",
    "Vif",
    "VolumeConnection",
]
