"""Unit tests of the image API's resources (``nimbus.api.image``) in Falcon's simulator."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import falcon.testing
import pytest

PATCH = "application/openstack-images-v2.1-json-patch"
OCTET = "application/octet-stream"
DATA = b"0123456789" * 100


def create(client: falcon.testing.TestClient, **values: Any) -> dict[str, Any]:
    body = {"disk_format": "raw", "container_format": "bare", **values}
    result = client.simulate_post("/v2/images", json=body)
    assert result.status_code == 201, result.text
    image: dict[str, Any] = result.json
    return image


def assert_glance_error(result: falcon.testing.Result, code: int) -> str:
    assert result.status_code == code, result.text
    body = result.json
    assert set(body) == {"message", "code", "title"}, body
    assert body["code"] == result.status
    message: str = body["message"]
    return message


def test_versions_are_public(client: falcon.testing.TestClient) -> None:
    result = client.simulate_get("/", headers={"X-Auth-Token": ""})
    assert result.status_code == 300
    versions = result.json["versions"]
    assert versions[0]["id"] == "v2.7" and versions[0]["status"] == "CURRENT"
    assert versions[0]["links"] == [{"rel": "self", "href": "http://falconframework.org/v2/"}]


def test_versions_list_only_what_is_served(client: falcon.testing.TestClient) -> None:
    """Import (2.6) but no stores (2.8-2.10), image tasks (2.12), cache (2.14), locations (2.17)."""
    listed = {v["id"]: v["status"] for v in client.simulate_get("/versions").json["versions"]}

    assert listed == {
        "v2.7": "CURRENT",
        **{f"v2.{minor}": "SUPPORTED" for minor in (0, 1, 2, 3, 4, 5, 6)},
    }


def test_a_token_is_required(client: falcon.testing.TestClient) -> None:
    """keystonemiddleware's 401: Keystone's JSON whatever the request accepts."""
    for accept in (None, "*/*", "text/html", "text/plain"):
        headers = {"X-Auth-Token": ""} | ({"Accept": accept} if accept else {})
        result = client.simulate_get("/v2/images", headers=headers)
        assert result.status_code == 401
        assert result.headers["content-type"] == "application/json"
        assert result.json == {
            "error": {
                "code": 401,
                "title": "Unauthorized",
                "message": "The request you have made requires authentication.",
            }
        }
        assert result.headers["WWW-Authenticate"] == 'Keystone uri="http://identity.test/v3"'


_MISSING = "/v2/images/00000000-0000-0000-0000-000000000000"
_NOT_FOUND = "No image found with ID 00000000-0000-0000-0000-000000000000"


@pytest.mark.parametrize(
    "accept",
    ["*/*", "text/html", "application/json, text/html", "text/*", "text/html;q=0.9, */*;q=0.1"],
)
def test_an_error_is_an_html_page_when_html_is_preferred(
    client: falcon.testing.TestClient, accept: str
) -> None:
    """webob's page: glanceclient sends ``*/*`` and reads the lines between the tags."""
    result = client.simulate_get(_MISSING, headers={"Accept": accept})

    assert result.status_code == 404
    assert result.headers["content-type"] == "text/html; charset=UTF-8"
    assert result.text == (
        "<html>\n <head>\n  <title>404 Not Found</title>\n </head>\n <body>\n"
        f"  <h1>404 Not Found</h1>\n  {_NOT_FOUND}<br /><br />\n\n\n\n </body>\n</html>"
    )


def test_an_html_error_escapes_its_message(client: falcon.testing.TestClient) -> None:
    result = client.simulate_get("/v2/images", params={"marker": "<b>&"}, headers={"Accept": "*/*"})

    assert result.status_code == 400
    assert "&lt;b&gt;&amp;" in result.text and "<b>" not in result.text


@pytest.mark.parametrize(
    "accept", [None, "", "application/json", "application/*", "text/html;q=0.5, application/json"]
)
def test_an_error_is_json_when_json_is_preferred_or_nothing_asked(
    client: falcon.testing.TestClient, accept: str | None
) -> None:
    headers = {} if accept is None else {"Accept": accept}

    result = client.simulate_get(_MISSING, headers=headers)

    assert result.headers["content-type"] == "application/json"
    assert assert_glance_error(result, 404) == _NOT_FOUND
    assert result.json == {"message": _NOT_FOUND, "code": "404 Not Found", "title": "Not Found"}


