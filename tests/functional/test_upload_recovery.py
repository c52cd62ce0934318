"""A worker killed mid-upload: the image is recovered while the cloud keeps running.

A real ``nimbus up`` (one gunicorn worker, so that the one holding the
upload is known) runs with short heartbeat, staleness and recovery
settings.  A client starts a chunked upload and stops sending halfway;
the worker holding it is killed with SIGKILL, and gunicorn's arbiter
starts a new one.  Without any restart the
image goes back to ``queued`` within ``upload_stale_after`` plus a recovery
interval, its ``.partial`` file goes away, and a new upload makes it
``active``.  Meanwhile a slow but live upload, one small chunk at a time,
keeps its image and its partial file and finishes.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from nimbus.testing.server import nimbus_up, write_config
from nimbus.testing.waiting import wait_until
from tests.functional._cloud import IMAGES, Cloud, chunked_upload, end_upload, send_chunk

pytestmark = pytest.mark.slow

HEARTBEAT = 0.2
STALE_AFTER = 2.0
RECOVERY_INTERVAL = 0.5
CHUNK = 64 * 1024
# Slack for a loaded 2-core machine on top of STALE_AFTER + RECOVERY_INTERVAL.
RECOVERY_TIMEOUT = 30.0
REQUEST_TIMEOUT = 30.0


def partial_files(datadir: Path, image_id: str) -> list[str]:
    if not datadir.is_dir():
        return []
    return [n for n in os.listdir(datadir) if n.startswith(f".{image_id}.")]


def test_a_killed_workers_upload_is_recovered_while_the_cloud_runs(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "nimbus.conf",
        {
            "api": {"workers": 1},
            "image": {
                "upload_heartbeat_interval": HEARTBEAT,
                "upload_stale_after": STALE_AFTER,
                "upload_recovery_interval": RECOVERY_INTERVAL,
                "chunk_size": CHUNK,
            },
            "image_file_store": {"fsync": False},
        },
    )
    state = tmp_path / "state"
    datadir = state / "images"
    with nimbus_up(state, log_path=tmp_path / "up.log", config_file=config) as server:
        cloud = Cloud(server)
        (worker,) = server.worker_pids()

        dead = cloud.create_image("cut-by-kill")
        with chunked_upload(cloud, dead) as sock:
            for _ in range(40):
                send_chunk(sock, os.urandom(CHUNK))
            assert wait_until(lambda: cloud.status(dead) == "saving", REQUEST_TIMEOUT)
            assert wait_until(lambda: partial_files(datadir, dead), REQUEST_TIMEOUT)
            os.kill(worker, signal.SIGKILL)
            assert wait_until(
                lambda: server.worker_pids() not in ([], [worker]), REQUEST_TIMEOUT
            ), server.log_tail()
        server.wait_ready("/identity/v3", timeout=REQUEST_TIMEOUT)

        # A slow live upload: a chunk every heartbeat or so, for longer than
        # STALE_AFTER; neither its image nor its partial file may be taken.
        live = cloud.create_image("slow-but-alive")
        live_data = os.urandom(CHUNK // 4)
        live_status: list[int] = []
        live_error: list[BaseException] = []

        def slow_upload() -> None:
            try:
                with chunked_upload(cloud, live) as live_sock:
                    deadline = time.monotonic() + 3 * STALE_AFTER
                    sent = 0
                    while time.monotonic() < deadline:
                        send_chunk(live_sock, live_data)
                        sent += 1
                        time.sleep(HEARTBEAT)
                    live_status.append(end_upload(live_sock))
                    live_status.append(sent)
            except BaseException as ex:
                live_error.append(ex)

        uploader = threading.Thread(target=slow_upload)
        uploader.start()
        try:
            assert wait_until(lambda: cloud.status(dead) == "queued", RECOVERY_TIMEOUT), (
                server.log_tail()
            )
            assert wait_until(lambda: not partial_files(datadir, dead), RECOVERY_TIMEOUT)
            assert cloud.status(live) == "saving"
        finally:
            uploader.join(REQUEST_TIMEOUT + 3 * STALE_AFTER)
        assert live_error == []
        assert live_status and live_status[0] == 204, (live_status, server.log_tail())
        shown = cloud.image(live)
        assert (shown["status"], shown["size"]) == ("active", live_status[1] * len(live_data))

        # The killed upload's image takes a new upload; the server never restarted.
        data = os.urandom(3 * CHUNK + 5)
        assert cloud.upload(dead, data) == 204
        shown = cloud.image(dead)
        assert (shown["status"], shown["size"]) == ("active", len(data))
        assert partial_files(datadir, dead) == []
        assert server.proc is not None and server.proc.poll() is None
        status, _, body = cloud.request("GET", f"{IMAGES}/{dead}/file")
        assert (status, body) == (200, data)
