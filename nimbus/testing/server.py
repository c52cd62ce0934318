"""Start a real nimbus server in a subprocess, wait for it, and stop it.

Tests and benchmarks that need a server on a socket (``nimbus up`` or a plain
``gunicorn <target>``) use the context managers :func:`nimbus_up` and
:func:`gunicorn`::

    with nimbus_up(state_dir, log_path=tmp / "up.log") as server:
        env = server.openrc()
        ...

Each server runs in a session of its own, so its process group is the master
and its workers: :meth:`Server.stop` sends SIGTERM to the master and then
kills whatever is left of the group.  Its standard output and error go to a
log file, whose tail is in the message of :class:`ServerError` when the
server exits or does not answer in time.  The master's workers and their
memory are read from ``/proc`` (Linux).
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import glob
import http.client
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "password_auth",
    "HOST",
    "Memory",
    "MemorySampler",
    "Server",
    "ServerError",
    "child_pids",
    "free_port",
    "gunicorn",
    "gunicorn_command",
    "memory",
    "nimbus_up",
    "nimbus_up_command",
    "prepare_state",
    "read_openrc",
    "serve",
    "write_config",
]

#: The address every server started here listens on.
HOST = "127.0.0.1"


class ServerError(RuntimeError):
    """A server exited early or did not answer in time."""


def password_auth(
    password: str, *, user: str = "admin", project: str = "admin", domain: str = "Default"
) -> dict[str, Any]:
    """Return the body of ``POST /v3/auth/tokens`` for a project-scoped password login.

    :param domain: the name of the user's and the project's domain.
    """
    return {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {"name": user, "domain": {"name": domain}, "password": password}
                },
            },
            "scope": {"project": {"name": project, "domain": {"name": domain}}},
        }
    }


def free_port(host: str = HOST) -> int:
    """Return a TCP port of *host* that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def write_config(
    path: str | os.PathLike[str], sections: Mapping[str, Mapping[str, object]]
) -> Path:
    """Write a nimbus configuration file; return its path.

    :param sections: option values by group (``DEFAULT``, ``database``, ...);
        booleans are written ``true`` / ``false``, anything else with ``str``.
    """
    lines: list[str] = []
    for group, options in sections.items():
        lines.append(f"[{group}]")
        for name, value in options.items():
            text = str(value).lower() if isinstance(value, bool) else str(value)
            lines.append(f"{name} = {text}")
    target = Path(path)
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return target


def prepare_state(config_file: str | os.PathLike[str], admin_password: str) -> Path:
    """Migrate the database, set up the keys and bootstrap, as ``nimbus up`` does.

    Gunicorn targets expect this done before they start.

    :returns: the path of the openrc file written for the admin.
    """
    # TODO: prepare() is library code; once it moves out of nimbus.cmd, drop this.
    from nimbus.cmd.up import prepare  # noqa: TID251
    from nimbus.conf import load_config

    conf = load_config(["--config-file", os.fspath(config_file)], default_config_files=[])
    return Path(prepare(conf, admin_password))


def read_openrc(path: str | os.PathLike[str]) -> dict[str, str]:
    """Return the variables an openrc file written by ``nimbus up`` exports."""
    env: dict[str, str] = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        words = shlex.split(line, comments=True)
        if len(words) == 2 and words[0] == "export":
            key, _, value = words[1].partition("=")
            env[key] = value
    return env


def nimbus_up_command(
    state_dir: str | os.PathLike[str],
    port: int,
    *,
    config_file: str | os.PathLike[str] | None = None,
    host: str = HOST,
    extra_args: Sequence[str] = (),
) -> list[str]:
    """Return the ``nimbus up`` command line, run with this interpreter's ``nimbus``."""
    script = Path(sys.executable).parent / "nimbus"
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "nimbus.cmd.main"]
    cmd += ["up", "--host", host, "--port", str(port), "--state-dir", os.fspath(state_dir)]
    if config_file is not None:
        cmd += ["--config-file", os.fspath(config_file)]
    return [*cmd, *extra_args]


def gunicorn_command(
    target: str,
    port: int,
    *,
    worker_class: str = "sync",
    workers: int = 1,
    threads: int = 1,
    timeout: float = 120,
    host: str = HOST,
    extra_args: Sequence[str] = (),
) -> list[str]:
    """Return a ``gunicorn <target>`` command line.

    :param target: a gunicorn app, e.g. ``nimbus.wsgi:all_services()``.
    :param threads: threads per worker, passed for every class but ``sync``
        (more than one thread turns gunicorn's ``sync`` class into ``gthread``).
    :param timeout: seconds a silent worker may take before it is restarted.
    :param extra_args: more gunicorn options, placed before *target*.
    """
    cmd = [
        sys.executable,
        "-m",
        "gunicorn",
        "--bind",
        f"{host}:{port}",
        "--workers",
        str(workers),
        "--worker-class",
        worker_class,
        "--timeout",
        f"{timeout:g}",
        "--graceful-timeout",
        "5",
        # The default control socket path is shared by every gunicorn of this user.
        "--no-control-socket",
    ]
    if worker_class != "sync":
        cmd += ["--threads", str(threads)]
    if os.path.isdir("/dev/shm"):
        # The workers' heartbeat files live in memory, not on a disk.
        cmd += ["--worker-tmp-dir", "/dev/shm"]
    return [*cmd, *extra_args, target]


