"""nimbus.server: when a buffered request head is complete, and how large it may be."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
from gunicorn.config import Config

from nimbus import server


@pytest.fixture
def conn() -> Iterator[server.Conn]:
    here, there = socket.socketpair()
    try:
        yield server.Conn(
            Config(), here, ("127.0.0.1", 1), ("127.0.0.1", 2), in_loop=True, body_timeout=1
        )
    finally:
        here.close()
        there.close()


def _state(conn: server.Conn, *pieces: bytes, limit: int = 1024) -> str:
    """Feed *pieces* as the loop would; return the state after the last one."""
    state = "partial"
    for piece in pieces:
        searched = len(conn.head)
        conn.head += piece
        state = conn.head_state(limit, searched)
    return state


def test_a_head_is_complete_at_its_blank_line(conn: server.Conn) -> None:
    assert _state(conn, b"GET / HTTP/1.1\r\nHost: x\r\n") == "partial"
    assert _state(conn, b"\r\n") == "complete"


def test_the_blank_line_is_found_across_reads_of_one_byte(conn: server.Conn) -> None:
    head = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    states = [_state(conn, head[i : i + 1]) for i in range(len(head))]
    assert states == ["partial"] * (len(head) - 1) + ["complete"]


def test_a_bare_lf_goes_to_the_thread_for_gunicorn_to_refuse(conn: server.Conn) -> None:
    assert _state(conn, b"GET / HTTP/1.1\r", b"\nHost: x\r\n") == "partial"
    assert _state(conn, b"X: y\n") == "complete"


def test_a_head_past_the_limit_is_too_large(conn: server.Conn) -> None:
    assert _state(conn, b"GET / HTTP/1.1\r\nX: " + b"a" * 100, limit=64) == "too-large"


def test_a_complete_head_past_the_limit_is_too_large(conn: server.Conn) -> None:
    assert (
        _state(conn, b"GET / HTTP/1.1\r\nX: " + b"a" * 100 + b"\r\n\r\n", limit=64) == "too-large"
    )


def test_the_body_after_the_head_does_not_count(conn: server.Conn) -> None:
    head = b"POST / HTTP/1.1\r\nContent-Length: 200\r\n\r\n"
    assert _state(conn, head + b"b" * 200, limit=len(head)) == "complete"


def test_the_head_limit_follows_gunicorns_limits_up_to_the_cap() -> None:
    config = Config()
    assert server.head_limit(config) == server.HEAD_CAP
    config.set("limit_request_line", 100)
    config.set("limit_request_fields", 10)
    config.set("limit_request_field_size", 50)
    assert server.head_limit(config) == 100 + 2 + 10 * 52 + 2


def test_the_buffered_head_is_given_to_the_parser(conn: server.Conn) -> None:
    conn.head += b"GET /there HTTP/1.1\r\nHost: x\r\n\r\n"
    conn.sock.setblocking(True)
    conn.init()
    request = next(conn.parser)
    assert request.path == "/there"
    assert conn.head == bytearray()
    assert conn.sock.gettimeout() == 1


# -- request bodies read into a buffer ----------------------------------------------


@pytest.fixture
def pair() -> Iterator[tuple[server.Conn, socket.socket]]:
    """A connection as the worker holds it, and the client's end of its socket."""
    here, there = socket.socketpair()
    try:
        yield (
            server.Conn(
                Config(), here, ("127.0.0.1", 1), ("127.0.0.1", 2), in_loop=True, body_timeout=0.5
            ),
            there,
        )
    finally:
        here.close()
        there.close()


def _next_request(conn: server.Conn) -> Any:
    """Parse the next request on *conn* as a pool thread does, with its body as served."""
    conn.sock.setblocking(True)
    conn.init()
    request = next(conn.parser)
    server._with_readinto(request, conn)
    return request


def _read_all(body: Any, size: int = 7000) -> bytes:
    buffer = bytearray(size)
    parts = []
    while count := body.readinto(buffer):
        parts.append(bytes(buffer[:count]))
    return b"".join(parts)


