"""Options of the ``[scheduler]`` group: the compute scheduler's filters, weighers and ratios."""

from __future__ import annotations

from oslo_config import cfg

from nimbus.conf._groups import option_hooks

GROUP = cfg.OptGroup(
    "scheduler",
    title="Compute scheduler options",
    help="How the compute scheduler filters, weighs and claims hosts.",
)

DEFAULT_FILTERS = [
    "compute",
    "availability_zone",
    "ram",
    "disk",
    "core",
    "image_properties",
    "aggregate_multitenancy_isolation",
    "server_group_anti_affinity",
    "server_group_affinity",
    "different_host",
    "same_host",
]
DEFAULT_WEIGHERS = ["ram", "cpu", "disk", "num_instances"]


def _multiplier(name: str, default: float, what: str) -> cfg.FloatOpt:
    return cfg.FloatOpt(
        f"{name}_weight_multiplier",
        default=default,
        help=f"""Multiplier of the ``{name}`` weigher ({what}).

Positive values prefer hosts with more of it (spreading), negative ones
prefer hosts with less (stacking), 0 turns the weigher off.  A host
aggregate's metadata key ``{name}_weight_multiplier`` overrides it for its
hosts (the smallest value when a host is in several).
""",
    )


OPTS = [
    cfg.ListOpt(
        "enabled_filters",
        default=DEFAULT_FILTERS,
        help="""Entry-point names of the filters a host must pass, in the order they run.

Possible values:
* names installed in the ``nimbus.filters.compute`` namespace: ``compute``,
  ``ram``, ``disk``, ``core``, ``availability_zone``, ``different_host``,
  ``same_host``, ``aggregate_multitenancy_isolation``, ``image_properties``,
  ``server_group_affinity``, ``server_group_anti_affinity``, ``json``, or a
  third party's

Related options:
* enabled_weighers
""",
    ),
    cfg.ListOpt(
        "enabled_weighers",
        default=DEFAULT_WEIGHERS,
        help="""Entry-point names of the weighers that rank the hosts left by the filters.

Possible values:
* names installed in the ``nimbus.weighers.compute`` namespace: ``ram``,
  ``cpu``, ``disk``, ``num_instances``
""",
    ),
    _multiplier("ram", 1.0, "free RAM"),
    _multiplier("cpu", 1.0, "free vCPUs"),
    _multiplier("disk", 1.0, "free disk"),
    _multiplier("num_instances", 0.0, "instances on the host"),
    cfg.IntOpt(
        "host_subset_size",
        default=1,
        min=1,
        help="""Pick the host at random among this many of the best-weighed ones.

1 always takes the best; more spreads concurrent schedulers' choices.
""",
    ),
    cfg.IntOpt(
        "max_attempts",
        default=3,
        min=1,
        help="""Hosts an instance may be tried on: the chosen one and its alternates.

A selection carries ``max_attempts - 1`` alternates for reschedules.
""",
    ),
    cfg.FloatOpt(
        "cpu_allocation_ratio",
        default=4.0,
        min=0.0,
        help="""Virtual CPUs per physical CPU a host may give out.

A host aggregate's metadata key of the same name, or a compute node's own
ratio, overrides it (node first, then aggregate, then this).
""",
    ),
    cfg.FloatOpt(
        "ram_allocation_ratio",
        default=1.0,
        min=0.0,
        help="Virtual RAM per physical RAM a host may give out (overridable as the CPU ratio).",
    ),
    cfg.FloatOpt(
        "disk_allocation_ratio",
        default=1.0,
        min=0.0,
        help="Virtual disk per physical disk a host may give out (overridable as the CPU ratio).",
    ),
    cfg.IntOpt(
        "reserved_host_memory_mb",
        default=512,
        min=0,
        help="RAM in MB kept for the host itself, never given to instances.",
    ),
    cfg.IntOpt(
        "reserved_host_disk_mb",
        default=0,
        min=0,
        help="Disk in MB kept for the host itself, never given to instances.",
    ),
    cfg.IntOpt(
        "reserved_host_cpus",
        default=0,
        min=0,
        help="Virtual CPUs kept for the host itself, never given to instances.",
    ),
    cfg.IntOpt(
        "service_down_time",
        default=60,
        min=1,
        help="""Seconds after its last heartbeat at which a service counts as down.

Related options:
* heartbeat_refresh_interval
""",
    ),
    cfg.StrOpt(
        "default_availability_zone",
        default="nova",
        help="Availability zone of hosts in no aggregate that names one.",
    ),
    cfg.FloatOpt(
        "refresh_interval",
        default=1.0,
        min=0.0,
        help="""Seconds between two reads of the compute nodes changed by others.

0 reads before every decision.  A scheduler's own claims are in its cache at
once; a stale view costs at most a failed claim, never an over-commit.
""",
    ),
    cfg.FloatOpt(
        "refresh_slack",
        default=2.0,
        min=0.0,
        help="""Seconds a refresh looks back before the newest change it has seen.

Covers transactions that commit after a later one and small clock
differences between the machines writing the rows.
""",
    ),
    cfg.FloatOpt(
        "heartbeat_refresh_interval",
        default=10.0,
        min=0.0,
        help="""Seconds between two reads of the services' heartbeats (and of deleted rows).""",
    ),
]

register_opts, list_opts = option_hooks((GROUP, OPTS))
