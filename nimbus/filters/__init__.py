"""Scheduler filters and weighers, and the types they see.

Compute filters register in the ``nimbus.filters.compute`` entry-point
namespace and weighers in ``nimbus.weighers.compute``; operators enable them
by name, in order (``[scheduler] enabled_filters`` / ``enabled_weighers``).
"""

from nimbus.filters.base import BaseHostFilter, BaseHostWeigher, normalize
from nimbus.filters.types import (
    AggregateInfo,
    Facts,
    HostArrays,
    HostState,
    RequestSpec,
    ServerGroupSpec,
)

__all__ = [
    "AggregateInfo",
    "BaseHostFilter",
    "BaseHostWeigher",
    "Facts",
    "HostArrays",
    "HostState",
    "RequestSpec",
    "ServerGroupSpec",
    "normalize",
]
