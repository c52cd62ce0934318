"""End-to-end token benchmark: the identity API under a real gunicorn.

Run it as ``/work/venv/bin/python benchmarks/token_bench.py``.  For each
back-end (SQLite, or a throwaway MariaDB database) and each gunicorn worker
class it builds a fresh state directory, starts
``gunicorn 'nimbus.wsgi:all_services()'`` on a free port of 127.0.0.1, and
drives it with client processes, each holding one keep-alive connection
(:class:`RawConnection`, or ``http.client`` with ``--client http.client``):

* ``validate``: ``GET /identity/v3/auth/tokens`` over a small pool of tokens
  issued up front (the per-process validation cache is warm);
* ``issue``: ``POST /identity/v3/auth/tokens`` with the admin's password, once
  per bcrypt cost, on a state created with that cost (the admin's hash keeps
  the cost it was made with).

The clients run on the same cores as the server, so the figures are what the
machine does with its load generator on board, not the server alone.  Every
request loop stops after ``--duration`` seconds or ``--max-requests`` requests;
the servers are stopped and the temporary files and databases are removed on
the way out, on errors and Ctrl-C too.  ``--py-spy DIR`` also samples the
server's workers during the ``validate`` runs and prints their hot spots.

``--nimbus-up`` measures ``nimbus up`` itself instead, as a user runs it: a
fresh temporary state directory and a free port, the admin's generated
password read from ``<state>/admin-password``, the default configuration but
for the state path and the bcrypt cost (the first of ``--bcrypt-costs``), and
its log written to a file.  ``--source DIR`` (repeatable) runs that
``nimbus up`` with ``PYTHONPATH=DIR``, e.g. an export of another commit, and
``--rounds N`` takes turns between the sources (A B B A ...), so that two
versions are compared in one run on the same machine.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import dataclasses
import http.client
import json
import math
import multiprocessing
import os
import platform
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import _stats

from nimbus.testing import server as launcher

HOST = launcher.HOST
TARGET = "nimbus.wsgi:all_services()"
ADMIN_PASSWORD = "bench-secret"
TOKENS_PATH = "/identity/v3/auth/tokens"
DEFAULT_MARIADB_URL = os.environ.get(
    "NIMBUS_TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/test"
)

#: What the figures are compared with.  The Keystone figures were measured on
#: other hardware: they anchor the order of magnitude, they are not a race.
TARGETS: dict[str, Any] = {
    "validate": {"min_rate": 2000.0, "max_p99_ms": 10.0},
    # `nimbus up`: one port, its own configuration, a user's terminal.
    "nimbus_up_validate": {"min_rate": 1500.0, "max_p99_ms": 10.0},
    "keystone_30": {
        "setup": "Keystone 30.0.0, gunicorn 2 sync workers, SQLite, 8 clients",
        "validate": {"rate": 465.0, "p99_ms": 25.0},
        "issue": {"12": 6.8, "4": 143.0},
    },
}

_AUTH_BODY = json.dumps(launcher.password_auth(ADMIN_PASSWORD)).encode()


def _system_body(project_body: bytes) -> bytes:
    """Return *project_body* (a password login) scoped to the system instead."""
    body = json.loads(project_body)
    body["auth"]["scope"] = {"system": {"all": True}}
    return json.dumps(body).encode()


def system_tokens(port: int, count: int, body: bytes = _AUTH_BODY) -> tuple[str, ...] | None:
    """Issue *count* system-scoped admin tokens, or None where the cloud has no system scope."""
    try:
        return tuple(issue_token(port, _system_body(body)) for _ in range(count))
    except RuntimeError as ex:
        print(f"... no system-scoped tokens here ({ex}): validate-sys not measured", flush=True)
        return None


# -- the load generator ----------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class LoadSpec:
    """One request shape, repeated by every client.

    :param subject_tokens: rotated through ``X-Subject-Token`` when not empty.
    """

    port: int
    method: str
    path: str
    expect: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None
    subject_tokens: tuple[str, ...] = ()
    duration: float = 10.0
    warmup: float = 1.0
    max_requests: int = 100_000
    request_timeout: float = 60.0
    #: ``raw`` (:class:`RawConnection`) or ``http.client``.
    client: str = "raw"
    #: Seconds between one client's requests (0: each as soon as the last is
    #: answered).  A paced request's latency counts from when it was due, so
    #: a server that falls behind is charged for the wait.
    interval: float = 0.0


@dataclasses.dataclass
class ClientResult:
    """What one client process measured."""

    latencies: list[float]
    errors: int
    first_error: str | None
    elapsed: float
    cpu: float


class RawConnection:
    """A lean HTTP/1.1 keep-alive client: prepared request bytes out, status and body in.

    ``http.client`` spends about as much CPU on a small request as the
    server's Python does on a cached validation (its header parsing goes
    through :mod:`email`); on two shared cores that CPU is taken from the
    server.  This one sends bytes made once per request shape and reads the
    answer by its ``Content-Length``, which every nimbus answer has; it is
    what ``wrk`` or ``ab`` would do, in Python.
    """

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.address = (host, port)
        self.timeout = timeout
        self.sock: socket.socket | None = None
        self.buffer = b""

    def close(self) -> None:
        """Close the connection; the next request opens a new one."""
        if self.sock is not None:
            self.sock.close()
        self.sock = None
        self.buffer = b""

    def exchange(self, request: bytes) -> tuple[int, bytes]:
        """Send *request*; return the answer's status and body."""
        if self.sock is None:
            self.sock = socket.create_connection(self.address, timeout=self.timeout)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.sendall(request)
        data = self.buffer
        end = data.find(b"\r\n\r\n")
        while end < 0:
            data += self._recv()
            end = data.find(b"\r\n\r\n")
        head = data[:end].lower()
        rest = data[end + 4 :]
        status = int(head[9:12])
        at = head.find(b"\r\ncontent-length:")
        if at < 0:
            raise http.client.HTTPException(f"HTTP {status} without a Content-Length")
        stop = head.find(b"\r\n", at + 2)
        length = int(head[at + 17 : stop if stop > 0 else None])
        while len(rest) < length:
            rest += self._recv()
        self.buffer = rest[length:]
        if b"\r\nconnection: close" in head:
            self.close()
        return status, rest[:length]

    def _recv(self) -> bytes:
        assert self.sock is not None
        chunk = self.sock.recv(65536)
        if not chunk:
            raise http.client.RemoteDisconnected("the server closed the connection")
        return chunk