def child_pids(pid: int) -> list[int]:
    """Return the pids of *pid*'s children (empty once it is gone)."""
    children: list[int] = []
    for path in glob.glob(f"/proc/{pid}/task/*/children"):
        with contextlib.suppress(OSError):
            with open(path, encoding="ascii") as f:
                children += [int(c) for c in f.read().split()]
    return sorted(children)


@dataclasses.dataclass(frozen=True)
class Memory:
    """A process's resident memory, in bytes.

    :param rss: resident now (``VmRSS``).
    :param hwm: the most it has been resident since it started (``VmHWM``).
    """

    rss: int
    hwm: int


def memory(pid: int) -> Memory | None:
    """Read *pid*'s resident memory from ``/proc``; ``None`` if it is gone."""
    fields: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                name, _, value = line.partition(":")
                if name in ("VmRSS", "VmHWM"):
                    fields[name] = int(value.split()[0]) * 1024  # given in kB
    except OSError:
        return None
    if len(fields) < 2:
        return None  # a zombie has no memory left to report
    return Memory(rss=fields["VmRSS"], hwm=fields["VmHWM"])


class Server:
    """A server process in a session of its own: ``nimbus up`` or a gunicorn master.

    :param argv: the command line.
    :param port: the port it listens on (at :data:`HOST` or *host*).
    :param log_path: where its standard output and error go (appended).
    :param env: variables added to this process's environment for it.
    :param state_dir: the state directory of a ``nimbus up``, for :meth:`openrc`.
    :param name: what messages call it; the command's name by default.
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        port: int,
        log_path: str | os.PathLike[str],
        env: Mapping[str, str] | None = None,
        host: str = HOST,
        state_dir: str | os.PathLike[str] | None = None,
        name: str | None = None,
    ) -> None:
        self.argv = list(argv)
        self.name = name or os.path.basename(self.argv[0])
        self.port = port
        self.host = host
        self.log_path = Path(log_path)
        self.env = dict(env or {})
        self.state_dir = None if state_dir is None else Path(state_dir)
        self.proc: subprocess.Popen[bytes] | None = None
        #: The exit status after a graceful :meth:`stop`; ``None`` until then
        #: and when the server had to be killed.
        self.returncode: int | None = None
        self._stopped = False

    @property
    def pid(self) -> int:
        """Return the master's pid (also the process group id)."""
        if self.proc is None:
            raise ServerError("the server was not started")
        return self.proc.pid

    @property
    def url(self) -> str:
        """Return the server's base URL, without a trailing slash."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        """Start the process; return at once."""
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.argv,
                env={**os.environ, **self.env},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def get_status(self, path: str, *, timeout: float = 2.0) -> int:
        """Send one GET for *path* on a new connection; return the status."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            resp.read()
            return resp.status
        finally:
            conn.close()

    def wait_ready(
        self, path: str, *, timeout: float = 60.0, statuses: Collection[int] = (200,)
    ) -> None:
        """Wait until a GET for *path* answers with one of *statuses*.

        :raises ServerError: the process exited, or *timeout* seconds passed;
            the message holds the log's tail.
        """
        proc = self.proc
        if proc is None:
            raise ServerError("the server was not started")
        deadline = time.monotonic() + timeout
        last = "no answer"
        while True:
            if proc.poll() is not None:
                raise ServerError(f"{self.name} exited with {proc.returncode}:\n{self.log_tail()}")
            try:
                status = self.get_status(path)
            except (OSError, http.client.HTTPException) as ex:
                last = f"{type(ex).__name__}: {ex}"
            else:
                if status in statuses:
                    return
                last = f"HTTP {status}"
            if time.monotonic() > deadline:
                raise ServerError(
                    f"{self.name}: GET {path} did not answer {sorted(statuses)} within "
                    f"{timeout:g} s (last: {last}):\n{self.log_tail()}"
                )
            time.sleep(0.1)

    def stop(self, timeout: float = 20.0) -> int | None:
        """Stop the server: SIGTERM to the master, then SIGKILL to its group.

        :param timeout: seconds the master has to exit after SIGTERM.
        :returns: the exit status of a graceful stop (also kept in
            :attr:`returncode`), or ``None`` if the server had to be killed.
        """
        proc = self.proc
        if proc is None or self._stopped:
            return self.returncode
        self._stopped = True
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            exited = self._wait_unreaped(timeout)
        else:
            exited = True  # it died on its own; its workers may not have
        # The master stays a zombie until reaped, so its pid (the group id)
        # cannot be reused yet: the SIGKILL reaches only its own leftovers.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        code = proc.wait(timeout=10)
        self.returncode = code if exited else None
        return self.returncode

    def _wait_unreaped(self, timeout: float) -> bool:
        """Wait up to *timeout* s for the master to exit, without reaping it."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while True:
            try:
                info = os.waitid(os.P_PID, self.proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                return True  # already reaped
            if info is not None:
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)

    def worker_pids(self) -> list[int]:
        """Return the pids of the master's children (gunicorn's workers)."""
        return child_pids(self.pid)

    def worker_memory(self) -> dict[int, Memory]:
        """Return the resident memory of each worker, by pid."""
        found = {pid: memory(pid) for pid in self.worker_pids()}
        return {pid: mem for pid, mem in found.items() if mem is not None}

    def openrc(self) -> dict[str, str]:
        """Return the admin's ``OS_*`` variables from the openrc ``nimbus up`` wrote."""
        if self.state_dir is None:
            raise ServerError("this server has no state directory of its own")
        return read_openrc(self.state_dir / "openrc")

    def log_tail(self, lines: int = 40) -> str:
        """Return the last *lines* lines of the log."""
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return "".join(collections.deque(f, maxlen=lines))
        except OSError:
            return ""