@pytest.mark.parametrize("accept", ["text/plain", "image/png", "application/json;q=0"])
def test_an_error_is_plain_text_when_neither_is_acceptable(
    client: falcon.testing.TestClient, accept: str
) -> None:
    result = client.simulate_get(_MISSING, headers={"Accept": accept})

    assert result.status_code == 404
    assert result.headers["content-type"] == "text/plain; charset=UTF-8"
    assert result.text == f"404 Not Found\n\n{_NOT_FOUND}\n\n"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v2/nothing"),
        ("GET", "/v2/images/"),
        ("DELETE", "/v2/images/"),
        ("POST", "/v2/images/"),
        ("GET", _MISSING + "/"),
        ("GET", "/v2/schemas/image/"),
        ("GET", "/versions/"),
    ],
)
def test_a_path_no_route_matches_exactly_is_not_found(
    client: falcon.testing.TestClient, method: str, path: str
) -> None:
    """Glance's routes match exactly: a trailing slash finds nothing (webob's message)."""
    result = client.simulate_request(method, path, json={"name": "n"} if method == "POST" else None)

    assert assert_glance_error(result, 404) == "The resource could not be found."
    assert result.headers["x-openstack-request-id"].startswith("req-")


def test_the_root_answers_with_or_without_a_slash(client: falcon.testing.TestClient) -> None:
    assert client.simulate_get("/").status_code == 300
    assert client.simulate_get("/versions").status_code == 200


def test_create_shows_links_and_location(client: falcon.testing.TestClient) -> None:
    result = client.simulate_post("/v2/images", json={"name": "cirros", "hw_arch": "arm"})
    assert result.status_code == 201
    image = result.json
    path = f"/v2/images/{image['id']}"
    assert result.headers["Location"] == "http://falconframework.org" + path
    assert (image["self"], image["file"], image["schema"]) == (
        path,
        path + "/file",
        "/v2/schemas/image",
    )
    assert (image["name"], image["hw_arch"], image["status"]) == ("cirros", "arm", "queued")
    assert client.simulate_get(path).json == image


@pytest.mark.parametrize(
    ("body", "code"),
    [([], 400), ({"status": "active"}, 403), ({"deleted": True}, 403), ({"min_ram": "x"}, 400)],
)
def test_create_refuses(client: falcon.testing.TestClient, body: Any, code: int) -> None:
    assert_glance_error(client.simulate_post("/v2/images", json=body), code)


def test_list_page_shape(client: falcon.testing.TestClient) -> None:
    made = [create(client, name=f"img{n}")["id"] for n in range(3)]
    page = client.simulate_get("/v2/images", params={"limit": "2", "sort": "name:asc"}).json
    assert [image["id"] for image in page["images"]] == made[:2]
    assert page["images"][0]["self"] == f"/v2/images/{made[0]}"
    assert page["first"] == "/v2/images?limit=2&sort=name%3Aasc"
    assert page["schema"] == "/v2/schemas/images"
    assert page["next"] == f"/v2/images?limit=2&sort=name%3Aasc&marker={made[1]}"
    assert list(page) == ["images", "first", "schema", "next"]

    last = client.simulate_get(
        "/v2/images", params={"limit": "2", "sort": "name:asc", "marker": made[1]}
    ).json
    assert [image["id"] for image in last["images"]] == made[2:]
    assert last["first"] == "/v2/images?limit=2&sort=name%3Aasc"
    assert "next" not in last


def test_list_without_parameters(client: falcon.testing.TestClient) -> None:
    page = client.simulate_get("/v2/images").json
    assert page == {"images": [], "first": "/v2/images", "schema": "/v2/schemas/images"}


def test_bad_list_parameter(client: falcon.testing.TestClient) -> None:
    assert_glance_error(client.simulate_get("/v2/images", params={"limit": "x"}), 400)


def test_patch(client: falcon.testing.TestClient) -> None:
    image = create(client, name="old")
    result = client.simulate_patch(
        f"/v2/images/{image['id']}",
        body=json.dumps([{"op": "replace", "path": "/name", "value": "new"}]),
        headers={"Content-Type": PATCH},
    )
    assert result.status_code == 200, result.text
    assert result.json["name"] == "new"
    assert result.json["self"] == f"/v2/images/{image['id']}"


@pytest.mark.parametrize("content_type", [None, "application/json"])
def test_patch_needs_a_patch_type(
    client: falcon.testing.TestClient, content_type: str | None
) -> None:
    image = create(client)
    headers = {"Content-Type": content_type} if content_type else {}
    result = client.simulate_patch(f"/v2/images/{image['id']}", body="[]", headers=headers)
    assert_glance_error(result, 415)
    assert PATCH in result.headers["Accept-Patch"]


def test_delete(client: falcon.testing.TestClient) -> None:
    image = create(client)
    assert client.simulate_delete(f"/v2/images/{image['id']}").status_code == 204
    assert_glance_error(client.simulate_get(f"/v2/images/{image['id']}"), 404)


def test_collection_answers_405_to_other_methods(client: falcon.testing.TestClient) -> None:
    result = client.simulate_delete("/v2/images")
    assert assert_glance_error(result, 405) == "The method DELETE is not allowed for this resource."


