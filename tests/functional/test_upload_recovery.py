"""A worker killed mid-upload: the image is recovered while the cloud keeps running.

A real ``nimbus up`` (one gunicorn worker, as SQLite wants) runs with short
heartbeat, staleness and recovery settings.  A client starts a chunked
upload and stops sending halfway; the worker holding it is killed with
SIGKILL, and gunicorn's arbiter starts a new one.  Without any restart the
image goes back to ``queued`` within ``upload_stale_after`` plus a recovery
interval, its ``.partial`` file goes away, and a new upload makes it
``active``.  Meanwhile a slow but live upload, one small chunk at a time,
keeps its image and its partial file and finishes.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nimbus.testing.server import Server, nimbus_up, password_auth, write_config
from nimbus.testing.waiting import wait_until

pytestmark = pytest.mark.slow

HEARTBEAT = 0.2
STALE_AFTER = 2.0
RECOVERY_INTERVAL = 0.5
CHUNK = 64 * 1024
# Slack for a loaded 2-core machine on top of STALE_AFTER + RECOVERY_INTERVAL.
RECOVERY_TIMEOUT = 30.0
REQUEST_TIMEOUT = 30.0
IMAGES = "/image/v2/images"
OCTET = "application/octet-stream"


class Cloud:
    """Plain HTTP calls to a running ``nimbus up`` as its admin."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.token: str | None = None
        password = server.openrc()["OS_PASSWORD"]
        status, headers, _ = self.request(
            "POST", "/identity/v3/auth/tokens", json.dumps(password_auth(password)).encode()
        )
        assert status == 201
        self.token = headers["X-Subject-Token"]

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, http.client.HTTPMessage, Any]:
        """Send one request on a new connection; return status, headers and parsed body."""
        sent = {"Content-Type": "application/json", **(headers or {})}
        if self.token is not None:
            sent.setdefault("X-Auth-Token", self.token)
        conn = http.client.HTTPConnection(
            self.server.host, self.server.port, timeout=REQUEST_TIMEOUT
        )
        try:
            conn.request(method, path, body=body, headers=sent)
            resp = conn.getresponse()
            data = resp.read()
        finally:
            conn.close()
        parsed = (
            json.loads(data) if data and resp.headers.get_content_type().endswith("json") else data
        )
        return resp.status, resp.headers, parsed

    def create_image(self, name: str) -> str:
        body = {"name": name, "disk_format": "raw", "container_format": "bare"}
        status, _, image = self.request("POST", IMAGES, json.dumps(body).encode())
        assert status == 201, image
        return str(image["id"])

    def image(self, image_id: str) -> dict[str, Any]:
        status, _, image = self.request("GET", f"{IMAGES}/{image_id}")
        assert status == 200, image
        return dict(image)

    def status(self, image_id: str) -> str:
        return str(self.image(image_id)["status"])

    def upload(self, image_id: str, data: bytes) -> int:
        status, _, _ = self.request(
            "PUT", f"{IMAGES}/{image_id}/file", data, headers={"Content-Type": OCTET}
        )
        return status


@contextlib.contextmanager
def chunked_upload(cloud: Cloud, image_id: str) -> Iterator[socket.socket]:
    """Open a chunked ``PUT`` of an image's file; yield the socket to send chunks on."""
    sock = socket.create_connection((cloud.server.host, cloud.server.port), timeout=60)
    try:
        head = (
            f"PUT {IMAGES}/{image_id}/file HTTP/1.1\r\n"
            f"Host: {cloud.server.host}:{cloud.server.port}\r\n"
            f"X-Auth-Token: {cloud.token}\r\n"
            f"Content-Type: {OCTET}\r\n"
            "Transfer-Encoding: chunked\r\n\r\n"
        )
        sock.sendall(head.encode())
        yield sock
    finally:
        sock.close()


def send_chunk(sock: socket.socket, data: bytes) -> None:
    sock.sendall(f"{len(data):x}\r\n".encode() + data + b"\r\n")


def end_upload(sock: socket.socket) -> int:
    """Send the last chunk and return the answer's status."""
    sock.sendall(b"0\r\n\r\n")
    response = http.client.HTTPResponse(sock)
    response.begin()
    response.read()
    return response.status


def partial_files(datadir: Path, image_id: str) -> list[str]:
    if not datadir.is_dir():
        return []
    return [n for n in os.listdir(datadir) if n.startswith(f".{image_id}.")]


def test_a_killed_workers_upload_is_recovered_while_the_cloud_runs(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "nimbus.conf",
        {
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
