"""A throw-away ``nimbus up``: a temporary state directory and a free port."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tools.tempest.workspace import RunnerError

__all__ = ["Cloud", "free_port", "started"]


@dataclass(frozen=True)
class Cloud:
    """A running cloud: where it answers and its admin's password."""

    auth_url: str
    password: str
    state_dir: Path
    log: Path


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5):  # noqa: S310
            return True
    except urllib.error.HTTPError:
        return True  # it answers, if not with 200
    except OSError:
        return False


def _stop(process: subprocess.Popen[bytes], grace: float = 30) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)  # nimbus up and its gunicorn workers
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@contextlib.contextmanager
def started(log: Path, *, host: str = "127.0.0.1", wait: float = 120) -> Iterator[Cloud]:
    """Run ``nimbus up`` on a new state directory and a free port while in use.

    The cloud is stopped and its state removed on the way out, also when
    the block raised (a failure, Ctrl-C).

    :raises RunnerError: it exited or did not answer within *wait* seconds.
    """
    state_dir = Path(tempfile.mkdtemp(prefix="nimbus-tempest-"))
    port = free_port(host)
    command = [
        sys.executable,
        "-m",
        "nimbus.cmd.main",
        "up",
        "--host",
        host,
        "--port",
        str(port),
        "--state-dir",
        str(state_dir),
    ]
    base = f"http://{host}:{port}"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + wait
        while not _answers(base + "/identity/v3"):
            if process.poll() is not None:
                raise RunnerError(f"nimbus up exited with {process.returncode}; see {log}")
            if time.monotonic() > deadline:
                raise RunnerError(f"nimbus up did not answer at {base} in {wait:.0f}s; see {log}")
            time.sleep(0.5)
        # nimbus up made the admin a password and kept it there (not on a
        # command line, where ps would show it)
        password = (state_dir / "admin-password").read_text().strip()
        yield Cloud(base + "/identity/v3", password, state_dir, log)
    finally:
        _stop(process)
        shutil.rmtree(state_dir, ignore_errors=True)