def request_bytes(spec: LoadSpec, subject_token: str | None = None) -> bytes:
    """Return *spec*'s request as it goes on the wire, for :class:`RawConnection`."""
    headers = {"Host": f"{HOST}:{spec.port}", **dict(spec.headers)}
    if subject_token is not None:
        headers["X-Subject-Token"] = subject_token
    if spec.body is not None:
        headers["Content-Length"] = str(len(spec.body))
    lines = [f"{spec.method} {spec.path} HTTP/1.1", *(f"{k}: {v}" for k, v in headers.items())]
    return "\r\n".join(lines).encode() + b"\r\n\r\n" + (spec.body or b"")


def _one_request(
    conn: http.client.HTTPConnection | RawConnection,
    spec: LoadSpec,
    number: int,
    prepared: Sequence[bytes] = (),
) -> tuple[float, str | None]:
    started = time.perf_counter()
    try:
        if isinstance(conn, RawConnection):
            status, payload = conn.exchange(prepared[number % len(prepared)])
        else:
            headers = dict(spec.headers)
            if spec.subject_tokens:
                token = spec.subject_tokens[number % len(spec.subject_tokens)]
                headers["X-Subject-Token"] = token
            conn.request(spec.method, spec.path, body=spec.body, headers=headers)
            resp = conn.getresponse()
            status, payload = resp.status, resp.read()
    except (OSError, ValueError, http.client.HTTPException) as ex:
        # The next request opens a new connection.
        conn.close()
        return time.perf_counter() - started, f"{type(ex).__name__}: {ex}"
    latency = time.perf_counter() - started
    if status != spec.expect:
        return latency, f"HTTP {status}: {payload[:200]!r}"
    return latency, None


def _client_main(spec: LoadSpec, index: int, barrier: Any, results: Any) -> None:
    """Warm up, wait for the others, then send requests until the time or count is up."""
    conn: http.client.HTTPConnection | RawConnection
    prepared: list[bytes] = []
    if spec.client == "raw":
        conn = RawConnection(HOST, spec.port, spec.request_timeout)
        prepared = [request_bytes(spec, token) for token in spec.subject_tokens] or [
            request_bytes(spec)
        ]
    else:
        conn = http.client.HTTPConnection(HOST, spec.port, timeout=spec.request_timeout)
    latencies: list[float] = []
    errors = 0
    first_error: str | None = None
    elapsed = 0.0
    cpu = 0.0
    number = index
    waited = False
    try:
        warm_until = time.perf_counter() + spec.warmup
        for _ in range(spec.max_requests):
            if time.perf_counter() >= warm_until:
                break
            _one_request(conn, spec, number, prepared)
            number += 1
        barrier.wait(timeout=spec.warmup + spec.request_timeout + 30)
        waited = True
        cpu_start = time.process_time()
        start = time.perf_counter()
        deadline = start + spec.duration
        # Paced clients start spread over one interval.
        due = start + spec.interval * random.random()
        for _ in range(spec.max_requests):
            now = time.perf_counter()
            if now >= deadline:
                break
            late = 0.0
            if spec.interval:
                if due > now:
                    time.sleep(due - now)
                late = max(0.0, time.perf_counter() - due)
                due += spec.interval
            latency, error = _one_request(conn, spec, number, prepared)
            latency += late
            number += 1
            if error is None:
                latencies.append(latency)
            else:
                errors += 1
                first_error = first_error or error
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu_start
    except Exception as ex:  # noqa: BLE001 - reported to the parent, not lost in a child
        first_error = first_error or f"client {index}: {type(ex).__name__}: {ex}"
        errors += 1
        if not waited:
            # Let the others and the parent stop waiting for this client.
            barrier.abort()
    finally:
        conn.close()
        results.put((index, ClientResult(latencies, errors, first_error, elapsed, cpu)))


