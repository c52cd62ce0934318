"""The message bus: RPC between nimbus processes, and notifications.

::

    transport = messaging.get_transport(conf)
    server = messaging.RPCServer(transport, "compute", "host1", [ComputeManager()])
    server.start()
    client = messaging.RPCClient(transport, "compute").prepare(server="host1")
    client.cast(ctx, "build_instance", instance_id=uuid)    # one way
    client.call(ctx, "get_console", instance_id=uuid)       # waits for the reply

The vocabulary (topic, server, call, cast, notification) is fixed in
:mod:`nimbus.messaging.base`.  Casts and notifications are delivered at
least once: their handlers must be idempotent.
"""

from __future__ import annotations

from typing import Any

from oslo_config import cfg

from nimbus import registry
from nimbus.messaging.base import Transport
from nimbus.messaging.notify import DEFAULT_TOPIC, NotificationListener, Notifier
from nimbus.messaging.rpc import RPCClient, RPCServer
from nimbus.messaging.types import (
    Capability,
    DeadLetter,
    Handler,
    IncomingMessage,
    Listener,
    Priority,
    Target,
)

__all__ = [
    "DEFAULT_TOPIC",
    "NAMESPACE",
    "Capability",
    "DeadLetter",
    "Handler",
    "IncomingMessage",
    "Listener",
    "NotificationListener",
    "Notifier",
    "Priority",
    "RPCClient",
    "RPCServer",
    "Target",
    "Transport",
    "get_transport",
]

#: The entry-point namespace transports are registered in.
NAMESPACE = "nimbus.messaging.transports"


def get_transport(conf: cfg.ConfigOpts, **injected_deps: Any) -> Transport:
    """Load the transport named by ``[messaging] transport``.

    :param conf: the nimbus config.
    :param injected_deps: keyword arguments for the transport's constructor.
    :returns: a new transport; close it when the process is done with it.
    :raises PluginNotFound: no transport of that name is installed.
    :raises PluginLoadError: the transport failed to load or to start.
    """
    return registry.load_driver(
        NAMESPACE, conf.messaging.transport, conf, expected=Transport, **injected_deps
    )
