"""Servers end to end in one process: API, conductor, scheduler and fake hosts on a memory bus."""

from __future__ import annotations

import datetime
import types
from typing import Any

import falcon.testing
import pytest
import sqlalchemy as sa
from oslo_config import cfg

from nimbus import messaging
from nimbus.compute import ServerService
from nimbus.compute.backend import ComputeBackend
from nimbus.compute.models import Instance
from nimbus.db import Database
from nimbus.testing.waiting import wait_until
from tests.unit.api.compute.conftest import IMAGE

V = "/v2.1"


def as_(who: str) -> dict[str, str]:
    return {"X-Auth-Token": who}


@pytest.fixture
def flavor(client: falcon.testing.TestClient) -> str:
    body = {"flavor": {"name": "m1.small", "id": "f1", "ram": 2048, "vcpus": 2, "disk": 20}}
    assert client.simulate_post(f"{V}/flavors", json=body).status_code == 200
    return "f1"


def boot(
    client: falcon.testing.TestClient, flavor: str, name: str = "vm1", who: str = "admin", **extra
) -> Any:
    body = {"server": {"name": name, "imageRef": IMAGE, "flavorRef": flavor, **extra}}
    return client.simulate_post(f"{V}/servers", json=body, headers=as_(who))


def show(client: falcon.testing.TestClient, server_id: str, who: str = "admin") -> dict:
    resp = client.simulate_get(f"{V}/servers/{server_id}", headers=as_(who))
    assert resp.status_code == 200, resp.text
    server: dict = resp.json["server"]
    return server


def wait_status(
    client: falcon.testing.TestClient, server_id: str, status: str, who: str = "admin"
) -> dict:
    found: dict = {}

    def reached() -> bool:
        found.update(show(client, server_id, who))
        return found["status"] == status

    assert wait_until(reached, 10), f"{server_id} is {found.get('status')}, not {status}"
    return found


def act(client: falcon.testing.TestClient, server_id: str, body: dict, who: str = "admin"):
    return client.simulate_post(f"{V}/servers/{server_id}/action", json=body, headers=as_(who))


def test_a_server_is_built_on_a_host_and_shown_as_nova_does(
    client: falcon.testing.TestClient, backend: ComputeBackend, flavor: str
) -> None:
    resp = boot(client, flavor, metadata={"role": "web"})
    assert resp.status_code == 202, resp.text
    created = resp.json["server"]
    assert created["OS-DCF:diskConfig"] == "MANUAL"
    assert [link["rel"] for link in created["links"]] == ["self", "bookmark"]
    server = wait_status(client, created["id"], "ACTIVE")
    assert server["OS-EXT-STS:vm_state"] == "active"
    assert server["OS-EXT-STS:task_state"] is None
    assert server["OS-EXT-STS:power_state"] == 1
    assert server["OS-EXT-SRV-ATTR:host"] in ("h1", "h2")
    assert server["image"]["id"] == IMAGE
    assert server["flavor"]["id"] == "f1"
    assert server["metadata"] == {"role": "web"}
    assert server["tenant_id"] == "p1" and server["user_id"] == "u1"
    assert len(server["hostId"]) == 56
    assert server["OS-SRV-USG:launched_at"]
    listed = client.simulate_get(f"{V}/servers").json["servers"]
    assert [s["id"] for s in listed] == [created["id"]]
    assert set(listed[0]) == {"id", "name", "links"}
    (detailed,) = client.simulate_get(f"{V}/servers/detail").json["servers"]
    assert detailed["status"] == "ACTIVE"


def test_members_do_not_see_the_hosts(
    client: falcon.testing.TestClient, backend: ComputeBackend, flavor: str
) -> None:
    created = boot(client, flavor, who="member").json["server"]
    server = wait_status(client, created["id"], "ACTIVE", who="member")
    assert "OS-EXT-SRV-ATTR:host" not in server
    assert show(client, created["id"])["OS-EXT-SRV-ATTR:host"] in ("h1", "h2")


