"""Unit tests of the import routes' wire format: stage, import, info and image tasks."""

from __future__ import annotations

import falcon.testing

from tests.unit.api.image.test_images import OCTET, assert_glance_error, create
from tests.unit.image.conftest import InlineExecutor

DATA = b"x" * 4096


def test_create_names_the_import_methods_and_store(client: falcon.testing.TestClient) -> None:
    result = client.simulate_post(
        "/v2/images", json={"disk_format": "raw", "container_format": "bare"}
    )
    assert result.headers["openstack-image-import-methods"] == "glance-direct"
    assert result.headers["openstack-image-store-ids"] == "file"


def test_info_documents(client: falcon.testing.TestClient) -> None:
    methods = client.simulate_get("/v2/info/import").json["import-methods"]
    assert methods == {
        "description": "Import methods available.",
        "type": "array",
        "value": ["glance-direct"],
    }
    stores = client.simulate_get("/v2/info/stores").json["stores"]
    assert [(s["id"], s["default"]) for s in stores] == [("file", True)]


def test_stage_then_import(client: falcon.testing.TestClient, executor: InlineExecutor) -> None:
    image = create(client)
    path = f"/v2/images/{image['id']}"
    staged = client.simulate_put(path + "/stage", body=DATA, headers={"Content-Type": OCTET})
    assert staged.status_code == 204, staged.text
    assert client.simulate_get(path).json["status"] == "uploading"
    # Data goes to a queued image only.
    assert_glance_error(
        client.simulate_put(path + "/file", body=DATA, headers={"Content-Type": OCTET}), 409
    )
    executor.hold = True
    result = client.simulate_post(path + "/import", json={"method": {"name": "glance-direct"}})
    assert result.status_code == 202 and result.text == ""
    assert client.simulate_get(path).json["status"] == "importing"
    for work in executor.held:
        work()
    shown = client.simulate_get(path).json
    assert (shown["status"], shown["size"], shown["stores"]) == ("active", len(DATA), "file")
    (task,) = client.simulate_get(path + "/tasks").json["tasks"]
    assert task["status"] == "success"
    assert task["request_id"] == result.headers["x-openstack-request-id"]


def test_import_errors(client: falcon.testing.TestClient) -> None:
    image = create(client)
    path = f"/v2/images/{image['id']}/import"
    assert_glance_error(client.simulate_post(path, json={"method": {"name": "glance-direct"}}), 409)
    assert_glance_error(client.simulate_post(path, json={"method": {"name": "web-download"}}), 400)
    assert_glance_error(client.simulate_post(path), 400)
    missing = "/v2/images/0b9f5e7c-0000-4000-8000-000000000001/import"
    assert_glance_error(
        client.simulate_post(missing, json={"method": {"name": "glance-direct"}}), 404
    )


def test_stage_needs_octet_stream(client: falcon.testing.TestClient) -> None:
    image = create(client)
    result = client.simulate_put(
        f"/v2/images/{image['id']}/stage", body=DATA, headers={"Content-Type": "text/plain"}
    )
    assert_glance_error(result, 415)
