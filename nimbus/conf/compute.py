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
