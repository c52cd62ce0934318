"""Unit tests of ``/v2/tasks`` and the task schemas in Falcon's simulator."""

from __future__ import annotations

from typing import Any

import falcon.testing
import pytest

from tests.unit.api.image.test_images import assert_glance_error
from tests.unit.image.conftest import FakeWeb, InlineExecutor

URL = "http://images.example/cirros.qcow2"


def task_body(url: str = URL, disk_format: str = "qcow2") -> dict[str, Any]:
    return {
        "type": "import",
        "input": {
            "import_from": url,
            "import_from_format": "qcow2",
            "image_properties": {"disk_format": disk_format, "container_format": "bare"},
        },
    }


def test_create_answers_201_with_the_task_and_its_location(
    client: falcon.testing.TestClient, executor: InlineExecutor
) -> None:
    executor.hold = True
    result = client.simulate_post("/v2/tasks", json=task_body())
    assert result.status_code == 201, result.text
    task = result.json
    assert result.headers["location"] == f"/v2/tasks/{task['id']}"
    assert set(task) == {
        "id",
        "type",
        "status",
        "input",
        "result",
        "owner",
        "message",
        "created_at",
        "updated_at",
        "self",
        "schema",
        "request_id",
        "user_id",
    }
    assert (task["status"], task["type"], task["owner"]) == ("pending", "import", "p1")
    assert task["schema"] == "/v2/schemas/task"
    assert task["input"] == task_body()["input"] and task["result"] is None


def test_a_failed_import_shows_failure_with_its_reason(client: falcon.testing.TestClient) -> None:
    task = client.simulate_post("/v2/tasks", json=task_body("http://nowhere.qcow2")).json
    shown = client.simulate_get(f"/v2/tasks/{task['id']}").json
    assert shown["status"] == "failure"
    assert "could not be read" in shown["message"]
    assert shown["expires_at"].endswith("Z")


def test_a_successful_import_names_its_image(
    client: falcon.testing.TestClient, web: FakeWeb
) -> None:
    web.pages[URL] = b"\0" * 200
    task = client.simulate_post("/v2/tasks", json=task_body(disk_format="raw")).json
    shown = client.simulate_get(f"/v2/tasks/{task['id']}").json
    assert shown["status"] == "success", shown["message"]
    image = client.simulate_get(f"/v2/images/{shown['result']['image_id']}").json
    assert (image["status"], image["size"]) == ("active", 200)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (None, 400),
        ({"type": "import"}, 400),
        ({"type": "nope", "input": {}}, 400),
        (task_body("file:///etc/shadow"), 400),
    ],
)
def test_create_errors_in_glances_shape(
    client: falcon.testing.TestClient, body: Any, code: int
) -> None:
    result = client.simulate_post("/v2/tasks", json=body)
    assert_glance_error(result, code)


def test_the_list_pages_in_glances_shape(
    client: falcon.testing.TestClient, executor: InlineExecutor
) -> None:
    executor.hold = True
    made = [client.simulate_post("/v2/tasks", json=task_body()).json["id"] for _ in range(3)]
    page = client.simulate_get("/v2/tasks", params={"limit": "2", "sort_dir": "asc"}).json
    assert [t["id"] for t in page["tasks"]] == made[:2]
    assert page["schema"] == "/v2/schemas/tasks"
    assert page["first"].startswith("/v2/tasks?")
    assert "marker=" + made[1] in page["next"]
    assert "input" not in page["tasks"][0]
    rest = client.simulate_get(
        "/v2/tasks", params={"limit": "2", "sort_dir": "asc", "marker": made[1]}
    ).json
    assert [t["id"] for t in rest["tasks"]] == made[2:]
    assert "next" not in rest


@pytest.mark.parametrize(
    "params", [{"limit": "a"}, {"marker": "x"}, {"sort_key": "bad"}, {"status": "bad"}]
)
def test_bad_list_parameters_are_400(
    client: falcon.testing.TestClient, params: dict[str, str]
) -> None:
    assert_glance_error(client.simulate_get("/v2/tasks", params=params), 400)


def test_unknown_task_is_404_and_delete_is_405(client: falcon.testing.TestClient) -> None:
    missing = "0b9f5e7c-0000-4000-8000-000000000001"
    assert "was not found" in assert_glance_error(client.simulate_get(f"/v2/tasks/{missing}"), 404)
    result = client.simulate_delete(f"/v2/tasks/{missing}")
    assert_glance_error(result, 405)
    assert "DELETE" not in result.headers["allow"] and "GET" in result.headers["allow"]


def test_another_project_cannot_see_a_task(
    client: falcon.testing.TestClient, executor: InlineExecutor
) -> None:
    executor.hold = True
    task = client.simulate_post("/v2/tasks", json=task_body()).json
    member = {"X-Auth-Token": "member"}
    # The test app allows every rule: only the project isolation stands between.
    assert_glance_error(client.simulate_get(f"/v2/tasks/{task['id']}", headers=member), 404)
    listed = client.simulate_get("/v2/tasks", headers=member).json["tasks"]
    assert listed == []


def test_task_schemas(client: falcon.testing.TestClient) -> None:
    task = client.simulate_get("/v2/schemas/task").json
    assert task["name"] == "task"
    assert {"input", "result", "message", "expires_at"} <= set(task["properties"])
    tasks = client.simulate_get("/v2/schemas/tasks").json
    item = tasks["properties"]["tasks"]["items"]
    assert "input" not in item["properties"] and "status" in item["properties"]