def _put(length: int) -> bytes:
    return f"PUT /x HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n".encode()


def test_a_body_of_known_length_is_read_into_a_buffer_to_its_exact_end(
    pair: tuple[server.Conn, socket.socket],
) -> None:
    conn, client = pair
    body = bytes(range(256)) * 100
    following = b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n"
    # The head and the body's start came in the loop; the rest, and the
    # next request behind it, come from the socket.
    conn.head += _put(len(body)) + body[:1000]
    client.sendall(body[1000:] + following)
    request = _next_request(conn)
    assert isinstance(request.body, server.Body)
    assert _read_all(request.body) == body
    assert request.body.readinto(bytearray(10)) == 0
    assert next(conn.parser).path == "/next"


def test_the_head_s_read_ahead_past_the_body_is_left_for_the_next_request(
    pair: tuple[server.Conn, socket.socket],
) -> None:
    conn, _ = pair
    conn.head += _put(5) + b"12345" + b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n"
    request = _next_request(conn)
    assert _read_all(request.body) == b"12345"
    assert next(conn.parser).path == "/next"


def test_read_and_readinto_may_be_mixed(pair: tuple[server.Conn, socket.socket]) -> None:
    conn, client = pair
    body = bytes(range(256)) * 40
    client.sendall(_put(len(body)) + body)
    request = _next_request(conn)
    first = request.body.read(3)
    buffer = bytearray(5)
    count = request.body.readinto(buffer)
    assert first + bytes(buffer[:count]) == body[: 3 + count]
    assert first + bytes(buffer[:count]) + _read_all(request.body) == body


def test_a_body_cut_short_ends_early(pair: tuple[server.Conn, socket.socket]) -> None:
    conn, client = pair
    client.sendall(_put(200) + b"x" * 120)
    client.shutdown(socket.SHUT_WR)
    request = _next_request(conn)
    assert _read_all(request.body) == b"x" * 120


def test_a_stalled_body_times_out_and_the_connection_is_not_reused(
    pair: tuple[server.Conn, socket.socket],
) -> None:
    conn, client = pair
    client.sendall(_put(200) + b"x" * 50)
    request = _next_request(conn)
    buffer = bytearray(200)
    assert request.body.readinto(buffer) == 50
    with pytest.raises(TimeoutError):
        request.body.readinto(buffer)
    assert request.body.failed is True
    assert conn.parser.finish_body() is False


def test_a_chunked_body_keeps_gunicorns_reader(pair: tuple[server.Conn, socket.socket]) -> None:
    conn, client = pair
    client.sendall(
        b"PUT /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
    )
    request = _next_request(conn)
    assert not isinstance(request.body, server.Body)
    assert request.body.read() == b"hello"


class _Heartbeat:
    def __init__(self) -> None:
        self.beats = 0

    def notify(self) -> None:
        self.beats += 1


def _worker() -> server.Worker:
    worker = server.Worker.__new__(server.Worker)
    worker.tmp = _Heartbeat()
    worker._notify_every = server.NOTIFY_EVERY
    worker._notified = -server.NOTIFY_EVERY
    return worker


def test_the_heartbeat_is_sent_at_most_once_a_second(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr(server.time, "monotonic", lambda: now[0])
    worker = _worker()
    for _ in range(1000):
        worker.notify()
    assert worker.tmp.beats == 1
    now[0] += server.NOTIFY_EVERY
    worker.notify()
    worker.notify()
    assert worker.tmp.beats == 2


def test_the_loaded_application_is_frozen_out_of_full_collections(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import gc

    worker = _worker()
    loaded: list[object] = []

    class App:
        def wsgi(self) -> object:
            made = [object() for _ in range(100)]
            loaded.append(made)
            return made

    worker.app = App()
    worker.cfg = Config()
    worker.reloader = None
    before = gc.get_freeze_count()
    try:
        worker.load_wsgi()
        assert worker.wsgi is loaded[0]
        assert gc.get_freeze_count() > before
    finally:
        gc.unfreeze()
