"""``nimbus up`` runs two workers (its APIs alone), and they behave as one process.

One real ``nimbus up`` on a fresh state, its configuration setting only what
makes the tests decisive: a revocation re-read interval of an hour, so that
a worker refuses a token revoked through the other only if the change
reached it at once; and a storage quota for the uploads.  Each request's
connection is traced to the worker that serves it (``/proc``), so the
tests know that both workers took part.
"""

from __future__ import annotations

import concurrent.futures
import http.client
import json
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from nimbus.testing.server import Server, nimbus_up, password_auth, write_config
from nimbus.testing.waiting import wait_until
from tests.functional._cloud import IMAGES, OCTET, Cloud

pytestmark = pytest.mark.slow

MiB = 1024 * 1024
QUOTA = 10 * MiB
TIMEOUT = 30.0
TOKENS = "/identity/v3/auth/tokens"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("up-workers")
    config = write_config(
        tmp / "nimbus.conf",
        {
            "identity": {"password_hash_rounds": 4},
            "token": {"revocation_refresh_interval": 3600},
            "image": {"image_storage_quota": QUOTA, "chunk_size": 256 * 1024},
            "image_file_store": {"fsync": False},
            # The compute processes would keep nimbus up to one worker.
            "compute": {"embedded_backend": False},
        },
    )
    with nimbus_up(tmp / "state", log_path=tmp / "up.log", config_file=config) as up:
        # Ready once one worker answers: the other may still be starting.
        assert wait_until(lambda: len(up.worker_pids()) == 2, TIMEOUT), up.log_tail()
        for worker in up.worker_pids():
            through(up, worker).close()
        yield up


@pytest.fixture(scope="module")
def cloud(server: Server) -> Cloud:
    return Cloud(server)


def serving_worker(server: Server, conn: http.client.HTTPConnection) -> int:
    """Return the pid of the worker holding the server's end of *conn*."""
    assert conn.sock is not None
    client_port = conn.sock.getsockname()[1]
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table, encoding="ascii") as f:
            for line in list(f)[1:]:
                fields = line.split()
                local, remote = (int(a.rsplit(":", 1)[1], 16) for a in fields[1:3])
                if (local, remote) == (server.port, client_port):
                    inodes.add(f"socket:[{fields[9]}]")
    for pid in server.worker_pids():
        fd_dir = f"/proc/{pid}/fd"
        for fd in os.listdir(fd_dir):
            try:
                if os.readlink(os.path.join(fd_dir, fd)) in inodes:
                    return pid
            except OSError:
                continue  # closed meanwhile
    raise AssertionError(f"no worker holds the connection from port {client_port}")


def connect(server: Server) -> http.client.HTTPConnection:
    return http.client.HTTPConnection(server.host, server.port, timeout=TIMEOUT)


#: Connections opened at once while looking for a worker: with several
#: waiting to be accepted, a worker busy with one leaves the next to the
#: other, where one at a time may all go to whichever worker the kernel wakes
#: first (a busy machine makes that one worker for hundreds of tries).
BURST = 4


def served(server: Server) -> Iterator[tuple[http.client.HTTPConnection, int]]:
    """Yield new connections and the worker serving each, for up to ``TIMEOUT`` s.

    Each has answered one ``GET /identity/v3`` already.
    """
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        conns = [connect(server) for _ in range(BURST)]
        for conn in conns:
            conn.connect()
        for index, conn in enumerate(conns):
            status, _ = call(conn, "GET", "/identity/v3")
            assert status == 200
            try:
                yield conn, serving_worker(server, conn)
            except GeneratorExit:
                for other in conns[index + 1 :]:
                    other.close()
                raise


def through(server: Server, worker: int) -> http.client.HTTPConnection:
    """Return a new connection that *worker* serves (the kernel picks who accepts)."""
    for conn, serving in served(server):
        if serving == worker:
            return conn
        conn.close()
    raise AssertionError(f"no connection reached worker {worker}")


def call(
    conn: http.client.HTTPConnection,
    method: str,
    path: str,
    token: str | None = None,
    body: Any = None,
    subject: str | None = None,
) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["X-Auth-Token"] = token
    if subject is not None:
        headers["X-Subject-Token"] = subject
    conn.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
    response = conn.getresponse()
    data = response.read()
    return response.status, json.loads(data) if data else None


def roles_everywhere(server: Server, admin: str, token: str) -> list[Any]:
    """Validate *token* on new connections until each worker answered 12 times.

    :returns: the 24 answers, each the token's role names or the status.
    """
    answers: dict[int, list[Any]] = {pid: [] for pid in server.worker_pids()}
    for conn, worker in served(server):
        try:
            status, body = call(conn, "GET", TOKENS, admin, subject=token)
        finally:
            conn.close()
        roles = sorted(r["name"] for r in body["token"]["roles"]) if status == 200 else None
        answers[worker].append(roles or status)
        if all(len(seen) >= 12 for seen in answers.values()):
            return [answer for seen in answers.values() for answer in seen[:12]]
    raise AssertionError(f"the connections did not reach both workers: {answers}")


