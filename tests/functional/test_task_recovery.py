"""A worker killed while it runs a task: the task fails while the cloud keeps running.

A real ``nimbus up`` (one gunicorn worker) with short staleness and
recovery settings runs a legacy ``import`` task whose source sends its
headers and then nothing, so the task stays ``processing``.  The worker
is killed with SIGKILL; gunicorn starts a new one, whose recovery fails
the task (its heartbeat stopped) and deletes the image it had begun,
without any restart.  A task left unfinished when ``nimbus up`` stops is
failed when it starts again.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nimbus.testing.server import nimbus_up, write_config
from nimbus.testing.waiting import wait_until
from tests.functional._cloud import IMAGES, Cloud

pytestmark = pytest.mark.slow

STALE_AFTER = 2.0
RECOVERY_INTERVAL = 0.5
# Slack for a loaded 2-core machine on top of STALE_AFTER + RECOVERY_INTERVAL.
TIMEOUT = 30.0


@contextlib.contextmanager
def silent_source() -> Iterator[str]:
    """Serve one URL that answers its headers (1 MiB announced) and then never sends."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1048576\r\n\r\n" + b"\0" * 1024)
            held.append(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/disk.raw"
    finally:
        stop.set()
        thread.join(5)
        for conn in held:
            conn.close()
        listener.close()


def _task(cloud: Cloud, url: str) -> str:
    body = {
        "type": "import",
        "input": {
            "import_from": url,
            "import_from_format": "raw",
            "image_properties": {"name": "t", "disk_format": "raw", "container_format": "bare"},
        },
    }
    status, _, task = cloud.request("POST", "/image/v2/tasks", json.dumps(body).encode())
    assert status == 201, task
    return str(task["id"])


def _show(cloud: Cloud, task_id: str) -> dict[str, Any]:
    status, _, task = cloud.request("GET", f"/image/v2/tasks/{task_id}")
    assert status == 200, task
    return dict(task)


def test_a_killed_workers_task_fails_and_leaves_no_image(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "nimbus.conf",
        {
            "api": {"workers": 1},
            "identity": {"password_hash_rounds": 4},
            "image": {
                "upload_heartbeat_interval": 0.2,
                "upload_stale_after": STALE_AFTER,
                "upload_recovery_interval": RECOVERY_INTERVAL,
            },
            "image_file_store": {"fsync": False},
        },
    )
    state = tmp_path / "state"
    with silent_source() as url:
        with nimbus_up(state, log_path=tmp_path / "up.log", config_file=config) as server:
            cloud = Cloud(server)
            (worker,) = server.worker_pids()
            task_id = _task(cloud, url)
            assert wait_until(lambda: _show(cloud, task_id).get("image_id"), TIMEOUT)
            image_id = _show(cloud, task_id)["image_id"]
            assert wait_until(lambda: cloud.status(image_id) == "saving", TIMEOUT)
            assert _show(cloud, task_id)["status"] == "processing"

            os.kill(worker, signal.SIGKILL)
            assert wait_until(lambda: server.worker_pids() not in ([], [worker]), TIMEOUT), (
                server.log_tail()
            )
            server.wait_ready("/identity/v3", timeout=TIMEOUT)
            assert wait_until(lambda: _show(cloud, task_id)["status"] == "failure", TIMEOUT), (
                server.log_tail()
            )
            assert "stopped" in _show(cloud, task_id)["message"]
            # The recovery fails the task, then deletes its image: a moment later.
            assert wait_until(
                lambda: cloud.request("GET", f"{IMAGES}/{image_id}")[0] == 404, TIMEOUT
            ), server.log_tail()

            # One more, cut by stopping the whole cloud.
            left = _task(cloud, url)
            assert wait_until(lambda: _show(cloud, left)["status"] == "processing", TIMEOUT)
            server.proc.send_signal(signal.SIGKILL)
            server.proc.wait(TIMEOUT)
        with nimbus_up(state, log_path=tmp_path / "up2.log", config_file=config) as server:
            cloud = Cloud(server)
            assert _show(cloud, left)["status"] == "failure"