def test_the_life_of_a_server(
    client: falcon.testing.TestClient, backend: ComputeBackend, flavor: str
) -> None:
    server_id = boot(client, flavor).json["server"]["id"]
    wait_status(client, server_id, "ACTIVE")
    for body, status in [
        ({"os-stop": None}, "SHUTOFF"),
        ({"os-start": None}, "ACTIVE"),
        ({"reboot": {"type": "SOFT"}}, "ACTIVE"),
        ({"pause": None}, "PAUSED"),
        ({"unpause": None}, "ACTIVE"),
        ({"suspend": None}, "SUSPENDED"),
        ({"resume": None}, "ACTIVE"),
        ({"reboot": {"type": "HARD"}}, "ACTIVE"),
    ]:
        resp = act(client, server_id, body)
        assert resp.status_code == 202, (body, resp.text)
        wait_status(client, server_id, status)
        assert wait_until(lambda: show(client, server_id)["OS-EXT-STS:task_state"] is None, 10)
    output = act(client, server_id, {"os-getConsoleOutput": {"length": 1}})
    assert output.status_code == 200
    assert len(output.json["output"].splitlines()) == 1
    actions = client.simulate_get(f"{V}/servers/{server_id}/os-instance-actions").json
    names = [a["action"] for a in actions["instanceActions"]]
    assert names[-1] == "create" and names[0] == "reboot"
    assert set(names) >= {"stop", "start", "pause", "unpause", "suspend", "resume"}
    create = actions["instanceActions"][-1]
    one = client.simulate_get(
        f"{V}/servers/{server_id}/os-instance-actions/{create['request_id']}"
    ).json["instanceAction"]
    assert [e["event"] for e in one["events"]] == ["compute_build_and_run_instance"]
    assert one["events"][0]["result"] == "Success"
    assert client.simulate_delete(f"{V}/servers/{server_id}").status_code == 204
    assert wait_until(
        lambda: client.simulate_get(f"{V}/servers/{server_id}").status_code == 404, 10
    )
    assert not any(backend.agents[i]._driver.list_instances() for i in range(2))


@pytest.mark.parametrize(
    ("body", "state"),
    [
        ({"os-start": None}, "vm_state active"),
        ({"unpause": None}, "vm_state active"),
        ({"resume": None}, "vm_state active"),
    ],
)
def test_an_action_the_state_does_not_allow_is_409(
    client: falcon.testing.TestClient, backend: ComputeBackend, flavor: str, body: dict, state: str
) -> None:
    server_id = boot(client, flavor).json["server"]["id"]
    wait_status(client, server_id, "ACTIVE")
    resp = act(client, server_id, body)
    assert resp.status_code == 409
    assert state in resp.json["conflictingRequest"]["message"]
    assert show(client, server_id)["status"] == "ACTIVE"


def test_locked_servers_refuse_all_but_admins(
    client: falcon.testing.TestClient, backend: ComputeBackend, flavor: str
) -> None:
    server_id = boot(client, flavor, who="member").json["server"]["id"]
    wait_status(client, server_id, "ACTIVE", who="member")
    assert act(client, server_id, {"lock": None}).status_code == 202
    refused = act(client, server_id, {"os-stop": None}, who="member")
    assert refused.status_code == 409
    assert "locked" in refused.json["conflictingRequest"]["message"]
    assert (
        client.simulate_delete(f"{V}/servers/{server_id}", headers=as_("member")).status_code == 409
    )
    # What an admin locked, only an admin unlocks.
    assert act(client, server_id, {"unlock": None}, who="member").status_code == 409
    assert act(client, server_id, {"unlock": None}).status_code == 202
    # What its owner locked refuses the owner's actions too, until the owner unlocks.
    assert act(client, server_id, {"lock": None}, who="member").status_code == 202
    assert act(client, server_id, {"os-stop": None}, who="member").status_code == 409
    assert act(client, server_id, {"unlock": None}, who="member").status_code == 202
    assert act(client, server_id, {"os-stop": None}, who="member").status_code == 202


