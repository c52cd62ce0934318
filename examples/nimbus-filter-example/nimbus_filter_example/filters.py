"""The ``max_instances`` filter and its options (``[filter_example]``)."""

from __future__ import annotations

import time
from collections.abc import Callable

from nimbus.filters import BaseHostFilter, HostState, RequestSpec
from oslo_config import cfg

__all__ = ["GROUP", "MaxInstancesFilter", "OPTS", "list_opts"]

GROUP = "filter_example"
OPTS = [
    cfg.IntOpt(
        "max_instances_per_host",
        default=50,
        min=1,
        help="""Most instances a host may run before ``max_instances`` rejects it.""",
    ),
]


def list_opts() -> list[tuple[str, list[cfg.Opt]]]:
    """Return the options for ``oslo-config-generator``."""
    return [(GROUP, OPTS)]


class MaxInstancesFilter(BaseHostFilter):
    """Pass hosts running fewer than ``[filter_example] max_instances_per_host`` instances."""

    def __init__(self, conf: cfg.ConfigOpts, *, clock: Callable[[], float] = time.time) -> None:
        super().__init__(conf, clock=clock)
        conf.register_opts(OPTS, group=GROUP)

    def host_passes(self, host_state: HostState, spec: RequestSpec) -> bool:
        limit = self.conf[GROUP].max_instances_per_host
        if host_state.num_instances >= limit:
            return self.reject(host_state, f"runs {host_state.num_instances} of {limit} instances")
        return True
