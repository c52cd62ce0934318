"""The memory transport: the shared contract, plus what only it can show."""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid

import pytest

from nimbus.context import RequestContext
from nimbus.messaging import Notifier, RPCClient, RPCServer, Target
from nimbus.messaging.memory import MemoryBroker, MemoryTransport
from nimbus.testing.messaging import Journal, Recorder, TransportContractTests
from nimbus.testing.waiting import wait_until


class TestMemoryTransport(TransportContractTests):
    wait = 5.0
    quiet = 0.2

    @pytest.fixture
    def transport(self, messaging_conf):
        transport = MemoryTransport(messaging_conf, broker=MemoryBroker())
        yield transport
        transport.close()


@pytest.fixture
def transport(conf):
    conf.set_override("prefetch_count", 2, group="messaging")
    conf.set_override("max_delivery_attempts", 2, group="messaging")
    transport = MemoryTransport(conf, broker=MemoryBroker())
    yield transport
    transport.close()


def test_transports_of_one_exchange_share_a_broker(conf):
    conf.set_override("exchange", f"test-{uuid.uuid4().hex}", group="messaging")
    first, second = MemoryTransport(conf), MemoryTransport(conf)
    conf.set_override("exchange", f"test-{uuid.uuid4().hex}", group="messaging")
    other = MemoryTransport(conf)
    assert first.broker is second.broker
    assert other.broker is not first.broker


def test_casts_are_dealt_round_robin(transport):
    journal = Journal()
    servers = [RPCServer(transport, "t", f"h{n}", [Recorder(f"h{n}", journal)]) for n in range(3)]
    for server in servers:
        server.start()
    try:
        client = RPCClient(transport, "t")
        for n in range(6):
            client.cast(RequestContext(), "slow", key=str(n), seconds=0.05)
        assert journal.wait_count("done", 6, 5)
        per_host = [sum(1 for e in journal.events("done") if e[1] == f"h{n}") for n in range(3)]
        assert per_host == [2, 2, 2]
    finally:
        for server in servers:
            server.stop(timeout=5)


def test_prefetch_limits_concurrent_handlers(transport):
    running = 0
    peak = 0
    lock = threading.Lock()

    class Endpoint:
        def work(self, ctx):
            nonlocal running, peak
            with lock:
                running += 1
                peak = max(peak, running)
            time.sleep(0.05)
            with lock:
                running -= 1

    server = RPCServer(transport, "t", "h", [Endpoint()])
    server.start()
    client = RPCClient(transport, "t")
    for _ in range(6):
        client.cast(RequestContext(), "work")
    wait_until(lambda: not transport.broker._queues["t"].messages, 5)
    server.stop(timeout=5)
    assert peak == 2


def test_stop_timeout_requeues_unfinished_messages(transport):
    release = threading.Event()
    calls = []

    class Endpoint:
        def work(self, ctx):
            calls.append(1)
            release.wait(5)

    server = RPCServer(transport, "t", "h", [Endpoint()])
    server.start()
    RPCClient(transport, "t").cast(RequestContext(), "work")
    wait_until(lambda: calls, 5)
    start = time.monotonic()
    server.stop(timeout=0.1)
    assert time.monotonic() - start < 1
    assert len(transport.broker._queues["t"].messages) == 1
    release.set()


def test_call_reply_after_timeout_is_dropped(transport):
    release = threading.Event()

    class Endpoint:
        def work(self, ctx):
            release.wait(5)
            return "late"

    server = RPCServer(transport, "t", "h", [Endpoint()])
    server.start()
    with pytest.raises(Exception, match="within 0.1 seconds"):
        RPCClient(transport, "t", timeout=0.1).call(RequestContext(), "work")
    release.set()
    server.stop(timeout=5)
    assert transport.broker._waiters == {}


def test_fanout_target_cannot_be_called(transport):
    with pytest.raises(Exception, match="fanout"):
        transport.call(Target("t", fanout=True), b"{}", timeout=1)


def test_listen_needs_a_server(transport):
    with pytest.raises(ValueError):
        transport.listen(Target("t"), lambda message: None)


def test_unconsumed_notifications_are_bounded(conf, caplog):
    transport = MemoryTransport(conf, broker=MemoryBroker(max_queued_notifications=3))
    notifier = Notifier(transport, "api", topic="t")
    with caplog.at_level(logging.WARNING, logger="nimbus.messaging.memory"):
        for n in range(5):
            notifier.info(RequestContext(), "e", {"n": n})
    (queue,) = transport.broker._queues.values()
    assert [json.loads(d.body)["payload"]["n"] for d in queue.messages] == [2, 3, 4]
    # Two notifications dropped, one warning.
    assert len([r for r in caplog.records if "is full" in r.getMessage()]) == 1