def test_another_project_can_neither_see_nor_touch_a_server(
    client: falcon.testing.TestClient, backend: ComputeBackend, flavor: str
) -> None:
    server_id = boot(client, flavor, who="member").json["server"]["id"]
    wait_status(client, server_id, "ACTIVE", who="member")
    path = f"{V}/servers/{server_id}"
    assert client.simulate_get(path, headers=as_("other")).status_code == 404
    assert client.simulate_get(f"{V}/servers", headers=as_("other")).json == {"servers": []}
    assert act(client, server_id, {"os-stop": None}, who="other").status_code == 404
    assert client.simulate_delete(path, headers=as_("other")).status_code == 404
    renamed = client.simulate_put(path, json={"server": {"name": "x"}}, headers=as_("other"))
    assert renamed.status_code == 404
    assert client.simulate_get(path + "/metadata", headers=as_("other")).status_code == 404
    # Admins see every project's with all_tenants.
    everything = client.simulate_get(f"{V}/servers", params={"all_tenants": "1"})
    assert [s["id"] for s in everything.json["servers"]] == [server_id]
    # Not for members: all_tenants is ignored.
    mine = client.simulate_get(f"{V}/servers", params={"all_tenants": "1"}, headers=as_("other"))
    assert mine.json == {"servers": []}
    assert show(client, server_id, "member")["status"] == "ACTIVE"


def test_quota_exceeded_is_403_and_creates_nothing(
    client: falcon.testing.TestClient, backend: ComputeBackend, flavor: str
) -> None:
    client.simulate_put(f"{V}/os-quota-sets/p1", json={"quota_set": {"instances": 2}})
    resp = boot(client, flavor, min_count=3, max_count=3)
    assert resp.status_code == 403
    assert "Quota exceeded for instances" in resp.json["forbidden"]["message"]
    assert client.simulate_get(f"{V}/servers").json == {"servers": []}
    # max_count beyond the quota gets what fits.
    two = boot(client, flavor, min_count=1, max_count=5)
    assert two.status_code == 202
    assert wait_until(lambda: len(client.simulate_get(f"{V}/servers").json["servers"]) == 2, 10)
    cores = client.simulate_put(
        f"{V}/os-quota-sets/p1", json={"quota_set": {"instances": 10, "cores": 4}}
    )
    assert cores.status_code == 200
    refused = boot(client, flavor, name="third")
    assert refused.status_code == 403
    assert "cores" in refused.json["forbidden"]["message"]


def test_no_valid_host_ends_in_error_with_the_reason(
    client: falcon.testing.TestClient, backend: ComputeBackend
) -> None:
    huge = {"flavor": {"name": "huge", "id": "huge", "ram": 10**9, "vcpus": 1, "disk": 1}}
    assert client.simulate_post(f"{V}/flavors", json=huge).status_code == 200
    client.simulate_put(f"{V}/os-quota-sets/p1", json={"quota_set": {"ram": -1}})
    server_id = boot(client, "huge").json["server"]["id"]
    server = wait_status(client, server_id, "ERROR")
    assert "No valid host was found" in server["fault"]["message"]
    assert "ram" in server["fault"]["message"]
    assert server["fault"]["code"] == 500
    # Nothing was claimed: it can be deleted at once.
    assert client.simulate_delete(f"{V}/servers/{server_id}").status_code == 204
    assert wait_until(
        lambda: client.simulate_get(f"{V}/servers/{server_id}").status_code == 404, 10
    )


def test_a_failed_build_is_rescheduled_to_the_other_host(
    client: falcon.testing.TestClient, backend: ComputeBackend, flavor: str
) -> None:
    for agent in backend.agents:
        agent._driver.ex_fail_next_spawn(RuntimeError("disk on fire"))  # type: ignore[attr-defined]
    server_id = boot(client, flavor).json["server"]["id"]
    server = wait_status(client, server_id, "ERROR")
    assert "disk on fire" in server["fault"]["message"]
    # Both hosts failed once; a new server lands.
    second = boot(client, flavor, name="vm2").json["server"]["id"]
    assert wait_status(client, second, "ACTIVE")["OS-EXT-SRV-ATTR:host"] in ("h1", "h2")


