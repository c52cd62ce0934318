"""Pure logic of the rabbit transport, with pika's connection faked."""

from __future__ import annotations

import pika.exceptions
import pytest

from nimbus import exception
from nimbus.context import RequestContext
from nimbus.messaging import RPCClient, Target
from nimbus.messaging.rabbit import Backoff, RabbitTransport


class FakeChannel:
    def __init__(self, outcomes: list) -> None:
        self.outcomes = outcomes
        self.published: list[tuple] = []
        self.declared: list[str] = []

    def confirm_delivery(self) -> None:
        pass

    def exchange_declare(self, name, exchange_type, durable):
        self.declared.append(f"exchange {name}")

    def queue_declare(self, name, **kwargs):
        self.declared.append(f"queue {name}")

    def queue_bind(self, queue, exchange, routing_key=None):
        pass

    def basic_publish(self, exchange, routing_key, body, properties, mandatory=False):
        outcome = self.outcomes.pop(0) if self.outcomes else None
        if outcome is not None:
            raise outcome
        self.published.append((exchange, routing_key, body, properties, mandatory))


class FakeConnection:
    def __init__(self, outcomes: list) -> None:
        self.is_open = True
        self._channel = FakeChannel(outcomes)

    def channel(self) -> FakeChannel:
        return self._channel

    def close(self) -> None:
        self.is_open = False


class FakeBroker:
    """A connection factory: each item of *script* is one connection attempt.

    An item is an exception (the connection fails) or a list of outcomes of
    the successive publishes on that connection (None is success).
    """

    def __init__(self, script: list) -> None:
        self.script = script
        self.params: list = []
        self.connections: list[FakeConnection] = []

    def __call__(self, params):
        self.params.append(params)
        item = self.script.pop(0) if self.script else []
        if isinstance(item, Exception):
            raise item
        connection = FakeConnection(item)
        self.connections.append(connection)
        return connection

    @property
    def published(self) -> list[tuple]:
        return [p for c in self.connections for p in c._channel.published]


@pytest.fixture
def rabbit_conf(conf):
    conf.set_override("connection_retry_interval", 0.5, group="messaging")
    conf.set_override("connection_retry_backoff", 2.0, group="messaging")
    conf.set_override("connection_retry_interval_max", 4.0, group="messaging")
    return conf


def make(conf, script):
    broker = FakeBroker(script)
    sleeps: list[float] = []
    transport = RabbitTransport(conf, connection_factory=broker, sleep=sleeps.append)
    return transport, broker, sleeps


def cast(transport, topic="t", **kwargs):
    RPCClient(transport, Target(topic, **kwargs)).cast(RequestContext(), "m", key=1)


def lost() -> Exception:
    return pika.exceptions.StreamLostError("Transport indicated EOF")


