"""nimbus.server: when a buffered request head is complete, and how large it may be."""

from __future__ import annotations

import socket
from collections.abc import Iterator

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