@pytest.mark.parametrize(
    "server",
    [
        {"name": "x", "flavorRef": "nope", "imageRef": IMAGE},
        {"name": "x", "flavorRef": "f1", "imageRef": "33333333-3333-3333-3333-333333333333"},
        {"name": "x", "flavorRef": "f1", "imageRef": "22222222-2222-2222-2222-222222222222"},
        {"name": "x", "flavorRef": "f1", "imageRef": IMAGE, "key_name": "missing"},
        {"name": "", "flavorRef": "f1", "imageRef": IMAGE},
        {"name": "   ", "flavorRef": "f1", "imageRef": IMAGE},
        {"flavorRef": "f1", "imageRef": IMAGE},
        {"name": "x", "imageRef": IMAGE},
        {"name": "x", "flavorRef": "f1", "imageRef": IMAGE, "min_count": 0},
        {"name": "x", "flavorRef": "f1", "imageRef": IMAGE, "min_count": 3, "max_count": 2},
        {"name": "x", "flavorRef": "f1", "imageRef": IMAGE, "user_data": "not base64!"},
        {"name": "x", "flavorRef": "f1", "imageRef": IMAGE, "metadata": {"k": 1}},
        {"name": "x", "flavorRef": "f1", "imageRef": IMAGE, "accessIPv4": "1.2.3"},
        {"name": "x", "flavorRef": "f1", "imageRef": IMAGE, "bogus": True},
    ],
)
def test_bad_creates_are_400_and_store_nothing(
    client: falcon.testing.TestClient, backend: ComputeBackend, flavor: str, server: dict
) -> None:
    resp = client.simulate_post(f"{V}/servers", json={"server": server})
    assert resp.status_code == 400, resp.text
    assert "badRequest" in resp.json
    assert client.simulate_get(f"{V}/servers").json == {"servers": []}


@pytest.mark.parametrize(
    "body",
    [
        {"reboot": {"type": "GENTLE"}},
        {"reboot": {}},
        {"explode": None},
        {"os-stop": None, "os-start": None},
        {"os-getConsoleOutput": {"length": "many"}},
    ],
)
def test_bad_actions_are_400(
    client: falcon.testing.TestClient, backend: ComputeBackend, flavor: str, body: dict
) -> None:
    server_id = boot(client, flavor).json["server"]["id"]
    wait_status(client, server_id, "ACTIVE")
    resp = act(client, server_id, body)
    assert resp.status_code == 400, resp.text
    assert show(client, server_id)["OS-EXT-STS:task_state"] is None


def test_metadata_and_rename(
    client: falcon.testing.TestClient, backend: ComputeBackend, flavor: str
) -> None:
    server_id = boot(client, flavor, metadata={"a": "1"}).json["server"]["id"]
    path = f"{V}/servers/{server_id}"
    added = client.simulate_post(path + "/metadata", json={"metadata": {"b": "2"}})
    assert added.json == {"metadata": {"a": "1", "b": "2"}}
    assert client.simulate_get(path + "/metadata/b").json == {"meta": {"b": "2"}}
    replaced = client.simulate_put(path + "/metadata", json={"metadata": {"c": "3"}})
    assert replaced.json == {"metadata": {"c": "3"}}
    one = client.simulate_put(path + "/metadata/d", json={"meta": {"d": "4"}})
    assert one.json == {"meta": {"d": "4"}}
    mismatch = client.simulate_put(path + "/metadata/d", json={"meta": {"e": "4"}})
    assert mismatch.status_code == 400
    assert client.simulate_delete(path + "/metadata/c").status_code == 204
    assert client.simulate_get(path + "/metadata/c").status_code == 404
    assert client.simulate_get(path + "/metadata").json == {"metadata": {"d": "4"}}
    renamed = client.simulate_put(path, json={"server": {"name": "renamed"}})
    assert renamed.json["server"]["name"] == "renamed"


