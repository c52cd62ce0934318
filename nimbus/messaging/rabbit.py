"""The RabbitMQ transport, through pika's BlockingConnection.

Topology, all named after ``[messaging] exchange`` (``nimbus`` below):

* ``nimbus`` (direct exchange) routes a call or cast with routing key
  ``<topic>`` or ``<topic>.<server>`` to the queue ``nimbus.<topic>`` or
  ``nimbus.<topic>.<server>``.  These are durable **quorum queues**, declared
  by servers and by senders alike (so a cast sent before any server started
  waits on its queue instead of being dropped).
* ``nimbus.<topic>.fanout`` (fanout exchange) copies a fanout cast to one
  exclusive, auto-deleted queue per listening server.
* ``nimbus.notifications`` (topic exchange) routes ``<topic>.<priority>``
  to one durable queue per listener pool: ``nimbus.notifications.<topic>``
  for the default pool, which the notifier declares too, and
  ``nimbus.notifications.<topic>.<pool>`` for the others.
* ``nimbus.dlx`` (fanout exchange) and ``nimbus.dead-letter`` (queue): the
  dead-letter exchange of every queue above.
* ``nimbus.reply.<uuid>``: the exclusive reply queue of this transport (one
  per client process, renamed at each reconnection), on which calls wait
  for replies matched by correlation id.

Guarantees and how they are kept:

* Messages are persistent (``delivery_mode=2``) in durable queues, and a
  publisher waits for the broker's **publisher confirm** (and, with
  ``mandatory``, for proof that a queue took it).  When the connection
  drops while publishing, the publisher reconnects with exponential
  backoff and publishes again: delivery is at least once, so handlers
  must be idempotent.
* A consumer acks **manually, after the handler returned** (and after the
  reply of a call was published); a handler that raised is nacked and
  requeued.  Quorum queues count deliveries in the ``x-delivery-count``
  header (returns for any reason: failures, lost connections, crashes);
  when the handler raises on delivery number ``max_delivery_attempts``,
  the message is rejected without requeue and the broker moves it to
  ``nimbus.dead-letter`` (``x-dead-letter-strategy: at-least-once``).  A
  message that arrives with more deliveries than that (its handler crashed
  the process each time) is dead-lettered unrun.
  Exclusive fanout queues are classic queues without that header; their
  consumer counts failures itself, which is exact because it is their only
  consumer.  The limit is applied by the consumer, not baked into queue
  arguments, so changing it needs no queue to be redeclared.
* ``basic.qos`` limits each server to ``prefetch_count`` unacked messages
  per queue; handlers run in a pool of that many threads.
* Heartbeats (``heartbeat_timeout``) detect dead peers; consumers and the
  reply queue reconnect forever with exponential backoff, publishers up to
  ``connection_retry_attempts`` times (or a call's timeout).
* pika connections are not thread-safe: each consumer thread owns its
  connection and worker threads hand acks and replies back to it with
  ``add_callback_threadsafe``; publishers take a connection from a pool
  that lends each to one thread at a time.

Limits: RabbitMQ 3.10 or later is needed (quorum queues with at-least-once
dead-lettering).  A call that timed out stays queued until a server takes
it, and then runs with nobody waiting for the reply: calls are for short,
safe queries.
"""

from __future__ import annotations

import concurrent.futures
import functools
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pika
import pika.exceptions
from oslo_config import cfg
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection

from nimbus import exception
from nimbus.messaging._delivery import ReplyWaiter, run_handler
from nimbus.messaging.base import Transport
from nimbus.messaging.types import Capability, DeadLetter, Handler, Listener, Priority, Target

__all__ = ["Backoff", "RabbitTransport"]

LOG = logging.getLogger(__name__)

_JSON = "application/json"
#: Seconds a new listener waits for its first connection before returning.
_LISTEN_READY_TIMEOUT = 10.0
#: How often consumer threads look at their stop flag, in seconds.
_POLL = 0.1
#: Idle publisher connections kept for reuse; more are closed when returned.
_MAX_IDLE_PUBLISHERS = 8


