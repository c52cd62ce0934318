"""The transport interface: how bytes move between nimbus processes.

Vocabulary of the message bus:

* A **topic** names a service that listens on the bus: ``scheduler``,
  ``conductor``, ``compute``, ``volume``, ``network``.  A message sent to a
  topic goes to *one* of the servers listening on it (round robin).
* A **server** is one process listening on a topic, named after its host.
  A message sent to topic ``compute`` and server ``host1`` (the queue
  ``compute.host1``, OpenStack's per-host topic) goes to that host only.
  A **fanout** message goes to every server listening on the topic now.
* A **call** is a request that waits for one reply, at most a timeout
  long.  A **cast** is one-way: persistent, delivered at least once, for
  long work.  Because a cast (or a notification) may be delivered more than
  once (after a lost connection, or when its handler raised), *handlers
  must be idempotent*.
* A **notification** is an event (``compute.instance.create.end``)
  published on a notification topic (``notifications``) with a priority;
  every listener *pool* on that topic gets a copy, and the listeners of one
  pool share the work.
* A **dead letter** is a cast or notification whose handler raised on each
  of ``[messaging] max_delivery_attempts`` deliveries; it is parked in the
  dead-letter queue instead of looping forever.

A transport moves opaque bytes.  The envelope (method name, arguments,
request context, JSON) belongs to :mod:`nimbus.messaging.rpc` and
:mod:`nimbus.messaging.notify`, so a transport needs no knowledge of it.
"""

from __future__ import annotations

import abc
import types
from collections.abc import Mapping
from typing import Any, ClassVar

from oslo_config import cfg

from nimbus import exception
from nimbus.drivers._capabilities import CapabilityGuarded
from nimbus.messaging.types import Capability, DeadLetter, Handler, Listener, Priority, Target

__all__ = ["OPTIONAL_OPERATIONS", "Transport"]

#: Each optional operation and the capability it needs.  A transport without
#: that capability raises ``OperationNotSupported`` from it, even when it
#: inherits an implementation (a subclass that narrows ``capabilities``
#: refuses what it no longer declares).
OPTIONAL_OPERATIONS: Mapping[str, Capability] = types.MappingProxyType(
    {"fetch_dead_letters": Capability.DEAD_LETTER}
)


class Transport(CapabilityGuarded, abc.ABC):
    """Base class of message bus transports (``nimbus.messaging.transports``).

    One transport object serves a whole process: any number of clients,
    servers and notifiers share it, from any thread.

    Delivery rules every transport keeps:

    * a handler that returns acknowledges its message (after its reply, for
      a call, has been sent); a handler that raises puts the message back
      for redelivery, and after ``max_delivery_attempts`` deliveries the
      message is dead-lettered;
    * a cast or notification sent while no server listens waits on its
      queue until one does;
    * a call that gets no reply within its timeout raises
      :class:`~nimbus.exception.MessagingTimeout`.

    :param conf: the nimbus config; transports read ``[messaging]``.
    :param injected_deps: outside dependencies (a connection factory, a
        clock...), each a keyword argument with a real default, so that tests
        can inject them.  A transport ignores those it does not use, so a
        service can hand the same ones to whichever transport is configured.
    """

    #: Optional operations this transport implements.
    capabilities: ClassVar[frozenset[Capability]] = frozenset()
    optional_operations = OPTIONAL_OPERATIONS

    def __init__(self, conf: cfg.ConfigOpts, **injected_deps: Any) -> None:
        self.conf = conf

    @property
    def name(self) -> str:
        """Return the transport's name, used in error messages."""
        return type(self).__name__

    @abc.abstractmethod
    def call(self, target: Target, body: bytes, *, timeout: float) -> bytes:
        """Send a request to one server of *target* and return its reply.

        :param target: the topic, and optionally the server, to ask.
        :param body: the request.
        :param timeout: seconds to wait for the reply.
        :returns: the body the handler passed to ``IncomingMessage.reply``.
        :raises MessagingTimeout: no reply came within *timeout*.
        :raises MessagingError: the request could not be sent.
        """

    @abc.abstractmethod
    def cast(self, target: Target, body: bytes) -> None:
        """Send a one-way message to one server of *target* (all, for a fanout).

        When this returns, the message is safely queued (for RabbitMQ, the
        broker confirmed it); it will be handled at least once.

        :param target: the topic, and optionally the server.
        :param body: the message.
        :raises MessagingError: the message could not be queued.
        """

    @abc.abstractmethod
    def notify(self, topic: str, priority: Priority, body: bytes) -> None:
        """Publish a notification to every listener pool of *topic*.

        :param topic: the notification topic, e.g. ``notifications``.
        :param priority: the notification's priority.
        :param body: the notification.
        :raises MessagingError: the notification could not be queued.
        """

    @abc.abstractmethod
    def listen(self, target: Target, handler: Handler) -> Listener:
        """Start serving *target*: its topic, its server and the topic's fanout.

        :param target: a topic and a server name (the server is required).
        :param handler: called, in a worker thread, once per message.
        :returns: the running listener; stop it to drain.
        """

    @abc.abstractmethod
    def listen_notifications(
        self, topic: str, handler: Handler, *, pool: str | None = None
    ) -> Listener:
        """Start consuming the notifications published on *topic*.

        :param topic: the notification topic.
        :param handler: called, in a worker thread, once per notification.
        :param pool: listeners of one pool share the notifications; each pool
            gets every notification.  ``None`` is the default pool, which
            exists (and keeps notifications) from the first ``notify`` on.
        :returns: the running listener.
        """

    @abc.abstractmethod
    def close(self) -> None:
        """Stop every listener of this transport and release its connections."""

    def fetch_dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        """Remove up to *limit* messages from the dead-letter queue and return them.

        Optional: offered when ``Capability.DEAD_LETTER`` is in
        :attr:`capabilities`.

        :param limit: most messages to take.
        :returns: the dead letters, oldest first.
        :raises OperationNotSupported: the transport keeps no dead letters.
        """
        raise exception.OperationNotSupported(driver=self.name, operation="fetch_dead_letters")
