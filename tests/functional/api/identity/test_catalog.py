"""``/v3/services``, ``/v3/endpoints`` and ``/v3/regions`` through the whole identity app."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.functional.api.conftest import NO_BODY, Identity, Member, assert_error

LINK_ROOT = "http://falconframework.org/identity/v3"
URL = "https://compute.example.com:8774/v2.1/$(project_id)s"


@pytest.fixture(autouse=True)
def empty_catalog(identity: Identity) -> None:
    """Start from no services and endpoints (the cloud's own are made at bootstrap)."""
    for kind in ("endpoints", "services"):
        for ref in identity.request("GET", f"/{kind}").json[kind]:
            assert identity.request("DELETE", f"/{kind}/{ref['id']}").status_code == 204


@pytest.fixture
def member(make_member: Callable[..., Member]) -> Member:
    return make_member()


@pytest.fixture
def service(identity: Identity) -> dict[str, Any]:
    return identity.created("/services", "service", {"type": "compute", "name": "nova"})


@pytest.fixture
def endpoint(identity: Identity, service: dict[str, Any]) -> dict[str, Any]:
    attrs = {
        "service_id": service["id"],
        "interface": "public",
        "url": URL,
        "region_id": "RegionOne",
    }
    return identity.created("/endpoints", "endpoint", attrs)


def ids(result: Any, key: str) -> list[str]:
    assert result.status_code == 200, result.text
    return sorted(ref["id"] for ref in result.json[key])


# -- services ---------------------------------------------------------------------


def test_create_service(identity: Identity) -> None:
    body = {"service": {"type": "compute", "name": "nova", "description": "VMs", "tier": 1}}

    result = identity.request("POST", "/services", body)

    assert result.status_code == 201
    service = result.json["service"]
    assert service == {
        "id": service["id"],
        "type": "compute",
        "name": "nova",
        "description": "VMs",
        "enabled": True,
        "tier": 1,
        "links": {"self": f"{LINK_ROOT}/services/{service['id']}"},
    }
    assert identity.request("GET", f"/services/{service['id']}").json == {"service": service}


def test_create_service_with_only_a_type(identity: Identity) -> None:
    service = identity.created("/services", "service", {"type": "image", "id": "ignored"})

    assert service["id"] != "ignored"
    assert (service["type"], service["enabled"]) == ("image", True)


def test_update_service(identity: Identity, service: dict[str, Any]) -> None:
    body = {
        "service": {"enabled": False, "name": "nova2", "description": None, "id": service["id"]}
    }

    result = identity.request("PATCH", f"/services/{service['id']}", body)

    assert result.status_code == 200
    updated = result.json["service"]
    assert (updated["enabled"], updated["name"], updated["description"]) == (False, "nova2", "")
    assert identity.request("GET", f"/services/{service['id']}").json["service"] == updated


def test_delete_service_removes_its_endpoints(
    identity: Identity, service: dict[str, Any], endpoint: dict[str, Any]
) -> None:
    assert identity.request("DELETE", f"/services/{service['id']}").status_code == 204

    assert_error(identity.request("GET", f"/services/{service['id']}"), 404)
    assert_error(identity.request("GET", f"/endpoints/{endpoint['id']}"), 404)


def test_list_services_filters(identity: Identity) -> None:
    nova = identity.created("/services", "service", {"type": "compute", "name": "nova"})
    other = identity.created("/services", "service", {"type": "compute", "name": "other"})
    glance = identity.created("/services", "service", {"type": "image", "name": "glance"})

    assert ids(identity.request("GET", "/services"), "services") == sorted(
        [nova["id"], other["id"], glance["id"]]
    )
    assert ids(
        identity.request("GET", "/services", params={"type": "compute"}), "services"
    ) == sorted([nova["id"], other["id"]])
    assert ids(identity.request("GET", "/services", params={"name": "glance"}), "services") == [
        glance["id"]
    ]
    assert (
        ids(
            identity.request("GET", "/services", params={"type": "image", "name": "nova"}),
            "services",
        )
        == []
    )


def test_list_services_pages(identity: Identity) -> None:
    created = sorted(
        identity.created("/services", "service", {"type": f"t{i}"})["id"] for i in range(3)
    )

    one = identity.request("GET", "/services", params={"limit": "2", "type": "t1"}).json
    assert len(one["services"]) == 1
    assert one["links"]["next"] is None  # not a full page

    page = identity.request("GET", "/services", params={"limit": "2"}).json
    assert [s["id"] for s in page["services"]] == created[:2]
    assert page["links"]["self"] == f"{LINK_ROOT}/services?limit=2"
    rest = identity.follow(page["links"]["next"]).json
    assert [s["id"] for s in rest["services"]] == created[2:]
    assert rest["links"]["next"] is None


@pytest.mark.parametrize(
    "body",
    [
        None,
        {"service": None},
        {"service": {}},
        {"service": {"name": "nova"}},
        {"service": {"type": ""}},
        {"service": {"type": None}},
        {"service": {"type": 5}},
        {"service": {"type": "x" * 256}},
        {"service": {"type": "compute", "name": ""}},
        {"service": {"type": "compute", "name": None}},
        {"service": {"type": "compute", "enabled": "yes"}},
        {"service": {"type": "compute", "enabled": None}},
        {"service": {"type": "compute", "description": 5}},
    ],
)
def test_create_service_bad_body(identity: Identity, body: Any) -> None:
    assert_error(identity.request("POST", "/services", body), 400)


@pytest.mark.parametrize(
    "changes",
    [{}, {"type": ""}, {"type": None}, {"enabled": 1}, {"name": ""}, {"id": "other"}, {"id": None}],
)
def test_update_service_bad_body(identity: Identity, service: dict[str, Any], changes: Any) -> None:
    assert_error(identity.request("PATCH", f"/services/{service['id']}", {"service": changes}), 400)
    assert identity.request("GET", f"/services/{service['id']}").json["service"] == service


# -- endpoints --------------------------------------------------------------------


def test_create_endpoint(identity: Identity, service: dict[str, Any]) -> None:
    body = {
        "endpoint": {
            "service_id": service["id"],
            "interface": "public",
            "url": URL,
            "region_id": "RegionOne",
            "note": "primary",
        }
    }

    result = identity.request("POST", "/endpoints", body)

    assert result.status_code == 201
    endpoint = result.json["endpoint"]
    assert endpoint == {
        "id": endpoint["id"],
        "service_id": service["id"],
        "interface": "public",
        "url": URL,
        "region_id": "RegionOne",
        "region": "RegionOne",
        "enabled": True,
        "note": "primary",
        "links": {"self": f"{LINK_ROOT}/endpoints/{endpoint['id']}"},
    }
    assert identity.request("GET", f"/endpoints/{endpoint['id']}").json == {"endpoint": endpoint}


def test_create_endpoint_without_region(identity: Identity, service: dict[str, Any]) -> None:
    attrs = {"service_id": service["id"], "interface": "admin", "url": "http://10.0.0.1"}

    endpoint = identity.created("/endpoints", "endpoint", {**attrs, "enabled": False})

    assert (endpoint["region_id"], endpoint["region"], endpoint["enabled"]) == (None, None, False)


def test_legacy_region_is_created(identity: Identity, service: dict[str, Any]) -> None:
    attrs = {"service_id": service["id"], "interface": "internal", "url": "http://a.example"}

    endpoint = identity.created("/endpoints", "endpoint", {**attrs, "region": "RegionTwo"})

    assert (endpoint["region_id"], endpoint["region"]) == ("RegionTwo", "RegionTwo")
    assert identity.request("GET", "/regions/RegionTwo").status_code == 200
    # The legacy name of an existing region is fine too.
    again = identity.created("/endpoints", "endpoint", {**attrs, "region": "RegionTwo"})
    assert again["region_id"] == "RegionTwo"


def test_endpoint_url_goes_into_tokens_with_the_project(
    identity: Identity, endpoint: dict[str, Any]
) -> None:
    catalog = identity.request("GET", "/auth/catalog").json["catalog"]

    [compute] = [entry for entry in catalog if entry["type"] == "compute"]
    [url] = [e["url"] for e in compute["endpoints"] if e["id"] == endpoint["id"]]
    assert url.startswith("https://compute.example.com:8774/v2.1/")
    assert "$(" not in url


def test_endpoint_url_schemes_are_case_insensitive(
    identity: Identity, service: dict[str, Any]
) -> None:
    attrs = {"service_id": service["id"], "interface": "public", "url": "HTTPS://H.example"}

    assert identity.created("/endpoints", "endpoint", attrs)["url"] == "HTTPS://H.example"


def test_update_endpoint(identity: Identity, endpoint: dict[str, Any]) -> None:
    identity.created("/regions", "region", {"id": "RegionTwo"})
    body = {
        "endpoint": {
            "interface": "internal",
            "url": "http://10.0.0.1:8774/",
            "enabled": False,
            "region_id": "RegionTwo",
        }
    }

    result = identity.request("PATCH", f"/endpoints/{endpoint['id']}", body)

    assert result.status_code == 200
    updated = result.json["endpoint"]
    assert updated == {
        **endpoint,
        "interface": "internal",
        "url": "http://10.0.0.1:8774/",
        "enabled": False,
        "region_id": "RegionTwo",
        "region": "RegionTwo",
    }


def test_update_endpoint_legacy_region_and_no_region(
    identity: Identity, endpoint: dict[str, Any]
) -> None:
    path = f"/endpoints/{endpoint['id']}"

    moved = identity.request("PATCH", path, {"endpoint": {"region": "RegionThree"}}).json[
        "endpoint"
    ]
    assert moved["region_id"] == "RegionThree"

    cleared = identity.request("PATCH", path, {"endpoint": {"region_id": None}}).json["endpoint"]
    assert (cleared["region_id"], cleared["region"]) == (None, None)


def test_delete_endpoint(identity: Identity, endpoint: dict[str, Any]) -> None:
    assert identity.request("DELETE", f"/endpoints/{endpoint['id']}").status_code == 204
    assert_error(identity.request("GET", f"/endpoints/{endpoint['id']}"), 404)
    assert_error(identity.request("DELETE", f"/endpoints/{endpoint['id']}"), 404)


def test_list_endpoints_filters(identity: Identity, service: dict[str, Any]) -> None:
    other = identity.created("/services", "service", {"type": "image"})
    identity.created("/regions", "region", {"id": "RegionTwo"})

    def make(service_id: str, interface: str, region_id: str) -> str:
        attrs = {
            "service_id": service_id,
            "interface": interface,
            "url": "http://h.example",
            "region_id": region_id,
        }
        return identity.created("/endpoints", "endpoint", attrs)["id"]

    a = make(service["id"], "public", "RegionOne")
    b = make(service["id"], "admin", "RegionTwo")
    c = make(other["id"], "public", "RegionTwo")

    def listed(**params: str) -> list[str]:
        return ids(identity.request("GET", "/endpoints", params=params), "endpoints")

    assert listed() == sorted([a, b, c])
    assert listed(service_id=service["id"]) == sorted([a, b])
    assert listed(interface="public") == sorted([a, c])
    assert listed(region_id="RegionTwo") == sorted([b, c])
    assert listed(service_id=other["id"], interface="admin") == []
    assert listed(interface="private") == []


def test_list_endpoints_pages(identity: Identity, service: dict[str, Any]) -> None:
    attrs = {"service_id": service["id"], "url": "http://h.example"}
    created = sorted(
        identity.created("/endpoints", "endpoint", {**attrs, "interface": i})["id"]
        for i in ("public", "internal", "admin")
    )

    page = identity.request("GET", "/endpoints", params={"limit": "1"}).json
    seen = [e["id"] for e in page["endpoints"]]
    while page["links"]["next"]:
        page = identity.follow(page["links"]["next"]).json
        seen += [e["id"] for e in page["endpoints"]]

    assert seen == created


@pytest.mark.parametrize(
    "changes",
    [
        {"service_id": None},
        {"service_id": ""},
        {"service_id": "no-such-service"},
        {"interface": "private"},
        {"interface": None},
        {"interface": "PUBLIC"},
        {"url": None},
        {"url": ""},
        {"url": "not a url"},
        {"url": "ftp://files.example.com/"},
        {"url": "//h.example/"},
        {"url": "http://h.example/a b"},
        {"url": "http://h.example/\u0000"},
        {"url": "http://"},
        {"url": "http://:8080/"},
        {"url": "http://h.example:99999/"},
        {"url": "http://h.example:port/"},
        {"url": "http://h.example/$(tenant_name)s"},
        {"url": "http://h.example/$(project_id"},
        {"url": "http://h.example/" + "x" * 300},
        {"url": 5},
        {"region_id": "no-such-region"},
        {"region_id": 5},
        {"region": ""},
        {"enabled": "true"},
        {"enabled": None},
    ],
)
def test_create_endpoint_bad_body(
    identity: Identity, service: dict[str, Any], changes: dict[str, Any]
) -> None:
    attrs = {"service_id": service["id"], "interface": "public", "url": URL, **changes}

    assert_error(identity.request("POST", "/endpoints", {"endpoint": attrs}), 400)

    assert identity.request("GET", "/endpoints").json["endpoints"] == []


@pytest.mark.parametrize("missing", ["service_id", "interface", "url"])
def test_create_endpoint_requires(
    identity: Identity, service: dict[str, Any], missing: str
) -> None:
    attrs = {"service_id": service["id"], "interface": "public", "url": URL}
    del attrs[missing]

    message = assert_error(identity.request("POST", "/endpoints", {"endpoint": attrs}), 400)

    assert missing in message


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"interface": "private"},
        {"url": "gopher://h.example"},
        {"url": None},
        {"enabled": None},
        {"service_id": "no-such-service"},
        {"id": "other"},
    ],
)
def test_update_endpoint_bad_body(
    identity: Identity, endpoint: dict[str, Any], changes: dict[str, Any]
) -> None:
    assert_error(
        identity.request("PATCH", f"/endpoints/{endpoint['id']}", {"endpoint": changes}), 400
    )
    assert identity.request("GET", f"/endpoints/{endpoint['id']}").json["endpoint"] == endpoint


