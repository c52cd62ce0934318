"""Unit tests of the multi-store wire format: store discovery, versions, uploads to a store,
copy-image and ``DELETE /v2/stores/{store_id}/{image_id}``."""

from __future__ import annotations

import dataclasses

import falcon.testing
import pytest
from oslo_config import cfg

from nimbus.api.app import create_app
from nimbus.api.image import image_api
from nimbus.context import RequestContext
from nimbus.drivers.image.fake import FakeStore
from nimbus.image import ImageData, ImageService, TaskService
from nimbus.image.stores import Stores
from tests.unit.api.image.conftest import AUTH_URI, Tokens
from tests.unit.api.image.test_images import OCTET, assert_glance_error, create
from tests.unit.image.conftest import InlineExecutor

DATA = b"y" * 5000


@pytest.fixture
def multi_client(
    conf: cfg.ConfigOpts,
    fake_service: ImageService,
    executor: InlineExecutor,
    ctx: RequestContext,
    member_ctx: RequestContext,
) -> falcon.testing.TestClient:
    stores = Stores(
        {"fast": FakeStore(conf, store_id="fast"), "cheap": FakeStore(conf, store_id="cheap")},
        "fast",
        multiple=True,
    )
    service = dataclasses.replace(fake_service, stores=stores)
    tasks = TaskService(
        conf, service.db, service.enforcer, service, ImageData(service), executor=executor
    )
    app = create_app(
        [image_api(service, tasks.data, tasks)],
        validator=Tokens(ctx, member_ctx),
        auth_uri=AUTH_URI,
        max_body_size=65536,
        mounted=False,
    )
    return falcon.testing.TestClient(app, headers={"X-Auth-Token": "admin"})


def test_discovery_lists_both_stores_and_copy_image(
    multi_client: falcon.testing.TestClient,
) -> None:
    stores = multi_client.simulate_get("/v2/info/stores").json["stores"]
    assert [s["id"] for s in stores] == ["fast", "cheap"]
    assert stores[0]["default"] is True and "default" not in stores[1]
    methods = multi_client.simulate_get("/v2/info/import").json["import-methods"]["value"]
    assert methods == ["glance-direct", "copy-image"]
    made = multi_client.simulate_post("/v2/images", json={"disk_format": "raw"})
    assert made.headers["openstack-image-store-ids"] == "fast,cheap"
    assert made.headers["openstack-image-import-methods"] == "glance-direct,copy-image"


def test_versions_with_several_stores_are_those_nimbus_serves(
    multi_client: falcon.testing.TestClient, client: falcon.testing.TestClient
) -> None:
    listed = multi_client.simulate_get("/versions").json["versions"]
    # Glance's list less 2.13 (quota usage), 2.15 (store details) and 2.17
    # (locations), which nimbus does not serve.
    assert [v["id"] for v in listed] == [f"v2.{m}" for m in range(12, -1, -1)]
    assert [v["id"] for v in listed if v["status"] == "CURRENT"] == ["v2.12"]
    for unserved in ("/v2/info/usage", "/v2/info/stores/detail"):
        assert multi_client.simulate_get(unserved).status_code == 404
    single = client.simulate_get("/versions").json["versions"]
    assert single[0] == {**single[0], "id": "v2.7", "status": "CURRENT"}


def test_upload_to_a_store_copy_and_remove(multi_client: falcon.testing.TestClient) -> None:
    image = create(multi_client)
    path = f"/v2/images/{image['id']}"
    bad = multi_client.simulate_put(
        path + "/file", body=DATA, headers={"Content-Type": OCTET, "X-Image-Meta-Store": "x"}
    )
    assert_glance_error(bad, 400)
    put = multi_client.simulate_put(
        path + "/file", body=DATA, headers={"Content-Type": OCTET, "X-Image-Meta-Store": "cheap"}
    )
    assert put.status_code == 204, put.text
    assert multi_client.simulate_get(path).json["stores"] == "cheap"
    copy = {"method": {"name": "copy-image"}, "stores": ["fast"]}
    result = multi_client.simulate_post(path + "/import", json=copy)
    assert result.status_code == 202 and result.text == ""
    assert multi_client.simulate_get(path).json["stores"] == "cheap,fast"
    assert_glance_error(multi_client.simulate_post(path + "/import", json=copy), 400)
    gone = multi_client.simulate_delete(f"/v2/stores/cheap/{image['id']}")
    assert gone.status_code == 204, gone.text
    assert multi_client.simulate_get(path).json["stores"] == "fast"
    assert_glance_error(multi_client.simulate_delete(f"/v2/stores/fast/{image['id']}"), 403)
    assert_glance_error(multi_client.simulate_delete(f"/v2/stores/nope/{image['id']}"), 409)
    assert_glance_error(multi_client.simulate_delete("/v2/stores/fast/no-such"), 404)
    assert multi_client.simulate_get(path + "/file").content == DATA


def test_remove_from_store_is_not_found_with_one_store(
    client: falcon.testing.TestClient,
) -> None:
    image = create(client)
    assert_glance_error(client.simulate_delete(f"/v2/stores/file/{image['id']}"), 404)


def test_another_projects_member_finds_no_image_to_copy_or_remove(
    multi_client: falcon.testing.TestClient,
) -> None:
    # The test app allows every rule: only the project isolation stands between.
    image = create(multi_client)
    path = f"/v2/images/{image['id']}"
    multi_client.simulate_put(path + "/file", body=DATA, headers={"Content-Type": OCTET})
    copy = {"method": {"name": "copy-image"}, "stores": ["cheap"]}
    member = {"X-Auth-Token": "member"}
    assert_glance_error(
        multi_client.simulate_post(path + "/import", json=copy, headers=member), 404
    )
    removed = multi_client.simulate_delete(f"/v2/stores/fast/{image['id']}", headers=member)
    assert_glance_error(removed, 404)
    assert multi_client.simulate_get(path).json["stores"] == "fast"
