"""Options of the ``[database]`` group."""

from __future__ import annotations

from oslo_config import cfg

from nimbus.conf._groups import option_hooks

GROUP = cfg.OptGroup("database", title="Database options", help="The SQL database.")

OPTS = [
    cfg.StrOpt(
        "connection",
        secret=True,
        help="""SQLAlchemy URL of the database.

When unset, a SQLite file ``nimbus.sqlite`` under ``state_path`` is used.

Possible values:
* ``sqlite:////path/to/file``
* ``mysql+pymysql://user:password@host/dbname``
* ``postgresql+psycopg://user:password@host/dbname``

Related options:
* [DEFAULT] state_path
""",
    ),
    cfg.IntOpt(
        "max_retries",
        default=10,
        min=0,
        help="How many times to retry connecting at start-up (0: fail at once).",
    ),
    cfg.FloatOpt(
        "retry_interval",
        default=1.0,
        min=0,
        help="Seconds to wait between connection attempts at start-up.",
    ),
    cfg.IntOpt(
        "max_deadlock_retries",
        default=5,
        min=0,
        help="How many times a write that hit a deadlock is retried.",
    ),
    cfg.IntOpt("pool_size", default=5, min=1, help="Connections kept open per process."),
    cfg.IntOpt(
        "max_overflow",
        default=10,
        min=0,
        help="Extra connections allowed beyond pool_size under load.",
    ),
    cfg.IntOpt(
        "pool_recycle",
        default=3600,
        help="Seconds after which a pooled connection is replaced.",
    ),
    cfg.FloatOpt(
        "sqlite_busy_timeout",
        default=30.0,
        min=0,
        help="Seconds SQLite waits for a lock before failing a statement.",
    ),
]


register_opts, list_opts = option_hooks((GROUP, OPTS))