class Backoff:
    """Exponential backoff between reconnection attempts.

    :param initial: the first delay, in seconds.
    :param factor: how much each delay grows.
    :param maximum: the longest delay.
    """

    def __init__(self, initial: float, factor: float, maximum: float) -> None:
        self.initial = initial
        self.factor = factor
        self.maximum = maximum

    @classmethod
    def from_conf(cls, conf: cfg.ConfigOpts) -> Backoff:
        """Build the backoff configured in ``[messaging]``."""
        group = conf.messaging
        return cls(
            group.connection_retry_interval,
            group.connection_retry_backoff,
            group.connection_retry_interval_max,
        )

    def delay(self, attempt: int) -> float:
        """Return the wait before reconnection attempt *attempt* (1 for the first).

        :param attempt: how many attempts have failed in a row.
        :returns: seconds to wait.
        """
        if attempt < 1:
            return 0.0
        try:
            value = self.initial * self.factor ** (attempt - 1)
        except OverflowError:
            value = self.maximum
        return min(self.maximum, value)


def _close_quietly(connection: BlockingConnection | None) -> None:
    if connection is None:
        return
    try:
        if connection.is_open:
            connection.close()
    except (pika.exceptions.AMQPError, OSError) as ex:
        LOG.debug("Ignoring an error while closing a connection: %s", ex)


def _pump(connection: BlockingConnection, time_limit: float = _POLL) -> None:
    """Process I/O and callbacks for a while; raise if the connection is gone.

    A connection lost inside a callback is only seen as a closed connection
    (pika then refuses to run its I/O loop), hence the explicit check.
    """
    if not connection.is_open:
        raise pika.exceptions.ConnectionWrongStateError("the connection is closed")
    connection.process_data_events(time_limit=time_limit)


def _consume_until_stopped(
    transport: RabbitTransport,
    label: str,
    subscribe: Callable[[BlockingConnection], Callable[[], None] | None],
    *,
    stopping: threading.Event,
    ready: threading.Event,
    who: str,
) -> None:
    """Keep a consuming connection up until *stopping* is set; run in its own thread.

    Each connection is handed to *subscribe*, which starts the consumers and
    may return what to run once *stopping* is set (a drain).  A lost
    connection is rebuilt after the configured backoff, for ever: the thread
    must never die.  *ready* is set while consumers are attached.
    """
    backoff = Backoff.from_conf(transport.conf)
    failures = 0
    while not stopping.is_set():
        connection = None
        try:
            connection = transport._connect(label)
            finish = subscribe(connection)
            failures = 0
            ready.set()
            while not stopping.is_set():
                _pump(connection)
            if finish is not None:
                finish()
        except Exception as ex:  # noqa: BLE001 - the consumer thread must never die
            failures += 1
            LOG.warning("%s lost the broker (%s: %s); reconnecting", who, type(ex).__name__, ex)
        finally:
            ready.clear()
            _close_quietly(connection)
        if not stopping.is_set():
            stopping.wait(backoff.delay(max(failures, 1)))


class _Publisher:
    """A connection with a confirming channel, lent to one thread at a time."""

    def __init__(self, connection: BlockingConnection) -> None:
        self.connection = connection
        self.channel = connection.channel()
        self.channel.confirm_delivery()
        #: What was declared through this connection (reset with it).
        self.declared: set[str] = set()


class _Session:
    """One connection of a consumer thread and the deliveries it has lent out."""

    def __init__(self, connection: BlockingConnection, channel: BlockingChannel) -> None:
        self.connection = connection
        self.channel = channel
        self.pending: dict[int, concurrent.futures.Future[None]] = {}
        #: Consumer tags of queues whose broker keeps no delivery count.
        self.counted_here: set[str] = set()


#: Declares a queue on a channel and returns its name and whether the broker
#: counts its deliveries (``x-delivery-count``, quorum queues only).
_Declarer = Callable[[BlockingChannel], tuple[str, bool]]