# -- regions ----------------------------------------------------------------------


def test_bootstrap_region(identity: Identity) -> None:
    result = identity.request("GET", "/regions/RegionOne")

    assert result.status_code == 200
    assert result.json == {
        "region": {
            "id": "RegionOne",
            "description": "",
            "parent_region_id": None,
            "links": {"self": f"{LINK_ROOT}/regions/RegionOne"},
        }
    }


def test_create_region_with_and_without_id(identity: Identity) -> None:
    named = identity.created(
        "/regions", "region", {"id": "east", "description": "East", "parent_region_id": "RegionOne"}
    )
    anonymous = identity.created("/regions", "region", {"zone": "z1"})

    assert named == {
        "id": "east",
        "description": "East",
        "parent_region_id": "RegionOne",
        "links": {"self": f"{LINK_ROOT}/regions/east"},
    }
    assert len(anonymous["id"]) == 32
    assert anonymous["zone"] == "z1"
    assert identity.request("GET", f"/regions/{anonymous['id']}").json["region"] == anonymous


def test_put_region_creates_it_with_the_url_id(identity: Identity) -> None:
    result = identity.request(
        "PUT", "/regions/west", {"region": {"description": "West", "id": "west"}}
    )

    assert result.status_code == 201
    assert result.json["region"]["id"] == "west"
    assert result.json["region"]["description"] == "West"
    assert result.json["region"]["links"]["self"] == f"{LINK_ROOT}/regions/west"
    assert_error(identity.request("PUT", "/regions/west", {"region": {}}), 409)


