"""What every transport does with a delivery: run its handler, await a reply.

The transports differ in how messages travel; these two pieces of the
delivery rules in :class:`nimbus.messaging.base.Transport` are the same for
all of them.
"""

from __future__ import annotations

import logging
import threading

from nimbus.messaging.types import Handler, IncomingMessage

__all__ = ["ReplyWaiter", "run_handler"]

LOG = logging.getLogger(__name__)


class ReplyWaiter:
    """Where the reply of one call arrives, and the event its caller waits on."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.body: bytes | None = None

    def deliver(self, body: bytes) -> None:
        """Hand *body* to the waiting caller."""
        self.body = body
        self.event.set()


def run_handler(
    handler: Handler, body: bytes, *, delivery_count: int, expects_reply: bool, where: str
) -> tuple[bool, bytes | None]:
    """Run *handler* on one delivery of *body*.

    :param handler: the listener's handler.
    :param body: the message as it was sent.
    :param delivery_count: 1 on the first delivery, 2 on the first redelivery...
    :param expects_reply: the sender waits for a reply (a call).
    :param where: the queue or listener, for the log.
    :returns: whether the handler returned (the message is to be acked, not
        redelivered), and the reply it recorded, if any.
    """
    message = IncomingMessage(body, delivery_count=delivery_count, expects_reply=expects_reply)
    try:
        handler(message)
    except Exception as ex:  # noqa: BLE001 - any failure means redelivery
        LOG.debug("Handler on %s failed: %s", where, ex)
        return False, message.reply_body
    return True, message.reply_body