class MemorySampler:
    """Sample the workers' resident memory in a thread while the block runs.

    ::

        with MemorySampler(server, interval=0.05) as sampler:
            upload()
        print(sampler.peak_rss, sampler.hwm)

    :param server: the server whose workers are sampled (found anew at each
        sample, so restarted workers are followed).
    :param interval: seconds between samples.
    """

    def __init__(self, server: Server, *, interval: float = 0.05) -> None:
        self.server = server
        self.interval = interval
        #: ``(monotonic time, largest VmRSS of one worker)`` per sample.
        self.samples: list[tuple[float, int]] = []
        #: The largest ``VmHWM`` of one worker, read when the block ends.
        self.hwm = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="memory-sampler", daemon=True)

    @property
    def peak_rss(self) -> int:
        """Return the largest ``VmRSS`` of one worker seen in any sample."""
        return max((rss for _, rss in self.samples), default=0)

    def sample(self) -> None:
        """Take one sample now."""
        found = self.server.worker_memory()
        if found:
            self.samples.append((time.monotonic(), max(m.rss for m in found.values())))

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()
        self.hwm = max((m.hwm for m in self.server.worker_memory().values()), default=0)


@contextlib.contextmanager
def serve(
    server: Server,
    ready_path: str,
    *,
    ready_timeout: float = 60.0,
    ready_statuses: Collection[int] = (200,),
    stop_timeout: float = 20.0,
) -> Iterator[Server]:
    """Start *server*, wait until *ready_path* answers, and stop it when the block ends."""
    server.start()
    try:
        server.wait_ready(ready_path, timeout=ready_timeout, statuses=ready_statuses)
        yield server
    finally:
        server.stop(stop_timeout)


def nimbus_up(
    state_dir: str | os.PathLike[str],
    *,
    log_path: str | os.PathLike[str],
    port: int | None = None,
    config_file: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    extra_args: Sequence[str] = (),
    ready_path: str = "/identity/v3",
    ready_timeout: float = 60.0,
    stop_timeout: float = 30.0,
) -> contextlib.AbstractContextManager[Server]:
    """Run ``nimbus up`` on *state_dir* until the block ends.

    The ``nimbus up`` process is itself the gunicorn master.  Its openrc is
    at ``<state_dir>/openrc`` (:meth:`openrc` of the returned server).

    :param port: the port to serve on; a free one by default.
    :param config_file: passed as ``--config-file``; without it ``nimbus up``
        reads ``nimbus.conf`` from the usual places.
    """
    port = free_port() if port is None else port
    server = Server(
        nimbus_up_command(state_dir, port, config_file=config_file, extra_args=extra_args),
        port=port,
        log_path=log_path,
        env=env,
        state_dir=state_dir,
        name="nimbus up",
    )
    return serve(server, ready_path, ready_timeout=ready_timeout, stop_timeout=stop_timeout)


def gunicorn(
    target: str,
    *,
    config_file: str | os.PathLike[str],
    log_path: str | os.PathLike[str],
    port: int | None = None,
    worker_class: str = "sync",
    workers: int = 1,
    threads: int = 1,
    timeout: float = 120,
    extra_args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    name: str | None = None,
    ready_path: str = "/identity/v3",
    ready_timeout: float = 60.0,
    stop_timeout: float = 20.0,
) -> contextlib.AbstractContextManager[Server]:
    """Run ``gunicorn <target>`` on *config_file* until the block ends.

    The state must be prepared first (:func:`prepare_state`).  The options
    are those of :func:`gunicorn_command`.

    :param config_file: given to the target as ``NIMBUS_CONFIG_FILE``.
    :param port: the port to serve on; a free one by default.
    :param name: what error messages call the server.
    """
    port = free_port() if port is None else port
    argv = gunicorn_command(
        target,
        port,
        worker_class=worker_class,
        workers=workers,
        threads=threads,
        timeout=timeout,
        extra_args=extra_args,
    )
    server = Server(
        argv,
        port=port,
        log_path=log_path,
        env={**(env or {}), "NIMBUS_CONFIG_FILE": os.fspath(config_file)},
        name=name or f"gunicorn {target}",
    )
    return serve(server, ready_path, ready_timeout=ready_timeout, stop_timeout=stop_timeout)
