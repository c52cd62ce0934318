"""Notifications: events published for telemetry and other listeners.

A :class:`Notifier` publishes ``(event_type, payload)`` with a priority on a
notification topic; a :class:`NotificationListener` hands each event to the
method named after its priority (``info``, ``error``...) of its endpoints.
"""

from __future__ import annotations

import datetime
import logging
import uuid
from collections.abc import Sequence
from typing import Any

from nimbus import exception
from nimbus.context import RequestContext
from nimbus.messaging import _envelope
from nimbus.messaging._serving import Serving
from nimbus.messaging.base import Transport
from nimbus.messaging.types import IncomingMessage, Listener, Priority

__all__ = ["DEFAULT_TOPIC", "NotificationListener", "Notifier"]

LOG = logging.getLogger(__name__)

#: The topic notifications go to unless told otherwise (OpenStack's).
DEFAULT_TOPIC = "notifications"


class Notifier:
    """Publish notifications on behalf of one service and host.

    :param transport: the process's transport.
    :param publisher_id: who publishes, e.g. ``compute.host1``.
    :param topic: the notification topic.
    """

    def __init__(
        self, transport: Transport, publisher_id: str, *, topic: str = DEFAULT_TOPIC
    ) -> None:
        self.transport = transport
        self.publisher_id = publisher_id
        self.topic = topic

    def notify(
        self, ctx: RequestContext, event_type: str, payload: dict[str, Any], priority: Priority
    ) -> None:
        """Publish one notification.

        :param ctx: the request context of the work being reported.
        :param event_type: what happened, e.g. ``compute.instance.create.end``.
        :param payload: the event's details (JSON-serialisable).
        :param priority: the notification's priority.
        :raises MessagingError: the notification could not be queued.
        """
        message = {
            "v": _envelope.ENVELOPE_VERSION,
            "message_id": str(uuid.uuid4()),
            "publisher_id": self.publisher_id,
            "event_type": event_type,
            "priority": priority.value,
            "payload": payload,
            "timestamp": datetime.datetime.now(datetime.UTC).isoformat(),
            "context": ctx.to_dict(),
        }
        self.transport.notify(self.topic, priority, _envelope.encode(message))

    def info(self, ctx: RequestContext, event_type: str, payload: dict[str, Any]) -> None:
        """Publish an ``info`` notification (see :meth:`notify`)."""
        self.notify(ctx, event_type, payload, Priority.INFO)

    def warn(self, ctx: RequestContext, event_type: str, payload: dict[str, Any]) -> None:
        """Publish a ``warn`` notification (see :meth:`notify`)."""
        self.notify(ctx, event_type, payload, Priority.WARN)

    def error(self, ctx: RequestContext, event_type: str, payload: dict[str, Any]) -> None:
        """Publish an ``error`` notification (see :meth:`notify`)."""
        self.notify(ctx, event_type, payload, Priority.ERROR)


class NotificationListener(Serving):
    """Hand the notifications of a topic to endpoint methods.

    For a notification of priority ``info``, each endpoint that has an
    ``info`` method gets ``info(ctx, publisher_id, event_type, payload,
    metadata)``, where *metadata* holds ``message_id`` and ``timestamp``.
    A method that raises makes the notification be redelivered (to every
    endpoint again) until it is dead-lettered, so methods must be
    idempotent.

    :param transport: the process's transport.
    :param topic: the notification topic, usually :data:`DEFAULT_TOPIC`.
    :param endpoints: objects with methods named after priorities.
    :param pool: listeners of one pool share the notifications, and each
        pool gets them all; ``None`` is the default pool.
    """

    def __init__(
        self,
        transport: Transport,
        topic: str,
        endpoints: Sequence[object],
        *,
        pool: str | None = None,
    ) -> None:
        super().__init__(transport)
        self.topic = topic
        self.pool = pool
        self.endpoints = list(endpoints)

    def _listen(self) -> Listener:
        return self.transport.listen_notifications(self.topic, self._handle, pool=self.pool)

    def _handle(self, message: IncomingMessage) -> None:
        try:
            event = _envelope.decode(message.body)
            priority = Priority(event.get("priority"))
        except (exception.MessagingError, ValueError):
            LOG.error("Dropping a malformed notification on %s", self.topic)
            return
        ctx = RequestContext.from_dict(event.get("context") or {})
        metadata = {"message_id": event.get("message_id"), "timestamp": event.get("timestamp")}
        for endpoint in self.endpoints:
            method = getattr(endpoint, priority.value, None)
            if callable(method):
                method(
                    ctx,
                    event.get("publisher_id"),
                    event.get("event_type"),
                    event.get("payload"),
                    metadata,
                )
