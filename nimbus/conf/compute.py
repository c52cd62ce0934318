"""Options of the ``[compute]`` and ``[quota]`` groups (the compute service)."""

from __future__ import annotations

from oslo_config import cfg

from nimbus.conf._groups import option_hooks

GROUP = cfg.OptGroup(
    "compute", title="Compute service options", help="The compute service (Nova v2.1)."
)
QUOTA_GROUP = cfg.OptGroup(
    "quota",
    title="Compute quota defaults",
    help="What a project may use of the compute service unless its own quota says otherwise.",
)

OPTS = [
    cfg.StrOpt(
        "driver",
        default="fake",
        help="""Entry-point name of the hypervisor driver the compute agents use.

Possible values:
* ``fake``: guests in memory (see ``[fake_compute]``), the default
* ``libvirt``: real guests under QEMU through libvirt (see ``[libvirt]``)
* any name installed in the ``nimbus.compute.drivers`` namespace
""",
    ),
    cfg.BoolOpt(
        "embedded_backend",
        default=True,
        help="""Run the scheduler, the conductor and the compute agents inside ``nimbus up``.

True (the default): the all-in-one cloud is complete, and runs as one
gunicorn worker (see ``[api] workers``).  False: ``nimbus up`` serves the
APIs only, in ``[api] workers`` workers, and the compute processes run
apart (``nimbus scheduler``, ``nimbus conductor``, ``nimbus compute-agent``)
on a message bus they share with it (``[messaging] transport = rabbit``).
""",
    ),
    cfg.IntOpt(
        "fake_hosts",
        default=0,
        min=0,
        help="""Compute hosts ``nimbus up`` runs in its one process, for trying the scheduler.

0 (the default): one agent, for ``[DEFAULT] host``.  N: N agents named
``<host>-1`` ... ``<host>-N``, each with a driver of its own (use the
``fake`` driver: one real hypervisor is one host).
""",
    ),
    cfg.FloatOpt(
        "report_interval",
        default=10.0,
        min=0.1,
        help="""Seconds between a compute agent's heartbeats and resource reports.

Related options:
* [scheduler] service_down_time: an agent silent that long is down
""",
    ),
    cfg.FloatOpt(
        "shutdown_timeout",
        default=60.0,
        min=0,
        help="""Seconds a guest is given to shut down cleanly before it is forced off.""",
    ),
    cfg.FloatOpt(
        "build_timeout",
        default=600.0,
        min=1,
        help="""Seconds a server may stay in BUILD before it is put in ERROR.

A build whose conductor, scheduler or agent died on the way ends there,
with a fault saying so, instead of building forever.
""",
    ),
    cfg.FloatOpt(
        "action_timeout",
        default=600.0,
        min=1,
        help="""Seconds an action (stop, reboot, pause...) or a delete may take.

An action past it ends (its task state is cleared, with a fault); a delete
past it whose host's agent is down is finished here (the guest is left to
that host's agent, which removes it when it comes back).
""",
    ),
    cfg.FloatOpt(
        "reap_interval",
        default=60.0,
        min=1,
        help="""Seconds between the checks for servers past those deadlines.""",
    ),
    cfg.StrOpt(
        "default_availability_zone",
        default="nova",
        help="""Availability zone of hosts that no host aggregate puts in one.

Servers created without an availability zone may land in any zone; the
zone a host reports when no aggregate names one is this.
""",
    ),
    cfg.IntOpt(
        "max_flavor_list",
        default=1000,
        min=1,
        help="""The most flavors, key pairs or servers one list page returns (Nova's
``[api] max_limit``); a larger ``limit`` is capped to it.
""",
    ),
]

#: Each quota, its Nova default and what it limits.  -1 means unlimited.
QUOTAS = {
    "instances": (10, "servers a project may have"),
    "cores": (20, "vCPUs of the project's servers, all together"),
    "ram": (51200, "megabytes of RAM of the project's servers, all together"),
    "metadata_items": (128, "metadata items of one server"),
    "key_pairs": (100, "key pairs of one user"),
    "server_groups": (10, "server groups a project may have"),
    "server_group_members": (10, "servers in one server group"),
    "injected_files": (5, "files injected into one server"),
    "injected_file_content_bytes": (10240, "bytes of one injected file"),
    "injected_file_path_length": (255, "characters of an injected file's path"),
}

QUOTA_OPTS: list[cfg.Opt] = [
    cfg.IntOpt(name, default=default, min=-1, help=f"The most {what} (-1: no limit).")
    for name, (default, what) in QUOTAS.items()
]

register_opts, list_opts = option_hooks((GROUP, OPTS), (QUOTA_GROUP, QUOTA_OPTS))
