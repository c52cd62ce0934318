"""``kill -9`` in the middle of a build: every server ends in a final state, nothing stays claimed.

A real ``nimbus up`` runs the compute agent in its worker, with a fake
hypervisor that takes 30 s to spawn.  Two cases:

* the worker (API, conductor, scheduler and agent) is killed while a server
  spawns; gunicorn's arbiter starts a new one, whose agent settles the
  server: ERROR, with a fault saying the build was interrupted;
* the whole ``nimbus up`` is killed while a server spawns; on the restart
  it ends in ERROR.

Afterwards the servers delete, their claims are given back (the
hypervisor statistics count no server), and a new server builds.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from nimbus.testing.server import nimbus_up, write_config
from nimbus.testing.waiting import wait_until
from tests.functional._cloud import Cloud

pytestmark = pytest.mark.slow

SETTLED = 60.0
V = "/compute/v2.1"


def _config(tmp_path: Path, spawn_delay: float) -> Path:
    return write_config(
        tmp_path / "nimbus.conf",
        {
            "identity": {"password_hash_rounds": 4},
            "fake_compute": {"spawn_delay": spawn_delay},
            "compute": {"report_interval": 1},
        },
    )


def _prepare(cloud: Cloud) -> str:
    image = cloud.create_image("img")
    assert cloud.upload(image, b"\0" * 4096) == 204
    flavor = {"flavor": {"name": "f", "id": "f", "ram": 64, "vcpus": 1, "disk": 0}}
    status, _, _ = cloud.request("POST", f"{V}/flavors", json.dumps(flavor).encode())
    assert status == 200
    return image


def _boot(cloud: Cloud, image: str, name: str) -> str:
    body = {"server": {"name": name, "imageRef": image, "flavorRef": "f"}}
    status, _, created = cloud.request("POST", f"{V}/servers", json.dumps(body).encode())
    assert status == 202, created
    return str(created["server"]["id"])


def _server(cloud: Cloud, server_id: str) -> dict[str, Any]:
    status, _, body = cloud.request("GET", f"{V}/servers/{server_id}")
    assert status == 200, body
    return dict(body["server"])


def _gone(cloud: Cloud, server_id: str) -> bool:
    return cloud.request("GET", f"{V}/servers/{server_id}")[0] == 404


def _running_vms(cloud: Cloud) -> int:
    _, _, body = cloud.request("GET", f"{V}/os-hypervisors/statistics")
    return int(body["hypervisor_statistics"]["running_vms"])


def _ends_in_error(cloud: Cloud, server_id: str) -> dict[str, Any]:
    found: dict[str, Any] = {}

    def settled() -> bool:
        found.update(_server(cloud, server_id))
        return found["status"] == "ERROR"

    assert wait_until(settled, SETTLED, interval=0.5), found
    return found


def _clean_up_and_build_again(cloud: Cloud, image: str, server_ids: list[str]) -> None:
    for server_id in server_ids:
        assert cloud.request("DELETE", f"{V}/servers/{server_id}")[0] == 204
    assert wait_until(lambda: all(_gone(cloud, s) for s in server_ids), SETTLED, interval=0.5)
    assert wait_until(lambda: _running_vms(cloud) == 0, SETTLED, interval=0.5)


def test_a_worker_killed_mid_build_is_settled_by_its_successor(tmp_path: Path) -> None:
    with nimbus_up(
        tmp_path / "state", log_path=tmp_path / "up.log", config_file=_config(tmp_path, 30)
    ) as up:
        cloud = Cloud(up)
        image = _prepare(cloud)
        server_id = _boot(cloud, image, "vm1")
        assert wait_until(
            lambda: _server(cloud, server_id)["OS-EXT-STS:task_state"] == "spawning",
            SETTLED,
            interval=0.2,
        )
        (worker,) = up.worker_pids()
        os.kill(worker, signal.SIGKILL)
        assert wait_until(lambda: up.worker_pids() not in ([], [worker]), SETTLED)
        cloud = Cloud(up)
        server = _ends_in_error(cloud, server_id)
        assert "The build was interrupted" in server["fault"]["message"]
        _clean_up_and_build_again(cloud, image, [server_id])


def test_the_whole_cloud_killed_mid_build_settles_on_restart(tmp_path: Path) -> None:
    state = tmp_path / "state"
    config = _config(tmp_path, 30)
    with nimbus_up(state, log_path=tmp_path / "up-1.log", config_file=config) as up:
        cloud = Cloud(up)
        image = _prepare(cloud)
        spawning = _boot(cloud, image, "vm1")
        assert wait_until(
            lambda: _server(cloud, spawning)["OS-EXT-STS:task_state"] == "spawning",
            SETTLED,
            interval=0.2,
        )
        os.killpg(up.pid, signal.SIGKILL)
        assert up.proc is not None
        up.proc.wait(timeout=30)
    config = _config(tmp_path, 0)
    with nimbus_up(state, log_path=tmp_path / "up-2.log", config_file=config) as up:
        cloud = Cloud(up)
        server = _ends_in_error(cloud, spawning)
        assert "interrupted" in server["fault"]["message"]
        _clean_up_and_build_again(cloud, image, [spawning])
        # The cloud builds again.
        fresh = _boot(cloud, image, "vm2")
        assert wait_until(lambda: _server(cloud, fresh)["status"] == "ACTIVE", SETTLED)
