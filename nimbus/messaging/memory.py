"""The in-process transport: threads in one process, the embedded default.

A :class:`MemoryBroker` plays RabbitMQ's part with the same rules: a queue
per topic and per topic + server, round robin among the servers of a
queue, a prefetch limit per server, redelivery of messages whose handler
raised and a dead-letter list after ``max_delivery_attempts``.  Every
transport built for the same ``[messaging] exchange`` in one process shares
one broker, so the services of an all-in-one process reach each other.
Nothing survives the process.
"""

from __future__ import annotations

import collections
import concurrent.futures
import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from oslo_config import cfg

from nimbus import exception
from nimbus.messaging._delivery import ReplyWaiter, run_handler
from nimbus.messaging.base import Transport
from nimbus.messaging.types import Capability, DeadLetter, Handler, Listener, Priority, Target

__all__ = ["MemoryBroker", "MemoryTransport"]

LOG = logging.getLogger(__name__)


class _Delivery:
    __slots__ = ("body", "count", "queue", "reply_to")

    def __init__(self, body: bytes, queue: _Queue, reply_to: str | None) -> None:
        self.body = body
        self.queue = queue
        self.reply_to = reply_to
        self.count = 0


class _Queue:
    def __init__(self, name: str) -> None:
        self.name = name
        self.messages: collections.deque[_Delivery] = collections.deque()
        self.consumers: list[_Consumer] = []
        self.next_consumer = 0
        #: Dropping notifications since it last had room (warned about once).
        self.overflowing = False


