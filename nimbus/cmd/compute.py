"""``nimbus scheduler``, ``nimbus conductor`` and ``nimbus compute-agent``: compute's processes.

In a split deployment each runs as a process of its own, on the message
bus and database the configuration names (RabbitMQ and MariaDB or
PostgreSQL); run as many schedulers and conductors as wanted, and one
compute agent per hypervisor host (``[DEFAULT] host`` names it; the agent
never opens the database).  Each serves until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import functools
import logging
import signal
import threading
from collections.abc import Sequence
from typing import Any, NoReturn

from oslo_config import cfg

from nimbus import conf as nimbus_conf
from nimbus.cmd import main
from nimbus.cmd._command import Command

__all__ = ["register", "serve"]

_PARTS = {
    "scheduler": ("scheduler", "pick and claim compute hosts for servers"),
    "conductor": ("conductor", "build servers and speak to the database for the agents"),
    "compute-agent": ("agent", "drive this host's hypervisor ([DEFAULT] host, [compute] driver)"),
}


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the three commands.

    :param subparsers: the ``nimbus`` command's sub-parsers.
    """
    for name, (part, summary) in _PARTS.items():
        Command(
            name,
            summary,
            f"Run the compute service's {part} until stopped (SIGTERM or Ctrl-C).",
            func=functools.partial(_serve_part, part),
        ).register(subparsers)


class _BusOnly:
    """What a compute agent needs of a cloud: its config and its message bus."""

    def __init__(self, conf: cfg.ConfigOpts) -> None:
        from nimbus import messaging

        self.conf = conf
        self.transport = messaging.get_transport(conf)

    @property
    def database(self) -> NoReturn:
        raise AssertionError("a compute agent reaches the database through the conductor only")

    def close(self) -> None:
        self.transport.close()


def _serve_part(part: str, args: argparse.Namespace) -> int:
    return serve(args, [part])


def serve(args: argparse.Namespace, parts: Sequence[str]) -> int:
    """Run the compute *parts* on the configured bus until a signal stops them."""
    from nimbus.compute.backend import ComputeBackend
    from nimbus.descriptor import Cloud

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    conf = nimbus_conf.load_config(main.config_argv(args))
    # An agent alone never opens the database: it has the bus only.
    cloud: Any = _BusOnly(conf) if list(parts) == ["agent"] else Cloud(conf, ["compute"])
    backend = ComputeBackend(cloud, parts)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    backend.start()
    try:
        stop.wait()
    finally:
        backend.stop()
        cloud.close()
    return 0
