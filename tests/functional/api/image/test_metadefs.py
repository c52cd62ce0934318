"""Glance's metadata definitions API (``/v2/metadefs``, ``/v2/schemas/metadefs``).

What tempest's metadefs tests and Horizon's Images panel call: schema
documents, namespaces with their visibility and protection, objects,
properties, tags and resource type associations; and that a private
namespace stays invisible (404) and unchangeable to other projects.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tests.functional.api.conftest import Member
    from tests.functional.api.image.conftest import ImageAPI

NS = "/metadefs/namespaces"
SCHEMA_NAMES = {
    "namespace": "namespace",
    "namespaces": "namespaces",
    "object": "object",
    "objects": "objects",
    "property": "property",
    "properties": "properties",
    "tag": "tag",
    "tags": "tags",
    "resource_type": "resource_type_association",
    "resource_types": "resource_type_associations",
}


@pytest.fixture
def namespace(images: ImageAPI) -> Callable[..., dict[str, Any]]:
    """Return a factory of namespaces the admin creates (public unless told)."""

    def make(**attrs: Any) -> dict[str, Any]:
        body = {"namespace": f"ns-{uuid.uuid4().hex[:8]}", "visibility": "public", **attrs}
        result = images.request("POST", NS, body)
        assert result.status_code == 201, result.text
        return result.json

    return make


def _names(items: list[dict[str, Any]], key: str = "name") -> list[str]:
    return [item[key] for item in items]


@pytest.mark.parametrize(("path", "name"), sorted(SCHEMA_NAMES.items()))
def test_schemas_are_served_by_any_project_member(
    images: ImageAPI, alice: Member, path: str, name: str
) -> None:
    result = images.request("GET", f"/schemas/metadefs/{path}", token=alice.token)
    assert result.status_code == 200, result.text
    assert result.json["name"] == name
    assert "properties" in result.json


def test_the_namespace_schema_is_glances(images: ImageAPI) -> None:
    document = images.request("GET", "/schemas/metadefs/namespace").json
    assert document["required"] == ["namespace"]
    assert document["additionalProperties"] is False
    assert document["properties"]["visibility"]["enum"] == ["public", "private"]
    assert "property" in document["definitions"]
    collection = images.request("GET", "/schemas/metadefs/namespaces").json
    assert collection["properties"]["namespaces"]["items"]["name"] == "namespace"
    assert {link["rel"] for link in collection["links"]} == {"first", "next", "describedby"}


def test_namespace_lifecycle_as_tempest_drives_it(images: ImageAPI) -> None:
    kinds = images.request("GET", "/metadefs/resource_types").json["resource_types"]
    assert "OS::Glance::Image" in _names(kinds)
    name = f"ns-{uuid.uuid4().hex[:8]}"
    created = images.request(
        "POST",
        NS,
        {
            "namespace": name,
            "visibility": "public",
            "description": "Tempest",
            "display_name": name,
            "resource_type_associations": [{"name": kinds[0]["name"]}],
            "protected": True,
        },
    )
    assert created.status_code == 201, created.text
    assert created.headers["location"].endswith(f"/image/v2/metadefs/namespaces/{name}")
    assert created.json["owner"] == images.identity.admin_project["id"]
    assert created.json["self"] == f"/v2/metadefs/namespaces/{name}"
    assert created.json["schema"] == "/v2/schemas/metadefs/namespace"

    listed = images.request("GET", NS).json
    assert name in _names(listed["namespaces"], "namespace")
    assert listed["schema"] == "/v2/schemas/metadefs/namespaces"
    assert listed["first"] == "/v2/metadefs/namespaces"

    shown = images.request("GET", f"{NS}/{name}").json
    assert shown["namespace"] == name and shown["visibility"] == "public"
    assert _names(shown["resource_type_associations"]) == [kinds[0]["name"]]

    refused = images.request("DELETE", f"{NS}/{name}")
    images.assert_error(refused, 403)
    assert images.request("GET", f"{NS}/{name}").status_code == 200

    updated = images.request(
        "PUT",
        f"{NS}/{name}",
        {
            "namespace": name,
            "description": "Tempest",
            "visibility": "private",
            "display_name": name,
            "protected": False,
        },
    )
    assert updated.status_code == 200, updated.text
    assert updated.json["visibility"] == "private" and updated.json["protected"] is False

    assert images.request("DELETE", f"{NS}/{name}").status_code == 204
    images.assert_error(images.request("GET", f"{NS}/{name}"), 404)


def test_a_duplicate_namespace_conflicts(images: ImageAPI, namespace: Callable[..., Any]) -> None:
    existing = namespace()
    result = images.request("POST", NS, {"namespace": existing["namespace"]})
    images.assert_error(result, 409)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"namespace": "x" * 81},
        {"namespace": "ns", "visibility": "shared"},
        {"namespace": "ns", "protected": "yes"},
        {"namespace": "ns", "unknown": 1},
    ],
)
def test_an_invalid_namespace_is_refused(images: ImageAPI, body: dict[str, Any]) -> None:
    images.assert_error(images.request("POST", NS, body), 400)


def test_read_only_attributes_are_forbidden(images: ImageAPI) -> None:
    result = images.request("POST", NS, {"namespace": "ns-ro", "self": "/x"})
    images.assert_error(result, 403)
    images.assert_error(images.request("GET", f"{NS}/ns-ro"), 404)


def test_renaming_a_namespace_keeps_its_definitions(
    images: ImageAPI, namespace: Callable[..., Any]
) -> None:
    ns = namespace(tags=[{"name": "t1"}])
    new_name = ns["namespace"] + "-renamed"
    result = images.request("PUT", f"{NS}/{ns['namespace']}", {"namespace": new_name})
    assert result.status_code == 200, result.text
    assert result.json["namespace"] == new_name
    images.assert_error(images.request("GET", f"{NS}/{ns['namespace']}"), 404)
    tags = images.request("GET", f"{NS}/{new_name}/tags").json["tags"]
    assert _names(tags) == ["t1"]


def test_listing_filters_and_pages(images: ImageAPI, namespace: Callable[..., Any]) -> None:
    public = namespace()
    private = namespace(visibility="private")
    kind = f"Test::Kind::{uuid.uuid4().hex[:6]}"
    associated = namespace(resource_type_associations=[{"name": kind, "prefix": "k:"}])

    by_visibility = images.request("GET", NS, params={"visibility": "private", "limit": "1000"})
    names = _names(by_visibility.json["namespaces"], "namespace")
    assert private["namespace"] in names and public["namespace"] not in names

    by_type = images.request("GET", NS, params={"resource_types": kind}).json["namespaces"]
    assert _names(by_type, "namespace") == [associated["namespace"]]
    assert by_type[0]["resource_type_associations"][0]["prefix"] == "k:"

    seen: list[str] = []
    page = images.request("GET", NS, params={"limit": "2", "sort_dir": "asc"}).json
    while True:
        seen.extend(_names(page["namespaces"], "namespace"))
        if "next" not in page:
            break
        path = page["next"].removeprefix("/v2")
        page = images.request("GET", path.split("?")[0], query_string=path.split("?")[1]).json
    assert len(seen) == len(set(seen))
    assert {public["namespace"], private["namespace"], associated["namespace"]} <= set(seen)


@pytest.mark.parametrize(
    "params",
    [{"limit": "x"}, {"limit": "-1"}, {"visibility": "shared"}, {"sort_dir": "up"}],
)
def test_bad_list_parameters_are_refused(images: ImageAPI, params: dict[str, str]) -> None:
    images.assert_error(images.request("GET", NS, params=params), 400)


def test_an_unknown_marker_is_not_found(images: ImageAPI) -> None:
    images.assert_error(images.request("GET", NS, params={"marker": "no-such-ns"}), 404)


def test_a_private_namespace_is_invisible_to_other_projects(
    images: ImageAPI, namespace: Callable[..., Any], alice: Member
) -> None:
    private = namespace(visibility="private", tags=[{"name": "secret"}])
    public = namespace(objects=[{"name": "obj"}])
    path = f"{NS}/{private['namespace']}"

    listed = images.request("GET", NS, params={"limit": "1000"}, token=alice.token).json
    names = _names(listed["namespaces"], "namespace")
    assert public["namespace"] in names and private["namespace"] not in names
    for sub in ("", "/tags", "/tags/secret", "/objects", "/properties", "/resource_types"):
        images.assert_error(images.request("GET", path + sub, token=alice.token), 404)
    for method, sub, body in (
        ("PUT", "", {"namespace": private["namespace"], "visibility": "public"}),
        ("DELETE", "", None),
        ("POST", "/tags/mine", None),
        ("DELETE", "/tags", None),
    ):
        kwargs = {} if body is None else {"body": body}
        result = images.request(method, path + sub, token=alice.token, **kwargs)
        assert result.status_code in (403, 404), result.text
        images.assert_error(result, result.status_code)
    shown = images.request("GET", path).json
    assert shown["visibility"] == "private"
    assert _names(shown["tags"]) == ["secret"]

    # A public namespace: anyone reads it, only admins change it.
    public_path = f"{NS}/{public['namespace']}"
    assert images.request("GET", public_path, token=alice.token).status_code == 200
    objects = images.request("GET", public_path + "/objects", token=alice.token).json
    assert _names(objects["objects"]) == ["obj"]
    refused = images.request("POST", public_path + "/objects", {"name": "o2"}, token=alice.token)
    images.assert_error(refused, 403)
    images.assert_error(images.request("POST", NS, {"namespace": "a-ns"}, token=alice.token), 403)


def test_a_private_namespace_is_visible_to_its_owners(
    images: ImageAPI, namespace: Callable[..., Any], alice: Member, bob: Member
) -> None:
    mine = namespace(visibility="private", owner=alice.project["id"])
    assert mine["owner"] == alice.project["id"]
    path = f"{NS}/{mine['namespace']}"
    assert images.request("GET", path, token=alice.token).status_code == 200
    images.assert_error(images.request("GET", path, token=bob.token), 404)


def test_objects(images: ImageAPI, namespace: Callable[..., Any]) -> None:
    ns = namespace()["namespace"]
    base = f"{NS}/{ns}/objects"
    body = {
        "name": "obj1",
        "description": "d",
        "required": ["p1"],
        "properties": {"p1": {"title": "P1", "type": "string"}},
    }
    created = images.request("POST", base, body)
    assert created.status_code == 201, created.text
    assert created.json["self"] == f"/v2/metadefs/namespaces/{ns}/objects/obj1"
    assert created.json["properties"] == body["properties"]
    images.assert_error(images.request("POST", base, {"name": "obj1"}), 409)
    images.assert_error(images.request("POST", base, {"description": "no name"}), 400)
    bad_property = {"name": "obj2", "properties": {"p": {"title": "P", "type": "text"}}}
    images.assert_error(images.request("POST", base, bad_property), 400)

    listed = images.request("GET", base).json
    assert _names(listed["objects"]) == ["obj1"]
    assert images.request("GET", f"{base}/obj1").json["description"] == "d"

    renamed = images.request("PUT", f"{base}/obj1", {"name": "obj-new"})
    assert renamed.status_code == 200, renamed.text
    assert renamed.json["name"] == "obj-new"
    images.assert_error(images.request("GET", f"{base}/obj1"), 404)
    assert images.request("DELETE", f"{base}/obj-new").status_code == 204
    images.assert_error(images.request("DELETE", f"{base}/obj-new"), 404)
    assert images.request("GET", base).json["objects"] == []

    images.request("POST", base, {"name": "a"})
    assert images.request("DELETE", base).status_code == 204
    assert images.request("GET", base).json["objects"] == []


def test_properties(images: ImageAPI, namespace: Callable[..., Any]) -> None:
    ns = namespace()["namespace"]
    base = f"{NS}/{ns}/properties"
    enum = ["xen", "qemu", "kvm"]
    body = {"name": "OS::Glance::Image", "title": "hv", "type": "string", "enum": enum}
    created = images.request("POST", base, body)
    assert created.status_code == 201, created.text
    assert created.json == body
    images.assert_error(images.request("POST", base, body), 409)
    images.assert_error(images.request("POST", base, {"name": "p", "type": "string"}), 400)

    shown = images.request("GET", f"{base}/OS::Glance::Image").json
    assert shown["name"] == "OS::Glance::Image" and shown["enum"] == enum
    listed = images.request("GET", base).json["properties"]
    assert listed == {"OS::Glance::Image": {"title": "hv", "type": "string", "enum": enum}}

    changed = {**body, "title": "hv2"}
    updated = images.request("PUT", f"{base}/OS::Glance::Image", changed)
    assert updated.status_code == 200, updated.text
    assert updated.json["title"] == "hv2"
    assert images.request("DELETE", f"{base}/OS::Glance::Image").status_code == 204
    assert images.request("GET", base).json["properties"] == {}
    images.assert_error(images.request("GET", f"{base}/OS::Glance::Image"), 404)


def test_tags(images: ImageAPI, namespace: Callable[..., Any]) -> None:
    ns = namespace()["namespace"]
    base = f"{NS}/{ns}/tags"
    tags = [{"name": "sample-tag1"}, {"name": "sample-tag2"}, {"name": "sample-tag3"}]
    created = images.request("POST", base, {"tags": tags})
    assert created.status_code == 201, created.text
    assert sorted(_names(created.json["tags"])) == ["sample-tag1", "sample-tag2", "sample-tag3"]
    assert len(images.request("GET", base).json["tags"]) == 3

    one = images.request("POST", f"{base}/tag-x")
    assert one.status_code == 201, one.text
    assert one.json["name"] == "tag-x"
    images.assert_error(images.request("POST", f"{base}/tag-x"), 409)
    assert images.request("GET", f"{base}/tag-x").json["name"] == "tag-x"
    renamed = images.request("PUT", f"{base}/tag-x", {"name": "tag-y"})
    assert renamed.status_code == 200, renamed.text
    assert renamed.json["name"] == "tag-y"
    assert images.request("DELETE", f"{base}/tag-y").status_code == 204
    assert "tag-y" not in _names(images.request("GET", base).json["tags"])

    # Without X-Openstack-Append the list replaces the tags; with it, adds.
    images.request("POST", base, {"tags": [{"name": "only"}]})
    assert _names(images.request("GET", base).json["tags"]) == ["only"]
    appended = images.request(
        "POST", base, {"tags": [{"name": "more"}]}, headers={"X-Openstack-Append": "True"}
    )
    assert appended.status_code == 201, appended.text
    assert sorted(_names(images.request("GET", base).json["tags"])) == ["more", "only"]
    images.assert_error(images.request("POST", base, {"tags": [{"name": "a"}, {"name": "a"}]}), 409)
    images.assert_error(images.request("POST", base, {"tags": [{"title": "a"}]}), 400)

    assert images.request("DELETE", base).status_code == 204
    assert images.request("GET", base).json["tags"] == []


def test_resource_type_associations(images: ImageAPI, namespace: Callable[..., Any]) -> None:
    ns = namespace()["namespace"]
    base = f"{NS}/{ns}/resource_types"
    created = images.request("POST", base, {"name": "OS::Nova::Flavor", "prefix": "hw:"})
    assert created.status_code == 201, created.text
    assert created.json["name"] == "OS::Nova::Flavor" and created.json["prefix"] == "hw:"
    images.assert_error(images.request("POST", base, {"name": "OS::Nova::Flavor"}), 409)
    images.assert_error(images.request("POST", base, {"prefix": "x"}), 400)
    listed = images.request("GET", base).json["resource_type_associations"]
    assert _names(listed) == ["OS::Nova::Flavor"]

    assert images.request("DELETE", f"{base}/OS::Nova::Flavor").status_code == 204
    assert images.request("GET", base).json["resource_type_associations"] == []
    images.assert_error(images.request("DELETE", f"{base}/OS::Nova::Flavor"), 404)

    # An unknown resource type is created by associating with it, as in Glance.
    images.request("POST", base, {"name": "Custom::Thing"})
    kinds = images.request("GET", "/metadefs/resource_types").json["resource_types"]
    assert "Custom::Thing" in _names(kinds)


def test_a_protected_namespace_keeps_its_definitions(
    images: ImageAPI, namespace: Callable[..., Any]
) -> None:
    ns = namespace(protected=True, tags=[{"name": "kept"}])["namespace"]
    images.assert_error(images.request("DELETE", f"{NS}/{ns}/tags"), 403)
    assert _names(images.request("GET", f"{NS}/{ns}/tags").json["tags"]) == ["kept"]
    images.request("PUT", f"{NS}/{ns}", {"namespace": ns, "protected": False})
    assert images.request("DELETE", f"{NS}/{ns}").status_code == 204


def test_definitions_of_a_missing_namespace_are_not_found(images: ImageAPI) -> None:
    for sub in ("/objects", "/objects/o", "/properties/p", "/tags", "/resource_types"):
        images.assert_error(images.request("GET", f"{NS}/no-such-ns{sub}"), 404)


def test_showing_for_a_resource_type_prefixes_property_names(
    images: ImageAPI, namespace: Callable[..., Any]
) -> None:
    ns = namespace(
        resource_type_associations=[{"name": "OS::Nova::Flavor", "prefix": "hw:"}],
        properties={"cpu_policy": {"title": "CPU policy", "type": "string"}},
        objects=[
            {
                "name": "o",
                "required": ["mem"],
                "properties": {"mem": {"title": "Memory", "type": "integer"}},
            }
        ],
    )["namespace"]
    plain = images.request("GET", f"{NS}/{ns}").json
    assert list(plain["properties"]) == ["cpu_policy"]
    shown = images.request("GET", f"{NS}/{ns}", params={"resource_type": "OS::Nova::Flavor"}).json
    assert list(shown["properties"]) == ["hw:cpu_policy"]
    assert list(shown["objects"][0]["properties"]) == ["hw:mem"]
    assert shown["objects"][0]["required"] == ["hw:mem"]
    other = images.request("GET", f"{NS}/{ns}", params={"resource_type": "OS::Glance::Image"})
    assert list(other.json["properties"]) == ["cpu_policy"]
