"""Options of the ``[DEFAULT]`` group."""

from __future__ import annotations

import os
import socket

from oslo_config import cfg

OPTS: list[cfg.Opt] = [
    cfg.StrOpt(
        "state_path",
        default=os.path.join(os.path.expanduser("~"), ".nimbus", "state"),
        sample_default="~/.nimbus/state",
        help="""Directory where nimbus keeps its state.

The embedded SQLite database, the Fernet key repository and the generated
openrc file live here unless their own options say otherwise.

Related options:
* [database] connection
* [fernet_tokens] key_repository
""",
    ),
    cfg.StrOpt(
        "host",
        default=socket.gethostname(),
        sample_default="<hostname>",
        help="""Name of this host, as seen by the message bus and the scheduler.

Per-host topics (``compute.<host>``) use it, so it must be unique in a cloud.
""",
    ),
    cfg.StrOpt(
        "region_name",
        default="RegionOne",
        help="Region that this cloud's catalog endpoints belong to.",
    ),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    """Register the ``[DEFAULT]`` options on *conf*."""
    conf.register_opts(OPTS)


def list_opts() -> list[tuple[str | None, list[cfg.Opt]]]:
    """Return the options for the sample generator."""
    return [(None, OPTS)]