def test_put_region_with_another_id_in_the_body(identity: Identity) -> None:
    assert_error(identity.request("PUT", "/regions/west", {"region": {"id": "east"}}), 400)
    assert_error(identity.request("GET", "/regions/west"), 404)


@pytest.mark.parametrize("region_id", ["r" * 256, "%00", "tab%09", "west%0A"])
def test_put_region_with_a_bad_id(identity: Identity, region_id: str) -> None:
    assert_error(identity.request("PUT", "/regions/" + region_id, {"region": {}}), 400)


def test_create_region_with_a_taken_id_conflicts(identity: Identity) -> None:
    assert_error(identity.request("POST", "/regions", {"region": {"id": "RegionOne"}}), 409)


def test_update_region(identity: Identity) -> None:
    identity.created("/regions", "region", {"id": "east"})

    result = identity.request(
        "PATCH", "/regions/east", {"region": {"description": "E", "parent_region_id": "RegionOne"}}
    )

    assert result.status_code == 200
    assert result.json["region"]["description"] == "E"
    assert result.json["region"]["parent_region_id"] == "RegionOne"
    detached = identity.request("PATCH", "/regions/east", {"region": {"parent_region_id": None}})
    assert detached.json["region"]["parent_region_id"] is None


def test_region_cannot_be_its_own_ancestor(identity: Identity) -> None:
    identity.created("/regions", "region", {"id": "child", "parent_region_id": "RegionOne"})

    result = identity.request(
        "PATCH", "/regions/RegionOne", {"region": {"parent_region_id": "child"}}
    )

    assert_error(result, 400)