def _server_cpu(pid: int | None) -> tuple[float, float]:
    """Return the user and system CPU seconds of *pid*'s children (the gunicorn workers)."""
    children = launcher.child_pids(pid) if pid else []
    return _stats.cpu_seconds(children) if children else (math.nan, math.nan)


def run_load(spec: LoadSpec, clients: int, server_pid: int | None = None) -> dict[str, Any]:
    """Run *clients* processes of *spec* at once; return the combined figures.

    :param server_pid: the gunicorn master, whose workers' CPU time is measured.
    """
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(clients + 1)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=_client_main, args=(spec, i, barrier, results), daemon=True)
        for i in range(clients)
    ]
    collected: dict[int, ClientResult] = {}
    try:
        for proc in procs:
            proc.start()
        barrier.wait(timeout=spec.warmup + spec.request_timeout + 60)
        cpu_before = _server_cpu(server_pid)
        machine_before = _stats.machine_cpu_seconds()
        # A client stops at its deadline, after at most one more request.
        give_up = time.monotonic() + spec.duration + spec.request_timeout + 30
        while len(collected) < clients:
            index, result = results.get(timeout=max(1.0, give_up - time.monotonic()))
            collected[index] = result
        cpu_after = _server_cpu(server_pid)
        machine_after = _stats.machine_cpu_seconds()
    finally:
        for proc in procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=5)
        results.close()
        results.join_thread()
    latencies = sorted(lat for r in collected.values() for lat in r.latencies)
    # Each client's own rate, added up: they all ran over the same window.
    rate = sum(len(r.latencies) / r.elapsed for r in collected.values() if r.elapsed > 0)
    errors = sum(r.errors for r in collected.values())
    first_error = next((r.first_error for r in collected.values() if r.first_error), None)
    window = max((r.elapsed for r in collected.values()), default=0.0)
    return {
        "requests": len(latencies),
        "errors": errors,
        "first_error": first_error,
        "rate": rate,
        "p50_ms": _stats.percentile(latencies, 0.50) * 1000,
        "p90_ms": _stats.percentile(latencies, 0.90) * 1000,
        "p99_ms": _stats.percentile(latencies, 0.99) * 1000,
        "max_ms": (latencies[-1] * 1000) if latencies else math.nan,
        "window_s": window,
        "client_cpu_s": sum(r.cpu for r in collected.values()),
        "server_user_cpu_s": cpu_after[0] - cpu_before[0],
        "server_sys_cpu_s": cpu_after[1] - cpu_before[1],
        "machine_busy": (machine_after[0] - machine_before[0])
        / max(machine_after[1] - machine_before[1], 1e-9),
    }


# -- state, database and server ----------------------------------------------------


@contextlib.contextmanager
def throwaway_database(server_url: str) -> Iterator[str]:
    """Yield the URL of a new MariaDB database on *server_url*'s server; drop it after."""
    import sqlalchemy as sa

    url = sa.engine.make_url(server_url)
    name = f"nimbus_bench_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
        try:
            yield url.set(database=name).render_as_string(hide_password=False)
        finally:
            with engine.connect() as conn:
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
    finally:
        engine.dispose()


def write_config(
    path: str, *, state_dir: str, port: int, cost: int, connection: str | None
) -> None:
    """Write a nimbus.conf for one benchmark server."""
    database: dict[str, object] = {"max_retries": 0}
    if connection:
        database["connection"] = connection
    launcher.write_config(
        path,
        {
            "DEFAULT": {"state_path": state_dir},
            "api": {"bind_host": HOST, "bind_port": port},
            "identity": {"password_hash_rounds": cost},
            "database": database,
        },
    )


def gunicorn_options(worker_class: str, workers: int, threads: int) -> dict[str, Any]:
    """Return the :func:`nimbus.testing.server.gunicorn` options the benchmark serves with."""
    return {
        "worker_class": worker_class,
        "workers": workers,
        "threads": threads,
        "timeout": 120,
        "extra_args": ("--log-level", "warning"),
    }