class _RabbitListener(Listener):
    """A consumer thread with its own connection and a pool of handler threads."""

    def __init__(
        self,
        transport: RabbitTransport,
        handler: Handler,
        declarers: list[_Declarer],
        label: str,
    ) -> None:
        self.transport = transport
        self.handler = handler
        self.declarers = declarers
        self.label = label
        self.prefetch = transport.conf.messaging.prefetch_count
        self.max_attempts = transport.conf.messaging.max_delivery_attempts
        self.ready = threading.Event()
        self._stopping = threading.Event()
        self._stopped = False
        self._drain_deadline: float | None = None
        self._futures: set[concurrent.futures.Future[None]] = set()
        self._futures_lock = threading.Lock()
        # Failures counted here for queues whose broker keeps no count.
        self._local_failures: dict[str, int] = {}
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=self.prefetch, thread_name_prefix=f"nimbus-{label}"
        )
        self._thread = threading.Thread(target=self._run, name=f"nimbus-{label}", daemon=True)
        self._thread.start()

    # -- consumer thread -------------------------------------------------------

    def _run(self) -> None:
        _consume_until_stopped(
            self.transport,
            self.label,
            self._subscribe,
            stopping=self._stopping,
            ready=self.ready,
            who=f"Consumer {self.label}",
        )

    def _subscribe(self, connection: BlockingConnection) -> Callable[[], None]:
        channel = connection.channel()
        channel.basic_qos(prefetch_count=self.prefetch)
        session = _Session(connection, channel)
        # Queues counted here are private to the old connection: gone.
        self._local_failures.clear()
        tags = []
        for declare in self.declarers:
            queue, broker_counts = declare(channel)
            callback = functools.partial(self._on_message, session)
            tag = channel.basic_consume(queue, callback, auto_ack=False)
            tags.append(tag)
            if not broker_counts:
                session.counted_here.add(tag)
        return functools.partial(self._drain, session, tags)

    def _attempts(
        self, session: _Session, method: Any, properties: pika.BasicProperties
    ) -> tuple[int, str | None]:
        """Return which delivery this is (1 for the first) and the local count's key."""
        if method.consumer_tag not in session.counted_here:
            # Quorum queues add the header from the first redelivery on.
            returns = (properties.headers or {}).get("x-delivery-count", 0)
            return (returns if isinstance(returns, int) else 0) + 1, None
        key = properties.message_id or ""
        return self._local_failures.get(key, 0) + 1, key

    def _on_message(
        self,
        session: _Session,
        channel: BlockingChannel,
        method: Any,
        properties: pika.BasicProperties,
        body: bytes,
    ) -> None:
        tag = method.delivery_tag
        attempts, local_key = self._attempts(session, method, properties)
        if attempts > self.max_attempts:
            LOG.error(
                "Dead-lettering a message from %s delivered %d times without success",
                method.routing_key,
                attempts - 1,
            )
            channel.basic_reject(tag, requeue=False)
            return
        if self._stopping.is_set():
            channel.basic_nack(tag, requeue=True)
            return
        future = self._executor.submit(
            self._work, session, tag, properties, body, attempts, local_key
        )
        session.pending[tag] = future
        with self._futures_lock:
            self._futures.add(future)
        future.add_done_callback(self._forget_future)

    def _forget_future(self, future: concurrent.futures.Future[None]) -> None:
        with self._futures_lock:
            self._futures.discard(future)

    def _settle(
        self,
        session: _Session,
        tag: int,
        ok: bool,
        attempts: int,
        local_key: str | None,
        properties: pika.BasicProperties,
        reply: bytes | None,
    ) -> None:
        session.pending.pop(tag, None)
        channel = session.channel
        if not channel.is_open:
            return
        try:
            if reply is not None and properties.reply_to:
                channel.basic_publish(
                    "",
                    properties.reply_to,
                    reply,
                    pika.BasicProperties(
                        correlation_id=properties.correlation_id, content_type=_JSON
                    ),
                )
            if ok:
                if local_key is not None:
                    self._local_failures.pop(local_key, None)
                channel.basic_ack(tag)
            elif attempts >= self.max_attempts:
                if local_key is not None:
                    self._local_failures.pop(local_key, None)
                LOG.error("Dead-lettering a message after %d failed deliveries", attempts)
                channel.basic_reject(tag, requeue=False)
            else:
                if local_key is not None:
                    self._local_failures[local_key] = attempts
                channel.basic_nack(tag, requeue=True)
        except pika.exceptions.AMQPError as ex:
            LOG.warning("Could not settle a message on %s: %s", self.label, ex)

    def _drain(self, session: _Session, tags: list[str]) -> None:
        channel = session.channel
        for tag in tags:
            # pika nacks (requeues) what arrived but was not dispatched yet.
            channel.basic_cancel(tag)
        for delivery_tag, future in list(session.pending.items()):
            if future.cancel():
                session.pending.pop(delivery_tag, None)
                channel.basic_nack(delivery_tag, requeue=True)
        clock = self.transport._clock
        while session.pending:
            if self._drain_deadline is not None and clock() >= self._drain_deadline:
                LOG.warning(
                    "Consumer %s stops with %d handlers running; their messages "
                    "will be redelivered",
                    self.label,
                    len(session.pending),
                )
                break
            _pump(session.connection, _POLL / 2)

    # -- worker threads --------------------------------------------------------

    def _work(
        self,
        session: _Session,
        tag: int,
        properties: pika.BasicProperties,
        body: bytes,
        attempts: int,
        local_key: str | None,
    ) -> None:
        ok, reply = run_handler(
            self.handler,
            body,
            delivery_count=attempts,
            expects_reply=bool(properties.reply_to),
            where=self.label,
        )
        settle = functools.partial(
            self._settle, session, tag, ok, attempts, local_key, properties, reply
        )
        try:
            session.connection.add_callback_threadsafe(settle)
        except pika.exceptions.AMQPError as ex:
            LOG.info(
                "Connection of %s closed before a message was acked (%s); the broker redelivers it",
                self.label,
                ex,
            )

    # -- any thread ------------------------------------------------------------

    def stop(self, timeout: float | None = None) -> None:
        if self._stopped:
            return
        self._stopped = True
        clock = self.transport._clock
        deadline = None if timeout is None else clock() + timeout
        self._drain_deadline = deadline
        self._stopping.set()
        # The consumer thread returns within the drain deadline plus a poll.
        self._thread.join(None if deadline is None else max(0.0, deadline - clock()) + 5.0)
        with self._futures_lock:
            running = set(self._futures)
        remaining = None if deadline is None else max(0.0, deadline - clock())
        _done, not_done = concurrent.futures.wait(running, timeout=remaining)
        self._executor.shutdown(wait=not not_done, cancel_futures=True)
        self.transport._forget_listener(self)


