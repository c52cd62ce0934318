"""The real ``openstack`` client against the image service of a real ``nimbus up``.

The issue's acceptance for images, run as a user would run it: a qcow2 made
with ``qemu-img`` goes through ``image create``, ``list``, ``show``, ``save``,
``set`` and ``delete``, and two projects share an image through members.
What the client cannot be made to do on purpose (stop an upload halfway,
race another upload, stream 512 MiB while the worker's memory is watched)
goes over raw HTTP to the same server, with a token from ``token issue``.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import filecmp
import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from nimbus.testing import services
from nimbus.testing.server import MemorySampler, Server
from tests.functional._cloud import fast_nimbus_up
from tests.functional._openstack import OpenStackCLI

MiB = 1024 * 1024
IMAGES = "/image/v2/images"
OCTET = "application/octet-stream"

# Sends the head of an upload and part of its body, says so, then waits to be killed.
_UPLOADER = """
import socket, sys
host, port, path, token, declared, send = sys.argv[1:]
sock = socket.create_connection((host, int(port)))
sock.sendall(
    f"PUT {path} HTTP/1.1\\r\\nHost: {host}:{port}\\r\\nX-Auth-Token: {token}\\r\\n"
    f"Content-Type: application/octet-stream\\r\\nContent-Length: {declared}\\r\\n\\r\\n".encode()
)
block = bytes(range(256)) * 4096
for _ in range(int(send) // len(block)):
    sock.sendall(block)
print("sent", flush=True)
sys.stdin.read()
"""


def _qemu_img(*args: str) -> str:
    qemu_img = shutil.which("qemu-img")
    if qemu_img is None:
        message = "qemu-img needed (install qemu-utils, or run make test): not found on PATH"
        if services.services_required():
            pytest.fail(message)
        pytest.skip(message)
    return subprocess.run(
        [qemu_img, *args], check=True, capture_output=True, text=True, timeout=60
    ).stdout


def _digest(path: Path, algorithm: str) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, algorithm).hexdigest()


def _field(image: dict[str, Any], name: str) -> Any:
    """Return a field of ``image show -f json``, top level or under ``properties``."""
    return image[name] if name in image else image["properties"][name]


def _pattern(size: int, digest: Any) -> Iterator[bytes]:
    """Yield *size* bytes, a MiB at a time, hashing them on the way out."""
    block = os.urandom(MiB)
    for index in range(size // MiB):
        chunk = index.to_bytes(8, "big") + block[8:]
        digest.update(chunk)
        yield chunk


class Cloud(OpenStackCLI):
    """A running ``nimbus up``, the client against it, and raw HTTP to its image API."""

    def __init__(self, server: Server) -> None:
        super().__init__(server)
        assert server.state_dir is not None
        self.datadir = server.state_dir / "images"
        self._token: str | None = None

    # -- the client --------------------------------------------------------------------

    def run_all(
        self, *commands: Iterable[str], env: dict[str, str] | None = None
    ) -> list[subprocess.CompletedProcess[str]]:
        """Run independent commands at once, unchecked, in the order given.

        Each command is an interpreter start and a login: about two seconds
        that overlap well on two cores.
        """
        with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
            futures = [pool.submit(self.run, *args, env=env, check=False) for args in commands]
            return [future.result() for future in futures]

    # -- raw HTTP, as the admin --------------------------------------------------------

    @property
    def token(self) -> str:
        if self._token is None:
            self._token = self.run("token", "issue", "-f", "value", "-c", "id").stdout.strip()
        return self._token

    def connect(self, timeout: float = 60) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.server.host, self.server.port, timeout=timeout)

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """Send one request with a JSON body (or none); return the status and the JSON."""
        headers = {"X-Auth-Token": self.token, "Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        conn = self.connect()
        try:
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
        finally:
            conn.close()
        return resp.status, json.loads(raw) if raw else None

    def create_image(self, name: str) -> str:
        status, image = self.request(
            "POST", IMAGES, {"name": name, "disk_format": "raw", "container_format": "bare"}
        )
        assert status == 201, image
        assert image["status"] == "queued", image
        return image["id"]

    def image(self, image_id: str) -> dict[str, Any]:
        status, image = self.request("GET", f"{IMAGES}/{image_id}")
        assert status == 200, image
        return image

    def delete_image(self, image_id: str) -> None:
        status, body = self.request("DELETE", f"{IMAGES}/{image_id}")
        assert status == 204, body

    def upload(self, image_id: str, body: bytes | Iterable[bytes], size: int) -> tuple[int, bytes]:
        """PUT image data with a ``Content-Length``; return the status and the answer."""
        headers = {
            "X-Auth-Token": self.token,
            "Content-Type": OCTET,
            "Content-Length": str(size),
        }
        conn = self.connect(timeout=120)
        try:
            conn.request("PUT", f"{IMAGES}/{image_id}/file", body=body, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def download_digest(self, image_id: str) -> tuple[int, str]:
        """GET image data, a MiB at a time; return its size and MD5."""
        digest = hashlib.md5(usedforsecurity=False)
        size = 0
        conn = self.connect(timeout=120)
        try:
            conn.request("GET", f"{IMAGES}/{image_id}/file", headers={"X-Auth-Token": self.token})
            resp = conn.getresponse()
            assert resp.status == 200, resp.read()
            while chunk := resp.read(MiB):
                digest.update(chunk)
                size += len(chunk)
        finally:
            conn.close()
        return size, digest.hexdigest()

    def wait_status(self, image_id: str, *, leaving: str, timeout: float = 10) -> dict[str, Any]:
        """Poll the image until its status is not *leaving*; return it."""
        deadline = time.monotonic() + timeout
        while (image := self.image(image_id))["status"] == leaving:
            assert time.monotonic() < deadline, f"image still {leaving} after {timeout:g} s"
            time.sleep(0.05)
        return image

    def stored(self) -> set[str]:
        """Return the names of the files in the store's directory."""
        return set(os.listdir(self.datadir))


@pytest.fixture(scope="module")
def cloud(tmp_path_factory) -> Iterator[Cloud]:
    with fast_nimbus_up(tmp_path_factory.mktemp("image-cloud")) as server:
        yield Cloud(server)


# -- 1. an image's life, through the client --------------------------------------------


def test_image_lifecycle(cloud: Cloud, tmp_path: Path) -> None:
    raw = tmp_path / "small.raw"
    _qemu_img("create", "-f", "raw", str(raw), "64M")
    with open(raw, "r+b") as f:
        for offset in (0, 20 * MiB, 63 * MiB):
            f.seek(offset)
            f.write(os.urandom(MiB))
    qcow2 = tmp_path / "small.qcow2"
    _qemu_img("convert", "-f", "raw", "-O", "qcow2", str(raw), str(qcow2))
    info = json.loads(_qemu_img("info", "--output=json", str(qcow2)))
    assert info["format"] == "qcow2" and info["virtual-size"] == 64 * MiB

    create = ("image", "create", "--disk-format", "qcow2", "--container-format", "bare")
    created = cloud.json(*create, "--file", str(qcow2), "img1")
    assert created["status"] == "active", created
    listed = cloud.json("image", "list")
    assert {"ID": created["id"], "Name": "img1", "Status": "active"} in listed

    shown = cloud.json("image", "show", "img1")
    assert shown["id"] == created["id"]
    assert shown["status"] == "active"
    assert shown["disk_format"] == "qcow2" and shown["container_format"] == "bare"
    assert shown["checksum"] == _digest(qcow2, "md5")
    assert _field(shown, "os_hash_algo") == "sha512"
    assert _field(shown, "os_hash_value") == _digest(qcow2, "sha512")
    assert shown["size"] == qcow2.stat().st_size
    assert shown["virtual_size"] == info["virtual-size"]
    assert created["id"] in cloud.stored()

    out = tmp_path / "out.img"
    cloud.run("image", "save", "--file", str(out), "img1")
    assert filecmp.cmp(qcow2, out, shallow=False)

    cloud.run("image", "set", "--property", "foo=bar", "--tag", "t1", "img1")
    shown = cloud.json("image", "show", "img1")
    assert shown["properties"]["foo"] == "bar"
    assert shown["tags"] == ["t1"]

    cloud.run("image", "set", "--protected", "img1")
    refused = cloud.run("image", "delete", "img1", check=False)
    assert refused.returncode != 0
    assert "403" in refused.stderr and "protected" in refused.stderr, refused.stderr
    shown = cloud.json("image", "show", "img1")
    assert shown["status"] == "active" and shown["protected"] is True

    cloud.run("image", "set", "--unprotected", "img1")
    cloud.run("image", "delete", "img1")
    gone = cloud.run("image", "show", "img1", check=False)
    assert gone.returncode != 0
    assert "No Image found for img1" in gone.stderr, gone.stderr
    assert created["id"] not in cloud.stored()


def test_copy_to_another_store_and_remove_from_one(cloud: Cloud, tmp_path: Path) -> None:
    """The README's several-stores flow with the openstack client, as an admin runs it."""
    data = tmp_path / "two-stores.raw"
    data.write_bytes(os.urandom(3 * MiB))
    created = cloud.json("image", "create", "--disk-format", "raw", "--file", str(data), "two")
    assert _field(created, "stores") == "fast", created

    # The image first: --store takes several names.
    cloud.run("image", "import", created["id"], "--method", "copy-image", "--store", "cheap")
    deadline = time.monotonic() + 30
    while _field(cloud.json("image", "show", "two"), "stores") != "cheap,fast":
        assert time.monotonic() < deadline, "the copy to cheap did not finish"
        time.sleep(0.2)

    cloud.run("image", "delete", "--store", "fast", "two")
    assert _field(cloud.json("image", "show", "two"), "stores") == "cheap"
    last = cloud.run("image", "delete", "--store", "cheap", "two", check=False)
    assert last.returncode != 0 and "only store" in last.stderr, last.stderr
    out = tmp_path / "out.raw"
    cloud.run("image", "save", "--file", str(out), "two")
    assert filecmp.cmp(data, out, shallow=False)
    cloud.run("image", "delete", "two")


# -- 2. projects, visibility and members -----------------------------------------------


def test_project_isolation_and_members(cloud: Cloud, tmp_path: Path) -> None:
    projects = cloud.run_all(
        ("project", "create", "-f", "json", "img-a"),
        ("project", "create", "-f", "json", "img-b"),
    )
    a_id, b_id = (json.loads(p.stdout)["id"] for p in projects)
    setup = cloud.run_all(
        ("user", "create", "--project", "img-a", "--password", "pw-a", "img-alice"),
        ("user", "create", "--project", "img-b", "--password", "pw-b", "img-bob"),
    )
    setup += cloud.run_all(
        ("role", "add", "--project", "img-a", "--user", "img-alice", "member"),
        ("role", "add", "--project", "img-b", "--user", "img-bob", "member"),
    )
    assert all(r.returncode == 0 for r in setup), [r.stderr for r in setup]
    alice = cloud.as_user("img-alice", "pw-a", "img-a")
    bob = cloud.as_user("img-bob", "pw-b", "img-b")

    data = tmp_path / "data.raw"
    data.write_bytes(os.urandom(3 * MiB + 12345))
    create = ("image", "create", "--disk-format", "raw", "--container-format", "bare")
    shared, private, public = cloud.run_all(
        (*create, "--file", str(data), "-f", "json", "shared-img"),
        (*create, "--file", str(data), "--private", "-f", "json", "private-img"),
        (*create, "--public", "-f", "json", "public-img"),
        env=alice,
    )
    assert shared.returncode == 0, shared.stderr
    assert private.returncode == 0, private.stderr
    shared_id = json.loads(shared.stdout)["id"]
    private_id = json.loads(private.stdout)["id"]
    assert json.loads(private.stdout)["visibility"] == "private"
    # A member may not publish an image to every project.
    assert public.returncode != 0
    assert "403" in public.stderr, public.stderr
    alice_sees = {i["Name"] for i in cloud.json("image", "list", env=alice)}
    assert {"shared-img", "private-img"} <= alice_sees and "public-img" not in alice_sees

    # Bob sees nothing of project A's until he is made a member.
    before = tmp_path / "before.img"
    listed, show, save, show_private = cloud.run_all(
        ("image", "list", "-f", "json"),
        ("image", "show", shared_id),
        ("image", "save", "--file", str(before), shared_id),
        ("image", "show", private_id),
        env=bob,
    )
    assert listed.returncode == 0, listed.stderr
    assert not {shared_id, private_id} & {i["ID"] for i in json.loads(listed.stdout)}
    assert show.returncode != 0 and f"No Image found for {shared_id}" in show.stderr, show.stderr
    assert save.returncode != 0 and not before.exists(), save.stderr
    assert show_private.returncode != 0, show_private.stdout

    member = cloud.json("image", "add", "project", "shared-img", b_id, env=alice)
    assert member["member_id"] == b_id and member["status"] == "pending", member
    cloud.run("image", "set", "--accept", shared_id, env=bob)

    after = tmp_path / "after.img"
    listed, show, save, show_private = cloud.run_all(
        ("image", "list", "-f", "json"),
        ("image", "show", "-f", "json", shared_id),
        ("image", "save", "--file", str(after), shared_id),
        ("image", "show", private_id),
        env=bob,
    )
    assert listed.returncode == 0, listed.stderr
    bob_sees = {i["ID"] for i in json.loads(listed.stdout)}
    assert shared_id in bob_sees and private_id not in bob_sees
    assert show.returncode == 0, show.stderr
    shown = json.loads(show.stdout)
    assert shown["name"] == "shared-img" and shown["owner"] == a_id, shown
    assert save.returncode == 0, save.stderr
    assert filecmp.cmp(data, after, shallow=False)
    assert show_private.returncode != 0, show_private.stdout

    # Several stores: Bob may neither copy Alice's images to another store
    # nor remove them from one; the one he sees is refused (403), the one he
    # does not is not found.  (openstacksdk's import_image does not raise on
    # an error answer: the client says nothing of the copy's 403, and the
    # image staying in its one store is what shows it.)
    copy = ("--method", "copy-image", "--store", "cheap")
    copy_shared, copy_private, drop_shared, drop_private = cloud.run_all(
        ("image", "import", shared_id, *copy),
        ("image", "import", private_id, *copy),
        ("image", "delete", "--store", "fast", shared_id),
        ("image", "delete", "--store", "fast", private_id),
        env=bob,
    )
    assert copy_private.returncode != 0, copy_private.stderr
    assert "No Image found" in copy_private.stderr or "404" in copy_private.stderr
    assert drop_shared.returncode != 0 and "403" in drop_shared.stderr, drop_shared.stderr
    assert drop_private.returncode != 0, drop_private.stderr
    assert "403" not in drop_private.stderr, drop_private.stderr
    assert "403" in copy_shared.stderr or copy_shared.returncode == 0, copy_shared.stderr
    assert _field(cloud.json("image", "show", shared_id, env=alice), "stores") == "fast"

    cloud.run("image", "remove", "project", "shared-img", b_id, env=alice)
    listed, show = cloud.run_all(
        ("image", "list", "-f", "json"), ("image", "show", shared_id), env=bob
    )
    assert listed.returncode == 0, listed.stderr
    assert shared_id not in {i["ID"] for i in json.loads(listed.stdout)}
    assert show.returncode != 0 and f"No Image found for {shared_id}" in show.stderr, show.stderr


# -- 3. an upload that stops halfway ---------------------------------------------------


def _send_head_and_part(cloud: Cloud, image_id: str, declared: int, send: int) -> socket.socket:
    """Start an upload of *declared* bytes and send *send* of them; return the socket."""
    sock = socket.create_connection((cloud.server.host, cloud.server.port), timeout=30)
    sock.sendall(
        f"PUT {IMAGES}/{image_id}/file HTTP/1.1\r\n"
        f"Host: {cloud.server.host}:{cloud.server.port}\r\n"
        f"X-Auth-Token: {cloud.token}\r\n"
        f"Content-Type: {OCTET}\r\nContent-Length: {declared}\r\n\r\n".encode()
    )
    block = os.urandom(MiB)
    for _ in range(send // MiB):
        sock.sendall(block)
    return sock


def _wait_partial(cloud: Cloud, *, written: int = 16 * MiB, timeout: float = 10) -> None:
    """Wait until an upload file in the store holds at least *written* bytes."""
    deadline = time.monotonic() + timeout
    while True:
        sizes = []
        for name in cloud.stored():
            if name.endswith(".partial"):
                with contextlib.suppress(FileNotFoundError):
                    sizes.append((cloud.datadir / name).stat().st_size)
        if max(sizes, default=0) >= written:
            return
        assert time.monotonic() < deadline, f"upload files in {cloud.datadir}: {sizes}"
        time.sleep(0.05)


@pytest.mark.parametrize("how", ["close", "reset", "sigkill"])
def test_interrupted_upload_leaves_nothing(cloud: Cloud, how: str) -> None:
    image_id = cloud.create_image(f"interrupted-{how}")
    stored_before = cloud.stored()
    declared, send = 200 * MiB, 50 * MiB

    if how == "sigkill":
        server = cloud.server
        argv = [sys.executable, "-c", _UPLOADER, server.host, str(server.port)]
        argv += [f"{IMAGES}/{image_id}/file", cloud.token, str(declared), str(send)]
        with subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        ) as uploader:
            assert uploader.stdout is not None
            try:
                assert uploader.stdout.readline().strip() == "sent"
                assert cloud.image(image_id)["status"] == "saving"
                _wait_partial(cloud)
            finally:
                uploader.send_signal(signal.SIGKILL)
                uploader.wait(timeout=10)
            assert uploader.returncode == -signal.SIGKILL
    else:
        with _send_head_and_part(cloud, image_id, declared, send) as sock:
            assert cloud.image(image_id)["status"] == "saving"
            _wait_partial(cloud)
            if how == "reset":
                # Linger 0: close() sends a TCP reset instead of an orderly FIN.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    image = cloud.wait_status(image_id, leaving="saving")
    assert image["status"] == "queued", image
    assert image["size"] is None, image
    assert image["checksum"] is None, image
    assert cloud.stored() == stored_before, "the store kept a part of the interrupted upload"

    data = os.urandom(3 * MiB + 7)
    status, answer = cloud.upload(image_id, data, len(data))
    assert status == 204, answer
    image = cloud.image(image_id)
    assert image["status"] == "active", image
    assert image["size"] == len(data)
    assert image["checksum"] == hashlib.md5(data, usedforsecurity=False).hexdigest()
    assert image["os_hash_value"] == hashlib.sha512(data).hexdigest()
    assert cloud.stored() == stored_before | {image_id}
    cloud.delete_image(image_id)


# -- 4. memory while 512 MiB go through the worker -------------------------------------


def test_large_transfer_memory(cloud: Cloud, record_property) -> None:
    size = 512 * MiB
    image_id = cloud.create_image("large")
    try:
        baseline = max(m.rss for m in cloud.server.worker_memory().values())
        sent = hashlib.md5(usedforsecurity=False)
        with MemorySampler(cloud.server, interval=0.05) as sampler:
            started = time.monotonic()
            status, answer = cloud.upload(image_id, _pattern(size, sent), size)
            uploaded = time.monotonic()
            assert status == 204, answer
            received_size, received_md5 = cloud.download_digest(image_id)
            downloaded = time.monotonic()
        image = cloud.image(image_id)
    finally:
        cloud.delete_image(image_id)

    growth = sampler.peak_rss - baseline
    figures = {
        "worker_rss_baseline_mib": round(baseline / MiB, 1),
        "worker_rss_peak_mib": round(sampler.peak_rss / MiB, 1),
        "worker_rss_growth_mib": round(growth / MiB, 1),
        "worker_hwm_mib": round(sampler.hwm / MiB, 1),
        "memory_samples": len(sampler.samples),
        "upload_s": round(uploaded - started, 2),
        "download_s": round(downloaded - uploaded, 2),
    }
    for name, value in figures.items():
        record_property(name, value)
    print(f"\n512 MiB through the worker: {figures}")

    assert image["status"] == "active" and image["size"] == size, image
    assert image["checksum"] == sent.hexdigest()
    assert (received_size, received_md5) == (size, sent.hexdigest())
    assert len(sampler.samples) > 10, "too few memory samples to tell"
    assert growth < 64 * MiB, f"the worker grew by {growth / MiB:.1f} MiB: {figures}"


# -- 5. two uploads racing for one image -----------------------------------------------


def test_concurrent_uploads(cloud: Cloud) -> None:
    image_id = cloud.create_image("raced")
    winner = os.urandom(8 * MiB)
    loser = os.urandom(64 * 1024)
    first_started = threading.Event()
    second_done = threading.Event()

    def slow() -> Iterator[bytes]:
        # Hold the image in "saving" until the other upload has had its answer.
        yield winner[:MiB]
        first_started.set()
        second_done.wait(timeout=30)
        for offset in range(MiB, len(winner), MiB):
            yield winner[offset : offset + MiB]

    def fast() -> tuple[int, bytes]:
        try:
            assert first_started.wait(timeout=30), "the first upload did not start"
            cloud.wait_status(image_id, leaving="queued")
            return cloud.upload(image_id, loser, len(loser))
        finally:
            second_done.set()

    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        first = pool.submit(cloud.upload, image_id, slow(), len(winner))
        second = pool.submit(fast)
        answers = [first.result(timeout=60), second.result(timeout=60)]
    assert [status for status, _ in answers] == [204, 409], answers
    assert b"saving" in answers[1][1], answers[1]

    image = cloud.image(image_id)
    assert image["status"] == "active", image
    assert image["size"] == len(winner)
    assert image["checksum"] == hashlib.md5(winner, usedforsecurity=False).hexdigest()
    assert cloud.download_digest(image_id) == (len(winner), image["checksum"])
    cloud.delete_image(image_id)
