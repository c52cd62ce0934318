"""The contract every message bus transport must pass.

A transport package runs it against its own transport by subclassing
:class:`TransportContractTests` in a test module and overriding the
``transport`` fixture::

    from nimbus.testing.messaging import TransportContractTests

    class TestMyTransport(TransportContractTests):
        @pytest.fixture
        def transport(self, messaging_conf):
            transport = MyTransport(messaging_conf)
            yield transport
            transport.close()

The ``conf`` fixture comes from nimbus's ``tests/conftest.py``; a third
party provides its own (a ``nimbus.conf.new_config()`` parsed with no
arguments).  Every wait is bounded, so a broken transport fails the tests
instead of hanging them.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
from oslo_config import cfg

from nimbus import exception
from nimbus.context import RequestContext
from nimbus.messaging import (
    Capability,
    NotificationListener,
    Notifier,
    RPCClient,
    RPCServer,
    Transport,
)

__all__ = ["Journal", "NotificationRecorder", "Recorder", "TransportContractTests"]


class Journal:
    """A thread-safe list of events that tests can wait on."""

    def __init__(self) -> None:
        self._events: list[tuple[Any, ...]] = []
        self._cond = threading.Condition()

    def add(self, *event: Any) -> None:
        """Record one event."""
        with self._cond:
            self._events.append(event)
            self._cond.notify_all()

    def events(self, kind: str | None = None) -> list[tuple[Any, ...]]:
        """Return a copy of the events (of one *kind*, the first field)."""
        with self._cond:
            return [e for e in self._events if kind is None or e[0] == kind]

    def wait_for(self, predicate: Callable[[list[tuple[Any, ...]]], bool], timeout: float) -> bool:
        """Wait until *predicate* holds for the events; return whether it did."""
        with self._cond:
            return self._cond.wait_for(lambda: predicate(list(self._events)), timeout)

    def wait_count(self, kind: str, count: int, timeout: float) -> bool:
        """Wait until at least *count* events of *kind* were recorded."""
        return self.wait_for(lambda ev: sum(1 for e in ev if e[0] == kind) >= count, timeout)


class Recorder:
    """An RPC endpoint that records each call in a :class:`Journal`.

    :param server: the name of the server it runs in.
    :param journal: where events go.
    """

    def __init__(self, server: str, journal: Journal) -> None:
        self.server = server
        self.journal = journal
        self._failures: dict[str, int] = {}
        self._lock = threading.Lock()

    def echo(self, ctx: RequestContext, **kwargs: Any) -> dict[str, Any]:
        """Return who answered, the arguments and the context."""
        return {"server": self.server, "args": kwargs, "context": ctx.to_dict()}

    def record(self, ctx: RequestContext, key: Any) -> None:
        """Record ``("record", server, key, ctx)``."""
        self.journal.add("record", self.server, key, ctx)

    def raise_not_found(self, ctx: RequestContext, id: str) -> None:
        """Raise a nimbus exception."""
        raise exception.NotFound(kind="widget", id=id)

    def raise_value_error(self, ctx: RequestContext, text: str) -> None:
        """Raise an exception that is not nimbus's."""
        raise ValueError(text)

    def always_fail(self, ctx: RequestContext, key: str) -> None:
        """Record an attempt and raise."""
        self.journal.add("attempt", self.server, key)
        raise RuntimeError(f"failing on purpose ({key})")

    def fail_times(self, ctx: RequestContext, key: str, times: int) -> None:
        """Raise on the first *times* attempts, then record success."""
        with self._lock:
            seen = self._failures.get(key, 0)
            self._failures[key] = seen + 1
        if seen < times:
            self.journal.add("attempt", self.server, key)
            raise RuntimeError(f"failing on purpose ({key}, attempt {seen + 1})")
        self.journal.add("record", self.server, key, ctx)

    def slow(self, ctx: RequestContext, key: str, seconds: float) -> None:
        """Record the start, sleep *seconds*, record the end."""
        self.journal.add("started", self.server, key)
        time.sleep(seconds)
        self.journal.add("done", self.server, key)