class _ReplyConsumer:
    """The thread owning this transport's exclusive reply queue."""

    def __init__(self, transport: RabbitTransport) -> None:
        self.transport = transport
        self.queue = ""
        self.ready = threading.Event()
        self._stopping = threading.Event()
        self._waiters: dict[str, ReplyWaiter] = {}
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="nimbus-replies", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        _consume_until_stopped(
            self.transport,
            "replies",
            self._subscribe,
            stopping=self._stopping,
            ready=self.ready,
            who="Reply consumer",
        )

    def _subscribe(self, connection: BlockingConnection) -> None:
        channel = connection.channel()
        # A new name per connection: the old exclusive queue may linger
        # until the broker notices the old connection died.
        queue = f"{self.transport.exchange}.reply.{uuid.uuid4().hex}"
        channel.queue_declare(queue, exclusive=True, auto_delete=True)
        channel.basic_consume(queue, self._on_reply, auto_ack=True)
        self.queue = queue

    def _on_reply(
        self, channel: BlockingChannel, method: Any, properties: pika.BasicProperties, body: bytes
    ) -> None:
        with self._lock:
            waiter = self._waiters.pop(properties.correlation_id or "", None)
        if waiter is None:
            LOG.debug("Dropping a reply nobody waits for (late or duplicate)")
            return
        waiter.deliver(body)

    def expect(self, correlation_id: str) -> ReplyWaiter:
        waiter = ReplyWaiter()
        with self._lock:
            self._waiters[correlation_id] = waiter
        return waiter

    def forget(self, correlation_id: str) -> None:
        with self._lock:
            self._waiters.pop(correlation_id, None)

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join()


