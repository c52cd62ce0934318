"""RPC over a transport: clients that call and cast, servers that dispatch.

A server exposes the public methods of its endpoint objects; a client calls
them by name with keyword arguments.  The request context travels with
every message, and arguments, results and errors are JSON.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Sequence
from typing import Any

from nimbus import exception
from nimbus.context import RequestContext
from nimbus.messaging import _envelope
from nimbus.messaging._serving import Serving
from nimbus.messaging.base import Transport
from nimbus.messaging.types import IncomingMessage, Listener, Target

__all__ = ["RPCClient", "RPCServer"]

LOG = logging.getLogger(__name__)

_UNSET: Any = object()


class RPCClient:
    """Send calls and casts to a topic, or to one server of it.

    :param transport: the process's transport.
    :param target: where messages go: a :class:`Target`, or just its topic
        (``conductor``) for whichever server of it is free.
    :param timeout: seconds a call waits for its reply; ``None`` uses
        ``[messaging] rpc_response_timeout``.
    """

    def __init__(
        self, transport: Transport, target: Target | str, *, timeout: float | None = None
    ) -> None:
        self.transport = transport
        self.target = Target(target) if isinstance(target, str) else target
        self.timeout = timeout

    def prepare(
        self,
        *,
        server: str | None = _UNSET,
        timeout: float | None = _UNSET,
        fanout: bool = _UNSET,
    ) -> RPCClient:
        """Return a client like this one with the given settings changed.

        :param server: the server to address (``None`` for any).
        :param timeout: the call timeout (``None`` for the configured one).
        :param fanout: whether casts go to every server of the topic.
        :returns: a new client; this one is unchanged.
        """
        target = Target(
            self.target.topic,
            server=self.target.server if server is _UNSET else server,
            fanout=self.target.fanout if fanout is _UNSET else fanout,
        )
        return RPCClient(
            self.transport, target, timeout=self.timeout if timeout is _UNSET else timeout
        )

    def _effective_timeout(self) -> float:
        if self.timeout is not None:
            return float(self.timeout)
        return float(self.transport.conf.messaging.rpc_response_timeout)

    def call(self, ctx: RequestContext, method: str, **kwargs: Any) -> Any:
        """Invoke *method* on one server and return its result.

        :param ctx: the request context, handed to the remote method.
        :param method: the endpoint method's name.
        :param kwargs: its keyword arguments (JSON-serialisable).
        :returns: the remote method's (JSON) result.
        :raises MessagingTimeout: no reply within the timeout.
        :raises NimbusException: the remote method raised this nimbus
            exception (rebuilt here, same class and message).
        :raises MessagingError: the remote method raised another exception
            (the message names its type), or the request could not be sent.
        """
        if self.target.fanout:
            raise exception.MessagingError(reason="a fanout client can only cast")
        timeout = self._effective_timeout()
        body = _envelope.encode(_request("call", ctx, method, kwargs))
        try:
            reply_body = self.transport.call(self.target, body, timeout=timeout)
        except exception.MessagingTimeout:
            raise exception.MessagingTimeout(
                topic=str(self.target), method=method, timeout=timeout
            ) from None
        reply = _envelope.decode(reply_body)
        if "failure" in reply:
            raise _envelope.failure_from_dict(reply["failure"])
        return reply.get("result")

    def cast(self, ctx: RequestContext, method: str, **kwargs: Any) -> None:
        """Send *method* one way; return once the message is safely queued.

        The message is delivered at least once, so the remote method must be
        idempotent.

        :param ctx: the request context, handed to the remote method.
        :param method: the endpoint method's name.
        :param kwargs: its keyword arguments (JSON-serialisable).
        :raises MessagingError: the message could not be queued.
        """
        body = _envelope.encode(_request("cast", ctx, method, kwargs))
        self.transport.cast(self.target, body)


def _request(kind: str, ctx: RequestContext, method: str, kwargs: dict[str, Any]) -> dict:
    return {
        "v": _envelope.ENVELOPE_VERSION,
        "kind": kind,
        "method": method,
        "args": kwargs,
        "context": ctx.to_dict(),
    }


def _public_methods(endpoint: object) -> dict[str, Callable[..., Any]]:
    methods = {}
    for name in dir(endpoint):
        if name.startswith("_"):
            continue
        # Look the attribute up statically so that properties are not run.
        static = inspect.getattr_static(endpoint, name)
        if isinstance(static, staticmethod | classmethod) or inspect.isfunction(static):
            methods[name] = getattr(endpoint, name)
    return methods


class RPCServer(Serving):
    """Serve the public methods of *endpoints* on a topic.

    A method is called as ``method(ctx, **kwargs)`` in a worker thread; its
    result goes back to a caller, and what it raises goes back too (for a
    call) or makes the message be redelivered (for a cast), until it is
    dead-lettered.  Cast handlers must be idempotent: a cast is delivered at
    least once.

    :param transport: the process's transport.
    :param topic: the topic served, e.g. ``compute``.
    :param server: this server's name, usually the host name; the server
        also gets what is sent to ``topic`` + ``server`` and fanouts.
    :param endpoints: objects whose public methods are exposed; a method
        name may appear in one endpoint only.
    :raises ValueError: two endpoints expose the same method name.
    """

    def __init__(
        self, transport: Transport, topic: str, server: str, endpoints: Sequence[object]
    ) -> None:
        super().__init__(transport)
        self.target = Target(topic, server=server)
        self._methods: dict[str, Callable[..., Any]] = {}
        for endpoint in endpoints:
            for name, method in _public_methods(endpoint).items():
                if name in self._methods:
                    raise ValueError(f"method {name!r} is exposed by two endpoints")
                self._methods[name] = method

    def _listen(self) -> Listener:
        return self.transport.listen(self.target, self._handle)

    def _handle(self, message: IncomingMessage) -> None:
        try:
            request = _envelope.decode(message.body)
        except exception.MessagingError:
            LOG.error("Dropping a malformed message on %s", self.target)
            return
        method_name = str(request.get("method"))
        try:
            result = self._dispatch(request, method_name)
        except Exception as ex:
            if not message.expects_reply:
                LOG.warning(
                    "Cast %s failed on server %s (delivery %d): %s: %s",
                    method_name,
                    self.target,
                    message.delivery_count,
                    type(ex).__name__,
                    ex,
                )
                raise
            if not isinstance(ex, exception.NimbusException):
                LOG.exception("Call %s failed on server %s", method_name, self.target)
            message.reply(
                _envelope.encode(
                    {"v": _envelope.ENVELOPE_VERSION, "failure": _envelope.failure_to_dict(ex)}
                )
            )
            return
        if message.expects_reply:
            try:
                body = _envelope.encode({"v": _envelope.ENVELOPE_VERSION, "result": result})
            except exception.MessagingError as ex:
                body = _envelope.encode(
                    {"v": _envelope.ENVELOPE_VERSION, "failure": _envelope.failure_to_dict(ex)}
                )
            message.reply(body)

    def _dispatch(self, request: dict[str, Any], method_name: str) -> Any:
        method = self._methods.get(method_name)
        if method is None:
            raise exception.MessagingError(
                reason=f"no method {method_name!r} on topic {self.target.topic}"
            )
        ctx = RequestContext.from_dict(request.get("context") or {})
        args = request.get("args") or {}
        if not isinstance(args, dict):
            raise exception.MessagingError(reason="malformed message: args is not an object")
        return method(ctx, **args)