def _recording(priority: str) -> Callable[..., None]:
    """Return an endpoint method recording the notifications of *priority*."""

    def record(
        self: NotificationRecorder,
        ctx: RequestContext,
        publisher_id: str,
        event_type: str,
        payload: Any,
        metadata: dict[str, Any],
    ) -> None:
        self.journal.add(priority, self.name, publisher_id, event_type, payload, ctx, metadata)

    record.__name__ = priority
    record.__doc__ = f"Record an ``{priority}`` notification."
    return record


class NotificationRecorder:
    """A notification endpoint recording ``info`` and ``error`` notifications."""

    def __init__(self, name: str, journal: Journal) -> None:
        self.name = name
        self.journal = journal

    info = _recording("info")
    error = _recording("error")


#: A server or listener: something started, and stopped with a timeout.
_S = TypeVar("_S", RPCServer, NotificationListener)
#: What the ``start_server`` and ``start_listener`` fixtures return.
_StartServer = Callable[..., RPCServer]
_StartListener = Callable[..., NotificationListener]
#: What the ``notifier`` fixture returns: publisher id to notifier.
_MakeNotifier = Callable[[str], Notifier]


def _context() -> RequestContext:
    return RequestContext(
        user_id="user-1", project_id="project-1", roles=["member"], global_request_id="req-g"
    )


