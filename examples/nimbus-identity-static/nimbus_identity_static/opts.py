"""Options of the ``[identity_static]`` group.

This module imports only oslo.config, so that ``oslo-config-generator``
can list the options without importing nimbus.
"""

from __future__ import annotations

from oslo_config import cfg

__all__ = ["GROUP", "OPTS", "list_opts", "register_opts"]

GROUP = cfg.OptGroup(
    "identity_static",
    title="Static identity back-end",
    help="Users read from a JSON file (``[identity] driver = static``).",
)

OPTS = [
    cfg.StrOpt(
        "users_file",
        default="/etc/nimbus/users.json",
        help="""JSON file listing the users, with bcrypt password hashes.

The file is read when the back-end starts; restart the API to apply a
change.  Format::

    {"users": [{"id": "...", "name": "alice", "domain_id": "default",
                "password_hash": "$2b$12$...", "enabled": true}]}

Related options:
* [identity] driver
""",
    ),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    """Register the ``[identity_static]`` options on *conf*."""
    # A group object per config: oslo.config keeps overrides on the group,
    # so sharing the module's object would leak them from one config to another.
    if GROUP.name not in conf:
        conf.register_group(cfg.OptGroup(GROUP.name, title=GROUP.title, help=GROUP.help))
    conf.register_opts(OPTS, group=GROUP.name)


def list_opts() -> list[tuple[cfg.OptGroup, list[cfg.Opt]]]:
    """Return the options for ``oslo-config-generator``."""
    return [(GROUP, OPTS)]
