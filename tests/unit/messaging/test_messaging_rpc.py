"""The RPC layer: envelopes, exception mapping, endpoint dispatch, loading."""

from __future__ import annotations

import pytest

from nimbus import exception
from nimbus.conf import messaging as messaging_opts
from nimbus.context import RequestContext
from nimbus.messaging import RPCClient, RPCServer, Target, Transport, _envelope, get_transport
from nimbus.messaging.memory import MemoryBroker, MemoryTransport


class Custom(exception.NimbusException):
    msg_fmt = "custom %(thing)s"


class Picky(exception.NimbusException):
    def __init__(self, *, required):
        super().__init__(f"needs {required}")


def roundtrip(ex: Exception) -> Exception:
    return _envelope.failure_from_dict(
        _envelope.decode(_envelope.encode({"failure": _envelope.failure_to_dict(ex)}))["failure"]
    )


def test_nimbus_exception_comes_back_as_its_class():
    rebuilt = roundtrip(exception.Conflict(kind="server", reason="name taken"))
    assert type(rebuilt) is exception.Conflict
    assert str(rebuilt) == "Conflict occurred attempting to store server - name taken."


def test_nimbus_subclass_defined_elsewhere_comes_back():
    rebuilt = roundtrip(Custom(thing="x"))
    assert type(rebuilt) is Custom
    assert str(rebuilt) == "custom x"


def test_subclass_with_an_odd_constructor_becomes_messaging_error():
    rebuilt = roundtrip(Picky(required="a"))
    assert type(rebuilt) is exception.MessagingError
    assert "Picky" in str(rebuilt) and "needs a" in str(rebuilt)


def test_builtin_exception_becomes_messaging_error_naming_it():
    rebuilt = roundtrip(KeyError("k"))
    assert type(rebuilt) is exception.MessagingError
    assert "remote KeyError" in str(rebuilt)


def test_foreign_module_is_never_imported():
    failure = {"module": "os", "class": "system", "message": "rm -rf"}
    rebuilt = _envelope.failure_from_dict(failure)
    assert type(rebuilt) is exception.MessagingError
    assert "os.system" in str(rebuilt)


def test_unknown_nimbus_module_is_a_messaging_error():
    failure = {"module": "nimbus.no_such_module", "class": "Gone", "message": "m"}
    assert type(_envelope.failure_from_dict(failure)) is exception.MessagingError


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b"\xff"])
def test_malformed_bodies_are_messaging_errors(body):
    with pytest.raises(exception.MessagingError, match="malformed"):
        _envelope.decode(body)


def test_nan_is_not_json():
    with pytest.raises(exception.MessagingError):
        _envelope.encode({"x": float("nan")})


class Endpoint:
    attribute = "not callable"

    def visible(self, ctx):
        return "visible"

    def _hidden(self, ctx):
        return "hidden"

    @property
    def prop(self):
        raise AssertionError("properties must not be evaluated")

    @staticmethod
    def static(ctx):
        return "static"


class Other:
    def visible(self, ctx):
        return "duplicate"


def test_server_exposes_public_methods_only():
    transport = MemoryTransport.__new__(MemoryTransport)
    server = RPCServer(transport, "t", "h", [Endpoint()])
    assert sorted(server._methods) == ["static", "visible"]


def test_server_refuses_a_method_exposed_twice():
    with pytest.raises(ValueError, match="visible"):
        RPCServer(None, "t", "h", [Endpoint(), Other()])


def test_prepare_returns_a_changed_copy(conf):
    transport = MemoryTransport(conf, broker=MemoryBroker())
    client = RPCClient(transport, "compute", timeout=3)
    host = client.prepare(server="host1")
    assert host.target == Target("compute", server="host1")
    assert host.timeout == 3
    assert client.target == Target("compute")
    assert host.prepare(server=None, timeout=None).target == Target("compute")
    assert client.prepare(fanout=True).target.fanout


def test_fanout_client_cannot_call(conf):
    transport = MemoryTransport(conf, broker=MemoryBroker())
    with pytest.raises(exception.MessagingError, match="fanout"):
        RPCClient(transport, Target("t", fanout=True)).call(RequestContext(), "m")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"topic": ""},
        {"topic": "a b"},
        {"topic": "t", "server": ""},
        {"topic": "t", "server": "h", "fanout": True},
    ],
)
def test_invalid_targets(kwargs):
    with pytest.raises(ValueError):
        Target(**kwargs)