def test_backoff_grows_exponentially_up_to_the_maximum():
    backoff = Backoff(0.5, 2.0, 4.0)
    assert [backoff.delay(n) for n in range(7)] == [0.0, 0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert backoff.delay(10_000) == 4.0


def test_constant_backoff():
    assert [Backoff(1.0, 1.0, 30.0).delay(n) for n in (1, 5, 50)] == [1.0, 1.0, 1.0]


def test_cast_is_persistent_mandatory_and_declares_its_queue(rabbit_conf):
    transport, broker, sleeps = make(rabbit_conf, [[None]])
    cast(transport, server="host1")
    ((exchange, key, body, properties, mandatory),) = broker.published
    assert (exchange, key, mandatory) == ("nimbus", "t.host1", True)
    assert properties.delivery_mode == 2
    assert properties.content_type == "application/json"
    assert b'"method":"m"' in body
    assert "queue nimbus.t.host1" in broker.connections[0]._channel.declared
    assert "queue nimbus.dead-letter" in broker.connections[0]._channel.declared
    assert sleeps == []
    transport.close()


def test_publish_reconnects_with_backoff_and_republishes(rabbit_conf):
    transport, broker, sleeps = make(
        rabbit_conf, [[lost()], pika.exceptions.AMQPConnectionError("refused"), [lost()], [None]]
    )
    cast(transport)
    assert len(broker.published) == 1
    assert sleeps == [0.5, 1.0, 2.0]
    assert [c.is_open for c in broker.connections] == [False, False, True]
    transport.close()
    assert not broker.connections[-1].is_open


def test_publish_gives_up_after_the_configured_attempts(rabbit_conf):
    rabbit_conf.set_override("connection_retry_attempts", 3, group="messaging")
    refused = [pika.exceptions.AMQPConnectionError("refused") for _ in range(5)]
    transport, broker, sleeps = make(rabbit_conf, refused)
    with pytest.raises(exception.MessagingError, match="after 3 attempts"):
        cast(transport)
    assert sleeps == [0.5, 1.0]
    assert len(broker.params) == 3


def test_stale_pooled_connection_is_replaced_at_once(rabbit_conf):
    transport, broker, sleeps = make(rabbit_conf, [[None, lost()], [None]])
    cast(transport)
    cast(transport)
    assert len(broker.published) == 2
    assert sleeps == []
    transport.close()


def test_broker_refusal_is_not_retried(rabbit_conf):
    refusal = pika.exceptions.ChannelClosedByBroker(406, "PRECONDITION_FAILED - inequivalent arg")
    transport, broker, sleeps = make(rabbit_conf, [[refusal], [None]])
    with pytest.raises(exception.MessagingError, match="PRECONDITION_FAILED"):
        cast(transport)
    assert sleeps == []
    transport.close()


def test_unroutable_message_redeclares_its_queue(rabbit_conf):
    transport, broker, sleeps = make(rabbit_conf, [[None, pika.exceptions.UnroutableError([])]])
    cast(transport)
    channel = broker.connections[0]._channel
    declared_once = channel.declared.count("queue nimbus.t")
    cast(transport)
    assert channel.declared.count("queue nimbus.t") == declared_once * 2
    assert len(broker.published) == 2
    transport.close()


def test_fanout_cast_goes_to_the_topic_fanout_exchange(rabbit_conf):
    transport, broker, _sleeps = make(rabbit_conf, [[None]])
    cast(transport, fanout=True)
    ((exchange, key, _body, _properties, mandatory),) = broker.published
    assert (exchange, key, mandatory) == ("nimbus.t.fanout", "", False)
    transport.close()


def test_notification_routing_key_is_topic_and_priority(rabbit_conf):
    from nimbus.messaging import Notifier

    transport, broker, _sleeps = make(rabbit_conf, [[None]])
    Notifier(transport, "compute.host1").error(RequestContext(), "x.y", {})
    ((exchange, key, _body, _properties, _mandatory),) = broker.published
    assert (exchange, key) == ("nimbus.notifications", "notifications.error")
    assert "queue nimbus.notifications.notifications" in broker.connections[0]._channel.declared
    transport.close()


def test_connection_parameters_come_from_the_config(rabbit_conf):
    rabbit_conf.set_override(
        "transport_url", "amqp://nimbus:secret@rabbit.example:5673/cloud", group="messaging"
    )
    rabbit_conf.set_override("heartbeat_timeout", 17, group="messaging")
    transport, broker, _sleeps = make(rabbit_conf, [[None]])
    cast(transport)
    (params,) = broker.params
    assert (params.host, params.port, params.virtual_host) == ("rabbit.example", 5673, "cloud")
    assert params.heartbeat == 17
    assert params.client_properties["connection_name"].startswith("nimbus:publisher:")
    transport.close()


def test_closed_transport_refuses_to_publish(rabbit_conf):
    transport, _broker, _sleeps = make(rabbit_conf, [])
    transport.close()
    with pytest.raises(exception.MessagingError, match="closed"):
        cast(transport)


def test_invalid_url_is_refused_without_echoing_it(rabbit_conf):
    rabbit_conf.set_override("transport_url", "amqp://u:hunter2@host:notaport/", group="messaging")
    with pytest.raises(exception.MessagingError) as info:
        RabbitTransport(rabbit_conf)
    assert "hunter2" not in str(info.value)