def test_list_filters_and_pages(
    client: falcon.testing.TestClient, backend: ComputeBackend, flavor: str
) -> None:
    ids = [boot(client, flavor, name=f"web-{n}").json["server"]["id"] for n in range(3)]
    ids.append(boot(client, flavor, name="db-0").json["server"]["id"])
    for server_id in ids:
        wait_status(client, server_id, "ACTIVE")
    names = lambda **q: [  # noqa: E731
        s["name"] for s in client.simulate_get(f"{V}/servers", params=q).json["servers"]
    ]
    assert sorted(names(name="^web")) == ["web-0", "web-1", "web-2"]
    assert names(status="SHUTOFF") == []
    assert len(names(status="ACTIVE")) == 4
    assert len(names(flavor="f1", image=IMAGE)) == 4
    first = client.simulate_get(f"{V}/servers/detail", params={"limit": "3"}).json
    assert len(first["servers"]) == 3
    (link,) = first["servers_links"]
    marker = first["servers"][-1]["id"]
    assert f"marker={marker}" in link["href"]
    rest = client.simulate_get(f"{V}/servers/detail", params={"limit": "3", "marker": marker})
    assert len(rest.json["servers"]) == 1
    seen = {s["id"] for s in first["servers"]} | {s["id"] for s in rest.json["servers"]}
    assert seen == set(ids)
    bad = client.simulate_get(f"{V}/servers", params={"marker": "nope"})
    assert bad.status_code == 400
    since = client.simulate_get(f"{V}/servers", params={"changes-since": "yesterday"})
    assert since.status_code == 400


def test_services_hypervisors_and_zones(
    client: falcon.testing.TestClient, backend: ComputeBackend, flavor: str
) -> None:
    services = client.simulate_get(f"{V}/os-services").json["services"]
    assert sorted(s["host"] for s in services) == ["h1", "h2"]
    assert all(s["state"] == "up" and s["status"] == "enabled" for s in services)
    assert {s["binary"] for s in services} == {"nimbus-compute"}
    assert {s["zone"] for s in services} == {"nova"}
    assert client.simulate_get(f"{V}/os-services", headers=as_("member")).status_code == 403
    hypervisors = client.simulate_get(f"{V}/os-hypervisors/detail").json["hypervisors"]
    assert sorted(h["hypervisor_hostname"] for h in hypervisors) == ["h1", "h2"]
    assert all(h["vcpus"] == 1000 and h["state"] == "up" for h in hypervisors)
    one = client.simulate_get(f"{V}/os-hypervisors/{hypervisors[0]['id']}").json["hypervisor"]
    assert one["hypervisor_hostname"] == hypervisors[0]["hypervisor_hostname"]
    assert client.simulate_get(f"{V}/os-hypervisors/999").status_code == 404
    stats = client.simulate_get(f"{V}/os-hypervisors/statistics").json["hypervisor_statistics"]
    assert stats["count"] == 2 and stats["running_vms"] == 0
    zones = client.simulate_get(f"{V}/os-availability-zone", headers=as_("member")).json
    assert zones == {
        "availabilityZoneInfo": [
            {"zoneName": "nova", "zoneState": {"available": True}, "hosts": None}
        ]
    }
    # A disabled host gets no new server.
    disabled = client.simulate_put(
        f"{V}/os-services/disable-log-reason",
        json={"host": "h1", "binary": "nimbus-compute", "disabled_reason": "maintenance"},
    )
    assert disabled.json["service"]["status"] == "disabled"
    for n in range(3):
        server_id = boot(client, flavor, name=f"vm{n}").json["server"]["id"]
        assert wait_status(client, server_id, "ACTIVE")["OS-EXT-SRV-ATTR:host"] == "h2"
    stats = client.simulate_get(f"{V}/os-hypervisors/statistics").json["hypervisor_statistics"]
    assert stats["running_vms"] == 3 and stats["vcpus_used"] == 6
    listed = {s["host"]: s for s in client.simulate_get(f"{V}/os-services").json["services"]}
    assert listed["h1"]["disabled_reason"] == "maintenance"
    missing = client.simulate_put(
        f"{V}/os-services/enable", json={"host": "h9", "binary": "nimbus-compute"}
    )
    assert missing.status_code == 404


