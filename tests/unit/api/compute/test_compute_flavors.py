"""The compute API's versions, microversions and flavors, through Falcon's simulator."""

from __future__ import annotations

from typing import Any

import falcon.testing
import pytest

V = "/v2.1"


def as_(who: str) -> dict[str, str]:
    return {"X-Auth-Token": who}


def create_flavor(client: falcon.testing.TestClient, name: str = "m1.tiny", **extra: Any) -> dict:
    body = {"name": name, "ram": 512, "vcpus": 1, "disk": 1, **extra}
    resp = client.simulate_post(f"{V}/flavors", json={"flavor": body})
    assert resp.status_code == 200, resp.text
    flavor: dict = resp.json["flavor"]
    return flavor


# -- versions and microversions ------------------------------------------------------


def test_root_lists_v21_with_its_microversion_range(client: falcon.testing.TestClient) -> None:
    resp = client.simulate_get("/", headers={"X-Auth-Token": ""})
    assert resp.status_code == 200
    (version,) = resp.json["versions"]
    assert version["id"] == "v2.1"
    assert version["status"] == "CURRENT"
    assert version["min_version"] == "2.1"
    assert version["links"][0]["href"].endswith("/v2.1/")


def test_version_document_needs_no_token(client: falcon.testing.TestClient) -> None:
    resp = client.simulate_get(V, headers={"X-Auth-Token": ""})
    assert resp.status_code == 200
    assert resp.json["version"]["id"] == "v2.1"


def test_every_answer_names_its_microversion(client: falcon.testing.TestClient) -> None:
    resp = client.simulate_get(f"{V}/flavors")
    assert resp.headers["OpenStack-API-Version"] == "compute 2.1"
    assert resp.headers["X-OpenStack-Nova-API-Version"] == "2.1"
    assert "OpenStack-API-Version" in resp.headers["Vary"]
    latest = client.simulate_get(
        f"{V}/flavors", headers={"OpenStack-API-Version": "compute latest"}
    )
    assert latest.headers["OpenStack-API-Version"] == "compute 2.1"


@pytest.mark.parametrize(
    "header",
    [
        {"OpenStack-API-Version": "compute 2.999"},
        {"OpenStack-API-Version": "compute 3.0"},
        {"X-OpenStack-Nova-API-Version": "2.2"},
    ],
)
def test_a_version_not_served_is_406(client: falcon.testing.TestClient, header: dict) -> None:
    resp = client.simulate_get(f"{V}/flavors", headers=header)
    assert resp.status_code == 406
    assert "maximum is 2.1" in resp.json["notAcceptable"]["message"]


@pytest.mark.parametrize("value", ["2.a", "two", "2.01.3", "2."])
def test_a_malformed_version_is_400(client: falcon.testing.TestClient, value: str) -> None:
    resp = client.simulate_get(
        f"{V}/flavors", headers={"OpenStack-API-Version": f"compute {value}"}
    )
    assert resp.status_code == 400
    assert "invalid format" in resp.json["badRequest"]["message"]


def test_another_services_version_is_ignored(client: falcon.testing.TestClient) -> None:
    resp = client.simulate_get(f"{V}/flavors", headers={"OpenStack-API-Version": "volume 3.70"})
    assert resp.status_code == 200


def test_no_token_is_401(client: falcon.testing.TestClient) -> None:
    assert client.simulate_get(f"{V}/flavors", headers={"X-Auth-Token": ""}).status_code == 401


# -- flavors -------------------------------------------------------------------------


def test_create_list_show_delete(client: falcon.testing.TestClient) -> None:
    flavor = create_flavor(client, swap=512, **{"OS-FLV-EXT-DATA:ephemeral": 2})
    assert flavor["ram"] == 512 and flavor["vcpus"] == 1 and flavor["disk"] == 1
    assert flavor["swap"] == 512 and flavor["OS-FLV-EXT-DATA:ephemeral"] == 2
    assert flavor["os-flavor-access:is_public"] is True
    assert flavor["OS-FLV-DISABLED:disabled"] is False
    assert flavor["rxtx_factor"] == 1.0
    assert [link["rel"] for link in flavor["links"]] == ["self", "bookmark"]
    brief = client.simulate_get(f"{V}/flavors").json["flavors"]
    assert brief == [{"id": flavor["id"], "name": "m1.tiny", "links": flavor["links"]}]
    (detail,) = client.simulate_get(f"{V}/flavors/detail").json["flavors"]
    assert detail == flavor
    assert client.simulate_get(f"{V}/flavors/{flavor['id']}").json["flavor"] == flavor
    assert client.simulate_delete(f"{V}/flavors/{flavor['id']}").status_code == 202
    gone = client.simulate_get(f"{V}/flavors/{flavor['id']}")
    assert gone.status_code == 404
    assert gone.json["itemNotFound"]["message"] == f"Flavor {flavor['id']} could not be found."