def issue_token(port: int, body: bytes = _AUTH_BODY) -> str:
    """Issue one admin token (with the password auth request *body*); return its id."""
    conn = http.client.HTTPConnection(HOST, port, timeout=60)
    try:
        conn.request("POST", TOKENS_PATH, body=body, headers=_json_headers())
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 201:
            raise RuntimeError(f"token issue answered {resp.status}: {body[:300]!r}")
        token = resp.getheader("X-Subject-Token")
        if not token:
            raise RuntimeError("token issue answered without X-Subject-Token")
        return token
    finally:
        conn.close()


def _json_headers() -> dict[str, str]:
    return {"Content-Type": "application/json", "Accept": "application/json"}


# -- profiling ----------------------------------------------------------------------


def _py_spy() -> str | None:
    beside = os.path.join(os.path.dirname(sys.executable), "py-spy")
    return beside if os.path.exists(beside) else shutil.which("py-spy")


def start_profiler(pid: int, seconds: float, output: str) -> subprocess.Popen | None:
    """Sample the gunicorn workers under *pid* with py-spy for *seconds*, if installed."""
    exe = _py_spy()
    if exe is None:
        print("py-spy is not installed; no profile taken", file=sys.stderr)
        return None
    cmd = [
        exe,
        "record",
        "--pid",
        str(pid),
        "--subprocesses",
        # Only samples holding the GIL: Python's CPU time, not waits in
        # accept(), recv() or the thread pool's queue.
        "--gil",
        "--rate",
        "200",
        "--duration",
        str(max(1, int(seconds))),
        "--format",
        "raw",
        "--output",
        output,
    ]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def finish_profiler(proc: subprocess.Popen | None, seconds: float) -> None:
    """Wait for py-spy to write its profile, killing it if it hangs."""
    if proc is None:
        return
    try:
        proc.wait(timeout=seconds + 30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


# Frames every request runs under: start-up, worker loops, thread pools.
_BOILERPLATE = (
    "run (gunicorn/",
    "Arbiter.",
    "Application.run ",
    "BaseApplication.run ",
    "_run_code ",
    "_run_module_as_main ",
    "Worker.init_process ",
    "ThreadWorker.init_process ",
    "ThreadWorker.run ",
    "SyncWorker.run ",
    "SyncWorker.run_for_one ",
    "Thread._bootstrap",
    "Thread.run ",
    "_worker (concurrent/",
    "_WorkItem.run ",
)


def _function(frame: str) -> str:
    """Turn ``name (path/file.py:123)`` into ``name (path/file.py)``: one key per function."""
    name, sep, where = frame.partition(" (")
    return f"{name} ({where.rsplit(':', 1)[0]})" if sep else frame


def summarize_profile(path: str, top: int = 25) -> dict[str, list[tuple[str, float]]]:
    """Read py-spy's collapsed stacks; return the functions with most inclusive and self time.

    Functions found in nearly every sample (gunicorn's start-up frames, the
    worker loop) say nothing and are left out of the inclusive list.
    """
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.readlines()
    except OSError:
        return {"inclusive": [], "self": []}
    for line in lines:
        stack, _, count_text = line.rstrip("\n").rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        # Drop the "process NNN:..." and thread frames py-spy puts first.
        frames = [
            _function(fr)
            for fr in stack.split(";")
            if not fr.startswith(("process ", "thread ", "<module>"))
        ]
        if not frames:
            continue
        total += count
        for frame in set(frames):
            inclusive[frame] += count
        own[frames[-1]] += count
    if total == 0:
        return {"inclusive": [], "self": []}
    telling = [
        (fr, n)
        for fr, n in inclusive.most_common()
        if n < 0.95 * total and not fr.startswith(_BOILERPLATE)
    ]
    return {
        "inclusive": [(fr, 100.0 * n / total) for fr, n in telling[:top]],
        "self": [(fr, 100.0 * n / total) for fr, n in own.most_common(top)],
    }


# -- the benchmark -------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Options:
    """The benchmark's settings, from the command line."""

    backends: tuple[str, ...]
    worker_classes: tuple[str, ...]
    workers: int
    threads: int
    clients: int
    duration: float
    warmup: float
    max_requests: int
    costs: tuple[int, ...]
    pool: int
    mariadb_url: str
    py_spy_dir: str | None
    nimbus_up: bool = False
    sources: tuple[str, ...] = ()
    rounds: int = 1
    client: str = "raw"
    paced_rate: float = 0.0


def _state_database(backend: str, mariadb_url: str) -> contextlib.AbstractContextManager:
    if backend == "mariadb":
        return throwaway_database(mariadb_url)
    return contextlib.nullcontext(None)


def bench_server(opts: Options, backend: str, worker_class: str) -> list[dict[str, Any]]:
    """Measure validation and issuing on one back-end with one worker class."""
    rows: list[dict[str, Any]] = []
    for position, cost in enumerate(opts.costs):
        with contextlib.ExitStack() as stack:
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="nimbus-bench-"))
            connection = stack.enter_context(_state_database(backend, opts.mariadb_url))
            port = launcher.free_port()
            config_path = os.path.join(tmp, "nimbus.conf")
            write_config(
                config_path,
                state_dir=os.path.join(tmp, "state"),
                port=port,
                cost=cost,
                connection=connection,
            )
            launcher.prepare_state(config_path, ADMIN_PASSWORD)
            server = stack.enter_context(
                launcher.gunicorn(
                    TARGET,
                    config_file=config_path,
                    port=port,
                    log_path=os.path.join(tmp, "gunicorn.log"),
                    **gunicorn_options(worker_class, opts.workers, opts.threads),
                )
            )
            base = {"backend": backend, "worker_class": worker_class, "bcrypt_cost": cost}
            common = {
                "port": port,
                "duration": opts.duration,
                "warmup": opts.warmup,
                "max_requests": opts.max_requests,
                "client": opts.client,
            }
            if position == 0:
                # Validation does not depend on the cost: measure it once.
                admin = issue_token(port)
                pool = tuple(issue_token(port) for _ in range(opts.pool))
                spec = LoadSpec(
                    method="GET",
                    path=TOKENS_PATH,
                    expect=200,
                    headers=(("X-Auth-Token", admin), ("Accept", "application/json")),
                    subject_tokens=pool,
                    **common,
                )
                profiler = None
                profile_path = None
                if opts.py_spy_dir:
                    os.makedirs(opts.py_spy_dir, exist_ok=True)
                    profile_path = os.path.join(
                        opts.py_spy_dir, f"validate-{backend}-{worker_class}.txt"
                    )
                    # Started now, it covers the warm-up and the measured run.
                    profiler = start_profiler(server.pid, opts.warmup + opts.duration, profile_path)
                try:
                    result = run_load(spec, opts.clients, server.pid)
                finally:
                    finish_profiler(profiler, opts.warmup + opts.duration)
                row = {**base, "test": "validate", "bcrypt_cost": None, **result}
                if profile_path:
                    row["profile"] = {"path": profile_path, **summarize_profile(profile_path)}
                rows.append(row)
                # System-scoped tokens, validated by the same admin token.
                system_pool = system_tokens(port, opts.pool)
                if system_pool is not None:
                    spec = dataclasses.replace(spec, subject_tokens=system_pool)
                    result = run_load(spec, opts.clients, server.pid)
                    rows.append({**base, "test": "validate-sys", "bcrypt_cost": None, **result})
            spec = LoadSpec(
                method="POST",
                path=TOKENS_PATH,
                expect=201,
                headers=tuple(_json_headers().items()),
                body=_AUTH_BODY,
                # A cost-12 request takes a good part of a second: warm up briefly.
                **{**common, "warmup": min(opts.warmup, 0.5)},
            )
            rows.append({**base, "test": "issue", **run_load(spec, opts.clients, server.pid)})
    return rows