class TransportContractTests:
    """Behaviour every transport must show; subclass and provide ``transport``."""

    #: Longest wait, in seconds, for something that should happen.
    wait = 10.0
    #: How long to watch for something that should not happen.
    quiet = 0.5

    @pytest.fixture
    def messaging_conf(self, conf: cfg.ConfigOpts) -> cfg.ConfigOpts:
        """The config the transport under test must be built from."""
        conf.set_override("max_delivery_attempts", 3, group="messaging")
        conf.set_override("rpc_response_timeout", self.wait, group="messaging")
        conf.set_override("prefetch_count", 4, group="messaging")
        return conf

    @pytest.fixture
    def transport(self, messaging_conf: cfg.ConfigOpts) -> Iterator[Transport]:
        """The transport under test, built from ``messaging_conf``; override it."""
        pytest.fail("a transport contract test must override the 'transport' fixture")
        yield  # pragma: no cover

    @pytest.fixture
    def topic(self) -> str:
        """A topic no other test uses."""
        return f"contract-{uuid.uuid4().hex[:10]}"

    @pytest.fixture
    def journal(self) -> Journal:
        """The events recorded by this test's endpoints."""
        return Journal()

    @pytest.fixture
    def start_server(
        self, transport: Transport, topic: str, journal: Journal
    ) -> Iterator[_StartServer]:
        """Return a function starting a server with a :class:`Recorder`; stopped after."""

        def make(server: str = "host1") -> RPCServer:
            return RPCServer(transport, topic, server, [Recorder(server, journal)])

        yield from self._started(make)

    @pytest.fixture
    def start_listener(
        self, transport: Transport, topic: str, journal: Journal
    ) -> Iterator[_StartListener]:
        """Return a function starting a notification listener; stopped after."""

        def make(name: str = "listener", pool: str | None = None) -> NotificationListener:
            return NotificationListener(
                transport, topic, [NotificationRecorder(name, journal)], pool=pool
            )

        yield from self._started(make)

    def _started(self, make: Callable[..., _S]) -> Iterator[Callable[..., _S]]:
        """Yield a function that starts what *make* builds; stop them all after."""
        started: list[_S] = []

        def start(*args: Any, **kwargs: Any) -> _S:
            worker = make(*args, **kwargs)
            worker.start()
            started.append(worker)
            return worker

        yield start
        for worker in started:
            worker.stop(timeout=self.wait)

    @pytest.fixture
    def notifier(self, transport: Transport, topic: str) -> _MakeNotifier:
        """Return a function making a notifier for the test's topic from a publisher id."""
        return lambda publisher_id: Notifier(transport, publisher_id, topic=topic)

    @pytest.fixture
    def client(self, transport: Transport, topic: str) -> RPCClient:
        """A client for the test's topic."""
        return RPCClient(transport, topic, timeout=self.wait)

    # -- call and reply --------------------------------------------------------

    def test_call_returns_the_result(self, start_server: _StartServer, client: RPCClient) -> None:
        start_server("host1")
        result = client.call(_context(), "echo", number=42, names=["a", "b"], nested={"k": None})
        assert result["server"] == "host1"
        assert result["args"] == {"number": 42, "names": ["a", "b"], "nested": {"k": None}}

    def test_call_carries_the_context(self, start_server: _StartServer, client: RPCClient) -> None:
        start_server("host1")
        ctx = _context()
        result = client.call(ctx, "echo")
        assert RequestContext.from_dict(result["context"]) == ctx

    def test_many_calls_from_many_threads(
        self, start_server: _StartServer, client: RPCClient
    ) -> None:
        start_server("host1")
        results: list[Any] = []
        lock = threading.Lock()

        def worker(n: int) -> None:
            value = client.call(_context(), "echo", n=n)["args"]["n"]
            with lock:
                results.append(value)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(self.wait)
        assert sorted(results) == list(range(8))

    def test_call_to_a_server_goes_to_that_server(
        self, start_server: _StartServer, client: RPCClient
    ) -> None:
        start_server("host1")
        start_server("host2")
        for _ in range(4):
            assert client.prepare(server="host2").call(_context(), "echo")["server"] == "host2"
            assert client.prepare(server="host1").call(_context(), "echo")["server"] == "host1"

    def test_call_without_a_server_times_out(self, transport: Transport, topic: str) -> None:
        client = RPCClient(transport, topic, timeout=0.5)
        start = time.monotonic()
        with pytest.raises(exception.MessagingTimeout) as info:
            client.call(_context(), "echo")
        elapsed = time.monotonic() - start
        assert 0.4 <= elapsed < 3.0
        assert topic in str(info.value)
        assert "echo" in str(info.value)
        assert "0.5" in str(info.value)

    def test_call_timeout_comes_from_the_config(
        self, transport: Transport, topic: str, messaging_conf: cfg.ConfigOpts
    ) -> None:
        messaging_conf.set_override("rpc_response_timeout", 0.3, group="messaging")
        start = time.monotonic()
        with pytest.raises(exception.MessagingTimeout):
            RPCClient(transport, topic).call(_context(), "echo")
        assert time.monotonic() - start < 3.0

    def test_remote_nimbus_exception_is_rebuilt(
        self, start_server: _StartServer, client: RPCClient
    ) -> None:
        start_server("host1")
        with pytest.raises(exception.NotFound) as info:
            client.call(_context(), "raise_not_found", id="w-1")
        assert str(info.value) == "Could not find widget: w-1."

    def test_remote_other_exception_is_a_messaging_error(
        self, start_server: _StartServer, client: RPCClient
    ) -> None:
        start_server("host1")
        with pytest.raises(exception.MessagingError) as info:
            client.call(_context(), "raise_value_error", text="bad wiring")
        assert "ValueError" in str(info.value)
        assert "bad wiring" in str(info.value)

    def test_unknown_method_is_a_messaging_error(
        self, start_server: _StartServer, client: RPCClient
    ) -> None:
        start_server("host1")
        with pytest.raises(exception.MessagingError) as info:
            client.call(_context(), "no_such_method")
        assert "no_such_method" in str(info.value)

    def test_private_methods_are_not_exposed(
        self, start_server: _StartServer, client: RPCClient
    ) -> None:
        start_server("host1")
        with pytest.raises(exception.MessagingError):
            client.call(_context(), "__init__", server="x", journal=None)

    def test_arguments_must_be_json(self, client: RPCClient) -> None:
        with pytest.raises(exception.MessagingError):
            client.cast(_context(), "record", key={1, 2})

    # -- casts -----------------------------------------------------------------

    def test_cast_is_handled_once(
        self, start_server: _StartServer, client: RPCClient, journal: Journal
    ) -> None:
        start_server("host1")
        ctx = _context()
        client.cast(ctx, "record", key="k1")
        assert journal.wait_count("record", 1, self.wait)
        (event,) = journal.events("record")
        assert event[2] == "k1"
        assert event[3] == ctx
        time.sleep(self.quiet)
        assert len(journal.events("record")) == 1

    def test_casts_are_shared_between_the_servers_of_a_topic(
        self, start_server: _StartServer, client: RPCClient, journal: Journal
    ) -> None:
        start_server("host1")
        start_server("host2")
        for n in range(10):
            client.cast(_context(), "record", key=n)
        assert journal.wait_count("record", 10, self.wait)
        time.sleep(self.quiet)
        records = journal.events("record")
        assert sorted(e[2] for e in records) == list(range(10))
        assert {e[1] for e in records} == {"host1", "host2"}

    def test_cast_to_a_server_goes_to_that_server(
        self, start_server: _StartServer, client: RPCClient, journal: Journal
    ) -> None:
        start_server("host1")
        start_server("host2")
        for n in range(4):
            client.prepare(server="host2").cast(_context(), "record", key=n)
        assert journal.wait_count("record", 4, self.wait)
        assert {e[1] for e in journal.events("record")} == {"host2"}

    def test_cast_waits_for_a_server(
        self, start_server: _StartServer, client: RPCClient, journal: Journal
    ) -> None:
        client.cast(_context(), "record", key="early")
        client.prepare(server="host9").cast(_context(), "record", key="early-host9")
        time.sleep(self.quiet)
        start_server("host9")
        assert journal.wait_count("record", 2, self.wait)
        assert sorted(e[2] for e in journal.events("record")) == ["early", "early-host9"]

    def test_fanout_cast_reaches_every_server(
        self, start_server: _StartServer, client: RPCClient, journal: Journal
    ) -> None:
        start_server("host1")
        start_server("host2")
        client.prepare(fanout=True).cast(_context(), "record", key="all")
        assert journal.wait_count("record", 2, self.wait)
        assert sorted(e[1] for e in journal.events("record")) == ["host1", "host2"]

    def test_failing_cast_is_redelivered(
        self, start_server: _StartServer, client: RPCClient, journal: Journal
    ) -> None:
        start_server("host1")
        client.cast(_context(), "fail_times", key="flaky", times=1)
        assert journal.wait_count("record", 1, self.wait)
        assert len(journal.events("attempt")) == 1

    def test_always_failing_cast_is_dead_lettered(
        self,
        transport: Transport,
        start_server: _StartServer,
        client: RPCClient,
        journal: Journal,
    ) -> None:
        letters = self._dead_letters_of_poison(transport, start_server, client, journal, "poison")
        assert len(letters) == 1
        assert b"poison" in letters[0].body
        assert letters[0].queue.endswith(client.target.topic)

    def test_always_failing_fanout_cast_is_dead_lettered(
        self,
        transport: Transport,
        start_server: _StartServer,
        client: RPCClient,
        journal: Journal,
    ) -> None:
        letters = self._dead_letters_of_poison(
            transport, start_server, client, journal, "poison-all", fanout=True
        )
        assert [b"poison-all" in letter.body for letter in letters] == [True]
        assert client.target.topic in letters[0].queue

    def _dead_letters_of_poison(
        self,
        transport: Transport,
        start_server: _StartServer,
        client: RPCClient,
        journal: Journal,
        key: str,
        *,
        fanout: bool = False,
    ) -> list[Any]:
        """Cast a message that always fails; return the dead letters it left.

        Skips the test when the transport keeps no dead letters; checks
        that the message was tried three times and then never again.
        """
        if Capability.DEAD_LETTER not in transport.capabilities:
            pytest.skip("the transport keeps no dead letters")
        transport.fetch_dead_letters(limit=1000)
        start_server("host1")
        caster = client.prepare(fanout=True) if fanout else client
        caster.cast(_context(), "always_fail", key=key)
        assert journal.wait_count("attempt", 3, self.wait)
        letters: list[Any] = []
        deadline = time.monotonic() + self.wait
        while not letters and time.monotonic() < deadline:
            letters = transport.fetch_dead_letters()
            time.sleep(0.05)
        time.sleep(self.quiet)
        assert len(journal.events("attempt")) == 3
        return letters

    # -- stopping ----------------------------------------------------------------

    def test_stop_drains_running_handlers(
        self, start_server: _StartServer, client: RPCClient, journal: Journal
    ) -> None:
        server = start_server("host1")
        client.cast(_context(), "slow", key="long", seconds=0.5)
        assert journal.wait_count("started", 1, self.wait)
        server.stop(timeout=self.wait)
        # The handler finished before stop returned, and its message was acked.
        assert len(journal.events("done")) == 1
        start_server("host2")
        client.cast(_context(), "record", key="after")
        assert journal.wait_count("record", 1, self.wait)
        time.sleep(self.quiet)
        assert len(journal.events("started")) == 1

    def test_stopped_server_gets_no_more_messages(
        self, start_server: _StartServer, client: RPCClient, journal: Journal
    ) -> None:
        server = start_server("host1")
        server.stop(timeout=self.wait)
        client.cast(_context(), "record", key="queued")
        time.sleep(self.quiet)
        assert journal.events("record") == []
        start_server("host1")
        assert journal.wait_count("record", 1, self.wait)

    # -- notifications -----------------------------------------------------------

    def test_notifications_reach_the_listener(
        self, notifier: _MakeNotifier, start_listener: _StartListener, journal: Journal
    ) -> None:
        start_listener("telemetry")
        publisher = notifier("compute.host1")
        ctx = _context()
        publisher.info(ctx, "compute.instance.create.end", {"instance_id": "i-1"})
        publisher.error(ctx, "compute.instance.create.error", {"instance_id": "i-2"})
        assert journal.wait_for(lambda ev: len(ev) >= 2, self.wait)
        (info,) = journal.events("info")
        assert info[1:5] == (
            "telemetry",
            "compute.host1",
            "compute.instance.create.end",
            {"instance_id": "i-1"},
        )
        assert info[5] == ctx
        assert info[6]["message_id"]
        (error,) = journal.events("error")
        assert error[3:5] == ("compute.instance.create.error", {"instance_id": "i-2"})

    def test_notification_before_the_listener_is_kept(
        self, notifier: _MakeNotifier, start_listener: _StartListener, journal: Journal
    ) -> None:
        notifier("api").info(_context(), "early.event", {})
        time.sleep(self.quiet)
        start_listener("late")
        assert journal.wait_count("info", 1, self.wait)

    def test_each_pool_gets_every_notification(
        self, notifier: _MakeNotifier, start_listener: _StartListener, journal: Journal
    ) -> None:
        start_listener("a", pool="pool-a")
        start_listener("b", pool="pool-b")
        publisher = notifier("api")
        for n in range(3):
            publisher.info(_context(), "some.event", {"n": n})
        assert journal.wait_count("info", 6, self.wait)
        time.sleep(self.quiet)
        events = journal.events("info")
        assert sorted(e[4]["n"] for e in events if e[1] == "a") == [0, 1, 2]
        assert sorted(e[4]["n"] for e in events if e[1] == "b") == [0, 1, 2]
