"""The rabbit transport against the real RabbitMQ on this machine.

Every test uses its own exchange (and so its own queues), deleted at the
end.  Lost connections are simulated with a TCP proxy between the transport
and the broker that the test can cut, so no other client of the broker is
disturbed.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from urllib.parse import urlsplit, urlunsplit

import pika
import pytest

from nimbus import exception
from nimbus.context import RequestContext
from nimbus.messaging import RPCClient, RPCServer, get_transport
from nimbus.messaging.rabbit import RabbitTransport
from nimbus.testing.messaging import Journal, Recorder, TransportContractTests
from nimbus.testing.waiting import wait_until

pytestmark = pytest.mark.services


def _configure(conf, url: str) -> None:
    group = "messaging"
    conf.set_override("transport", "rabbit", group=group)
    conf.set_override("transport_url", url, group=group)
    conf.set_override("exchange", f"nimbus-test-{uuid.uuid4().hex[:12]}", group=group)
    conf.set_override("connection_retry_interval", 0.05, group=group)
    conf.set_override("connection_retry_interval_max", 0.4, group=group)
    conf.set_override("connection_retry_attempts", 50, group=group)
    conf.set_override("heartbeat_timeout", 10, group=group)


def _tear_down(transport: RabbitTransport) -> None:
    transport.close()
    transport.ex_delete_declared()


class TestRabbitTransport(TransportContractTests):
    @pytest.fixture
    def transport(self, messaging_conf, rabbit_url):
        _configure(messaging_conf, rabbit_url)
        transport = RabbitTransport(messaging_conf)
        yield transport
        _tear_down(transport)


class TcpProxy:
    """A TCP relay to the broker whose connections a test can cut."""

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.05)
        self.port = self._server.getsockname()[1]
        self.accepted = 0
        self.refuse = False
        self._lock = threading.Lock()
        self._live: list[tuple[socket.socket, socket.socket]] = []
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._closing = threading.Event()
        self._start(self._accept_loop)

    def _start(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def _accept_loop(self) -> None:
        while not self._closing.is_set():
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            with self._lock:
                self._sockets.append(client)
            if self.refuse:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self._target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets.append(upstream)
                self._live.append((client, upstream))
                self.accepted += 1
            self._start(self._pump, client, upstream)
            self._start(self._pump, upstream, client)

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        for sock in (source, sink):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self) -> int:
        """Drop every relayed connection, as a failing network would."""
        with self._lock:
            live, self._live = self._live, []
        for pair in live:
            for sock in pair:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        return len(live)

    def close(self) -> None:
        self._closing.set()
        self.cut()
        self._server.close()
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(5)
        with self._lock:
            for sock in self._sockets:
                sock.close()


@pytest.fixture
def proxy(rabbit_url):
    parts = urlsplit(rabbit_url)
    relay = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5672)
    yield relay
    relay.close()


def _through(url: str, port: int) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    credentials = netloc[0] + "@" if len(netloc) == 2 else ""
    return urlunsplit(parts._replace(netloc=f"{credentials}127.0.0.1:{port}"))


@pytest.fixture
def transport(conf, rabbit_url):
    _configure(conf, rabbit_url)
    conf.set_override("max_delivery_attempts", 4, group="messaging")
    transport = RabbitTransport(conf)
    yield transport
    _tear_down(transport)


@pytest.fixture
def proxied_transport(conf, rabbit_url, proxy):
    _configure(conf, _through(rabbit_url, proxy.port))
    transport = RabbitTransport(conf)
    yield transport
    # Clean up through the real broker address: the proxy may be refusing.
    transport.close()
    transport._url = rabbit_url
    transport.ex_delete_declared()


def _ctx() -> RequestContext:
    return RequestContext(user_id="u", project_id="p")


# nimbus.registry passes stevedore an option that stevedore >= 5.5 deprecates.
@pytest.mark.filterwarnings("ignore:The warn_on_missing_entrypoint option:DeprecationWarning")
def test_get_transport_loads_rabbit(conf, rabbit_url):
    _configure(conf, rabbit_url)
    transport = get_transport(conf)
    try:
        assert isinstance(transport, RabbitTransport)
    finally:
        _tear_down(transport)


def test_no_cast_is_lost_when_connections_drop(proxied_transport, proxy):
    """Cut the publisher's and the consumer's connections mid-stream, twice."""
    journal = Journal()

    class Endpoint(Recorder):
        def work(self, ctx, key):
            time.sleep(0.01)  # so that some handlers are running at the cut
            self.journal.add("record", self.server, key, ctx)

    server = RPCServer(proxied_transport, "work", "host1", [Endpoint("host1", journal)])
    server.start()
    client = RPCClient(proxied_transport, "work")
    total = 80
    sent: list[int] = []

    def send() -> None:
        for n in range(total):
            client.cast(_ctx(), "work", key=n)
            sent.append(n)
            time.sleep(0.005)

    sender = threading.Thread(target=send)
    sender.start()
    try:
        assert journal.wait_count("record", 15, 10)
        assert proxy.cut() >= 2
        assert journal.wait_count("record", 40, 10)
        assert proxy.cut() >= 2
        sender.join(20)
        assert not sender.is_alive()
        assert sent == list(range(total))
        handled = lambda: {e[2] for e in journal.events("record")}  # noqa: E731
        assert wait_until(lambda: handled() == set(range(total)), 20, interval=0.02), (
            f"lost: {sorted(set(range(total)) - handled())}"
        )
    finally:
        server.stop(timeout=5)
    # Both sides came back on new connections.
    assert proxy.accepted >= 4


def test_cast_waits_for_the_broker_to_come_back(proxied_transport, proxy):
    client = RPCClient(proxied_transport, "patient")
    client.cast(_ctx(), "work", key="warm-up")
    proxy.refuse = True
    proxy.cut()

    def come_back() -> None:
        time.sleep(0.6)
        proxy.refuse = False

    threading.Thread(target=come_back).start()
    start = time.monotonic()
    client.cast(_ctx(), "work", key="after the outage")
    assert 0.5 <= time.monotonic() - start < 5
    journal = Journal()
    server = RPCServer(proxied_transport, "patient", "h", [_Worker(journal)])
    server.start()
    try:
        assert journal.wait_count("work", 2, 10)
    finally:
        server.stop(timeout=5)
    assert sorted(e[1] for e in journal.events("work")) == ["after the outage", "warm-up"]


class _Worker:
    def __init__(self, journal: Journal) -> None:
        self.journal = journal

    def work(self, ctx, key):
        self.journal.add("work", key)


def test_cast_gives_up_after_the_configured_attempts(proxied_transport, proxy, conf):
    conf.set_override("connection_retry_attempts", 3, group="messaging")
    proxy.refuse = True
    proxy.cut()
    start = time.monotonic()
    with pytest.raises(exception.MessagingError, match="after 3 attempts"):
        RPCClient(proxied_transport, "nowhere").cast(_ctx(), "work", key=1)
    assert time.monotonic() - start < 5


def test_call_without_a_broker_times_out(proxied_transport, proxy):
    proxy.refuse = True
    start = time.monotonic()
    with pytest.raises(exception.MessagingTimeout):
        RPCClient(proxied_transport, "any", timeout=1.0).call(_ctx(), "work", key=1)
    assert 0.9 <= time.monotonic() - start < 2.5


def test_call_without_a_server_times_out_within_its_timeout(transport):
    client = RPCClient(transport, f"lonely-{uuid.uuid4().hex[:6]}", timeout=1.0)
    start = time.monotonic()
    with pytest.raises(exception.MessagingTimeout, match="within 1.0 seconds"):
        client.call(_ctx(), "ping")
    assert 0.9 <= time.monotonic() - start < 2.0


def test_failing_cast_ends_in_the_dead_letter_queue(transport, rabbit_url):
    journal = Journal()
    server = RPCServer(transport, "poison", "host1", [Recorder("host1", journal)])
    server.start()
    try:
        RPCClient(transport, "poison").cast(_ctx(), "always_fail", key="bad-1")
        assert journal.wait_count("attempt", 4, 10)
        time.sleep(0.5)
        assert len(journal.events("attempt")) == 4
    finally:
        server.stop(timeout=5)
    connection = pika.BlockingConnection(pika.URLParameters(rabbit_url))
    try:
        channel = connection.channel()
        method, properties, body = channel.basic_get(transport.dead_letter_queue, auto_ack=True)
        assert method is not None
        assert b"bad-1" in body
        assert properties.delivery_mode == 2
        assert properties.headers["x-first-death-queue"] == f"{transport.exchange}.poison"
        assert properties.headers["x-first-death-reason"] == "rejected"
        assert channel.basic_get(transport.dead_letter_queue, auto_ack=True)[0] is None
    finally:
        connection.close()


def test_casts_wait_persistent_in_a_durable_queue(transport, rabbit_url):
    RPCClient(transport, "later").cast(_ctx(), "work", key=1)
    connection = pika.BlockingConnection(pika.URLParameters(rabbit_url))
    try:
        channel = connection.channel()
        queue = f"{transport.exchange}.later"
        assert channel.queue_declare(queue, passive=True).method.message_count == 1
        method, properties, _body = channel.basic_get(queue)
        assert properties.delivery_mode == 2
        channel.basic_nack(method.delivery_tag, requeue=True)
    finally:
        connection.close()


def test_heartbeat_is_configured(conf, rabbit_url):
    _configure(conf, rabbit_url)
    conf.set_override("heartbeat_timeout", 7, group="messaging")
    seen = []

    def factory(params):
        seen.append(params)
        return pika.BlockingConnection(params)

    transport = RabbitTransport(conf, connection_factory=factory)
    try:
        RPCClient(transport, "beat").cast(_ctx(), "work", key=1)
    finally:
        _tear_down(transport)
    assert seen and all(p.heartbeat == 7 for p in seen)