def test_target_names():
    assert str(Target("compute", server="host1")) == "compute.host1"
    assert str(Target("scheduler")) == "scheduler"


class RecordingTransport(MemoryTransport):
    """A memory transport that records each delivery and how its handler ended."""

    def __init__(self, conf, **kwargs):
        super().__init__(conf, **kwargs)
        self.deliveries = []

    def listen(self, target, handler):
        def recording(message):
            try:
                handler(message)
            except Exception:
                self.deliveries.append((message.body, message.delivery_count, "requeued"))
                raise
            self.deliveries.append((message.body, message.delivery_count, "acked"))

        return super().listen(target, recording)


def test_malformed_request_is_dropped_not_redelivered(conf):
    # One message at a time: a requeued message goes back to the head of the
    # queue, so its redeliveries would all come before the call below.
    conf.set_override("prefetch_count", 1, group="messaging")
    conf.set_override("max_delivery_attempts", 3, group="messaging")
    transport = RecordingTransport(conf, broker=MemoryBroker())
    server = RPCServer(transport, "t", "h", [Endpoint()])
    transport.cast(Target("t"), b"garbage")
    server.start()
    try:
        assert RPCClient(transport, "t", timeout=5).call(RequestContext(), "visible") == "visible"
    finally:
        server.stop(timeout=5)
    dropped = [entry for entry in transport.deliveries if entry[0] == b"garbage"]
    assert dropped == [(b"garbage", 1, "acked")]
    assert transport.fetch_dead_letters() == []
    transport.close()


def test_unserialisable_result_is_reported_to_the_caller(conf):
    class Bad:
        def get(self, ctx):
            return {1, 2}

    transport = MemoryTransport(conf, broker=MemoryBroker())
    server = RPCServer(transport, "t", "h", [Bad()])
    server.start()
    try:
        with pytest.raises(exception.MessagingError, match="JSON"):
            RPCClient(transport, "t", timeout=5).call(RequestContext(), "get")
    finally:
        server.stop(timeout=5)
        transport.close()


# nimbus.registry passes stevedore an option that stevedore >= 5.5 deprecates.
@pytest.mark.filterwarnings("ignore:The warn_on_missing_entrypoint option:DeprecationWarning")
def test_get_transport_loads_the_configured_transport(conf):
    transport = get_transport(conf)
    try:
        assert isinstance(transport, MemoryTransport)
        assert isinstance(transport, Transport)
    finally:
        transport.close()


@pytest.mark.filterwarnings("ignore:The warn_on_missing_entrypoint option:DeprecationWarning")
def test_get_transport_names_the_missing_transport(conf):
    conf.set_override("transport", "carrier-pigeon", group="messaging")
    with pytest.raises(exception.PluginNotFound, match="memory, rabbit"):
        get_transport(conf)


def test_transport_url_is_secret():
    ((group, opts),) = messaging_opts.list_opts()
    by_name = {opt.name: opt for opt in opts}
    assert by_name["transport_url"].secret
    assert by_name["rpc_response_timeout"].default == 60.0
    assert {
        "heartbeat_timeout",
        "max_delivery_attempts",
        "exchange",
        "prefetch_count",
        "connection_retry_interval",
        "connection_retry_backoff",
        "connection_retry_interval_max",
        "connection_retry_attempts",
    } <= set(by_name)


def test_base_transport_is_abstract(conf):
    with pytest.raises(TypeError):
        Transport(conf)


def test_dead_letters_are_optional(conf):
    class Minimal(Transport):
        def call(self, target, body, *, timeout):
            return b""

        def cast(self, target, body):
            pass

        def notify(self, topic, priority, body):
            pass

        def listen(self, target, handler):
            pass

        def listen_notifications(self, topic, handler, *, pool=None):
            pass

        def close(self):
            pass

    with pytest.raises(exception.OperationNotSupported, match="Minimal"):
        Minimal(conf).fetch_dead_letters()
