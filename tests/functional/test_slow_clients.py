"""Slow clients do not stop the API: ``nimbus.server.Worker`` reads request heads in its loop.

A real ``gunicorn 'nimbus.wsgi:all_services()'`` with one worker of 8
threads serves a prepared SQLite state.  64 raw connections each send one
byte of a request head every 0.5 s; under plain gthread they take all 8
threads and nothing else is answered, under ``nimbus.server.Worker`` the
ordinary requests sent meanwhile are answered at once.  A second server
with 1 s timeouts shows that a late head is answered 408 and closed, and
that a stalled body frees its thread.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from nimbus.testing.server import (
    HOST,
    Server,
    gunicorn,
    password_auth,
    prepare_state,
    write_config,
)

pytestmark = pytest.mark.slow

WORKER_CLASS = "nimbus.server.Worker"
THREADS = 8
SLOW_CLIENTS = 64
#: Seconds between two bytes of a slow client.
INTERVAL = 0.5
#: The cheap, unauthenticated document every ordinary request asks for.
PATH = "/identity/v3"
#: How long an ordinary request may take while the slow clients are held
#: (generous for a loaded test machine; the requests take milliseconds).
BOUND = 2.0
ADMIN_PASSWORD = "secret"
#: The timeouts of the strict server.
TIMEOUT = 1.0
#: A head that never ends: the slow clients send it a byte at a time.
SLOW_HEAD = b"GET /identity/v3 HTTP/1.1\r\nHost: slow\r\nX-Padding: " + b"a" * 1000


def _config(base: Path, name: str, **api: object) -> Path:
    sections = {
        "DEFAULT": {"state_path": base / "state"},
        "identity": {"password_hash_rounds": 4},
        "api": api,
    }
    return write_config(base / f"{name}.conf", sections)


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with a prepared state, shared by the module's servers."""
    path = tmp_path_factory.mktemp("slow-clients")
    prepare_state(_config(path, "prepare"), ADMIN_PASSWORD)
    return path


@pytest.fixture(scope="module")
def server(base: Path) -> Iterator[Server]:
    """The worker class under test, 8 threads, default timeouts."""
    with gunicorn(
        "nimbus.wsgi:all_services()",
        config_file=_config(base, "default"),
        log_path=base / "default.log",
        worker_class=WORKER_CLASS,
        threads=THREADS,
    ) as running:
        yield running


@pytest.fixture(scope="module")
def strict(base: Path) -> Iterator[Server]:
    """The same with 1 s header and body timeouts."""
    with gunicorn(
        "nimbus.wsgi:all_services()",
        config_file=_config(base, "strict", header_timeout=TIMEOUT, body_timeout=TIMEOUT),
        log_path=base / "strict.log",
        worker_class=WORKER_CLASS,
        threads=THREADS,
    ) as running:
        yield running


class SlowClients:
    """Connections that each send one byte of :data:`SLOW_HEAD` every *interval* s."""

    def __init__(self, server: Server, count: int, interval: float) -> None:
        self.socks = [socket.create_connection((server.host, server.port)) for _ in range(count)]
        self.interval = interval
        self.sent = 0
        self.errors: list[OSError] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="slow-clients", daemon=True)

    def _send_next(self) -> None:
        byte = SLOW_HEAD[self.sent : self.sent + 1]
        for sock in self.socks:
            try:
                sock.send(byte)
            except OSError as ex:
                self.errors.append(ex)
        self.sent += 1

    def _run(self) -> None:
        while not self._stop.wait(self.interval) and self.sent < len(SLOW_HEAD):
            self._send_next()

    def still_open(self) -> int:
        """Return how many of the connections the server has neither answered nor closed."""
        open_ = 0
        for sock in self.socks:
            try:
                sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
            except BlockingIOError:
                open_ += 1
            except OSError:
                pass
        return open_

    def __enter__(self) -> SlowClients:
        self._send_next()
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        for sock in self.socks:
            sock.close()


