"""The gunicorn worker class of nimbus: gthread that reads request heads in its event loop.

``gunicorn -k nimbus.server.Worker`` (and ``nimbus up``) serve with
:class:`Worker`, a :class:`gunicorn.workers.gthread.ThreadWorker` that does
not give a connection to a pool thread until its request head has arrived.

Why
    Plain gthread hands a connection to one of its ``threads`` as soon as the
    socket is readable, and the thread then blocks reading the request line
    and headers.  A client that sends its head one byte a second holds that
    thread for as long as it likes: as many such clients as there are threads
    stop every API on the port, without ever authenticating.

How
    The worker's event loop (one :mod:`selectors` selector, gthread's own)
    watches every connection whose head is still coming.  Each readable event
    makes one non-blocking ``recv``, whose bytes are kept in the connection's
    buffer (:attr:`Conn.head`).  Once the buffer holds the blank line that ends
    the head, the connection goes to the thread pool; there the parser is
    given the buffered bytes first (its unreader's ``unread``, the seam
    gunicorn itself uses for a sniffed HTTP/2 preface) and reads the rest, the
    body, from the socket.  A thread therefore only ever waits for a body, and
    each of those reads has a timeout of ``[api] body_timeout`` seconds.

    A kept-alive connection goes back to the loop as in gthread: idle until
    its next request starts (for gunicorn's ``keepalive`` seconds), then its
    head is read in the loop the same way.  Bytes a thread had read ahead
    behind a request are carried over into the next head's buffer.

    A head not complete ``[api] header_timeout`` seconds after it started (the
    connection was accepted, or the first byte of a kept-alive connection's
    next request came) is answered ``408`` and closed.  A head larger than
    gunicorn's limits (``limit_request_line``, ``limit_request_fields`` times
    ``limit_request_field_size``), or than :data:`HEAD_CAP`, whichever is less,
    is answered ``431`` and closed.  A line ended by a bare LF goes to the
    thread at once, where gunicorn refuses it with a 400.

    Every connection, reading or not, counts towards ``worker_connections``:
    at that many the worker stops accepting, as gthread does.

    A request body of known length (``Content-Length``) is given to the
    application as a :class:`Body`: gunicorn's, plus ``readinto``, which
    receives into the application's buffer straight from the socket, where
    gunicorn's ``read`` copies every byte through two buffers into new bytes.

Two more costs of gthread are cut:

* **The heartbeat.**  gthread tells the arbiter it is alive (``notify``,
  an ``os.utime`` of a file in ``worker_tmp_dir``, ``/tmp`` by default) on
  every turn of its loop: thousands of times a second under load, and on a
  journalled file system such as ext4 one such call now and then waits for
  the journal, with the loop stopped.  :class:`Worker` does it at most every
  :data:`NOTIFY_EVERY` seconds (a quarter of the arbiter's ``timeout`` if
  that is less), which the arbiter does not notice.
* **Full garbage collections of the application.**  Once the application is
  loaded, the worker moves everything it holds to the collector's permanent
  generation (:func:`gc.freeze`): a full collection then looks at what was
  made since, not at every module, class and configuration object of the
  services, which made each one stop the worker for a good part of a
  second's fifth.  What is frozen is never collected, which for objects
  that live as long as the worker costs nothing.

Not covered
    TLS, the PROXY protocol, uWSGI and HTTP/2 with prior knowledge still take
    gthread's path (the thread reads the head), with ``body_timeout`` on each
    read; ``nimbus up`` uses none of them.

The timeouts are nimbus options of the ``[api]`` group: from ``nimbus up``'s
configuration when it is the gunicorn application, else from the
configuration the ``nimbus.wsgi`` targets read (``NIMBUS_CONFIG_FILE`` or the
usual places).
"""

from __future__ import annotations

import errno
import gc
import io
import os
import selectors
import socket
import time
from collections import deque
from concurrent.futures import Future
from functools import partial
from typing import Any

from gunicorn.config import Config
from gunicorn.http import RequestParser
from gunicorn.http import body as gunicorn_body
from gunicorn.http.parser import Parser
from gunicorn.http.unreader import SocketUnreader
from gunicorn.http2 import negotiation
from gunicorn.workers import gthread
from oslo_config import cfg

__all__ = ["HEAD_CAP", "NOTIFY_EVERY", "Body", "Conn", "Worker", "head_limit"]

