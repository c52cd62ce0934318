"""Two gunicorn servers on one MariaDB database and one key repository agree.

Each test starts two separate gunicorn masters with two sync workers each,
from the same configuration file: server A serves
``nimbus.wsgi:all_services()`` (identity under ``/identity/v3``), server B
``nimbus.wsgi:identity()`` (identity at ``/v3``).  Tokens issued by one are
validated by the other, a revocation made through one reaches the other
within ``[token] revocation_refresh_interval``, and ``nimbus fernet rotate``
run beside them is picked up by both.  Each server writes its workers' pids
to an access log, which tells that both workers of a server were exercised.

Every wait is bounded; the servers are stopped and the scratch database is
dropped whatever happens.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import http.client
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet, InvalidToken

from nimbus.testing import server as launcher

pytestmark = [pytest.mark.services, pytest.mark.slow]

ADMIN_PASSWORD = "s3cret-admin"
REVOCATION_REFRESH = 1.0
# KeyRepository's default: how often a process looks for rotated keys.
KEY_REFRESH = 1.0
# Slack for a loaded machine on top of the refresh intervals.
MARGIN = 5.0
START_TIMEOUT = 30.0
REQUEST_TIMEOUT = 15.0
BOTH_WORKERS_TIMEOUT = 20.0
NIMBUS = Path(sys.executable).parent / "nimbus"

AUTH_BODY = launcher.password_auth(ADMIN_PASSWORD)


@dataclasses.dataclass
class Reply:
    """One HTTP answer."""

    status: int
    headers: http.client.HTTPMessage
    body: Any


@dataclasses.dataclass
class Server:
    """A running gunicorn master and how to reach its identity API."""

    name: str
    process: launcher.Server
    prefix: str
    access_log: Path

    @property
    def port(self) -> int:
        """Return the port the server listens on."""
        return self.process.port

    def request(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        subject: str | None = None,
        body: Any = None,
    ) -> Reply:
        """Send one request on a new connection to ``<prefix><path>``."""
        headers = {"Accept": "application/json"}
        if token:
            headers["X-Auth-Token"] = token
        if subject:
            headers["X-Subject-Token"] = subject
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=REQUEST_TIMEOUT)
        try:
            conn.request(method, self.prefix + path, body=data, headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
            return Reply(resp.status, resp.headers, json.loads(raw) if raw else None)
        finally:
            conn.close()

    def issue(self) -> str:
        """Issue an admin token here; return its id."""
        reply = self.request("POST", "/v3/auth/tokens", body=AUTH_BODY)
        assert reply.status == 201, (self.name, reply.status, reply.body)
        token = reply.headers["X-Subject-Token"]
        assert token
        return token

    def validate(self, token: str, subject: str) -> Reply:
        """Validate *subject* here, authenticated with *token*."""
        return self.request("GET", "/v3/auth/tokens", token=token, subject=subject)

    def log_lines(self) -> list[str]:
        """Return the access log's lines so far (``<pid> METHOD path status``)."""
        if not self.access_log.exists():
            return []
        return self.access_log.read_text(encoding="utf-8").splitlines()


@contextlib.contextmanager
def _gunicorn(name: str, target: str, prefix: str, config: Path, logs: Path) -> Iterator[Server]:
    """Run ``gunicorn <target>`` with two sync workers until the block ends."""
    access_log = logs / f"{name}-access.log"
    with launcher.gunicorn(
        target,
        config_file=config,
        log_path=logs / f"{name}-error.log",
        name=f"gunicorn {name}",
        worker_class="sync",
        workers=2,
        timeout=60,
        extra_args=(
            "--access-logfile",
            str(access_log),
            "--access-logformat",
            "%(p)s %(m)s %(U)s %(s)s",
        ),
        ready_path=f"{prefix}/v3",
        ready_timeout=START_TIMEOUT,
        stop_timeout=15,
    ) as process:
        server = Server(name, process, prefix, access_log)
        # The first answer may come before the other worker has loaded the app.
        _on_both_workers(
            server, "/v3", lambda: _in_parallel([lambda: server.request("GET", "/v3")] * 4)
        )
        yield server