class RabbitTransport(Transport):
    """RabbitMQ message bus through pika, for split deployments.

    :param connection_factory: builds a blocking connection from pika
        connection parameters; ``pika.BlockingConnection`` by default.
    :param clock: a monotonic clock, for timeouts.
    :param sleep: waits between publishing attempts.
    """

    capabilities = frozenset({Capability.DEAD_LETTER})

    def __init__(
        self,
        conf: cfg.ConfigOpts,
        *,
        connection_factory: Callable[[pika.connection.Parameters], BlockingConnection] = (
            pika.BlockingConnection
        ),
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        **injected_deps: Any,
    ) -> None:
        super().__init__(conf, **injected_deps)
        group = conf.messaging
        self.exchange: str = group.exchange
        self.dead_letter_exchange = f"{self.exchange}.dlx"
        self.dead_letter_queue = f"{self.exchange}.dead-letter"
        self.notification_exchange = f"{self.exchange}.notifications"
        self._url = group.transport_url
        self._connection_factory = connection_factory
        self._clock = clock
        self._sleep = sleep
        self._backoff = Backoff.from_conf(conf)
        self._lock = threading.Lock()
        self._idle: list[_Publisher] = []
        self._listeners: list[_RabbitListener] = []
        self._replies: _ReplyConsumer | None = None
        self._closed = False
        #: Every queue and exchange declared, for ``ex_delete_declared``.
        self._declared_queues: set[str] = set()
        self._declared_exchanges: set[str] = set()
        # Fail early on a URL pika cannot parse.
        try:
            pika.URLParameters(self._url)
        except Exception as ex:  # noqa: BLE001 - pika raises several types here
            raise exception.MessagingError(
                reason=f"rabbit: invalid transport_url ({type(ex).__name__})"
            ) from ex

    # -- connections -------------------------------------------------------------

    def _connect(self, label: str) -> BlockingConnection:
        params = pika.URLParameters(self._url)
        params.heartbeat = self.conf.messaging.heartbeat_timeout
        params.connection_attempts = 1
        params.client_properties = {
            "connection_name": f"nimbus:{label}:{os.getpid()}",
            "product": "nimbus",
        }
        return self._connection_factory(params)

    @property
    def _where(self) -> str:
        parts = urlsplit(self._url)
        return f"{parts.hostname}:{parts.port or 5672}"

    def _checkout(self) -> tuple[_Publisher, bool]:
        with self._lock:
            if self._closed:
                raise exception.MessagingError(reason="rabbit: the transport is closed")
            if self._idle:
                return self._idle.pop(), False
        connection = self._connect("publisher")
        try:
            return _Publisher(connection), True
        except BaseException:
            _close_quietly(connection)
            raise

    def _checkin(self, publisher: _Publisher) -> None:
        with self._lock:
            if not self._closed and len(self._idle) < _MAX_IDLE_PUBLISHERS:
                self._idle.append(publisher)
                return
        _close_quietly(publisher.connection)

    # -- topology ------------------------------------------------------------

    def _declare_exchange(self, channel: BlockingChannel, name: str, kind: str) -> None:
        channel.exchange_declare(name, exchange_type=kind, durable=True)
        with self._lock:
            self._declared_exchanges.add(name)

    def _declare_dead_letter(self, channel: BlockingChannel) -> None:
        self._declare_exchange(channel, self.dead_letter_exchange, "fanout")
        channel.queue_declare(
            self.dead_letter_queue, durable=True, arguments={"x-queue-type": "quorum"}
        )
        channel.queue_bind(self.dead_letter_queue, self.dead_letter_exchange)
        with self._lock:
            self._declared_queues.add(self.dead_letter_queue)

    def _declare_durable_queue(
        self, channel: BlockingChannel, queue: str, exchange: str, kind: str, routing_key: str
    ) -> str:
        self._declare_dead_letter(channel)
        self._declare_exchange(channel, exchange, kind)
        channel.queue_declare(
            queue,
            durable=True,
            arguments={
                "x-queue-type": "quorum",
                "x-dead-letter-exchange": self.dead_letter_exchange,
                "x-dead-letter-strategy": "at-least-once",
                "x-overflow": "reject-publish",
            },
        )
        channel.queue_bind(queue, exchange, routing_key=routing_key)
        with self._lock:
            self._declared_queues.add(queue)
        return queue

    def _rpc_queue(self, channel: BlockingChannel, routing_key: str) -> tuple[str, bool]:
        queue = self._declare_durable_queue(
            channel, f"{self.exchange}.{routing_key}", self.exchange, "direct", routing_key
        )
        return queue, True

    def _notification_queue(
        self, channel: BlockingChannel, topic: str, pool: str | None
    ) -> tuple[str, bool]:
        name = f"{self.notification_exchange}.{topic}"
        if pool is not None:
            name = f"{name}.{pool}"
        queue = self._declare_durable_queue(
            channel, name, self.notification_exchange, "topic", f"{topic}.*"
        )
        return queue, True

    def _fanout_exchange(self, topic: str) -> str:
        return f"{self.exchange}.{topic}.fanout"

    def _fanout_queue(self, channel: BlockingChannel, target: Target) -> tuple[str, bool]:
        exchange = self._fanout_exchange(target.topic)
        self._declare_dead_letter(channel)
        self._declare_exchange(channel, exchange, "fanout")
        queue = f"{exchange}.{target.server}.{uuid.uuid4().hex[:8]}"
        channel.queue_declare(
            queue,
            exclusive=True,
            auto_delete=True,
            arguments={"x-dead-letter-exchange": self.dead_letter_exchange},
        )
        channel.queue_bind(queue, exchange)
        return queue, False

    @staticmethod
    def _routing_key(target: Target) -> str:
        return target.topic if target.server is None else f"{target.topic}.{target.server}"

    # -- publishing -----------------------------------------------------------

    def _publish(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        properties: pika.BasicProperties,
        *,
        declare: Callable[[BlockingChannel], Any] | None,
        declare_key: str,
        mandatory: bool,
        deadline: float | None = None,
        timeout: float | None = None,
        what: str = "message",
    ) -> None:
        """Publish with confirms, reconnecting and republishing until it is confirmed."""
        max_attempts = self.conf.messaging.connection_retry_attempts
        failures = 0
        while True:
            publisher = None
            fresh = True
            try:
                publisher, fresh = self._checkout()
                if declare is not None and declare_key not in publisher.declared:
                    declare(publisher.channel)
                    publisher.declared.add(declare_key)
                publisher.channel.basic_publish(
                    exchange, routing_key, body, properties, mandatory=mandatory
                )
            except pika.exceptions.UnroutableError as ex:
                # The queue vanished (deleted by hand?): declare it again.
                if publisher is not None:
                    publisher.declared.discard(declare_key)
                    self._checkin(publisher)
                error: Exception = ex
            except pika.exceptions.ChannelClosedByBroker as ex:
                if publisher is not None:
                    _close_quietly(publisher.connection)
                if ex.reply_code != 404:
                    raise exception.MessagingError(
                        reason=f"rabbit: broker refused the {what} to {routing_key}: {ex}"
                    ) from ex
                error = ex
            except (pika.exceptions.AMQPError, OSError) as ex:
                if publisher is not None:
                    _close_quietly(publisher.connection)
                if not fresh:
                    # A pooled connection went stale while idle (say, the
                    # broker dropped it); try another one at once.
                    LOG.info("A pooled publisher connection is gone (%s); using a new one", ex)
                    continue
                error = ex
            else:
                self._checkin(publisher)
                return
            failures += 1
            LOG.warning(
                "Publishing a %s to %s on %s failed (attempt %d: %s: %s)",
                what,
                routing_key,
                self._where,
                failures,
                type(error).__name__,
                error,
            )
            if max_attempts and failures >= max_attempts:
                raise exception.MessagingError(
                    reason=f"rabbit: could not publish a {what} to {routing_key} on "
                    f"{self._where} after {failures} attempts: {error}"
                ) from error
            delay = self._backoff.delay(failures)
            if deadline is not None and self._clock() + delay >= deadline:
                raise exception.MessagingTimeout(topic=routing_key, method=what, timeout=timeout)
            self._sleep(delay)

    @staticmethod
    def _properties(**kwargs: Any) -> pika.BasicProperties:
        return pika.BasicProperties(
            delivery_mode=2,  # persistent
            content_type=_JSON,
            message_id=uuid.uuid4().hex,
            **kwargs,
        )

    # -- Transport -----------------------------------------------------------

    def _reply_consumer(self) -> _ReplyConsumer:
        with self._lock:
            if self._closed:
                raise exception.MessagingError(reason="rabbit: the transport is closed")
            if self._replies is None:
                self._replies = _ReplyConsumer(self)
            return self._replies

    def call(self, target: Target, body: bytes, *, timeout: float) -> bytes:
        if target.fanout:
            raise exception.MessagingError(reason="a fanout target cannot be called")
        deadline = self._clock() + timeout
        replies = self._reply_consumer()
        if not replies.ready.wait(timeout):
            raise exception.MessagingTimeout(topic=str(target), method="call", timeout=timeout)
        correlation_id = uuid.uuid4().hex
        waiter = replies.expect(correlation_id)
        routing_key = self._routing_key(target)
        try:
            self._publish(
                self.exchange,
                routing_key,
                body,
                self._properties(reply_to=replies.queue, correlation_id=correlation_id),
                declare=functools.partial(self._rpc_queue, routing_key=routing_key),
                declare_key=routing_key,
                mandatory=True,
                deadline=deadline,
                timeout=timeout,
                what="call",
            )
            remaining = deadline - self._clock()
            if remaining <= 0 or not waiter.event.wait(remaining) or waiter.body is None:
                raise exception.MessagingTimeout(topic=str(target), method="call", timeout=timeout)
            return waiter.body
        finally:
            replies.forget(correlation_id)

    def cast(self, target: Target, body: bytes) -> None:
        if target.fanout:
            exchange = self._fanout_exchange(target.topic)
            self._publish(
                exchange,
                "",
                body,
                self._properties(),
                declare=functools.partial(self._declare_exchange, name=exchange, kind="fanout"),
                declare_key=f"fanout:{exchange}",
                mandatory=False,
                what="fanout cast",
            )
            return
        routing_key = self._routing_key(target)
        self._publish(
            self.exchange,
            routing_key,
            body,
            self._properties(),
            declare=functools.partial(self._rpc_queue, routing_key=routing_key),
            declare_key=routing_key,
            mandatory=True,
            what="cast",
        )

    def notify(self, topic: str, priority: Priority, body: bytes) -> None:
        self._publish(
            self.notification_exchange,
            f"{topic}.{priority.value}",
            body,
            self._properties(),
            declare=functools.partial(self._notification_queue, topic=topic, pool=None),
            declare_key=f"notifications:{topic}",
            mandatory=True,
            what="notification",
        )

    def _start_listener(self, declarers: list[_Declarer], label: str, handler: Handler) -> Listener:
        with self._lock:
            if self._closed:
                raise exception.MessagingError(reason="rabbit: the transport is closed")
        listener = _RabbitListener(self, handler, declarers, label)
        with self._lock:
            self._listeners.append(listener)
        if not listener.ready.wait(_LISTEN_READY_TIMEOUT):
            LOG.warning("Consumer %s is not connected yet; it keeps trying", label)
        return listener

    def _forget_listener(self, listener: _RabbitListener) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def listen(self, target: Target, handler: Handler) -> Listener:
        if target.server is None or target.fanout:
            raise ValueError("a server listens on a topic and a server name")
        declarers: list[_Declarer] = [
            functools.partial(self._rpc_queue, routing_key=target.topic),
            functools.partial(self._rpc_queue, routing_key=self._routing_key(target)),
            functools.partial(self._fanout_queue, target=target),
        ]
        return self._start_listener(declarers, f"rpc:{target}", handler)

    def listen_notifications(
        self, topic: str, handler: Handler, *, pool: str | None = None
    ) -> Listener:
        declarers: list[_Declarer] = [
            functools.partial(self._notification_queue, topic=topic, pool=pool)
        ]
        return self._start_listener(declarers, f"notifications:{topic}:{pool or ''}", handler)

    def close(self) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener.stop()
        with self._lock:
            self._closed = True
            replies, self._replies = self._replies, None
            idle, self._idle = self._idle, []
        if replies is not None:
            replies.stop()
        for publisher in idle:
            _close_quietly(publisher.connection)

    def fetch_dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        connection = None
        try:
            connection = self._connect("dead-letters")
            channel = connection.channel()
            self._declare_dead_letter(channel)
            letters: list[DeadLetter] = []
            last_tag = None
            while len(letters) < limit:
                method, properties, body = channel.basic_get(self.dead_letter_queue)
                if method is None or properties is None or body is None:
                    break
                last_tag = method.delivery_tag
                headers = properties.headers or {}
                letters.append(
                    DeadLetter(
                        body,
                        str(headers.get("x-first-death-queue", "")),
                        str(headers.get("x-first-death-reason", "")),
                    )
                )
            if last_tag is not None:
                channel.basic_ack(last_tag, multiple=True)
            return letters
        except pika.exceptions.AMQPError as ex:
            raise exception.MessagingError(
                reason=f"rabbit: could not read the dead-letter queue on {self._where}: {ex}"
            ) from ex
        finally:
            _close_quietly(connection)

    def ex_delete_declared(self) -> None:
        """Delete every durable queue and exchange this transport declared.

        For tests and tear-downs: messages still queued are lost.
        """
        with self._lock:
            queues = sorted(self._declared_queues)
            exchanges = sorted(self._declared_exchanges)
            self._declared_queues.clear()
            self._declared_exchanges.clear()
        connection = self._connect("cleanup")
        try:
            channel = connection.channel()
            for queue in queues:
                channel.queue_delete(queue)
            for name in exchanges:
                channel.exchange_delete(name)
        finally:
            _close_quietly(connection)