#: The largest request head accepted, in bytes, whatever gunicorn's limits allow.
HEAD_CAP = 64 * 1024

#: Seconds between two heartbeats of a worker to its arbiter, at most as often.
NOTIFY_EVERY = 1.0

#: How long a stopping worker still waits for heads that are coming, and keeps
#: its kept-alive connections (gthread's ``STOP_KEEPALIVE_LINGER``).
STOP_LINGER = 2.0

#: Seconds and bytes a closing connection is drained for at most (as
#: gunicorn's ``util.close_graceful``).
CLOSE_LINGER = 2.0
CLOSE_DRAIN = 64 * 1024

_END = b"\r\n\r\n"
_RECV_SIZE = 16 * 1024

_TIMEOUT_ANSWER = b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
_TOO_LARGE_ANSWER = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"Connection: close\r\nContent-Length: 0\r\n\r\n"
)

# Where a connection is; see Conn.state.
_IDLE = "idle"
_READING = "reading"
_IN_THREAD = "in-thread"
_DRAINING = "draining"
_CLOSED = "closed"


def head_limit(config: Config) -> int:
    """Return the largest request head, in bytes, that *config*'s limits allow.

    That is a request line of ``limit_request_line``, ``limit_request_fields``
    header lines of ``limit_request_field_size`` each and their line ends,
    read as gunicorn reads them (0 or less is gunicorn's own maximum), and at
    most :data:`HEAD_CAP`.
    """
    line = config.limit_request_line
    line = 8190 if line <= 0 or line > 8190 else line
    fields = config.limit_request_fields
    fields = 32768 if fields <= 0 or fields > 32768 else fields
    size = config.limit_request_field_size
    size = 8190 if size <= 0 else size
    return min(HEAD_CAP, line + 2 + fields * (size + 2) + 2)


def _reads_heads_in_loop(config: Config, client: Any) -> bool:
    """Whether a connection from *client* can have its head read in the loop."""
    return (
        not config.is_ssl
        and config.proxy_protocol == "off"
        and getattr(config, "protocol", "http") == "http"
        and not negotiation.prior_knowledge_allowed(config, client)
    )


class Body(gunicorn_body.Body):
    """A request body of known length that can be read into a buffer.

    gunicorn's ``read`` receives into new bytes and copies them through the
    unreader's buffer and its own: for a large upload that is two copies of
    every byte, and a fresh allocation (page faults, zeroing) for every
    chunk.  :meth:`readinto` gives out first what the parser already holds
    (bytes that came with the head, or that ``read`` left over), then
    receives with one ``recv_into`` into the caller's buffer, never past
    the end of the body.  ``read`` and ``readline`` are gunicorn's, and may
    be mixed with it.  As with ``read``, an error of the socket (its
    timeout, ``[api] body_timeout``, included) propagates and marks the body
    ``failed``, so that the connection is not kept alive.

    :param reader: gunicorn's reader of the body, over the connection's
        socket unreader.
    :param sock: the connection's socket.
    """

    def __init__(self, reader: gunicorn_body.LengthReader, sock: socket.socket) -> None:
        super().__init__(reader)
        self._length_reader = reader
        self._sock = sock

    def readinto(self, buffer: Any, /) -> int:
        """Read up to ``len(buffer)`` bytes of the body into *buffer*; return how many.

        0 means the body has ended, or the client closed the connection
        before its end.
        """
        view = memoryview(buffer).cast("B")
        if not view:
            return 0
        if self.buf.tell():
            # What gunicorn's read() or readline() left over comes first.
            data = self.buf.getvalue()
            count = min(len(view), len(data))
            view[:count] = data[:count]
            self.buf = io.BytesIO()
            self.buf.write(data[count:])
            return count
        reader = self._length_reader
        want = min(len(view), reader.length)
        if want <= 0:
            return 0
        held = reader.unreader.take_buffered()
        if held:
            # Bytes read ahead with the head; beyond the body, the next request's.
            count = min(want, len(held))
            view[:count] = held[:count]
            if count < len(held):
                reader.unreader.unread(held[count:])
        else:
            try:
                count = self._sock.recv_into(view, want)
            except Exception:
                self.failed = True
                raise
        reader.length -= count
        return count


