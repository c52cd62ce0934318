"""The compute service split into processes, on RabbitMQ and MariaDB, as an operator runs it.

gunicorn serves every API (``nimbus.wsgi:all_services()``); two ``nimbus
scheduler``, one ``nimbus conductor`` and three ``nimbus compute-agent``
processes (hosts ``h1`` to ``h3``, the fake driver) run beside it, each a
process of its own, all from one configuration file (plus each agent's host
name).  60 servers are booted through the API; every one must end ACTIVE on
the host its claim names, and the hosts share them.  Then they are deleted,
and no claim is left.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from nimbus.testing import server as launcher

pytestmark = [pytest.mark.services, pytest.mark.slow]

ADMIN_PASSWORD = "s3cret-admin"
NIMBUS = Path(sys.executable).parent / "nimbus"
SERVERS = 60
HOSTS = ("h1", "h2", "h3")


class API:
    """The gunicorn server and an admin token for it."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.token = ""

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any, Any]:
        headers = {"Accept": "application/json", "X-Auth-Token": self.token}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
            return resp.status, resp.headers, json.loads(raw) if raw else None
        finally:
            conn.close()


def _process(argv: list[str], log: Path, name: str) -> launcher.Server:
    # Not an HTTP server: the port is never asked.
    return launcher.Server(argv, port=0, log_path=log, name=name)


@pytest.fixture
def cloud(scratch_url: str, rabbit_url: str, tmp_path: Path) -> Iterator[API]:
    config = launcher.write_config(
        tmp_path / "nimbus.conf",
        {
            "DEFAULT": {"state_path": tmp_path / "state", "host": "api"},
            "database": {"connection": scratch_url, "max_retries": 3},
            "identity": {"password_hash_rounds": 4},
            "messaging": {
                "transport": "rabbit",
                "transport_url": rabbit_url,
                "exchange": f"nimbus-split-{uuid.uuid4().hex[:8]}",
            },
            "compute": {"report_interval": 1},
            "fake_compute": {"spawn_delay": 0.05},
        },
    )
    launcher.prepare_state(config, ADMIN_PASSWORD)
    parts: list[launcher.Server] = []
    for n in (1, 2):
        parts.append(_process([str(NIMBUS), "scheduler", "--config-file", str(config)],
                              tmp_path / f"scheduler-{n}.log", f"scheduler {n}"))  # fmt: skip
    parts.append(_process([str(NIMBUS), "conductor", "--config-file", str(config)],
                          tmp_path / "conductor.log", "conductor"))  # fmt: skip
    for host in HOSTS:
        host_config = launcher.write_config(tmp_path / f"{host}.conf", {"DEFAULT": {"host": host}})
        argv = [str(NIMBUS), "compute-agent", "--config-file", str(config),
                "--config-file", str(host_config)]  # fmt: skip
        parts.append(_process(argv, tmp_path / f"agent-{host}.log", f"agent {host}"))
    with contextlib.ExitStack() as stack:
        for part in parts:
            part.start()
            stack.callback(part.stop, 15)
        api_server = stack.enter_context(
            launcher.gunicorn(
                "nimbus.wsgi:all_services()",
                config_file=config,
                log_path=tmp_path / "gunicorn.log",
                worker_class="nimbus.server.Worker",
                workers=2,
                threads=8,
            )
        )
        api = API(api_server.port)
        status, headers, _ = api.call(
            "POST", "/identity/v3/auth/tokens", launcher.password_auth(ADMIN_PASSWORD)
        )
        assert status == 201
        api.token = headers["X-Subject-Token"]
        yield api
        for part in parts:
            assert part.proc is not None and part.proc.poll() is None, (
                f"{part.name} died: {part.log_tail()}"
            )


def _wait(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.5)
    pytest.fail(f"timed out waiting for {what}")


def test_sixty_servers_across_three_agents(cloud: API, scratch_url: str) -> None:
    _wait(
        lambda: len([s for s in cloud.call("GET", "/compute/v2.1/os-services")[2]["services"]
                     if s["state"] == "up"]) == 3,
        30,
        "three compute agents up",
    )  # fmt: skip
    project = cloud.call("GET", "/identity/v3/auth/projects")[2]["projects"][0]["id"]
    unlimited = {"instances": -1, "cores": -1, "ram": -1}
    assert cloud.call("PUT", f"/compute/v2.1/os-quota-sets/{project}",
                      {"quota_set": unlimited})[0] == 200  # fmt: skip
    flavor = {"flavor": {"name": "f", "id": "f", "ram": 256, "vcpus": 1, "disk": 0}}
    assert cloud.call("POST", "/compute/v2.1/flavors", flavor)[0] == 200
    image = cloud.call(
        "POST",
        "/image/v2/images",
        {"name": "img", "disk_format": "raw", "container_format": "bare"},
    )[2]
    conn = http.client.HTTPConnection("127.0.0.1", cloud.port, timeout=30)
    conn.request("PUT", f"/image/v2/images/{image['id']}/file", body=b"\0" * 4096,
                 headers={"X-Auth-Token": cloud.token,
                          "Content-Type": "application/octet-stream"})  # fmt: skip
    assert conn.getresponse().status == 204
    conn.close()
    ids = []
    for n in range(SERVERS):
        body = {"server": {"name": f"vm{n}", "flavorRef": "f", "imageRef": image["id"]}}
        status, _, body = cloud.call("POST", "/compute/v2.1/servers", body)
        assert status == 202, body
        ids.append(body["server"]["id"])

    def all_active() -> list[dict[str, Any]] | None:
        found = cloud.call("GET", "/compute/v2.1/servers/detail?limit=1000")[2]["servers"]
        errors = [s for s in found if s["status"] == "ERROR"]
        assert not errors, errors[0].get("fault")
        done = [s for s in found if s["status"] == "ACTIVE"]
        return found if len(done) == SERVERS else None

    servers = _wait(all_active, 120, f"{SERVERS} servers ACTIVE")
    assert {s["id"] for s in servers} == set(ids)
    hosts = {s["id"]: s["OS-EXT-SRV-ATTR:host"] for s in servers}
    assert set(hosts.values()) == set(HOSTS), "the scheduler used every host"
    engine = sa.create_engine(scratch_url)
    try:
        with engine.connect() as conn:
            claims = dict(
                conn.execute(sa.text("SELECT instance_uuid, host FROM allocations")).all()
            )
            used = conn.execute(
                sa.text("SELECT host, vcpus_used, running_vms FROM compute_nodes")
            ).all()
        assert claims == hosts, "every server runs on the host its claim names"
        assert sum(row.running_vms for row in used) == SERVERS
        for id_ in ids:
            assert cloud.call("DELETE", f"/compute/v2.1/servers/{id_}")[0] == 204
        _wait(
            lambda: cloud.call("GET", "/compute/v2.1/servers")[2]["servers"] == [],
            120,
            "every server deleted",
        )

        def released() -> bool:
            with engine.connect() as conn:
                left = conn.execute(sa.text("SELECT COUNT(*) FROM allocations")).scalar()
                busy = conn.execute(sa.text("SELECT SUM(running_vms) FROM compute_nodes")).scalar()
            return left == 0 and not busy

        _wait(released, 30, "every claim released")
    finally:
        engine.dispose()