def _log_lines(path: str) -> int:
    try:
        with open(path, "rb") as f:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
    except OSError:
        return 0


def _nimbus_up_env(source: str | None) -> dict[str, str]:
    return {"PYTHONPATH": os.path.abspath(source)} if source else {}


def nimbus_up_origin(source: str | None) -> str:
    """Return where ``nimbus`` is imported from with *source* on ``PYTHONPATH``."""
    out = subprocess.run(
        [sys.executable, "-c", "import nimbus; print(nimbus.__file__)"],
        env={**os.environ, **_nimbus_up_env(source)},
        # Not from here: `python -c` puts its working directory first on the
        # path, which the `nimbus` script does not.
        cwd="/",
        capture_output=True,
        text=True,
        check=True,
    )
    return os.path.dirname(out.stdout.strip())


def bench_nimbus_up(opts: Options, source: str | None, label: str) -> list[dict[str, Any]]:
    """Measure validation and issuing against ``nimbus up`` itself, on a fresh state."""
    rows: list[dict[str, Any]] = []
    cost = opts.costs[0]
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="nimbus-bench-up-"))
        state = os.path.join(tmp, "state")
        config_path = launcher.write_config(
            os.path.join(tmp, "nimbus.conf"),
            {"DEFAULT": {"state_path": state}, "identity": {"password_hash_rounds": cost}},
        )
        log_path = os.path.join(tmp, "nimbus-up.log")
        server = stack.enter_context(
            launcher.nimbus_up(
                state,
                log_path=log_path,
                config_file=config_path,
                env=_nimbus_up_env(source),
            )
        )
        with open(os.path.join(state, "admin-password"), encoding="utf-8") as f:
            body = json.dumps(launcher.password_auth(f.read().strip())).encode()
        port = server.port
        base = {"backend": "up", "worker_class": label, "bcrypt_cost": cost}
        common = {
            "port": port,
            "duration": opts.duration,
            "warmup": opts.warmup,
            "max_requests": opts.max_requests,
            "client": opts.client,
        }
        admin = issue_token(port, body)
        pool = tuple(issue_token(port, body) for _ in range(opts.pool))
        spec = LoadSpec(
            method="GET",
            path=TOKENS_PATH,
            expect=200,
            headers=(("X-Auth-Token", admin), ("Accept", "application/json")),
            subject_tokens=pool,
            **common,
        )
        profiler = None
        profile_path = None
        if opts.py_spy_dir:
            os.makedirs(opts.py_spy_dir, exist_ok=True)
            profile_path = os.path.join(opts.py_spy_dir, f"validate-nimbus-up-{label}.txt")
            profiler = start_profiler(server.pid, opts.warmup + opts.duration, profile_path)
        lines_before = _log_lines(log_path)
        try:
            result = run_load(spec, opts.clients, server.pid)
        finally:
            finish_profiler(profiler, opts.warmup + opts.duration)
        # The warm-up's lines are counted too: they are the same requests.
        row = {
            **base,
            "test": "validate",
            "bcrypt_cost": None,
            "log_lines": _log_lines(log_path) - lines_before,
            **result,
        }
        if profile_path:
            row["profile"] = {"path": profile_path, **summarize_profile(profile_path)}
        rows.append(row)
        if opts.paced_rate:
            paced = dataclasses.replace(spec, interval=opts.clients / opts.paced_rate)
            rows.append(
                {
                    **base,
                    "test": f"validate@{opts.paced_rate:g}",
                    "bcrypt_cost": None,
                    "offered_rate": opts.paced_rate,
                    **run_load(paced, opts.clients, server.pid),
                }
            )
        spec = LoadSpec(
            method="POST",
            path=TOKENS_PATH,
            expect=201,
            headers=tuple(_json_headers().items()),
            body=body,
            **{**common, "warmup": min(opts.warmup, 0.5)},
        )
        rows.append({**base, "test": "issue", **run_load(spec, opts.clients, server.pid)})
    return rows