def test_delete_region(identity: Identity) -> None:
    identity.created("/regions", "region", {"id": "east"})

    assert identity.request("DELETE", "/regions/east").status_code == 204
    assert_error(identity.request("GET", "/regions/east"), 404)


def test_region_in_use_is_not_deleted(identity: Identity, endpoint: dict[str, Any]) -> None:
    assert_error(identity.request("DELETE", "/regions/RegionOne"), 409)
    identity.created("/regions", "region", {"id": "parent"})
    identity.created("/regions", "region", {"id": "child", "parent_region_id": "parent"})
    assert_error(identity.request("DELETE", "/regions/parent"), 409)


def test_list_regions_filters_and_pages(identity: Identity) -> None:
    for name in ("a", "b", "c"):
        identity.created("/regions", "region", {"id": name, "parent_region_id": "RegionOne"})

    assert ids(identity.request("GET", "/regions"), "regions") == ["RegionOne", "a", "b", "c"]
    listed = identity.request("GET", "/regions", params={"parent_region_id": "RegionOne"})
    assert ids(listed, "regions") == ["a", "b", "c"]
    assert (
        ids(identity.request("GET", "/regions", params={"parent_region_id": "a"}), "regions") == []
    )

    page = identity.request("GET", "/regions", params={"limit": "2"}).json
    assert [r["id"] for r in page["regions"]] == ["RegionOne", "a"]
    rest = identity.follow(page["links"]["next"]).json
    assert [r["id"] for r in rest["regions"]] == ["b", "c"]