def test_a_build_nobody_finishes_ends_in_error_at_its_deadline(
    client: falcon.testing.TestClient, servers: ServerService, flavor: str
) -> None:
    # No conductor runs: the build stays in BUILD.
    server_id = boot(client, flavor).json["server"]["id"]
    assert show(client, server_id)["status"] == "BUILD"
    assert servers.reap() == 0  # not late yet
    later = datetime.datetime.now(datetime.UTC).replace(tzinfo=None) + datetime.timedelta(
        seconds=601
    )
    assert servers.reap(now=later) == 1
    server = show(client, server_id)
    assert server["status"] == "ERROR"
    assert "did not finish within 600 seconds (scheduling)" in server["fault"]["message"]


def test_an_agent_that_died_mid_build_settles_it_when_it_starts_again(
    client: falcon.testing.TestClient,
    conf: cfg.ConfigOpts,
    database: Database,
    transport: messaging.Transport,
    flavor: str,
) -> None:
    # Left as an agent killed while spawning leaves it: on h1, spawning, no guest.
    server_id = boot(client, flavor).json["server"]["id"]
    with database.writer() as session:
        session.execute(
            sa.update(Instance)
            .where(Instance.uuid == server_id)
            .values(host="h1", node="h1", task_state="spawning")
        )
    cloud = types.SimpleNamespace(conf=conf, database=database, transport=transport)
    backend = ComputeBackend(cloud, parts=["conductor", "agent"], hosts=["h1"])  # type: ignore[arg-type]
    backend.start()
    try:
        server = wait_status(client, server_id, "ERROR")
        assert "The build was interrupted" in server["fault"]["message"]
    finally:
        backend.stop()


def test_server_groups_keep_servers_apart_or_together(
    client: falcon.testing.TestClient, backend: ComputeBackend, flavor: str
) -> None:
    apart = client.simulate_post(
        f"{V}/os-server-groups",
        json={"server_group": {"name": "apart", "policies": ["anti-affinity"]}},
    ).json["server_group"]
    assert apart["policies"] == ["anti-affinity"] and apart["members"] == []
    hint = {"os:scheduler_hints": {"group": apart["id"]}}
    body = {"server": {"name": "a", "imageRef": IMAGE, "flavorRef": flavor,
                       "min_count": 2, "max_count": 2}, **hint}  # fmt: skip
    assert client.simulate_post(f"{V}/servers", json=body).status_code == 202
    members = client.simulate_get(f"{V}/os-server-groups/{apart['id']}").json["server_group"][
        "members"
    ]
    assert len(members) == 2
    hosts = {wait_status(client, m, "ACTIVE")["OS-EXT-SRV-ATTR:host"] for m in members}
    assert hosts == {"h1", "h2"}
    # A third member has no host left: it fails with the filter's reason.
    third = {"server": {"name": "a3", "imageRef": IMAGE, "flavorRef": flavor}, **hint}
    third_id = client.simulate_post(f"{V}/servers", json=third).json["server"]["id"]
    server = wait_status(client, third_id, "ERROR")
    assert "server_group_anti_affinity" in server["fault"]["message"]
    together = client.simulate_post(
        f"{V}/os-server-groups",
        json={"server_group": {"name": "together", "policies": ["affinity"]}},
    ).json["server_group"]
    body = {"server": {"name": "t", "imageRef": IMAGE, "flavorRef": flavor,
                       "min_count": 3, "max_count": 3},
            "os:scheduler_hints": {"group": together["id"]}}  # fmt: skip
    assert client.simulate_post(f"{V}/servers", json=body).status_code == 202
    members = client.simulate_get(f"{V}/os-server-groups/{together['id']}").json["server_group"][
        "members"
    ]
    assert len({wait_status(client, m, "ACTIVE")["OS-EXT-SRV-ATTR:host"] for m in members}) == 1
    listed = client.simulate_get(f"{V}/os-server-groups").json["server_groups"]
    assert {g["name"] for g in listed} == {"apart", "together"}
    assert client.simulate_get(f"{V}/os-server-groups", headers=as_("other")).json == {
        "server_groups": []
    }
    assert (
        client.simulate_get(f"{V}/os-server-groups/{apart['id']}", headers=as_("other")).status_code
        == 404
    )
    bad = client.simulate_post(
        f"{V}/os-server-groups", json={"server_group": {"name": "x", "policies": ["spread"]}}
    )
    assert bad.status_code == 400
    unknown_group = {
        "server": {"name": "u", "imageRef": IMAGE, "flavorRef": flavor},
        "os:scheduler_hints": {"group": "00000000-0000-0000-0000-000000000000"},
    }
    assert client.simulate_post(f"{V}/servers", json=unknown_group).status_code == 400
    assert client.simulate_delete(f"{V}/os-server-groups/{together['id']}").status_code == 204