def test_no_swap_shows_as_empty_string_and_ids_may_be_chosen(
    client: falcon.testing.TestClient,
) -> None:
    flavor = create_flavor(client, id=42)
    assert flavor["id"] == "42"
    assert flavor["swap"] == ""
    numbers_as_text = create_flavor(client, "m1.text", id="m1-text", ram="256", vcpus="2")
    assert (numbers_as_text["ram"], numbers_as_text["vcpus"]) == (256, 2)


def test_members_may_read_but_not_create_or_delete(client: falcon.testing.TestClient) -> None:
    flavor = create_flavor(client)
    body = {"flavor": {"name": "x", "ram": 1, "vcpus": 1, "disk": 0}}
    refused = client.simulate_post(f"{V}/flavors", json=body, headers=as_("member"))
    assert refused.status_code == 403
    assert "os_compute_api:os-flavor-manage:create" in refused.json["forbidden"]["message"]
    assert (
        client.simulate_delete(f"{V}/flavors/{flavor['id']}", headers=as_("member")).status_code
        == 403
    )
    assert (
        client.simulate_get(f"{V}/flavors/{flavor['id']}", headers=as_("member")).status_code == 200
    )


def test_duplicate_name_or_id_is_409(client: falcon.testing.TestClient) -> None:
    create_flavor(client, id="f1")
    same_name = client.simulate_post(
        f"{V}/flavors", json={"flavor": {"name": "m1.tiny", "ram": 1, "vcpus": 1, "disk": 0}}
    )
    assert same_name.status_code == 409
    assert "already exists" in same_name.json["conflictingRequest"]["message"]
    same_id = client.simulate_post(
        f"{V}/flavors",
        json={"flavor": {"name": "other", "id": "f1", "ram": 1, "vcpus": 1, "disk": 0}},
    )
    assert same_id.status_code == 409


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x", "ram": 0, "vcpus": 1, "disk": 0},
        {"name": "x", "ram": 1, "vcpus": -1, "disk": 0},
        {"name": "x", "ram": 1, "vcpus": 1, "disk": -1},
        {"name": "x", "ram": "lots", "vcpus": 1, "disk": 0},
        {"name": "x", "ram": 2**31, "vcpus": 1, "disk": 0},
        {"ram": 1, "vcpus": 1, "disk": 0},
        {"name": "", "ram": 1, "vcpus": 1, "disk": 0},
        {"name": " padded ", "ram": 1, "vcpus": 1, "disk": 0},
        {"name": "x", "ram": 1, "vcpus": 1, "disk": 0, "id": "bad/id"},
        {"name": "x", "ram": 1, "vcpus": 1, "disk": 0, "rxtx_factor": 0},
        {"name": "x", "ram": 1, "vcpus": 1, "disk": 0, "description": "only from 2.55"},
        {"name": "x", "ram": 1, "vcpus": 1, "disk": 0, "unknown": 1},
    ],
)
def test_bad_flavor_bodies_are_400(client: falcon.testing.TestClient, body: dict) -> None:
    resp = client.simulate_post(f"{V}/flavors", json={"flavor": body})
    assert resp.status_code == 400, resp.text
    assert "badRequest" in resp.json
    assert client.simulate_get(f"{V}/flavors").json["flavors"] == []


def test_filters_sort_and_pages(client: falcon.testing.TestClient) -> None:
    for number, (ram, disk) in enumerate([(128, 1), (256, 10), (512, 20), (1024, 40)]):
        create_flavor(client, f"f{number}", id=f"id{number}", ram=ram, disk=disk)
    ids = lambda resp: [f["id"] for f in resp.json["flavors"]]  # noqa: E731
    assert ids(client.simulate_get(f"{V}/flavors", params={"minRam": "300"})) == ["id2", "id3"]
    assert ids(client.simulate_get(f"{V}/flavors", params={"minDisk": "10"})) == [
        "id1",
        "id2",
        "id3",
    ]
    by_ram = client.simulate_get(
        f"{V}/flavors/detail", params={"sort_key": "memory_mb", "sort_dir": "desc"}
    )
    assert ids(by_ram) == ["id3", "id2", "id1", "id0"]
    first = client.simulate_get(f"{V}/flavors", params={"limit": "3"})
    assert ids(first) == ["id0", "id1", "id2"]
    (link,) = first.json["flavors_links"]
    assert link["rel"] == "next" and "marker=id2" in link["href"]
    rest = client.simulate_get(f"{V}/flavors", params={"limit": "3", "marker": "id2"})
    assert ids(rest) == ["id3"]
    assert "flavors_links" not in rest.json