def source_labels(sources: Sequence[str]) -> list[str]:
    """Return a short, distinct name for each source directory."""
    labels = [os.path.basename(os.path.normpath(src)) or src for src in sources]
    if len(set(labels)) < len(labels):
        labels = [f"{i}:{label}" for i, label in enumerate(labels)]
    return labels


def turns(count: int, rounds: int) -> list[int]:
    """Return the order the sources are run in: 0 1, 1 0, 0 1, ... for two."""
    order: list[int] = []
    for number in range(rounds):
        step = list(range(count))
        order += step if number % 2 == 0 else step[::-1]
    return order


def target_text(row: dict[str, Any]) -> str:
    """Return what a row is compared with, and whether the nimbus target is met."""
    keystone = TARGETS["keystone_30"]
    if row["test"].startswith("validate"):
        goal = TARGETS["nimbus_up_validate" if row["backend"] == "up" else "validate"]
        rate = row["rate"]
        if "offered_rate" in row and rate >= 0.99 * row["offered_rate"]:
            # A paced run answers what it is offered, give or take the clients' timing.
            rate = row["offered_rate"]
        met = rate >= goal["min_rate"] and row["p99_ms"] < goal["max_p99_ms"]
        return (
            f"target >={goal['min_rate']:.0f}/s p99<{goal['max_p99_ms']:.0f}ms "
            f"[{'MET' if met else 'MISSED'}]; Keystone {keystone['validate']['rate']:.0f}/s "
            f"p99 {keystone['validate']['p99_ms']:.0f}ms"
        )
    anchor = keystone["issue"].get(str(row["bcrypt_cost"]))
    return f"Keystone {anchor}/s" if anchor is not None else "-"