def issue(cloud: Cloud, name: str, password: str) -> str:
    status, headers, body = cloud.request(
        "POST", TOKENS, json.dumps(password_auth(password, user=name)).encode()
    )
    assert status == 201, body
    return str(headers["X-Subject-Token"])


def new_member(cloud: Cloud, name: str) -> str:
    """Create user *name* with the member role on the admin project; return its id."""
    status, _, body = cloud.request(
        "POST",
        "/identity/v3/users",
        json.dumps({"user": {"name": name, "password": "pw", "domain_id": "default"}}).encode(),
    )
    assert status == 201, body
    user_id = str(body["user"]["id"])
    grant(cloud, user_id, "member")
    return user_id


def grant(cloud: Cloud, user_id: str, role: str) -> None:
    _, _, projects = cloud.request("GET", "/identity/v3/projects?name=admin")
    _, _, roles = cloud.request("GET", f"/identity/v3/roles?name={role}")
    project_id, role_id = projects["projects"][0]["id"], roles["roles"][0]["id"]
    path = f"/identity/v3/projects/{project_id}/users/{user_id}/roles/{role_id}"
    status, _, body = cloud.request("PUT", path)
    assert status == 204, body


def test_a_token_revoked_through_either_worker_is_refused_by_both(
    server: Server, cloud: Cloud
) -> None:
    new_member(cloud, "ann")
    kept = issue(cloud, "ann", "pw")
    admin = str(cloud.token)
    member = [["member", "reader"]] * 24
    assert roles_everywhere(server, admin, kept) == member

    for worker in server.worker_pids():
        doomed = issue(cloud, "ann", "pw")
        assert roles_everywhere(server, admin, doomed) == member  # cached by both
        conn = through(server, worker)
        try:
            status, _ = call(conn, "DELETE", TOKENS, admin, subject=doomed)
        finally:
            conn.close()
        assert status == 204

        assert roles_everywhere(server, admin, doomed) == [404] * 24, f"revoked through {worker}"
    assert roles_everywhere(server, admin, kept) == member


def test_a_user_disabled_through_one_worker_is_refused_by_both(
    server: Server, cloud: Cloud
) -> None:
    user_id = new_member(cloud, "bob")
    token = issue(cloud, "bob", "pw")
    admin = str(cloud.token)
    assert roles_everywhere(server, admin, token) == [["member", "reader"]] * 24

    status, _, body = cloud.request(
        "PATCH", f"/identity/v3/users/{user_id}", json.dumps({"user": {"enabled": False}}).encode()
    )
    assert status == 200, body

    assert roles_everywhere(server, admin, token) == [404] * 24


def test_a_role_granted_through_one_worker_shows_on_both(server: Server, cloud: Cloud) -> None:
    user_id = new_member(cloud, "cid")
    token = issue(cloud, "cid", "pw")
    admin = str(cloud.token)
    assert roles_everywhere(server, admin, token) == [["member", "reader"]] * 24

    grant(cloud, user_id, "admin")

    assert roles_everywhere(server, admin, token) == [["admin", "member", "reader"]] * 24


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_concurrent_uploads_on_both_workers_never_pass_the_storage_quota(
    server: Server, cloud: Cloud, declared: bool
) -> None:
    """Eight 6 MiB uploads at once under a 10 MiB quota, on connections to both workers."""
    images = [cloud.create_image(f"q-{declared}-{i}") for i in range(8)]
    workers = server.worker_pids() * 4
    barrier = threading.Barrier(len(images))
    chunk = os.urandom(256 * 1024)

    def body() -> Iterator[bytes]:
        barrier.wait(TIMEOUT)
        for _ in range(24):
            yield chunk

    def upload(worker: int, image_id: str) -> int | str:
        conn = through(server, worker)  # the request follows at once: no idle close
        headers = {"X-Auth-Token": str(cloud.token), "Content-Type": OCTET}
        if declared:
            headers["Content-Length"] = str(6 * MiB)
        try:
            # Without a Content-Length, http.client sends the body chunked.
            conn.request("PUT", f"{IMAGES}/{image_id}/file", body=body(), headers=headers)
            response = conn.getresponse()
            response.read()
        except OSError:
            # The server answered a refused upload and closed before the end.
            return "cut"
        finally:
            conn.close()
        return response.status

    with concurrent.futures.ThreadPoolExecutor(max_workers=len(images)) as pool:
        statuses = list(pool.map(upload, workers, images))

    stored = statuses.count(204)
    assert set(statuses) <= {204, 413, "cut"}, statuses
    assert stored == 1 if declared else stored <= 1, statuses
    shown = [cloud.image(i) for i in images]
    assert sum(s["size"] or 0 for s in shown) == stored * 6 * MiB
    assert sorted(s["status"] for s in shown) == ["active"] * stored + ["queued"] * (8 - stored)
    for image_id in images:
        status, _, _ = cloud.request("DELETE", f"{IMAGES}/{image_id}")
        assert status == 204
