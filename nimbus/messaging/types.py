"""Small values that cross the boundary between the RPC layer and a transport."""

from __future__ import annotations

import abc
import dataclasses
import enum
from collections.abc import Callable

__all__ = [
    "Capability",
    "DeadLetter",
    "Handler",
    "IncomingMessage",
    "Listener",
    "Priority",
    "Target",
]


class Capability(enum.Enum):
    """Optional operations a transport may offer."""

    #: ``fetch_dead_letters`` reads the dead-letter queue.
    DEAD_LETTER = "dead_letter"


class Priority(enum.Enum):
    """Priority of a notification; also the name of the listener's method."""

    DEBUG = "debug"
    INFO = "info"
    WARN = "warn"
    ERROR = "error"
    CRITICAL = "critical"


@dataclasses.dataclass(frozen=True)
class Target:
    """Where a message goes.

    :param topic: the service's topic, e.g. ``scheduler`` or ``compute``.
    :param server: one server of the topic (a host name), or ``None`` for
        whichever server of the topic is free.
    :param fanout: deliver to every server listening on *topic* now.
    """

    topic: str
    server: str | None = None
    fanout: bool = False

    def __post_init__(self) -> None:
        if not self.topic or any(c.isspace() for c in self.topic):
            raise ValueError(f"invalid topic {self.topic!r}")
        if self.server is not None and (not self.server or any(c.isspace() for c in self.server)):
            raise ValueError(f"invalid server {self.server!r}")
        if self.fanout and self.server is not None:
            raise ValueError("a fanout target names no server")

    def __str__(self) -> str:
        if self.fanout:
            return f"{self.topic} (fanout)"
        return self.topic if self.server is None else f"{self.topic}.{self.server}"


@dataclasses.dataclass(frozen=True)
class DeadLetter:
    """A message that ended in the dead-letter queue.

    :param body: the message as it was sent.
    :param queue: the queue it was dead-lettered from.
    :param reason: why, in the transport's words (``rejected`` after the
        last failed attempt).
    """

    body: bytes
    queue: str
    reason: str


class IncomingMessage:
    """A message handed to a :data:`Handler`.

    :ivar body: the bytes that were sent.
    :ivar delivery_count: 1 on the first delivery, 2 on the first redelivery...
    :ivar expects_reply: the sender waits for :meth:`reply` (a call).
    """

    def __init__(self, body: bytes, *, delivery_count: int, expects_reply: bool) -> None:
        self.body = body
        self.delivery_count = delivery_count
        self.expects_reply = expects_reply
        self.reply_body: bytes | None = None

    def reply(self, body: bytes) -> None:
        """Record the reply; the transport sends it once the handler returns.

        :param body: the reply, sent to the caller before the message is acked.
        """
        self.reply_body = body


#: What a transport calls for each message.  Returning acknowledges the
#: message (after sending the reply, if any); raising puts it back on the
#: queue for redelivery until it is dead-lettered.
Handler = Callable[[IncomingMessage], None]


class Listener(abc.ABC):
    """A running consumer returned by ``Transport.listen``."""

    @abc.abstractmethod
    def stop(self, timeout: float | None = None) -> None:
        """Stop taking messages and drain the ones in progress.

        Handlers already running finish and their messages are acked; those
        received but not yet started go back to the queue.

        :param timeout: seconds to wait for running handlers; ``None`` waits
            as long as they take.  Messages whose handlers are still running
            then are redelivered later.
        """