def test_a_snapshot_fills_a_new_image_through_the_image_api(
    client: falcon.testing.TestClient,
    backend: ComputeBackend,
    servers: ServerService,
    flavor: str,
) -> None:
    made: list[dict] = []
    servers.create_image = lambda ctx, values: made.append(values) or {"id": "snap-1"}
    uploads: list[tuple[str, bytes, str]] = []

    class Images:
        def upload(self, ctx: Any, image_id: str, path: str, disk_format: str) -> None:
            with open(path, "rb") as f:
                uploads.append((image_id, f.read(), disk_format))

        def delete(self, ctx: Any, image_id: str) -> None:
            raise AssertionError("nothing failed")

    for agent in backend.agents:
        agent._images = Images()  # type: ignore[assignment]
    server_id = boot(client, flavor).json["server"]["id"]
    wait_status(client, server_id, "ACTIVE")
    resp = act(client, server_id, {"createImage": {"name": "snap", "metadata": {"k": "v"}}})
    assert resp.status_code == 202
    assert resp.headers["Location"].endswith("/images/snap-1")
    assert made == [
        {
            "k": "v",
            "name": "snap",
            "instance_uuid": server_id,
            "image_type": "snapshot",
            "base_image_ref": IMAGE,
            "user_id": "u1",
        }
    ]
    assert wait_until(lambda: show(client, server_id)["OS-EXT-STS:task_state"] is None, 10)
    ((image_id, data, disk_format),) = uploads
    assert image_id == "snap-1" and disk_format == "raw"
    assert server_id.encode() in data  # the fake disk names its guest


def test_access_addresses_are_stored_as_nova_shows_them(
    client: falcon.testing.TestClient, flavor: str
) -> None:
    created = boot(client, flavor, accessIPv6="0000:0000:0000:0000:0000:babe:220.12.22.2")
    server = show(client, created.json["server"]["id"])
    assert server["accessIPv6"] == "::babe:dc0c:1602"
    assert client.simulate_get(f"{V}/servers", params={"limit": "0"}).json == {"servers": []}


def test_rebuild_makes_the_disk_anew_and_keeps_a_stopped_server_stopped(
    client: falcon.testing.TestClient, backend: ComputeBackend, flavor: str
) -> None:
    server_id = boot(client, flavor).json["server"]["id"]
    wait_status(client, server_id, "ACTIVE")
    body = {"rebuild": {"imageRef": IMAGE, "name": "rebuilt", "metadata": {"new": "yes"}}}
    resp = act(client, server_id, body)
    assert resp.status_code == 202
    assert resp.json["server"]["name"] == "rebuilt"
    server = wait_status(client, server_id, "ACTIVE")
    assert server["metadata"] == {"new": "yes"}
    assert wait_until(lambda: show(client, server_id)["OS-EXT-STS:task_state"] is None, 10)
    act(client, server_id, {"os-stop": None})
    wait_status(client, server_id, "SHUTOFF")
    assert wait_until(lambda: show(client, server_id)["OS-EXT-STS:task_state"] is None, 10)
    assert act(client, server_id, {"rebuild": {"imageRef": IMAGE}}).status_code == 202
    assert wait_until(lambda: show(client, server_id)["OS-EXT-STS:task_state"] is None, 10)
    assert show(client, server_id)["status"] == "SHUTOFF"
    bad = act(client, server_id, {"rebuild": {"imageRef": "22222222-2222-2222-2222-222222222222"}})
    assert bad.status_code == 400
