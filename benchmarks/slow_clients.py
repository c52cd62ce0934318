"""Slow-client benchmark: ordinary requests' latency while slow request heads are held.

Run it as ``cd benchmarks && /work/venv/bin/python slow_clients.py``.  It
prepares a temporary SQLite state and starts ``gunicorn
'nimbus.wsgi:all_services()'`` twice, one worker with 8 threads each time,
on free ports: first with gunicorn's ``gthread`` worker class, then with
``nimbus.server.Worker``.  Against each it

* opens 64 (``--slow``) connections that each send one byte of a request
  head every 0.5 s (``--interval``), a head that never ends; one the server
  closes is opened again, as an attacker would;
* after a second, sends 200 (``--requests``) ordinary ``GET /identity/v3``
  (``--path``), each on a new connection, from 16 (``--concurrency``)
  client threads, each given up after 1 s (``--timeout``);
* prints the latency's p50, p99 and max in ms, and how many requests failed
  (no answer in time, or not a 200) or took more than 100 ms.  A failed
  request counts in the percentiles with the time it took to fail.

``--url http://HOST:PORT`` measures an already running server instead
(``nimbus up``, say), once.  The checkout this file is in is the nimbus
that is served, not another installed copy.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import dataclasses
import http.client
import os
import socket
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if (ROOT / "nimbus").is_dir():
    # Serve and import this checkout, ahead of any installed nimbus.
    sys.path.insert(0, str(ROOT))

import _stats  # noqa: E402

from nimbus.testing import server as launcher  # noqa: E402

WORKER_CLASSES = ("gthread", "nimbus.server.Worker")
#: A request head that never ends: the slow clients send it a byte at a time.
SLOW_HEAD = b"GET /identity/v3 HTTP/1.1\r\nHost: slow\r\nX-Padding: " + b"a" * 60000
#: A request slower than this is counted as slow.
SLOW_MS = 100.0


class SlowClients:
    """*count* connections to *address*, each sending a byte every *interval* s.

    A connection the server closes (or answers) is replaced by a new one.
    """

    def __init__(self, address: tuple[str, int], count: int, interval: float) -> None:
        self.address = address
        self.interval = interval
        self.socks = [self._open() for _ in range(count)]
        self.sent = [0] * count
        #: How many connections the server closed, and were opened again.
        self.reopened = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="slow-clients", daemon=True)

    def _open(self) -> socket.socket:
        sock = socket.create_connection(self.address, timeout=5)
        sock.setblocking(False)
        return sock

    def _closed(self, sock: socket.socket) -> bool:
        """Whether the server closed *sock*, or answered it (and so is closing it)."""
        try:
            sock.recv(1, socket.MSG_PEEK)
        except BlockingIOError:
            return False  # nothing from the server: still held
        except OSError:
            pass
        return True

    def _tick(self) -> None:
        for index, sock in enumerate(self.socks):
            if self._closed(sock):
                sock.close()
                try:
                    sock = self._open()
                except OSError:
                    continue  # the server is not taking connections: try at the next tick
                self.socks[index] = sock
                self.reopened += 1
                self.sent[index] = 0
            position = self.sent[index] % len(SLOW_HEAD)
            try:
                sock.send(SLOW_HEAD[position : position + 1])
            except OSError:
                continue  # found closed, and replaced, at the next tick
            self.sent[index] += 1

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._tick()

    def __enter__(self) -> SlowClients:
        self._tick()
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        for sock in self.socks:
            sock.close()


@dataclasses.dataclass
class Result:
    """The figures of one measurement."""

    label: str
    latencies_ms: list[float]
    failed: int
    reopened: int

    def line(self, width: int) -> str:
        ordered = sorted(self.latencies_ms)
        slow = sum(1 for ms in ordered if ms > SLOW_MS)
        return (
            f"{self.label:<{width}}  {len(ordered)} requests: "
            f"p50 {_stats.percentile(ordered, 0.50):8.1f} ms  "
            f"p99 {_stats.percentile(ordered, 0.99):8.1f} ms  "
            f"max {max(ordered, default=float('nan')):8.1f} ms  "
            f"failed {self.failed}  over {SLOW_MS:g} ms {slow}  "
            f"(slow connections reopened: {self.reopened})"
        )


def _request(host: str, port: int, path: str, timeout: float) -> tuple[float, bool]:
    """GET *path* on a new connection; return the milliseconds it took and if it was a 200."""
    start = time.perf_counter()
    ok = False
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        resp.read()
        ok = resp.status == 200
    except (OSError, http.client.HTTPException):
        ok = False
    finally:
        conn.close()
    return (time.perf_counter() - start) * 1000, ok


def measure(label: str, host: str, port: int, opts: argparse.Namespace) -> Result:
    """Hold the slow connections to *host*:*port* and time the ordinary requests."""
    with SlowClients((host, port), opts.slow, opts.interval) as slow:
        time.sleep(opts.settle)
        with concurrent.futures.ThreadPoolExecutor(opts.concurrency) as pool:
            results = list(
                pool.map(
                    lambda _: _request(host, port, opts.path, opts.timeout), range(opts.requests)
                )
            )
        reopened = slow.reopened
    return Result(
        label=label,
        latencies_ms=[ms for ms, _ in results],
        failed=sum(1 for _, ok in results if not ok),
        reopened=reopened,
    )


@contextlib.contextmanager
def prepared_state() -> Iterator[tuple[Path, Path]]:
    """Yield a temporary directory and the config of a prepared SQLite state in it."""
    with tempfile.TemporaryDirectory(prefix="nimbus-slow-clients-") as tmp:
        base = Path(tmp)
        config = launcher.write_config(
            base / "nimbus.conf",
            {"DEFAULT": {"state_path": base / "state"}, "identity": {"password_hash_rounds": 4}},
        )
        launcher.prepare_state(config, "bench-secret")
        yield base, config


def run_servers(opts: argparse.Namespace) -> list[Result]:
    """Start each worker class in turn and measure it."""
    results = []
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    with prepared_state() as (base, config):
        for worker_class in opts.worker_classes:
            with launcher.gunicorn(
                "nimbus.wsgi:all_services()",
                config_file=config,
                log_path=base / f"{worker_class}.log",
                worker_class=worker_class,
                threads=opts.threads,
                env=env,
                ready_path=opts.path,
                stop_timeout=10,
            ) as server:
                results.append(measure(worker_class, server.host, server.port, opts))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200, help="ordinary requests to time")
    parser.add_argument("--slow", type=int, default=64, help="slow connections held")
    parser.add_argument(
        "--interval", type=float, default=0.5, help="seconds between two bytes of a slow client"
    )
    parser.add_argument(
        "--concurrency", type=int, default=16, help="client threads sending the ordinary requests"
    )
    parser.add_argument(
        "--timeout", type=float, default=1.0, help="seconds before an ordinary request fails"
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=1.0,
        help="seconds between opening the slow connections and the first ordinary request",
    )
    parser.add_argument("--threads", type=int, default=8, help="threads of the gunicorn worker")
    parser.add_argument(
        "--worker-class",
        default=",".join(WORKER_CLASSES),
        help="comma-separated gunicorn worker classes to measure, in turn",
    )
    parser.add_argument("--path", default="/identity/v3", help="what the ordinary requests GET")
    parser.add_argument(
        "--url", help="measure the server already running at this URL (http://HOST:PORT) instead"
    )
    opts = parser.parse_args(argv)
    opts.worker_classes = [c.strip() for c in opts.worker_class.split(",") if c.strip()]
    print(
        f"# {opts.slow} slow connections (a byte every {opts.interval:g} s), then "
        f"{opts.requests} x GET {opts.path} from {opts.concurrency} clients "
        f"(given up after {opts.timeout:g} s, counted at that time)"
    )
    if opts.url:
        url = urllib.parse.urlsplit(opts.url)
        if url.scheme != "http" or not url.hostname:
            parser.error("--url takes http://HOST[:PORT]")
        prefix = url.path.rstrip("/")
        opts.path = prefix + opts.path if prefix and not opts.path.startswith(prefix) else opts.path
        results = [measure(opts.url, url.hostname, url.port or 80, opts)]
    else:
        print(f"# gunicorn 'nimbus.wsgi:all_services()', 1 worker, {opts.threads} threads")
        results = run_servers(opts)
    width = max(len(r.label) for r in results)
    for result in results:
        print(result.line(width))
    return 0


if __name__ == "__main__":
    sys.exit(main())
