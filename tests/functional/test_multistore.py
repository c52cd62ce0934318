"""Several image stores on a real ``nimbus up`` (its default ``fast`` and ``cheap`` file stores).

Plain HTTP, as Glance's API reference and tempest use it: an upload to a
chosen store (``X-Image-Meta-Store``), ``copy-image`` to the other, the
image's ``stores``, ``DELETE /v2/stores/{store}/{image}``, a download
after it, the files on disk, another project's member refused, and bad
input answered 4xx in Glance's error shape; then openstacksdk's
``image.stores()``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nimbus.testing.server import Server
from tests.functional._cloud import IMAGES, OCTET, Cloud, fast_nimbus_up

DATA = os.urandom(2 * 1024 * 1024 + 321)
COPY = {"method": {"name": "copy-image"}}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with fast_nimbus_up(tmp_path_factory.mktemp("multistore")) as running:
        yield running


@pytest.fixture(scope="module")
def cloud(server: Server) -> Cloud:
    return Cloud(server)


def _post(cloud: Cloud, path: str, body: Any, **headers: str) -> tuple[int, Any]:
    status, _, answer = cloud.request("POST", path, json.dumps(body).encode(), headers=headers)
    return status, answer


def _upload(cloud: Cloud, store: str | None = None, data: bytes = DATA) -> str:
    image_id = cloud.create_image("multistore")
    headers = {"Content-Type": OCTET, **({"X-Image-Meta-Store": store} if store else {})}
    status, _, answer = cloud.request("PUT", f"{IMAGES}/{image_id}/file", data, headers=headers)
    assert status == 204, answer
    return image_id


def _wait_copied(cloud: Cloud, image_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        image = cloud.image(image_id)
        if image.get("os_glance_importing_to_stores") == "" and (
            "os_glance_import_task" not in image
        ):
            return image
        time.sleep(0.1)
    raise AssertionError(f"the copy of {image_id} did not end: {image}")


def _files(server: Server, store_dir: str) -> set[str]:
    assert server.state_dir is not None
    path = Path(server.state_dir) / store_dir
    return {p.name for p in path.iterdir() if p.is_file()} if path.exists() else set()


def _glance_error(answer: Any, code: int) -> str:
    assert isinstance(answer, dict) and answer["code"].startswith(str(code)), answer
    assert set(answer) >= {"message", "code", "title"}, answer
    return str(answer["message"])


def test_two_stores_are_listed_and_offered(cloud: Cloud) -> None:
    status, _, info = cloud.request("GET", "/image/v2/info/stores")
    assert status == 200
    assert [(s["id"], s.get("default", False)) for s in info["stores"]] == [
        ("fast", True),
        ("cheap", False),
    ]
    assert all(s["description"] for s in info["stores"])
    _, _, methods = cloud.request("GET", "/image/v2/info/import")
    assert methods["import-methods"]["value"] == ["glance-direct", "copy-image"]
    status, headers, _ = cloud.request(
        "POST", IMAGES, json.dumps({"name": "h", "disk_format": "raw"}).encode()
    )
    assert status == 201
    assert headers["OpenStack-image-import-methods"] == "glance-direct,copy-image"
    assert headers["OpenStack-image-store-ids"] == "fast,cheap"
    _, _, versions = cloud.request("GET", "/image/versions")
    ids = [v["id"] for v in versions["versions"]]
    assert ids[:5] == ["v2.12", "v2.11", "v2.10", "v2.9", "v2.8"]
    assert {v["id"] for v in versions["versions"] if v["status"] == "CURRENT"} == {"v2.12"}


def test_upload_copy_delete_from_one_store_and_download(cloud: Cloud, server: Server) -> None:
    image_id = _upload(cloud, "cheap")
    assert cloud.image(image_id)["stores"] == "cheap"
    assert image_id in _files(server, "image-stores/cheap")
    assert image_id not in _files(server, "images")

    status, answer = _post(cloud, f"{IMAGES}/{image_id}/import", {**COPY, "stores": ["fast"]})
    assert status == 202, answer
    image = _wait_copied(cloud, image_id)
    assert image["stores"] == "cheap,fast" and image["os_glance_failed_import"] == ""
    assert image_id in _files(server, "images")
    _, _, tasks = cloud.request("GET", f"{IMAGES}/{image_id}/tasks")
    assert [t["status"] for t in tasks["tasks"]] == ["success"]

    # Again to a store that has it: Glance's 400; to every store: nothing to do.
    status, answer = _post(cloud, f"{IMAGES}/{image_id}/import", {**COPY, "stores": ["fast"]})
    assert status == 400
    assert "already present at store 'fast'" in _glance_error(answer, 400)
    status, _ = _post(cloud, f"{IMAGES}/{image_id}/import", {**COPY, "all_stores": True})
    assert status == 202

    status, _, answer = cloud.request("DELETE", f"/image/v2/stores/cheap/{image_id}")
    assert status == 204, answer
    assert cloud.image(image_id)["stores"] == "fast"
    assert image_id not in _files(server, "image-stores/cheap")
    status, _, body = cloud.request("GET", f"{IMAGES}/{image_id}/file")
    assert status == 200 and body == DATA

    # The last copy stays: deleting the image is the way.
    status, _, answer = cloud.request("DELETE", f"/image/v2/stores/fast/{image_id}")
    assert status == 403
    assert "only store" in _glance_error(answer, 403)
    status, _, answer = cloud.request("DELETE", f"/image/v2/stores/cheap/{image_id}")
    assert status == 403
    status, _, _ = cloud.request("DELETE", f"{IMAGES}/{image_id}")
    assert status == 204
    assert image_id not in _files(server, "images") | _files(server, "image-stores/cheap")


def test_glance_direct_to_every_store(cloud: Cloud, server: Server) -> None:
    image_id = cloud.create_image("staged")
    status, _, _ = cloud.request(
        "PUT", f"{IMAGES}/{image_id}/stage", DATA, headers={"Content-Type": OCTET}
    )
    assert status == 204
    method = {"method": {"name": "glance-direct"}, "all_stores": True}
    status, answer = _post(cloud, f"{IMAGES}/{image_id}/import", method)
    assert status == 202, answer
    deadline = time.monotonic() + 30
    while cloud.image(image_id)["status"] != "active" and time.monotonic() < deadline:
        time.sleep(0.1)
    image = cloud.image(image_id)
    assert image["stores"] == "cheap,fast"
    assert image["os_glance_importing_to_stores"] == "" and image["os_glance_failed_import"] == ""
    assert image_id in _files(server, "images") and image_id in _files(server, "image-stores/cheap")
    cloud.request("DELETE", f"{IMAGES}/{image_id}")


@pytest.mark.parametrize(
    ("method", "path", "body", "headers", "code", "text"),
    [
        ("PUT", "file", None, {"X-Image-Meta-Store": "nope"}, 400, "nope not found"),
        ("PUT", "stage", None, {"X-Image-Meta-Store": "nope"}, 400, "nope not found"),
        ("POST", "import", {**COPY, "stores": ["nope"]}, {}, 409, "nope not found"),
        ("POST", "import", {**COPY, "stores": "fast"}, {}, 400, "list of store ids"),
        ("POST", "import", {**COPY, "all_stores": True, "stores": ["fast"]}, {}, 400, "All_"),
        ("POST", "import", {**COPY, "all_stores": 3}, {}, 400, "boolean"),
        ("POST", "import", {**COPY, "stores": ["cheap"]}, {}, 409, "status active"),
    ],
)
def test_bad_store_input_is_a_4xx_in_glances_shape(
    cloud: Cloud,
    method: str,
    path: str,
    body: Any,
    headers: dict[str, str],
    code: int,
    text: str,
) -> None:
    image_id = cloud.create_image("bad-input")
    if method == "PUT":
        sent = {"Content-Type": OCTET, **headers}
        status, _, answer = cloud.request(
            "PUT", f"{IMAGES}/{image_id}/{path}", b"data", headers=sent
        )
        assert cloud.status(image_id) == "queued"
    else:
        status, answer = _post(cloud, f"{IMAGES}/{image_id}/{path}", body, **headers)
    assert status == code, answer
    assert text in _glance_error(answer, code)
    status, _, answer = cloud.request("DELETE", f"/image/v2/stores/nope/{image_id}")
    assert status == 409
    status, _, answer = cloud.request("DELETE", f"/image/v2/stores/fast/{image_id}")
    assert status == 409 and "not 'active'" in _glance_error(answer, 409)
    status, _, answer = cloud.request("DELETE", "/image/v2/stores/fast/no-such-image")
    assert status == 404


def _user(cloud: Cloud, name: str) -> Cloud:
    """Return a client logged in as a new member of a new project *name*."""
    status, project = _post(
        cloud, "/identity/v3/projects", {"project": {"name": name, "domain_id": "default"}}
    )
    assert status == 201, project
    user = {"name": name, "password": f"pw-{name}", "default_project_id": project["project"]["id"]}
    status, made = _post(cloud, "/identity/v3/users", {"user": {**user, "domain_id": "default"}})
    assert status == 201, made
    _, _, roles = cloud.request("GET", "/identity/v3/roles?name=member")
    role_id = roles["roles"][0]["id"]
    project_id, user_id = project["project"]["id"], made["user"]["id"]
    status, _, _ = cloud.request(
        "PUT", f"/identity/v3/projects/{project_id}/users/{user_id}/roles/{role_id}"
    )
    assert status == 204
    other = Cloud.__new__(Cloud)
    other.server, other.token = cloud.server, None
    auth = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {"name": name, "domain": {"id": "default"}, "password": f"pw-{name}"}
                },
            },
            "scope": {"project": {"id": project_id}},
        }
    }
    status, headers, answer = other.request(
        "POST", "/identity/v3/auth/tokens", json.dumps(auth).encode()
    )
    assert status == 201, answer
    other.token = headers["X-Subject-Token"]
    return other


def test_another_projects_member_can_neither_copy_nor_remove_from_a_store(cloud: Cloud) -> None:
    alice, bob = _user(cloud, "ms-alice"), _user(cloud, "ms-bob")
    private = _upload(alice)
    shared = _upload(alice)
    # Alice, a member, may not copy (cloud admins only, as Glance's default).
    status, answer = _post(alice, f"{IMAGES}/{private}/import", {**COPY, "stores": ["cheap"]})
    assert status == 403, answer
    # An admin copies, so that the image is in both stores.
    status, _ = _post(cloud, f"{IMAGES}/{private}/import", {**COPY, "stores": ["cheap"]})
    assert status == 202
    _wait_copied(cloud, private)
    # Bob cannot see Alice's private image: 404 for everything.
    status, answer = _post(bob, f"{IMAGES}/{private}/import", {**COPY, "stores": ["cheap"]})
    assert status == 404, answer
    status, _, answer = bob.request("DELETE", f"/image/v2/stores/cheap/{private}")
    assert status == 404, answer
    # Alice, the owner's member, may not remove it from a store either (admins only).
    status, _, answer = alice.request("DELETE", f"/image/v2/stores/cheap/{private}")
    assert status == 403, answer
    assert cloud.image(private)["stores"] == "cheap,fast"
    # Shared with Bob: he sees it, and is refused 403.
    bob_project = bob.request("GET", "/identity/v3/auth/projects")[2]["projects"][0]["id"]
    status, _ = _post(alice, f"{IMAGES}/{shared}/members", {"member": bob_project})
    assert status == 200
    status, answer = _post(bob, f"{IMAGES}/{shared}/import", {**COPY, "stores": ["cheap"]})
    assert status == 403, answer
    status, _, answer = bob.request("DELETE", f"/image/v2/stores/fast/{shared}")
    assert status == 403, answer
    assert cloud.image(shared)["stores"] == "fast"


# openstacksdk warns about its own coming changes, not about nimbus.
@pytest.mark.filterwarnings("ignore::openstack.warnings._RemovedInSDKWarning")
def test_openstacksdk_lists_the_two_stores(server: Server) -> None:
    openstack = pytest.importorskip("openstack", reason="openstacksdk needed (the client extra)")
    rc = server.openrc()
    conn = openstack.connect(
        auth_url=rc["OS_AUTH_URL"],
        username=rc["OS_USERNAME"],
        password=rc["OS_PASSWORD"],
        project_name=rc["OS_PROJECT_NAME"],
        user_domain_name=rc["OS_USER_DOMAIN_NAME"],
        project_domain_name=rc["OS_PROJECT_DOMAIN_NAME"],
        region_name=rc.get("OS_REGION_NAME", "RegionOne"),
    )
    try:
        stores = list(conn.image.stores())
        assert [(s.id, bool(s.is_default)) for s in stores] == [("fast", True), ("cheap", False)]
    finally:
        conn.close()
