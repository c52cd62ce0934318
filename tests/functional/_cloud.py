"""Plain HTTP to a running ``nimbus up``: a client that is neither falcon's nor openstack's.

For tests that need what only a real web server does: chunked bodies, raw
sockets, connections cut halfway.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import pathlib
import socket
from collections.abc import Iterator
from typing import Any

from nimbus.testing.server import Server, nimbus_up, password_auth, write_config

__all__ = [
    "IMAGES",
    "OCTET",
    "Cloud",
    "chunked_upload",
    "end_upload",
    "fast_nimbus_up",
    "send_chunk",
]

REQUEST_TIMEOUT = 30.0
IMAGES = "/image/v2/images"
OCTET = "application/octet-stream"


@contextlib.contextmanager
def fast_nimbus_up(base: pathlib.Path) -> Iterator[Server]:
    """Run ``nimbus up`` on a state below *base*, with a cheap bcrypt cost.

    Every client call logs in; the default cost would double a module's
    runtime.  On the way out, the cloud must have stopped cleanly on SIGTERM.
    """
    config = write_config(base / "nimbus.conf", {"identity": {"password_hash_rounds": 4}})
    with nimbus_up(
        base / "state",
        log_path=base / "nimbus-up.log",
        config_file=config,
        env={"NIMBUS_CONFIG_FILE": ""},
    ) as server:
        yield server
    assert server.returncode == 0, "nimbus up did not stop cleanly on SIGTERM"


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
