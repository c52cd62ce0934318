"""The start/stop life cycle shared by RPC servers and notification listeners."""

from __future__ import annotations

import abc
import threading

from nimbus.messaging.base import Transport
from nimbus.messaging.types import IncomingMessage, Listener

__all__ = ["Serving"]


class Serving(abc.ABC):
    """Owns at most one transport listener, started and stopped from any thread.

    :param transport: the process's transport.
    """

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self._listener: Listener | None = None
        self._lock = threading.Lock()

    @abc.abstractmethod
    def _listen(self) -> Listener:
        """Start the transport listener that feeds :meth:`_handle`."""

    @abc.abstractmethod
    def _handle(self, message: IncomingMessage) -> None:
        """Handle one message; raising has it redelivered."""

    def start(self) -> None:
        """Start taking messages (idempotent)."""
        with self._lock:
            if self._listener is None:
                self._listener = self._listen()

    def stop(self, timeout: float | None = None) -> None:
        """Stop taking messages; wait for running handlers and ack their messages.

        :param timeout: seconds to wait for running handlers; ``None`` waits
            as long as they take.
        """
        with self._lock:
            listener, self._listener = self._listener, None
        if listener is not None:
            listener.stop(timeout)