@dataclasses.dataclass
class Cloud:
    """Two servers sharing one database, one config and one key repository."""

    a: Server
    b: Server
    config: Path
    key_repository: Path

    def key_numbers(self) -> list[int]:
        """Return the numbers of the key files in the repository, lowest first."""
        return sorted(int(p.name) for p in self.key_repository.iterdir() if p.name.isdigit())

    def key_of(self, token: str) -> int | None:
        """Return the number of the key file that encrypted *token*."""
        data = (token + "=" * (-len(token) % 4)).encode()
        for entry in self.key_repository.iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(InvalidToken):
                Fernet(entry.read_bytes().strip()).decrypt(data)
                return int(entry.name)
        return None


@pytest.fixture
def cloud(scratch_url: str, tmp_path: Path) -> Iterator[Cloud]:
    """Prepare the database and keys, then run servers A and B from one config file."""
    keys = tmp_path / "fernet-keys"
    config = launcher.write_config(
        tmp_path / "nimbus.conf",
        {
            "DEFAULT": {"state_path": tmp_path / "state"},
            "database": {"connection": scratch_url, "max_retries": 3},
            "identity": {"password_hash_rounds": 4},
            "token": {"revocation_refresh_interval": REVOCATION_REFRESH},
            # Two rotations must keep the key that signed the first tokens.
            "fernet_tokens": {"key_repository": keys, "max_active_keys": 4},
        },
    )
    launcher.prepare_state(config, ADMIN_PASSWORD)
    with (
        _gunicorn("A", "nimbus.wsgi:all_services()", "/identity", config, tmp_path) as a,
        _gunicorn("B", "nimbus.wsgi:identity()", "", config, tmp_path) as b,
    ):
        yield Cloud(a, b, config, keys)


def _workers_seen(server: Server, since: int, path: str) -> set[str]:
    pids = set()
    for line in server.log_lines()[since:]:
        fields = line.split()
        if len(fields) == 4 and fields[2] == server.prefix + path:
            pids.add(fields[0])
    return pids


def _on_both_workers(server: Server, path: str, batch: Callable[[], None]) -> None:
    """Run *batch* until both of *server*'s workers served *path* (bounded)."""
    start = len(server.log_lines())
    deadline = time.monotonic() + BOTH_WORKERS_TIMEOUT
    for _ in range(500):
        batch()
        if len(_workers_seen(server, start, path)) >= 2:
            return
        if time.monotonic() > deadline:
            break
    pytest.fail(f"server {server.name}: one worker served every request to {path}")


def _in_parallel(calls: list[Callable[[], Any]]) -> list[Any]:
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        return [f.result(timeout=REQUEST_TIMEOUT * 2) for f in [pool.submit(c) for c in calls]]


def _check_valid(server: Server, token: str, subjects: list[str]) -> None:
    """Validate every subject several times at once on *server*; all must pass."""
    repeated = [s for s in subjects for _ in range(3)]
    replies = _in_parallel([lambda s=s: server.validate(token, s) for s in repeated])
    for reply, subject in zip(replies, repeated, strict=True):
        assert reply.status == 200, (server.name, reply.status, reply.body)
        assert reply.headers["X-Subject-Token"] == subject
        assert reply.body["token"]["user"]["name"] == "admin"
        assert reply.body["token"]["project"]["name"] == "admin"


def test_tokens_and_projects_cross_servers(cloud: Cloud) -> None:
    a, b = cloud.a, cloud.b
    from_a = [a.issue() for _ in range(3)]
    from_b = [b.issue() for _ in range(3)]

    # Each server validates the other's tokens, authenticated by the other's token.
    _on_both_workers(b, "/v3/auth/tokens", lambda: _check_valid(b, from_a[0], from_a))
    _on_both_workers(a, "/v3/auth/tokens", lambda: _check_valid(a, from_b[0], from_b))
    # And its own, with a caller token from the other side.
    _check_valid(a, from_b[1], from_a)
    _check_valid(b, from_a[1], from_b)

    name = f"cross-{uuid.uuid4().hex[:8]}"
    created = a.request(
        "POST",
        "/v3/projects",
        token=from_a[0],
        body={"project": {"name": name, "domain_id": "default", "description": "made on A"}},
    )
    assert created.status == 201, created.body
    project_id = created.body["project"]["id"]

    def read_on_b() -> None:
        replies = _in_parallel(
            [lambda: b.request("GET", f"/v3/projects/{project_id}", token=from_b[0])] * 4
        )
        for reply in replies:
            assert reply.status == 200, reply.body
            assert reply.body["project"]["name"] == name
            assert reply.body["project"]["description"] == "made on A"

    _on_both_workers(b, f"/v3/projects/{project_id}", read_on_b)
    listed = b.request("GET", f"/v3/projects?name={name}", token=from_a[2])
    assert listed.status == 200
    assert [p["id"] for p in listed.body["projects"]] == [project_id]