@pytest.mark.parametrize(
    "params",
    [
        {"minRam": "lots"},
        {"minDisk": "-1"},
        {"marker": "no-such-flavor"},
        {"sort_key": "password"},
        {"sort_dir": "sideways"},
        {"is_public": "maybe"},
        {"limit": "0"},
    ],
)
def test_bad_list_queries_are_400(client: falcon.testing.TestClient, params: dict) -> None:
    create_flavor(client)
    resp = client.simulate_get(f"{V}/flavors", params=params)
    assert resp.status_code == 400, resp.text
    assert "badRequest" in resp.json


def test_private_flavors_and_their_access_list(client: falcon.testing.TestClient) -> None:
    private = create_flavor(client, "private", **{"os-flavor-access:is_public": False})
    create_flavor(client, "public")
    path = f"{V}/flavors/{private['id']}"
    names = lambda who, **q: [  # noqa: E731
        f["name"]
        for f in client.simulate_get(f"{V}/flavors", headers=as_(who), params=q).json["flavors"]
    ]
    assert names("member") == ["public"]
    assert client.simulate_get(path, headers=as_("member")).status_code == 404
    assert names("admin") == ["public"]  # is_public defaults to true, for admins too
    assert sorted(names("admin", is_public="none")) == ["private", "public"]
    assert names("admin", is_public="false") == ["private"]
    # A member asking for every flavor gets what it may use.
    assert names("member", is_public="none") == ["public"]
    assert client.simulate_get(path + "/os-flavor-access").json == {"flavor_access": []}
    added = client.simulate_post(path + "/action", json={"addTenantAccess": {"tenant": "p1"}})
    assert added.status_code == 200
    assert added.json == {"flavor_access": [{"flavor_id": private["id"], "tenant_id": "p1"}]}
    assert sorted(names("member")) == ["private", "public"]
    assert client.simulate_get(path, headers=as_("member")).status_code == 200
    assert names("other") == ["public"]
    again = client.simulate_post(path + "/action", json={"addTenantAccess": {"tenant": "p1"}})
    assert again.status_code == 409
    refused = client.simulate_post(
        path + "/action", json={"addTenantAccess": {"tenant": "p2"}}, headers=as_("member")
    )
    assert refused.status_code == 403
    removed = client.simulate_post(path + "/action", json={"removeTenantAccess": {"tenant": "p1"}})
    assert removed.json == {"flavor_access": []}
    assert names("member") == ["public"]
    missing = client.simulate_post(path + "/action", json={"removeTenantAccess": {"tenant": "p9"}})
    assert missing.status_code == 404


def test_public_flavors_have_no_access_list(client: falcon.testing.TestClient) -> None:
    flavor = create_flavor(client)
    path = f"{V}/flavors/{flavor['id']}"
    assert client.simulate_get(path + "/os-flavor-access").status_code == 404
    add = client.simulate_post(path + "/action", json={"addTenantAccess": {"tenant": "p2"}})
    assert add.status_code == 409
    both = {"addTenantAccess": {"tenant": "p2"}, "removeTenantAccess": {"tenant": "p2"}}
    assert client.simulate_post(path + "/action", json=both).status_code == 400


def test_extra_specs(client: falcon.testing.TestClient) -> None:
    flavor = create_flavor(client)
    specs = f"{V}/flavors/{flavor['id']}/os-extra_specs"
    assert client.simulate_get(specs).json == {"extra_specs": {}}
    added = client.simulate_post(
        specs, json={"extra_specs": {"hw:cpu_policy": "dedicated", "quota:n": 3, "x": True}}
    )
    assert added.json == {
        "extra_specs": {"hw:cpu_policy": "dedicated", "quota:n": "3", "x": "True"}
    }
    assert client.simulate_get(specs + "/quota:n").json == {"quota:n": "3"}
    assert client.simulate_put(specs + "/quota:n", json={"quota:n": "4"}).json == {"quota:n": "4"}
    mismatch = client.simulate_put(specs + "/quota:n", json={"other": "4"})
    assert mismatch.status_code == 400
    assert client.simulate_get(specs, headers=as_("member")).status_code == 200
    refused = client.simulate_post(specs, json={"extra_specs": {"a": "b"}}, headers=as_("member"))
    assert refused.status_code == 403
    assert client.simulate_delete(specs + "/x").status_code == 202
    assert client.simulate_get(specs + "/x").status_code == 404
    assert client.simulate_delete(specs + "/x").status_code == 404
    assert sorted(client.simulate_get(specs).json["extra_specs"]) == ["hw:cpu_policy", "quota:n"]
    bad_key = client.simulate_post(specs, json={"extra_specs": {"bad/key": "v"}})
    assert bad_key.status_code == 400