class MemoryBroker:
    """Queues, bindings, pending replies and dead letters of one exchange.

    All state is guarded by one lock; handlers run outside it.

    :param max_queued_notifications: notifications a queue keeps for
        listeners that do not consume them (no telemetry running, say);
        older ones are dropped, so memory stays bounded.
    """

    def __init__(self, *, max_queued_notifications: int = 10_000) -> None:
        self.max_queued_notifications = max_queued_notifications
        self._lock = threading.Lock()
        self._queues: dict[str, _Queue] = {}
        self._fanout: dict[str, set[_Queue]] = collections.defaultdict(set)
        self._pools: dict[str, set[_Queue]] = collections.defaultdict(set)
        self._waiters: dict[str, ReplyWaiter] = {}
        self._dead: collections.deque[DeadLetter] = collections.deque()

    # -- used with the lock held ---------------------------------------------

    def _queue(self, name: str) -> _Queue:
        queue = self._queues.get(name)
        if queue is None:
            queue = self._queues[name] = _Queue(name)
        return queue

    def _pump(self, queue: _Queue) -> None:
        while queue.messages and queue.consumers:
            consumer = None
            for _ in range(len(queue.consumers)):
                candidate = queue.consumers[queue.next_consumer % len(queue.consumers)]
                queue.next_consumer = (queue.next_consumer + 1) % len(queue.consumers)
                if candidate.has_room():
                    consumer = candidate
                    break
            if consumer is None:
                return
            delivery = queue.messages.popleft()
            delivery.count += 1
            consumer.start(delivery)

    def _publish(
        self, queues: set[_Queue] | list[_Queue], body: bytes, reply_to: str | None
    ) -> None:
        for queue in queues:
            queue.messages.append(_Delivery(body, queue, reply_to))
            self._pump(queue)

    # -- the transport's side ------------------------------------------------

    def send(self, queue_name: str, body: bytes, reply_to: str | None = None) -> None:
        """Queue *body* on *queue_name*, creating the queue if needed."""
        with self._lock:
            self._publish([self._queue(queue_name)], body, reply_to)

    def send_fanout(self, topic: str, body: bytes) -> None:
        """Queue *body* on the fanout queue of every listener of *topic*."""
        with self._lock:
            self._publish(set(self._fanout[topic]), body, None)

    def send_notification(self, topic: str, default_queue: str, body: bytes) -> None:
        """Queue *body* on every pool queue of *topic*, the default pool included.

        A queue holding ``max_queued_notifications`` drops its oldest.
        """
        with self._lock:
            self._pools[topic].add(self._queue(default_queue))
            queues = self._pools[topic]
            for queue in queues:
                if len(queue.messages) < self.max_queued_notifications:
                    queue.overflowing = False
                    continue
                queue.messages.popleft()
                if not queue.overflowing:
                    # Once per overflow, not per notification: with nobody
                    # listening, every event of a busy service would log.
                    queue.overflowing = True
                    LOG.warning(
                        "Notification queue %s is full (%d); dropping its oldest until it has room",
                        queue.name,
                        self.max_queued_notifications,
                    )
            self._publish(set(queues), body, None)

    def expect_reply(self) -> tuple[str, ReplyWaiter]:
        """Register a waiter for one reply; return its correlation id."""
        correlation_id = uuid.uuid4().hex
        waiter = ReplyWaiter()
        with self._lock:
            self._waiters[correlation_id] = waiter
        return correlation_id, waiter

    def forget_reply(self, correlation_id: str) -> None:
        """Drop the waiter of a call that is over."""
        with self._lock:
            self._waiters.pop(correlation_id, None)

    def subscribe(
        self,
        consumer: _Consumer,
        queue_names: list[str],
        *,
        fanout_topic: str | None = None,
        pool_topic: str | None = None,
    ) -> None:
        """Make *consumer* compete for the messages of *queue_names*."""
        with self._lock:
            queues = [self._queue(name) for name in queue_names]
            if fanout_topic is not None:
                # A fanout queue belongs to one listener and dies with it.
                private = _Queue(f"{fanout_topic}.fanout.{uuid.uuid4().hex}")
                self._fanout[fanout_topic].add(private)
                consumer.private_queue = (fanout_topic, private)
                queues.append(private)
            if pool_topic is not None:
                self._pools[pool_topic].update(queues)
            consumer.queues = queues
            for queue in queues:
                queue.consumers.append(consumer)
            for queue in queues:
                self._pump(queue)

    def unsubscribe(self, consumer: _Consumer) -> None:
        """Stop giving *consumer* messages; drop its private fanout queue."""
        with self._lock:
            for queue in consumer.queues:
                if consumer in queue.consumers:
                    queue.consumers.remove(consumer)
            if consumer.private_queue is not None:
                topic, private = consumer.private_queue
                self._fanout[topic].discard(private)

    def settle(
        self, consumer: _Consumer, delivery: _Delivery, ok: bool, reply: bytes | None
    ) -> None:
        """Ack, requeue or dead-letter *delivery* once its handler is done."""
        with self._lock:
            if not consumer.finish(delivery):
                return  # abandoned by a stop that timed out: already requeued
            if ok:
                if reply is not None and delivery.reply_to is not None:
                    waiter = self._waiters.pop(delivery.reply_to, None)
                    if waiter is not None:
                        waiter.deliver(reply)
            elif delivery.count >= consumer.max_attempts:
                LOG.error(
                    "Dead-lettering a message from %s after %d deliveries",
                    delivery.queue.name,
                    delivery.count,
                )
                self._dead.append(DeadLetter(delivery.body, delivery.queue.name, "rejected"))
            else:
                delivery.queue.messages.appendleft(delivery)
            for queue in consumer.queues:
                self._pump(queue)
            self._pump(delivery.queue)

    def requeue(self, deliveries: list[_Delivery]) -> None:
        """Put back messages whose handlers were abandoned."""
        with self._lock:
            for delivery in deliveries:
                delivery.queue.messages.appendleft(delivery)
                self._pump(delivery.queue)

    def take_dead_letters(self, limit: int) -> list[DeadLetter]:
        """Remove and return up to *limit* dead letters, oldest first."""
        with self._lock:
            return [self._dead.popleft() for _ in range(min(limit, len(self._dead)))]


class _Consumer(Listener):
    """One listener: a worker pool of ``prefetch_count`` threads."""

    def __init__(
        self, broker: MemoryBroker, handler: Handler, prefetch: int, max_attempts: int
    ) -> None:
        self.broker = broker
        self.handler = handler
        self.prefetch = prefetch
        self.max_attempts = max_attempts
        self.queues: list[_Queue] = []
        self.private_queue: tuple[str, _Queue] | None = None
        self.cancelled = False
        self.active: set[_Delivery] = set()
        self.idle = threading.Condition()
        self.executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=prefetch, thread_name_prefix="nimbus-memory"
        )

    def has_room(self) -> bool:
        return not self.cancelled and len(self.active) < self.prefetch

    def start(self, delivery: _Delivery) -> None:
        # Called with the broker lock held.
        with self.idle:
            self.active.add(delivery)
        self.executor.submit(self._run, delivery)

    def finish(self, delivery: _Delivery) -> bool:
        with self.idle:
            if delivery not in self.active:
                return False
            self.active.discard(delivery)
            self.idle.notify_all()
            return True

    def _run(self, delivery: _Delivery) -> None:
        ok, reply = run_handler(
            self.handler,
            delivery.body,
            delivery_count=delivery.count,
            expects_reply=delivery.reply_to is not None,
            where=delivery.queue.name,
        )
        self.broker.settle(self, delivery, ok, reply)

    def stop(self, timeout: float | None = None) -> None:
        with self.idle:
            if self.cancelled:
                return
            self.cancelled = True
        self.broker.unsubscribe(self)
        with self.idle:
            self.idle.wait_for(lambda: not self.active, timeout)
            abandoned = list(self.active)
            self.active.clear()
        if abandoned:
            LOG.warning("Requeueing %d messages whose handlers did not finish", len(abandoned))
            self.broker.requeue(abandoned)
        self.executor.shutdown(wait=not abandoned)