def print_table(rows: Sequence[dict[str, Any]], *, header: bool = True) -> None:
    """Print one line per measurement (under a header unless *header* is false)."""
    if header:
        title = (
            f"{'backend':<8} {'workers':<8} {'test':<13} {'bcrypt':>6} {'req/s':>9} "
            f"{'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'n':>7} {'err':>4}  compared with"
        )
        print(title)
        print("-" * len(title))
    for row in rows:
        cost = "-" if row["bcrypt_cost"] is None else str(row["bcrypt_cost"])
        print(
            f"{row['backend']:<8} {row['worker_class']:<8} {row['test']:<13} {cost:>6} "
            f"{row['rate']:>9.1f} {row['p50_ms']:>8.2f} {row['p90_ms']:>8.2f} "
            f"{row['p99_ms']:>8.2f} {row['requests']:>7} {row['errors']:>4}  {target_text(row)}"
        )
    for row in rows:
        if row["first_error"]:
            print(
                f"first error ({row['backend']}/{row['worker_class']}/{row['test']}): "
                f"{row['first_error']}"
            )


def print_cpu(rows: Sequence[dict[str, Any]], cores: int) -> None:
    """Print where the machine's CPU went during each measurement."""
    print(
        "CPU per request (server workers: user + system), shares of the machine, and the rate "
        "the server and clients' CPU per request would allow on an idle machine:"
    )
    for row in rows:
        count = max(row["requests"], 1)
        window = max(row["window_s"] * cores, 1e-9)
        cost = "-" if row["bcrypt_cost"] is None else row["bcrypt_cost"]
        others = " (mariadbd included)" if row["backend"] == "mariadb" else ""
        used = (row["server_user_cpu_s"] + row["server_sys_cpu_s"] + row["client_cpu_s"]) / window
        print(
            f"  {row['backend']:<8} {row['worker_class']:<8} {row['test']:<8} {cost!s:>3}: "
            f"server {row['server_user_cpu_s'] / count * 1000:.2f} + "
            f"{row['server_sys_cpu_s'] / count * 1000:.2f} ms, "
            f"server {(row['server_user_cpu_s'] + row['server_sys_cpu_s']) / window:.0%} "
            f"and clients {row['client_cpu_s'] / window:.0%} of {cores} cores; "
            f"machine {row['machine_busy']:.0%} busy, so other processes{others} "
            f"{max(0.0, row['machine_busy'] - used):.0%}; CPU-bound ceiling with the "
            f"machine to ourselves ~{cores / max(used * window / count, 1e-9):.0f}/s"
        )


def print_profile(row: dict[str, Any]) -> None:
    """Print the hot spots py-spy found in one run."""
    profile = row.get("profile")
    if not profile:
        return
    print(f"\nhot spots, {row['backend']}/{row['worker_class']} validate ({profile['path']}):")
    for kind in ("inclusive", "self"):
        print(f"  by {kind} time:")
        for frame, share in profile[kind]:
            print(f"    {share:5.1f}%  {frame}")


