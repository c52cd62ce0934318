"""openstacksdk's interoperable image import against a real ``nimbus up``.

``image.get_import_info()``, ``image.stores()`` and ``create_image(...,
use_import=True)`` (create, stage, ``glance-direct`` import, wait for
active) as a user of the SDK runs them, plus the import's task through
``GET /v2/images/{id}/tasks``.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests.functional._cloud import fast_nimbus_up

openstack = pytest.importorskip("openstack", reason="openstacksdk needed (the client extra)")

# openstacksdk warns about its own coming changes (its InfluxDB support on
# every connection, find_* defaults inside create_image): not about nimbus.
pytestmark = pytest.mark.filterwarnings("ignore::openstack.warnings._RemovedInSDKWarning")


@pytest.fixture(scope="module")
def conn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with fast_nimbus_up(tmp_path_factory.mktemp("sdk-import")) as server:
        rc = server.openrc()
        connection = openstack.connect(
            auth_url=rc["OS_AUTH_URL"],
            username=rc["OS_USERNAME"],
            password=rc["OS_PASSWORD"],
            project_name=rc["OS_PROJECT_NAME"],
            user_domain_name=rc["OS_USER_DOMAIN_NAME"],
            project_domain_name=rc["OS_PROJECT_DOMAIN_NAME"],
            region_name=rc.get("OS_REGION_NAME", "RegionOne"),
        )
        yield connection
        connection.close()


def test_import_info_lists_glance_direct_and_copy_image(conn: Any) -> None:
    # nimbus up enables two stores, so copy-image is offered too.
    info = conn.image.get_import_info()
    assert info.import_methods["value"] == ["glance-direct", "copy-image"]


def test_stores_list_the_two_stores_of_nimbus_up(conn: Any) -> None:
    stores = list(conn.image.stores())
    assert [(store.id, bool(store.is_default)) for store in stores] == [
        ("fast", True),
        ("cheap", False),
    ]


def test_create_image_with_import(conn: Any) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    image = conn.create_image(
        "sdk-imported",
        data=io.BytesIO(data),
        disk_format="raw",
        container_format="bare",
        use_import=True,
        wait=True,
        timeout=60,
    )
    try:
        # The SDK returns once the import is accepted; the task then runs.
        conn.image.wait_for_status(image, "active", failures=["queued"], interval=0.5, wait=60)
        shown = conn.image.get_image(image.id)
        assert shown.size == len(data)
        assert shown.checksum == hashlib.md5(data, usedforsecurity=False).hexdigest()
        assert shown.hash_value == hashlib.sha512(data).hexdigest()
        assert b"".join(conn.image.download_image(shown, stream=True).iter_content(65536)) == data
        # The import ran as a task that names the image and the method.
        tasks = conn.image.get(f"/images/{image.id}/tasks").json()["tasks"]
        assert [(t["type"], t["status"]) for t in tasks] == [("api_image_import", "success")]
        assert tasks[0]["input"]["import_req"]["method"]["name"] == "glance-direct"
        assert tasks[0]["result"] == {"image_id": image.id}
    finally:
        conn.image.delete_image(image.id)


def test_import_of_an_unstaged_image_is_a_conflict(conn: Any) -> None:
    image = conn.image.create_image(name="never-staged", disk_format="raw", container_format="bare")
    try:
        # The SDK hands back the raw response of an import.
        response = conn.image.import_image(image, method="glance-direct")
        assert response.status_code == 409
        assert "staged" in response.text
        assert conn.image.get_image(image.id).status == "queued"
    finally:
        conn.image.delete_image(image.id)
