"""Bad input that only a real web server delivers, against a real ``nimbus up``.

Chunked uploads with a malformed chunk size or cut off halfway reach the
API as exceptions from gunicorn's input stream; a request path with an
encoded newline reaches the request log. Neither may give a 500 or a line
the client wrote.
"""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from nimbus.testing.server import Server, nimbus_up
from tests.functional._cloud import IMAGES, Cloud, chunked_upload, send_chunk

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("wire")
    # The request log is off by default in nimbus up: the newline test reads it.
    with nimbus_up(
        root / "state", log_path=root / "up.log", extra_args=("--log-requests",)
    ) as running:
        yield running


@pytest.fixture(scope="module")
def cloud(server: Server) -> Cloud:
    return Cloud(server)


def _answer(sock: socket.socket) -> tuple[int, dict[str, object]]:
    response = http.client.HTTPResponse(sock)
    response.begin()
    return response.status, json.loads(response.read() or b"{}")


def _assert_glance_400(status: int, body: dict[str, object]) -> None:
    """Check Glance's error body: code, title and message, the code a 400."""
    assert status == 400, body
    assert set(body) == {"code", "title", "message"}, body
    assert body["code"] == "400 Bad Request", body
    assert "malformed or ended early" in str(body["message"]), body


@pytest.mark.parametrize(
    "tail",
    [
        pytest.param(b"zz\r\nabc\r\n", id="chunk-size-not-hex"),
        pytest.param(b"3\r\nabcXY", id="chunk-without-terminator"),
    ],
)
def test_a_malformed_chunked_upload_is_a_bad_request(cloud: Cloud, tail: bytes) -> None:
    image_id = cloud.create_image("bad-chunks")

    with chunked_upload(cloud, image_id) as sock:
        send_chunk(sock, b"good data")
        sock.sendall(tail)
        status, body = _answer(sock)

    _assert_glance_400(status, body)
    assert cloud.status(image_id) == "queued"
    assert cloud.upload(image_id, b"fine") == 204


def test_a_chunked_upload_cut_off_halfway_is_a_bad_request(cloud: Cloud) -> None:
    image_id = cloud.create_image("cut-off")

    with chunked_upload(cloud, image_id) as sock:
        send_chunk(sock, b"good data")
        sock.sendall(b"100\r\nonly part of the chunk")
        sock.shutdown(socket.SHUT_WR)
        status, body = _answer(sock)

    _assert_glance_400(status, body)
    assert cloud.status(image_id) == "queued"


def test_a_path_with_an_encoded_newline_forges_no_log_line(cloud: Cloud, server: Server) -> None:
    forged = "FORGED admin logged in"
    status, _, _ = cloud.request("GET", f"{IMAGES}/x%0D%0A{forged.replace(' ', '%20')}")

    assert status == 404
    log = Path(server.log_path).read_text()
    assert forged in log, "the request was not logged at all"
    assert not [line for line in log.splitlines() if line.startswith(forged)]