@pytest.mark.parametrize(
    "region",
    [
        None,
        [],
        {"id": ""},
        {"id": 5},
        {"id": "x" * 256},
        {"id": "a/b"},
        {"id": "nul\u0000"},
        {"description": 5},
        {"parent_region_id": 5},
        {"parent_region_id": ""},
        {"parent_region_id": "no-such-region"},
    ],
)
def test_create_region_bad_body(identity: Identity, region: Any) -> None:
    assert_error(identity.request("POST", "/regions", {"region": region}), 400)
    assert ids(identity.request("GET", "/regions"), "regions") == ["RegionOne"]


@pytest.mark.parametrize(
    "changes",
    [{}, {"description": []}, {"parent_region_id": "nowhere"}, {"id": "other"}, {"id": None}],
)
def test_update_region_bad_body(identity: Identity, changes: Any) -> None:
    assert_error(identity.request("PATCH", "/regions/RegionOne", {"region": changes}), 400)


# -- unknown ids, policy ------------------------------------------------------------


@pytest.mark.parametrize("kind", ["services", "endpoints", "regions"])
@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
def test_unknown_ids(identity: Identity, kind: str, method: str) -> None:
    key = kind[:-1]
    body = {key: {"description": "x"}} if method == "PATCH" else NO_BODY
    if method == "PATCH" and kind == "endpoints":
        body = {key: {"enabled": False}}

    assert_error(identity.request(method, f"/{kind}/nope", body), 404)


def test_member_may_read_regions(identity: Identity, member: Member) -> None:
    token = member.token

    assert identity.request("GET", "/regions", token=token).status_code == 200
    assert identity.request("GET", "/regions/RegionOne", token=token).status_code == 200


def _catalog(identity: Identity) -> dict[str, list[dict[str, Any]]]:
    """Return every service, endpoint and region, as admin sees them."""
    kinds = ("services", "endpoints", "regions")
    return {kind: identity.request("GET", f"/{kind}").json[kind] for kind in kinds}


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/services", {"service": {"type": "mine"}}),
        ("PATCH", "/services/{service}", {"service": {"name": "mine"}}),
        ("DELETE", "/services/{service}", NO_BODY),
        (
            "POST",
            "/endpoints",
            {"endpoint": {"service_id": "x", "interface": "public", "url": URL}},
        ),
        ("PATCH", "/endpoints/{endpoint}", {"endpoint": {"url": "http://evil.example"}}),
        ("DELETE", "/endpoints/{endpoint}", NO_BODY),
        ("POST", "/regions", {"region": {"id": "mine"}}),
        ("PUT", "/regions/mine", {"region": {}}),
        ("PATCH", "/regions/RegionOne", {"region": {"description": "mine"}}),
        ("DELETE", "/regions/RegionOne", NO_BODY),
        # The catalog's services and endpoints are for cloud readers only.
        ("GET", "/services", NO_BODY),
        ("GET", "/services/{service}", NO_BODY),
        ("GET", "/endpoints", NO_BODY),
        ("GET", "/endpoints/{endpoint}", NO_BODY),
    ],
)
def test_member_is_forbidden(
    identity: Identity,
    member: Member,
    service: dict[str, Any],
    endpoint: dict[str, Any],
    method: str,
    path: str,
    body: Any,
) -> None:
    token = member.token
    before = _catalog(identity)

    result = identity.request(
        method, path.format(service=service["id"], endpoint=endpoint["id"]), body, token=token
    )

    message = assert_error(result, 403)
    assert "identity:" in message
    assert _catalog(identity) == before