def test_revocation_reaches_the_other_server(cloud: Cloud) -> None:
    a, b = cloud.a, cloud.b
    caller = a.issue()
    doomed = b.issue()
    survivor = b.issue()
    # Every worker of B caches the doomed token as valid first.
    _on_both_workers(b, "/v3/auth/tokens", lambda: _check_valid(b, caller, [doomed, survivor]))

    revoked = a.request("DELETE", "/v3/auth/tokens", token=caller, subject=doomed)
    assert revoked.status == 204, revoked.body
    revoked_at = time.monotonic()

    # B refuses it soon (polled, with slack for a loaded machine) ...
    deadline = revoked_at + REVOCATION_REFRESH + MARGIN
    while True:
        status = b.validate(caller, doomed).status
        if status == 404:
            break
        assert status == 200
        assert time.monotonic() < deadline, "B still accepts the revoked token"
        time.sleep(0.05)

    # ... and once the refresh interval has passed, no worker of either
    # server accepts it any more; the other token is untouched.
    time.sleep(max(0.0, revoked_at + REVOCATION_REFRESH + 0.2 - time.monotonic()))
    for server in (a, b):

        def batch(server: Server = server) -> None:
            for reply in _in_parallel([lambda: server.validate(caller, doomed)] * 4):
                assert reply.status == 404, (server.name, reply.status)
            _check_valid(server, caller, [survivor])

        _on_both_workers(server, "/v3/auth/tokens", batch)


def _rotate(config: Path) -> str:
    # --config-file is an option of the nimbus command, so it comes before
    # the sub-command ("nimbus fernet rotate --config-file ..." is refused).
    result = subprocess.run(
        [str(NIMBUS), "--config-file", str(config), "fernet", "rotate"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_key_rotation_is_picked_up_by_both(cloud: Cloud) -> None:
    a, b = cloud.a, cloud.b
    assert cloud.key_numbers() == [0, 1]
    # Issued with primary key 1; not validated anywhere before the rotations.
    before_a = [a.issue() for _ in range(3)]
    before_b = [b.issue() for _ in range(3)]
    assert {cloud.key_of(t) for t in before_a + before_b} == {1}

    # Two rotations: the key staged by the first becomes primary (3) in the
    # second, so a server that did not reload after the first cannot read
    # tokens encrypted with it.
    assert "primary key is now 2" in _rotate(cloud.config)
    assert "primary key is now 3" in _rotate(cloud.config)
    rotated_at = time.monotonic()
    assert cloud.key_numbers() == [0, 1, 2, 3]

    for server in (a, b):
        deadline = rotated_at + KEY_REFRESH + MARGIN
        while cloud.key_of(server.issue()) != 3:
            assert time.monotonic() < deadline, f"{server.name} still encrypts with the old key"
            time.sleep(0.05)
    # After the refresh interval every worker encrypts with the new primary.
    time.sleep(max(0.0, rotated_at + KEY_REFRESH + 0.2 - time.monotonic()))
    after: dict[str, list[str]] = {}
    for server in (a, b):
        tokens: list[str] = []

        def batch(server: Server = server, tokens: list[str] = tokens) -> None:
            tokens.extend(_in_parallel([server.issue] * 4))

        _on_both_workers(server, "/v3/auth/tokens", batch)
        assert {cloud.key_of(t) for t in tokens} == {3}, server.name
        after[server.name] = tokens[:4]

    caller_a, caller_b = after["A"][0], after["B"][0]
    for server, caller in ((a, caller_b), (b, caller_a)):
        # Old tokens: the other server's were never validated here before.
        _check_valid(server, caller, before_a + before_b)
        # New tokens from both servers.
        _on_both_workers(
            server,
            "/v3/auth/tokens",
            lambda s=server, c=caller: _check_valid(s, c, after["A"] + after["B"]),
        )