def _get(server: Server, path: str = PATH, *, timeout: float = BOUND) -> tuple[int, float]:
    """GET *path* on a new connection; return the status and the seconds it took."""
    start = time.monotonic()
    conn = http.client.HTTPConnection(server.host, server.port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        resp.read()
    finally:
        conn.close()
    return resp.status, time.monotonic() - start


def _read_until_closed(sock: socket.socket, timeout: float) -> bytes:
    """Read *sock* until the server closes it; fail if it stays open *timeout* s."""
    sock.settimeout(timeout)
    data = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(4096):
            data += chunk
    return data


def test_slow_heads_do_not_hold_the_threads(server: Server) -> None:
    with SlowClients(server, SLOW_CLIENTS, INTERVAL) as slow:
        # Long enough for the worker to take every slow connection (and,
        # with plain gthread, to give each of its threads one).
        time.sleep(INTERVAL + 0.2)
        took = []
        for _ in range(20):
            try:
                status, seconds = _get(server)
            except TimeoutError:
                pytest.fail(
                    f"GET {PATH} not answered within {BOUND} s behind {SLOW_CLIENTS} slow heads"
                )
            assert status == 200
            took.append(seconds)
        assert max(took) < BOUND
        # The slow clients are held, neither answered nor dropped.
        assert slow.sent >= 2
        assert slow.errors == []
        assert slow.still_open() == SLOW_CLIENTS


def test_a_late_head_is_answered_408_and_closed(strict: Server) -> None:
    with socket.create_connection((strict.host, strict.port)) as sock:
        start = time.monotonic()
        sock.sendall(b"GET /identity/v3 HTTP/1.1\r\nHost: late\r\n")
        # Trickling more of the head does not put the deadline off.
        for byte in b"X-Slow: 1":
            time.sleep(0.1)
            with contextlib.suppress(OSError):
                sock.send(bytes([byte]))
        answer = _read_until_closed(sock, TIMEOUT + 5)
        elapsed = time.monotonic() - start
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert TIMEOUT * 0.9 <= elapsed < TIMEOUT + 3
    assert _get(strict)[0] == 200


def test_an_idle_connection_is_closed_after_the_header_timeout(strict: Server) -> None:
    with socket.create_connection((strict.host, strict.port)) as sock:
        start = time.monotonic()
        answer = _read_until_closed(sock, TIMEOUT + 5)
        assert answer.startswith(b"HTTP/1.1 408 ")
        assert time.monotonic() - start < TIMEOUT + 3


def test_two_requests_on_one_kept_alive_connection_are_both_answered(server: Server) -> None:
    conn = http.client.HTTPConnection(server.host, server.port, timeout=BOUND)
    try:
        conn.request("GET", PATH)
        first = conn.getresponse()
        assert first.status == 200
        assert first.getheader("Connection") == "keep-alive"
        first.read()
        sock = conn.sock
        time.sleep(0.3)  # the connection is back in the worker's loop, idle
        conn.request("GET", PATH)
        second = conn.getresponse()
        assert second.status == 200
        second.read()
        assert conn.sock is sock  # the same connection, not a new one
    finally:
        conn.close()


def test_pipelined_requests_are_both_answered(server: Server) -> None:
    request = f"GET {PATH} HTTP/1.1\r\nHost: {HOST}\r\n"
    with socket.create_connection((server.host, server.port)) as sock:
        # The second head arrives with the first: read ahead by the thread,
        # it must be served without the socket ever looking readable again.
        sock.sendall(f"{request}\r\n{request}Connection: close\r\n\r\n".encode())
        answer = _read_until_closed(sock, BOUND)
    assert answer.count(b"HTTP/1.1 200 OK\r\n") == 2


def test_an_oversized_head_is_refused_with_431(server: Server) -> None:
    with socket.create_connection((server.host, server.port)) as sock:
        head = f"GET {PATH} HTTP/1.1\r\nHost: {HOST}\r\n".encode()
        with contextlib.suppress(OSError):  # the server may close before all is sent
            sock.sendall(head + b"X-Big: " + b"b" * (70 * 1024) + b"\r\n\r\n")
        answer = _read_until_closed(sock, BOUND)
    assert answer.startswith(b"HTTP/1.1 431 ")
    assert _get(server)[0] == 200


def test_stalled_bodies_free_their_threads(strict: Server) -> None:
    head = (
        f"POST /identity/v3/auth/tokens HTTP/1.1\r\nHost: {HOST}\r\n"
        "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
        '{"auth": '
    ).encode()
    socks = [socket.create_connection((strict.host, strict.port)) for _ in range(THREADS)]
    try:
        start = time.monotonic()
        for sock in socks:
            sock.sendall(head)  # and never the rest of the body
        # Every thread waits for a body; within body_timeout each gives up.
        status, _ = _get(strict, timeout=TIMEOUT + 5)
        assert status == 200
        answers = [_read_until_closed(sock, TIMEOUT + 5) for sock in socks]
        assert time.monotonic() - start < TIMEOUT + 5
    finally:
        for sock in socks:
            sock.close()
    assert all(answer.startswith(b"HTTP/1.1 408 ") for answer in answers), answers


def _call(
    server: Server, method: str, path: str, body: object = None, token: str | None = None
) -> tuple[int, http.client.HTTPMessage, bytes]:
    """Send one JSON request on a new connection; return status, headers and body."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["X-Auth-Token"] = token
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    try:
        data = None if body is None else json.dumps(body).encode()
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.headers, resp.read()
    finally:
        conn.close()


def test_a_stalled_image_upload_is_answered_408_and_the_image_stays_queued(
    strict: Server,
) -> None:
    status, headers, _ = _call(
        strict, "POST", "/identity/v3/auth/tokens", password_auth(ADMIN_PASSWORD)
    )
    assert status == 201
    token = headers["X-Subject-Token"]
    image = {"name": "stalled", "disk_format": "raw", "container_format": "bare"}
    status, _, body = _call(strict, "POST", "/image/v2/images", image, token)
    assert status == 201, body
    image_id = json.loads(body)["id"]
    with socket.create_connection((strict.host, strict.port)) as sock:
        sock.sendall(
            f"PUT /image/v2/images/{image_id}/file HTTP/1.1\r\nHost: {HOST}\r\n"
            f"X-Auth-Token: {token}\r\nContent-Type: application/octet-stream\r\n"
            "Content-Length: 100000\r\n\r\n".encode()
            + b"x" * 1000
        )
        answer = _read_until_closed(sock, TIMEOUT + 5)
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    status, _, body = _call(strict, "GET", f"/image/v2/images/{image_id}", token=token)
    assert json.loads(body)["status"] == "queued"


def test_heads_being_read_count_towards_worker_connections(base: Path) -> None:
    limit = 4
    with gunicorn(
        "nimbus.wsgi:all_services()",
        config_file=_config(base, "limited", header_timeout=TIMEOUT),
        log_path=base / "limited.log",
        worker_class=WORKER_CLASS,
        threads=THREADS,
        extra_args=["--worker-connections", str(limit)],
    ) as limited:
        socks = [socket.create_connection((limited.host, limited.port)) for _ in range(limit)]
        try:
            time.sleep(0.2)  # accepted: the worker is at its limit and stops accepting
            start = time.monotonic()
            # Not accepted until the silent connections time out and free their places.
            status, _ = _get(limited, timeout=TIMEOUT + 5)
            waited = time.monotonic() - start
        finally:
            for sock in socks:
                sock.close()
    assert status == 200
    assert waited >= TIMEOUT * 0.5
