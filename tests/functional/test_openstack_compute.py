"""The compute API with the real ``openstack`` client on ``nimbus up`` (fake hypervisor).

Flavors (public and private, with properties), key pairs (generated and
imported), quotas and limits, and a server's life: what a new user tries
first, as the README shows it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from nimbus.testing.server import nimbus_up
from nimbus.testing.waiting import wait_until
from tests.functional._openstack import OpenStackCLI


@pytest.fixture(scope="module")
def cloud(tmp_path_factory) -> Iterator[OpenStackCLI]:
    state = tmp_path_factory.mktemp("cloud") / "state"
    with nimbus_up(
        state, log_path=state.parent / "nimbus-up.log", env={"NIMBUS_CONFIG_FILE": ""}
    ) as server:
        yield OpenStackCLI(server)


def test_compute_is_in_the_catalog(cloud: OpenStackCLI) -> None:
    catalog = {entry["Type"]: entry for entry in cloud.json("catalog", "list")}
    assert "compute" in catalog
    urls = [e["url"] for e in catalog["compute"]["Endpoints"]]
    assert all(url.endswith("/compute/v2.1") for url in urls)


def test_flavors(cloud: OpenStackCLI) -> None:
    created = cloud.json(
        "flavor", "create", "--ram", "512", "--disk", "1", "--vcpus", "1", "m1.tiny"
    )
    assert (created["ram"], created["disk"], created["vcpus"]) == (512, 1, 1)
    cloud.run(
        "flavor",
        "create",
        "--id",
        "42",
        "--ram",
        "128",
        "--disk",
        "0",
        "--vcpus",
        "1",
        "--private",
        "--property",
        "hw:cpu_policy=shared",
        "m1.private",
    )
    listed = {f["Name"]: f for f in cloud.json("flavor", "list")}
    assert listed["m1.tiny"]["RAM"] == 512
    assert "m1.private" not in listed  # private flavors are listed with --private
    private = {f["Name"] for f in cloud.json("flavor", "list", "--private")}
    assert "m1.private" in private
    shown = cloud.json("flavor", "show", "42")
    assert shown["name"] == "m1.private"
    assert shown["properties"] == {"hw:cpu_policy": "shared"}
    assert shown["os-flavor-access:is_public"] is False
    cloud.run("flavor", "set", "--project", "admin", "m1.private")
    cloud.run("flavor", "delete", "m1.private")
    assert "m1.private" not in {f["Name"] for f in cloud.json("flavor", "list", "--all")}
    failed = cloud.run(
        "flavor", "create", "--ram", "0", "--disk", "1", "--vcpus", "1", "bad", check=False
    )
    assert failed.returncode != 0 and "400" in failed.stderr


def test_keypairs(cloud: OpenStackCLI, tmp_path) -> None:
    made = cloud.run("keypair", "create", "k1")
    assert "PRIVATE KEY" in made.stdout
    public = (
        ed25519.Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    )
    key_file = tmp_path / "k2.pub"
    key_file.write_bytes(public + b" me@example\n")
    cloud.run("keypair", "create", "--public-key", str(key_file), "k2")
    names = {k["Name"] for k in cloud.json("keypair", "list")}
    assert names == {"k1", "k2"}
    assert cloud.json("keypair", "show", "k2")["name"] == "k2"
    again = cloud.run("keypair", "create", "k1", check=False)
    assert again.returncode != 0 and "409" in again.stderr
    cloud.run("keypair", "delete", "k1", "k2")
    assert cloud.json("keypair", "list") == []


def test_quotas_and_limits(cloud: OpenStackCLI) -> None:
    shown = {row["Resource"]: row["Limit"] for row in cloud.json("quota", "show")}
    assert (shown["instances"], shown["cores"], shown["ram"]) == (10, 20, 51200)
    cloud.run("quota", "set", "--instances", "20", "admin")
    shown = {row["Resource"]: row["Limit"] for row in cloud.json("quota", "show")}
    assert shown["instances"] == 20
    limits = {row["Name"]: row["Value"] for row in cloud.json("limits", "show", "--absolute")}
    # openstacksdk names Nova's maxTotalInstances and totalInstancesUsed so.
    assert limits["instances"] == 20
    assert limits["instances_used"] == 0
    assert limits["keypairs"] == 100


def test_a_servers_life(cloud: OpenStackCLI, tmp_path) -> None:
    image = tmp_path / "small.raw"
    image.write_bytes(b"\0" * 65536)
    cloud.run("image", "create", "--disk-format", "raw", "--container-format", "bare",
              "--file", str(image), "img1")  # fmt: skip
    cloud.run("flavor", "create", "--ram", "256", "--disk", "1", "--vcpus", "1", "m1.nano")
    cloud.run("keypair", "create", "kvm")
    server = cloud.json("server", "create", "--image", "img1", "--flavor", "m1.nano",
                        "--key-name", "kvm", "--wait", "vm1")  # fmt: skip
    assert server["status"] == "ACTIVE"
    assert server["key_name"] == "kvm"
    listed = {s["Name"]: s for s in cloud.json("server", "list")}
    assert listed["vm1"]["Status"] == "ACTIVE"
    assert listed["vm1"]["Image"] == "img1" and listed["vm1"]["Flavor"] == "m1.nano"

    def status() -> str:
        return str(cloud.json("server", "show", "vm1")["status"])

    for command, expected in [("stop", "SHUTOFF"), ("start", "ACTIVE"), ("pause", "PAUSED"),
                              ("unpause", "ACTIVE"), ("suspend", "SUSPENDED"),
                              ("resume", "ACTIVE"), ("reboot", "ACTIVE")]:  # fmt: skip
        cloud.run("server", command, "vm1")
        assert wait_until(lambda want=expected: status() == want, 30), (command, status())
    stopped_twice = cloud.run("server", "unpause", "vm1", check=False)
    assert stopped_twice.returncode != 0 and "409" in stopped_twice.stderr
    log = cloud.run("console", "log", "show", "vm1").stdout
    assert "login" in log
    events = [e["Action"] for e in cloud.json("server", "event", "list", "vm1")]
    assert events[-1] == "create" and "stop" in events
    cloud.run("server", "delete", "--wait", "vm1")
    assert cloud.json("server", "list") == []