def test_tags_and_actions(client: falcon.testing.TestClient) -> None:
    image = create(client)
    path = f"/v2/images/{image['id']}"
    assert client.simulate_put(path + "/tags/gold").status_code == 204
    assert client.simulate_get(path).json["tags"] == ["gold"]
    assert client.simulate_delete(path + "/tags/gold").status_code == 204
    assert_glance_error(client.simulate_delete(path + "/tags/gold"), 404)
    assert_glance_error(client.simulate_post(path + "/actions/deactivate"), 403)


def upload(client: falcon.testing.TestClient, image_id: str, **headers: str) -> Any:
    return client.simulate_put(
        f"/v2/images/{image_id}/file", body=DATA, headers={"Content-Type": OCTET, **headers}
    )


def test_upload_and_download(client: falcon.testing.TestClient) -> None:
    image = create(client)
    md5 = hashlib.md5(DATA).hexdigest()
    assert upload(client, image["id"], **{"Content-MD5": md5}).status_code == 204
    shown = client.simulate_get(f"/v2/images/{image['id']}").json
    assert (shown["status"], shown["size"], shown["checksum"]) == ("active", len(DATA), md5)

    whole = client.simulate_get(f"/v2/images/{image['id']}/file")
    assert whole.status_code == 200
    assert whole.content == DATA
    assert whole.headers["Content-MD5"] == md5
    assert whole.headers["Content-Type"] == OCTET
    assert whole.headers["Content-Length"] == str(len(DATA))

    part = client.simulate_get(f"/v2/images/{image['id']}/file", headers={"Range": "bytes=10-19"})
    assert part.status_code == 206
    assert part.content == DATA[10:20]
    assert part.headers["Content-Range"] == f"bytes 10-19/{len(DATA)}"
    assert "Content-MD5" not in part.headers

    beyond = client.simulate_get(f"/v2/images/{image['id']}/file", headers={"Range": "bytes=5000-"})
    assert_glance_error(beyond, 416)


def test_upload_needs_octet_stream(client: falcon.testing.TestClient) -> None:
    image = create(client)
    result = client.simulate_put(
        f"/v2/images/{image['id']}/file", body=DATA, headers={"Content-Type": "text/plain"}
    )
    assert "application/octet-stream" in assert_glance_error(result, 415)
    assert client.simulate_get(f"/v2/images/{image['id']}").json["status"] == "queued"


def test_upload_with_wrong_md5(client: falcon.testing.TestClient) -> None:
    image = create(client)
    assert_glance_error(upload(client, image["id"], **{"Content-MD5": "0" * 32}), 400)
    assert client.simulate_get(f"/v2/images/{image['id']}").json["status"] == "queued"


def test_download_of_a_queued_image_is_empty(client: falcon.testing.TestClient) -> None:
    image = create(client)
    result = client.simulate_get(f"/v2/images/{image['id']}/file")
    assert result.status_code == 204
    assert result.content == b""


def test_members(client: falcon.testing.TestClient) -> None:
    image = create(client)
    members = f"/v2/images/{image['id']}/members"
    added = client.simulate_post(members, json={"member": "p2"})
    assert added.status_code == 200, added.text
    assert added.json["member_id"] == "p2" and added.json["status"] == "pending"
    assert added.json["schema"] == "/v2/schemas/member"

    accepted = client.simulate_put(
        members + "/p2",
        json={"status": "accepted", "member": "p2"},
        headers={"X-Auth-Token": "member"},
    )
    assert accepted.status_code == 200, accepted.text
    assert accepted.json["status"] == "accepted"

    listed = client.simulate_get(members).json
    assert listed["schema"] == "/v2/schemas/members"
    assert [m["member_id"] for m in listed["members"]] == ["p2"]
    assert client.simulate_delete(members + "/p2").status_code == 204
    assert_glance_error(client.simulate_get(members + "/p2"), 404)


@pytest.mark.parametrize(
    "body", [[], {}, {"member": ""}, {"member": "p2", "extra": 1}, {"member": 5}]
)
def test_member_add_body_is_validated(client: falcon.testing.TestClient, body: Any) -> None:
    image = create(client)
    result = client.simulate_post(f"/v2/images/{image['id']}/members", json=body)
    assert_glance_error(result, 400)


def test_member_status_is_validated(client: falcon.testing.TestClient) -> None:
    image = create(client)
    client.simulate_post(f"/v2/images/{image['id']}/members", json={"member": "p2"})
    result = client.simulate_put(
        f"/v2/images/{image['id']}/members/p2",
        json={"status": "maybe"},
        headers={"X-Auth-Token": "member"},
    )
    assert "member" in assert_glance_error(result, 400)


def test_schemas(client: falcon.testing.TestClient) -> None:
    image_schema = client.simulate_get("/v2/schemas/image").json
    assert image_schema["name"] == "image"
    assert "disk_format" in image_schema["properties"]
    assert client.simulate_get("/v2/schemas/members").json["name"] == "members"