def _with_readinto(req: Any, conn: Conn) -> None:
    """Give *req* a :class:`Body` if its body has a length and comes from *conn*'s socket."""
    body = getattr(req, "body", None)
    if (
        conn.in_loop
        and type(body) is gunicorn_body.Body
        and isinstance(body.reader, gunicorn_body.LengthReader)
        and isinstance(body.reader.unreader, SocketUnreader)
        and body.reader.unreader.sock is conn.sock
        and not body.buf.tell()
    ):
        req.body = Body(body.reader, conn.sock)


class Conn(gthread.TConn):
    """A gthread connection with the buffer of the request head being read.

    :param in_loop: its heads are read in the event loop (else gthread's way).
    :param body_timeout: seconds each read of the socket may wait in a thread.
    """

    def __init__(
        self,
        config: Config,
        sock: socket.socket,
        client: Any,
        server: Any,
        *,
        in_loop: bool,
        body_timeout: float,
    ) -> None:
        super().__init__(config, sock, client, server)
        self.in_loop = in_loop
        self.body_timeout = body_timeout
        #: The bytes of the next request read so far (its head, perhaps more).
        self.head = bytearray()
        #: When the head being read must be complete (``time.monotonic()``).
        self.head_deadline = 0.0
        #: ``idle`` (kept alive, nothing of a next request yet), ``reading``
        #: (its head in the loop), ``in-thread``, ``draining`` (being closed)
        #: or ``closed``.
        self.state = _READING
        #: Bytes dropped while closing.
        self.drained = 0
        # The loop only hands over a connection that has its head: the
        # thread must not wait for data as gthread does for a new one.
        self.data_ready = in_loop

    def init(self) -> None:
        """Set up the parser (once), give it the buffered head, and bound the reads."""
        super().init()
        if self.head and isinstance(self.parser, RequestParser):
            self.parser.unreader.unread(bytes(self.head))
            self.head = bytearray()
        self.sock.settimeout(self.body_timeout)

    def head_state(self, limit: int, searched: int) -> str:
        """Tell whether the buffered head is ``complete``, ``too-large`` or ``partial``.

        :param limit: the largest head accepted.
        :param searched: how many bytes of the buffer were searched before.
        """
        start = max(0, searched - len(_END) + 1)
        end = self.head.find(_END, start)
        if end >= 0:
            return "complete" if end + len(_END) <= limit else "too-large"
        # A line ended by a bare LF never ends the head as gunicorn reads it:
        # the thread refuses it at once instead of the loop timing it out.
        bare = self.head.find(b"\n", searched)
        while bare >= 0:
            if bare == 0 or self.head[bare - 1] != 0x0D:
                return "complete"
            bare = self.head.find(b"\n", bare + 1)
        return "too-large" if len(self.head) > limit else "partial"


