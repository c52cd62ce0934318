"""Options of the ``[messaging]`` group."""

from __future__ import annotations

from oslo_config import cfg

GROUP = cfg.OptGroup("messaging", title="Messaging options", help="The message bus.")

OPTS = [
    cfg.StrOpt(
        "transport",
        default="memory",
        help="""Entry-point name of the message bus transport.

Possible values:
* ``memory``: threads in one process (the embedded default)
* ``rabbit``: RabbitMQ through pika, for split deployments
""",
    ),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    """Register the ``[messaging]`` options on *conf*."""
    conf.register_group(GROUP)
    conf.register_opts(OPTS, group=GROUP)


def list_opts() -> list[tuple[cfg.OptGroup, list[cfg.Opt]]]:
    """Return the options for the sample generator."""
    return [(GROUP, OPTS)]