def parse_args(argv: Sequence[str] | None = None) -> tuple[Options, str | None]:
    """Parse the command line into options and the JSON output path."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "mariadb", "both"), default="sqlite")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measurement")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds before measuring")
    parser.add_argument("--concurrency", type=int, default=8, help="client processes")
    parser.add_argument(
        "--max-requests", type=int, default=100_000, help="requests per client, at most"
    )
    parser.add_argument("--bcrypt-costs", default="12,4", help="comma-separated bcrypt costs")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument(
        "--worker-class",
        default="sync,gthread",
        help="comma-separated gunicorn worker classes to measure (sync, gthread)",
    )
    parser.add_argument("--threads", type=int, default=4, help="threads per gthread worker")
    parser.add_argument("--tokens", type=int, default=4, help="distinct tokens validated")
    parser.add_argument("--mariadb-url", default=DEFAULT_MARIADB_URL, help="server to use")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--py-spy", metavar="DIR", help="profile validation with py-spy")
    parser.add_argument(
        "--nimbus-up",
        action="store_true",
        help="measure `nimbus up` itself (fresh state, default configuration) instead of gunicorn",
    )
    parser.add_argument(
        "--source",
        action="append",
        default=[],
        metavar="DIR",
        help="with --nimbus-up: run it with PYTHONPATH=DIR; repeat to compare versions",
    )
    parser.add_argument(
        "--rounds", type=int, default=1, help="with --nimbus-up: turns over the sources"
    )
    parser.add_argument(
        "--client",
        choices=("raw", "http.client"),
        default="raw",
        help="the clients' HTTP code: lean prepared requests (raw) or the standard library's",
    )
    parser.add_argument(
        "--paced-rate",
        type=float,
        default=TARGETS["nimbus_up_validate"]["min_rate"],
        metavar="REQ_S",
        help="with --nimbus-up: also validate at this steady rate, spread over the clients "
        "(0: do not); latencies count from when each request was due",
    )
    args = parser.parse_args(argv)
    if (args.source or args.rounds != 1) and not args.nimbus_up:
        parser.error("--source and --rounds go with --nimbus-up")
    backends = ("sqlite", "mariadb") if args.backend == "both" else (args.backend,)
    costs = tuple(int(c) for c in args.bcrypt_costs.split(",") if c.strip())
    classes = tuple(c.strip() for c in args.worker_class.split(",") if c.strip())
    if not costs or not classes:
        parser.error("give at least one bcrypt cost and one worker class")
    if args.duration <= 0 or args.concurrency < 1 or args.max_requests < 1:
        parser.error("--duration, --concurrency and --max-requests must be positive")
    opts = Options(
        backends=backends,
        worker_classes=classes,
        workers=args.workers,
        threads=args.threads,
        clients=args.concurrency,
        duration=args.duration,
        warmup=max(0.0, args.warmup),
        max_requests=args.max_requests,
        costs=costs,
        pool=max(1, args.tokens),
        mariadb_url=args.mariadb_url,
        py_spy_dir=args.py_spy,
        nimbus_up=args.nimbus_up,
        sources=tuple(args.source),
        rounds=max(1, args.rounds),
        client=args.client,
        paced_rate=max(0.0, args.paced_rate) if args.nimbus_up else 0.0,
    )
    return opts, args.json


def _without_password(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def _terminate(signum: int, _frame: Any) -> None:
    # Turn SIGTERM into an exception so that every clean-up block runs.
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; return the exit status."""
    opts, json_path = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    cores = os.cpu_count() or 1
    if opts.nimbus_up:
        print(
            f"nimbus token benchmark: {cores} cores, Python {platform.python_version()}, "
            f"`nimbus up` on a fresh temporary state (its own configuration, bcrypt cost "
            f"{opts.costs[0]}), {opts.clients} client processes with one keep-alive "
            f"connection each, {opts.duration:g} s per measurement"
        )
    else:
        print(
            f"nimbus token benchmark: {cores} cores, Python {platform.python_version()}, "
            f"gunicorn {opts.workers} workers ({', '.join(opts.worker_classes)}; "
            f"gthread with {opts.threads} threads), {opts.clients} client processes with one "
            f"keep-alive connection each, {opts.duration:g} s per measurement"
        )
    print(
        f"note: the {opts.clients} client processes run on the same {cores} cores as the "
        "server, so they take CPU time the server would otherwise have; their HTTP code: "
        f"{opts.client}"
    )
    rows: list[dict[str, Any]] = []
    started = time.time()
    before = _stats.machine_cpu_seconds()
    time.sleep(1.0)
    after = _stats.machine_cpu_seconds()
    background = (after[0] - before[0]) / max(after[1] - before[1], 1e-9)
    print(
        f"machine {background:.0%} busy before the benchmark started"
        + (" (other processes: expect lower, noisier figures)" if background > 0.1 else "")
    )
    if opts.nimbus_up:
        sources: list[str | None] = list(opts.sources) or [None]
        labels = source_labels(opts.sources) if opts.sources else ["nimbus"]
        for source, label in zip(sources, labels, strict=True):
            print(f"source {label}: nimbus from {nimbus_up_origin(source)}")
        for turn, index in enumerate(turns(len(sources), opts.rounds)):
            print(f"... nimbus up / {labels[index]} (turn {turn + 1})", flush=True)
            got = bench_nimbus_up(opts, sources[index], labels[index])
            for row in got:
                row["turn"] = turn + 1
            print_table(got, header=False)
            rows += got
    else:
        for backend in opts.backends:
            for worker_class in opts.worker_classes:
                print(f"... {backend} / {worker_class}", flush=True)
                rows += bench_server(opts, backend, worker_class)
    print()
    print_table(rows)
    print()
    print_cpu(rows, cores)
    for row in rows:
        if "log_lines" in row:
            print(
                f"  log lines written during {row['worker_class']} validate (turn "
                f"{row['turn']}, warm-up included): {row['log_lines']}"
            )
    for row in rows:
        print_profile(row)
    if json_path:
        document = {
            "started": started,
            "cores": cores,
            "machine_busy_before": background,
            "python": platform.python_version(),
            "options": {
                **dataclasses.asdict(opts),
                "mariadb_url": _without_password(opts.mariadb_url),
            },
            "gunicorn": {}
            if opts.nimbus_up
            else {
                wc: [
                    f"{HOST}:<free port>" if arg == f"{HOST}:0" else arg
                    for arg in launcher.gunicorn_command(
                        TARGET, 0, **gunicorn_options(wc, opts.workers, opts.threads)
                    )[3:]
                ]
                for wc in opts.worker_classes
            },
            "targets": TARGETS,
            "results": rows,
        }
        with open(json_path, "w", encoding="utf-8") as f:
            json.dump(_stats.jsonable(document), f, indent=2, allow_nan=False)
            f.write("\n")
        print(f"\nresults written to {json_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