_BROKERS: dict[str, MemoryBroker] = {}
_BROKERS_LOCK = threading.Lock()


def _shared_broker(exchange: str) -> MemoryBroker:
    with _BROKERS_LOCK:
        broker = _BROKERS.get(exchange)
        if broker is None:
            broker = _BROKERS[exchange] = MemoryBroker()
        return broker


class MemoryTransport(Transport):
    """In-process message bus for all-in-one deployments and tests.

    :param broker: the broker to use; by default the one shared by every
        memory transport of this process with the same
        ``[messaging] exchange``.
    :param clock: a monotonic clock, for call timeouts.
    """

    capabilities = frozenset({Capability.DEAD_LETTER})

    def __init__(
        self,
        conf: cfg.ConfigOpts,
        *,
        broker: MemoryBroker | None = None,
        clock: Callable[[], float] = time.monotonic,
        **injected_deps: Any,
    ) -> None:
        super().__init__(conf, **injected_deps)
        self.broker = broker if broker is not None else _shared_broker(conf.messaging.exchange)
        self._clock = clock
        self._listeners: list[_Consumer] = []
        self._lock = threading.Lock()

    @staticmethod
    def _queue_name(target: Target) -> str:
        return target.topic if target.server is None else f"{target.topic}.{target.server}"

    def call(self, target: Target, body: bytes, *, timeout: float) -> bytes:
        if target.fanout:
            raise exception.MessagingError(reason="a fanout target cannot be called")
        correlation_id, waiter = self.broker.expect_reply()
        try:
            self.broker.send(self._queue_name(target), body, reply_to=correlation_id)
            if not waiter.event.wait(timeout) or waiter.body is None:
                raise exception.MessagingTimeout(topic=str(target), method="call", timeout=timeout)
            return waiter.body
        finally:
            self.broker.forget_reply(correlation_id)

    def cast(self, target: Target, body: bytes) -> None:
        if target.fanout:
            self.broker.send_fanout(target.topic, body)
        else:
            self.broker.send(self._queue_name(target), body)

    def notify(self, topic: str, priority: Priority, body: bytes) -> None:
        self.broker.send_notification(topic, _notification_queue(topic, None), body)

    def _consumer(self, handler: Handler) -> _Consumer:
        consumer = _Consumer(
            self.broker,
            handler,
            self.conf.messaging.prefetch_count,
            self.conf.messaging.max_delivery_attempts,
        )
        with self._lock:
            self._listeners.append(consumer)
        return consumer

    def listen(self, target: Target, handler: Handler) -> Listener:
        if target.server is None or target.fanout:
            raise ValueError("a server listens on a topic and a server name")
        consumer = self._consumer(handler)
        self.broker.subscribe(
            consumer,
            [target.topic, self._queue_name(target)],
            fanout_topic=target.topic,
        )
        return consumer

    def listen_notifications(
        self, topic: str, handler: Handler, *, pool: str | None = None
    ) -> Listener:
        consumer = self._consumer(handler)
        self.broker.subscribe(consumer, [_notification_queue(topic, pool)], pool_topic=topic)
        return consumer

    def close(self) -> None:
        with self._lock:
            listeners, self._listeners = self._listeners, []
        for listener in listeners:
            listener.stop()

    def fetch_dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        return self.broker.take_dead_letters(limit)


def _notification_queue(topic: str, pool: str | None) -> str:
    return f"notifications:{topic}" if pool is None else f"notifications:{topic}:{pool}"