class Worker(gthread.ThreadWorker):
    """gthread whose event loop reads each request head before a thread serves it.

    See the module's documentation for the mechanism.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout = 10.0
        self.body_timeout = 30.0
        self.head_limit = head_limit(self.cfg)
        # (deadline, connection) in deadline order; a connection that is no
        # longer reading that head is skipped when its entry comes up.
        self.reading_conns: deque[tuple[float, Conn]] = deque()
        # (deadline, connection) of those being closed, in deadline order.
        self.closing_conns: deque[tuple[float, Conn]] = deque()
        self._lingering = False
        # A quarter of the arbiter's timeout, if that is shorter.
        timeout = float(self.cfg.timeout or 0)
        self._notify_every = min(NOTIFY_EVERY, timeout / 4) if timeout > 0 else NOTIFY_EVERY
        self._notified = -self._notify_every

    def notify(self) -> None:
        """Tell the arbiter this worker is alive, at most every :data:`NOTIFY_EVERY` seconds."""
        now = time.monotonic()
        if now - self._notified >= self._notify_every:
            self._notified = now
            super().notify()

    def load_wsgi(self) -> None:
        """Load the application, then freeze what it holds out of the collector's way."""
        super().load_wsgi()
        gc.collect()
        gc.freeze()

    def handle_request(self, req: Any, conn: gthread.TConn) -> bool:
        """Serve *req* as gthread does, its body of known length a :class:`Body`."""
        if isinstance(conn, Conn):
            _with_readinto(req, conn)
        return bool(super().handle_request(req, conn))

    def init_process(self) -> None:
        """Read the timeouts from the nimbus configuration, then start as gthread."""
        api = _nimbus_config(self.app).api
        self.header_timeout = float(api.header_timeout)
        self.body_timeout = float(api.body_timeout)
        super().init_process()

    # -- the event loop ---------------------------------------------------

    def accept(self, listener: socket.socket) -> None:
        """Accept a connection and start reading its head in the loop."""
        try:
            sock, client = listener.accept()
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        conn = Conn(
            self.cfg,
            sock,
            client,
            listener.getsockname(),
            in_loop=_reads_heads_in_loop(self.cfg, client),
            body_timeout=self.body_timeout,
        )
        if not conn.in_loop:
            sock.setblocking(True)
            conn.state = _IN_THREAD
            self.enqueue_req(conn)
            return
        self._start_head(conn)

    def _start_head(self, conn: Conn, *, registered: bool = False) -> None:
        """Watch *conn* until its head is in, for at most ``header_timeout`` s.

        :param registered: the socket is in the poller already (for the
            kept-alive wait): only its callback changes, which costs no
            system call, where unregistering and registering again cost two.
        """
        conn.state = _READING
        conn.head_deadline = time.monotonic() + self.header_timeout
        if self._lingering:
            conn.head_deadline = min(conn.head_deadline, time.monotonic() + STOP_LINGER)
        self.reading_conns.append((conn.head_deadline, conn))
        callback = partial(self._on_head_data, conn)
        if registered:
            self.poller.modify(conn.sock, selectors.EVENT_READ, callback)
        else:
            self.poller.register(conn.sock, selectors.EVENT_READ, callback)

    @staticmethod
    def _recv(conn: Conn) -> bytes | None:
        """Return what *conn* sent: ``None`` if nothing yet, ``b""`` at its end or on an error."""
        try:
            return conn.sock.recv(_RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return None
        except OSError:
            return b""

    def _on_head_data(self, conn: Conn, _sock: object) -> None:
        """Read what has come of *conn*'s head; hand it over once it is complete."""
        data = self._recv(conn)
        if data is None:
            return
        if not data:
            self._close(conn)
            return
        searched = len(conn.head)
        conn.head += data
        state = conn.head_state(self.head_limit, searched)
        if state == "partial":
            return
        self.poller.unregister(conn.sock)
        if state == "too-large":
            self._refuse(conn, _TOO_LARGE_ANSWER)
            return
        self._to_thread(conn)

    def _on_idle_data(self, conn: Conn, _sock: object) -> None:
        """A kept-alive connection's next request starts: read its head in the loop."""
        self.keepalived_conns.remove(conn)
        self._start_head(conn, registered=True)
        self._on_head_data(conn, conn.sock)

    def _to_thread(self, conn: Conn) -> None:
        conn.state = _IN_THREAD
        conn.sock.setblocking(True)
        self.enqueue_req(conn)

    def _refuse(self, conn: Conn, answer: bytes) -> None:
        """Send *answer* if the socket takes it at once, and close *conn*."""
        try:
            conn.sock.send(answer)
        except OSError:
            pass  # the client is gone or not reading: nothing more to tell it
        self._close(conn)

    def _close(self, conn: Conn) -> None:
        """Forget and close a connection the loop holds."""
        if conn.state == _CLOSED:
            return
        if conn.state in (_READING, _IDLE, _DRAINING):
            try:
                self.poller.unregister(conn.sock)
            except (KeyError, ValueError, OSError):
                pass  # not registered any more
        conn.state = _CLOSED
        self.nr_conns -= 1
        conn.close()

    def murder_pending(self) -> None:
        """Close the connections whose head is late, as well as gthread's pending ones."""
        super().murder_pending()
        if not self.alive and not self._lingering:
            # A stopping worker waits a little for heads already coming.
            self._lingering = True
            cap = time.monotonic() + STOP_LINGER
            self.reading_conns = deque(
                (min(deadline, cap), conn) for deadline, conn in self.reading_conns
            )
            for _, conn in self.reading_conns:
                conn.head_deadline = min(conn.head_deadline, cap)
        now = time.monotonic()
        while self.reading_conns and self.reading_conns[0][0] <= now:
            deadline, conn = self.reading_conns.popleft()
            if conn.state == _READING and conn.head_deadline == deadline:
                self._refuse(conn, _TIMEOUT_ANSWER)
        while self.closing_conns and self.closing_conns[0][0] <= now:
            self._close(self.closing_conns.popleft()[1])

    def murder_keepalived(self, force: bool = False) -> None:
        """Close expired kept-alive connections; with *force*, every connection the loop holds."""
        gthread.ThreadWorker.murder_keepalived(self, force)  # type: ignore[call-arg]
        if force:
            for queue, state in ((self.reading_conns, _READING), (self.closing_conns, _DRAINING)):
                while queue:
                    conn = queue.popleft()[1]
                    if conn.state == state:
                        self._close(conn)

    def finish_request(self, conn: gthread.TConn, fs: Future[bool]) -> None:
        """Put a served connection back in the loop: its next head is read there too."""
        if not isinstance(conn, Conn) or not conn.in_loop:
            super().finish_request(conn, fs)
            return
        try:
            keep = fs.result() if not fs.cancelled() else False
        except Exception:  # noqa: BLE001 - gthread closes the connection on any error
            keep = False
        try:
            if keep is True and isinstance(conn.parser, RequestParser):
                self._keep(conn, conn.parser)
                return
        except OSError:
            pass  # the socket went bad between requests: close it below
        self._close_gracefully(conn)

    def _close_gracefully(self, conn: Conn) -> None:
        """Close *conn* as gunicorn's ``close_graceful`` does, without blocking the loop.

        The write side is shut down at once; what the client still sends is
        read and dropped (so that the kernel does not answer it with a reset,
        which could cut the response short) until it closes its side, for
        :data:`CLOSE_LINGER` seconds or :data:`CLOSE_DRAIN` bytes at most.
        """
        conn.state = _DRAINING
        try:
            conn.sock.setblocking(False)
            conn.sock.shutdown(socket.SHUT_WR)
            conn.head = bytearray()
            conn.head_deadline = time.monotonic() + CLOSE_LINGER
            self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_drain, conn))
        except (OSError, ValueError):
            self._close(conn)
            return
        self.closing_conns.append((conn.head_deadline, conn))

    def _on_drain(self, conn: Conn, _sock: object) -> None:
        """Drop what a closing connection still sends; close it at its end or past the cap."""
        data = self._recv(conn)
        if data is None:
            return
        conn.drained += len(data)
        if not data or conn.drained > CLOSE_DRAIN:
            self._close(conn)

    def _keepalive_after(self, conn: gthread.TConn, keepalive: bool) -> bool:
        """Whether *conn* can serve another request, once the unread body is drained.

        As gthread's, but the drain waits ``body_timeout`` at most, not 5 s:
        a body that stalled (answered 408) is not waited for again for longer.
        """
        if not keepalive or not isinstance(conn.parser, Parser):
            return False
        wait = min(gthread.DEFAULT_WORKER_DATA_TIMEOUT, self.body_timeout)
        return bool(conn.parser.finish_body(deadline=time.monotonic() + wait))

    def _keep(self, conn: Conn, parser: RequestParser) -> None:
        """Wait for the next request of a kept-alive connection, or read its head."""
        conn.sock.setblocking(False)
        # Bytes the thread read ahead start the next head; the socket does
        # not look readable for them any more.
        ahead = parser.unreader.take_buffered()
        if ahead:
            conn.head = bytearray(ahead)
            state = conn.head_state(self.head_limit, 0)
            if state == "complete":
                self._to_thread(conn)
            elif state == "too-large":
                conn.state = _IDLE
                self._refuse(conn, _TOO_LARGE_ANSWER)
            else:
                self._start_head(conn)
            return
        conn.state = _IDLE
        conn.set_timeout()
        if not self.alive:
            assert conn.timeout is not None
            conn.timeout = min(conn.timeout, time.monotonic() + STOP_LINGER)
        self.keepalived_conns.append(conn)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_idle_data, conn))


def _nimbus_config(app: Any) -> cfg.ConfigOpts:
    """Return the nimbus configuration of the gunicorn application *app*.

    ``nimbus up``'s application carries it as ``conf``; for a
    ``nimbus.wsgi`` target it is read as the target reads it.
    """
    conf = getattr(app, "conf", None)
    if isinstance(conf, cfg.ConfigOpts):
        return conf
    from nimbus.conf import load_config

    files = os.environ.get("NIMBUS_CONFIG_FILE")
    return load_config([], default_config_files=files.split(",") if files else None)
