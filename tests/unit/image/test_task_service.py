"""Unit tests of :class:`nimbus.image.TaskService`: Glance's tasks on SQLite."""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
from typing import Any

import pytest
import sqlalchemy as sa
from oslo_config import cfg

from nimbus import exception
from nimbus.context import RequestContext
from nimbus.db import Database
from nimbus.image import ImageService, TaskService, models, tasks
from nimbus.image.data import ImageData
from nimbus.policy import Enforcer
from tests.unit.image.conftest import FakeWeb, InlineExecutor

URL = "http://images.example/cirros.qcow2"
DATA = b"\0" * 5000


def body(url: str = URL, **properties: Any) -> dict[str, Any]:
    return {
        "type": "import",
        "input": {
            "import_from": url,
            "import_from_format": "qcow2",
            "image_properties": {
                "name": "from-task",
                "disk_format": "raw",
                "container_format": "bare",
                **properties,
            },
        },
    }


def _age(database: Database, task_id: str, seconds: float) -> None:
    then = datetime.datetime.now(datetime.UTC).replace(tzinfo=None) - datetime.timedelta(
        seconds=seconds
    )
    with database.writer() as session:
        session.execute(
            sa.update(models.Task).where(models.Task.id == task_id).values(updated_at=then)
        )


def test_an_import_task_makes_an_active_image_from_the_url(
    task_service: TaskService, fake_service: ImageService, ctx: RequestContext, web: FakeWeb
) -> None:
    web.pages[URL] = DATA
    created = task_service.create(ctx, body())
    assert created["status"] == "pending"
    assert created["self"] == f"/v2/tasks/{created['id']}"
    assert created["request_id"] == ctx.request_id and created["user_id"] == "u1"
    task = task_service.get(ctx, created["id"])
    assert task["status"] == "success", task["message"]
    assert task["message"] == ""
    image = fake_service.get(ctx, task["result"]["image_id"])
    assert task["image_id"] == image["id"]
    assert image["status"] == "active" and image["name"] == "from-task"
    assert image["size"] == len(DATA)
    assert image["checksum"] == hashlib.md5(DATA, usedforsecurity=False).hexdigest()
    assert task["expires_at"] is not None


def test_an_unreachable_source_fails_the_task_and_leaves_no_image(
    task_service: TaskService, fake_service: ImageService, ctx: RequestContext
) -> None:
    task = task_service.create(ctx, body("http://does-not.exist/x.qcow2"))
    task = task_service.get(ctx, task["id"])
    assert task["status"] == "failure"
    assert "Name or service not known" in task["message"]
    assert task["result"] is None
    with pytest.raises(exception.NotFound):
        fake_service.get(ctx, task["image_id"])
    assert fake_service.list(ctx, fake_service.list_query({}))[0] == []


def test_the_storage_quota_fails_the_task(
    task_service: TaskService, ctx: RequestContext, web: FakeWeb
) -> None:
    task_service.conf.set_override("image_size_cap", 100, group="image")
    web.pages[URL] = DATA
    task = task_service.get(ctx, task_service.create(ctx, body())["id"])
    assert task["status"] == "failure"
    assert "limit" in task["message"]


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (None, "Body expected"),
        ([], "JSON object"),
        ({"input": {}}, "Task 'type' is required"),
        ({"type": "import"}, "Task 'input' is required"),
        ({"type": "api_image_import", "input": {}}, "Invalid type value"),
        ({"type": "import", "input": {}, "status": "success"}, "read-only"),
        ({"type": "import", "input": "x"}, "JSON object"),
        ({"type": "import", "input": {"import_from": URL}}, "import_from_format"),
        (body("file:///etc/passwd"), "File based imports are not allowed"),
        (body("ftp://host/x"), "supported uri"),
        (body("http:///x"), "does not pass filtering"),
        (body(disk_format="floppy"), "image_properties"),
        (body(status="active"), "image_properties"),
    ],
)
def test_create_validates_the_body(
    task_service: TaskService, ctx: RequestContext, document: Any, reason: str
) -> None:
    with pytest.raises(exception.BadRequest, match=reason):
        task_service.create(ctx, document)


def test_another_project_neither_sees_nor_lists_a_task(
    task_service: TaskService,
    ctx: RequestContext,
    member_ctx: RequestContext,
    executor: InlineExecutor,
) -> None:
    executor.hold = True
    mine = task_service.create(member_ctx, body())
    theirs = task_service.create(
        RequestContext(user_id="u3", project_id="p3", roles=["member"]), body()
    )
    with pytest.raises(exception.NotFound, match="was not found"):
        task_service.get(member_ctx, theirs["id"])
    listed, _ = task_service.list(member_ctx, task_service.query({}))
    assert [task["id"] for task in listed] == [mine["id"]]
    # Its id is no marker for them either.
    with pytest.raises(exception.BadRequest):
        task_service.list(member_ctx, task_service.query({"marker": theirs["id"]}))
    # Cloud admins see every project's tasks (as Glance).
    listed, _ = task_service.list(ctx, task_service.query({}))
    assert {task["id"] for task in listed} == {mine["id"], theirs["id"]}


def test_the_default_policy_keeps_the_tasks_api_to_cloud_admins(
    conf: cfg.ConfigOpts, task_service: TaskService, ctx: RequestContext, member_ctx: RequestContext
) -> None:
    guarded = dataclasses.replace(task_service, enforcer=Enforcer(conf))
    task = guarded.create(ctx, body())
    assert guarded.get(ctx, task["id"])["id"] == task["id"]
    for call in (
        lambda: guarded.create(member_ctx, body()),
        lambda: guarded.get(member_ctx, task["id"]),
        lambda: guarded.list(member_ctx, guarded.query({})),
    ):
        with pytest.raises(exception.Forbidden):
            call()


def test_a_forbidden_caller_gets_403_before_its_body_is_checked(
    conf: cfg.ConfigOpts, task_service: TaskService, member_ctx: RequestContext
) -> None:
    guarded = dataclasses.replace(task_service, enforcer=Enforcer(conf))
    with pytest.raises(exception.Forbidden):
        guarded.create(member_ctx, None)


def test_list_filters_sorts_and_pages(
    task_service: TaskService, ctx: RequestContext, executor: InlineExecutor, web: FakeWeb
) -> None:
    web.pages[URL] = DATA
    done = [task_service.create(ctx, body())["id"] for _ in range(2)]
    executor.hold = True
    pending = [task_service.create(ctx, body())["id"] for _ in range(3)]
    listed, more = task_service.list(ctx, task_service.query({"status": "pending"}))
    assert {t["id"] for t in listed} == set(pending) and more is False
    assert all("input" not in t and "message" not in t for t in listed)
    listed, _ = task_service.list(ctx, task_service.query({"status": "success"}))
    assert {t["id"] for t in listed} == set(done)
    everything = []
    marker = None
    while True:
        params = {"limit": "2", "sort_key": "created_at", "sort_dir": "asc"}
        if marker:
            params["marker"] = marker
        page, more = task_service.list(ctx, task_service.query(params))
        everything += [t["id"] for t in page]
        if not more:
            break
        marker = page[-1]["id"]
    assert everything == done + pending


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"limit": "x"}, "must be an integer"),
        ({"limit": "-1"}, "must be positive"),
        ({"marker": "nope"}, "Invalid marker format"),
        ({"sort_key": "input"}, "Invalid sort key"),
        ({"sort_dir": "up"}, "Invalid sort direction"),
        ({"status": "done"}, "Invalid status value"),
        ({"type": "copy"}, "Invalid type value"),
    ],
)
def test_list_refuses_bad_parameters(
    task_service: TaskService, params: dict[str, str], reason: str
) -> None:
    with pytest.raises(exception.BadRequest, match=reason):
        task_service.query(params)


def test_a_marker_that_names_no_task_is_a_bad_request(
    task_service: TaskService, ctx: RequestContext
) -> None:
    query = task_service.query({"marker": "0b9f5e7c-0000-4000-8000-000000000001"})
    with pytest.raises(exception.BadRequest, match="was not found"):
        task_service.list(ctx, query)


def test_recovery_fails_dead_tasks_and_keeps_this_processes_live_ones(
    task_service: TaskService, ctx: RequestContext, executor: InlineExecutor, database: Database
) -> None:
    executor.hold = True
    live = task_service.create(ctx, body())["id"]
    dead = task_service.create(ctx, body())["id"]
    # The process that queued "dead" is gone: this one no longer holds it.
    task_service._alive.discard(dead)
    _age(database, live, 600)
    _age(database, dead, 600)
    assert task_service.recover(older_than=60) == 1
    assert task_service.get(ctx, live)["status"] == "pending"
    failed = task_service.get(ctx, dead)
    assert failed["status"] == "failure" and "stopped" in failed["message"]
    assert failed["expires_at"] is not None
    # A worker that picks a failed task up again does nothing.
    for work in executor.held:
        work()
    assert task_service.get(ctx, dead)["status"] == "failure"


def test_start_up_recovery_fails_every_unfinished_task(
    task_service: TaskService, ctx: RequestContext, executor: InlineExecutor
) -> None:
    executor.hold = True
    task = task_service.create(ctx, body())["id"]
    assert task_service.recover(older_than=0) == 1
    assert task_service.get(ctx, task)["status"] == "failure"


def test_expired_tasks_are_removed(
    task_service: TaskService, ctx: RequestContext, database: Database
) -> None:
    task = task_service.create(ctx, body("http://does-not.exist/"))["id"]
    assert task_service.expire() == 0
    past = datetime.datetime(2000, 1, 1)
    with database.writer() as session:
        session.execute(
            sa.update(models.Task).where(models.Task.id == task).values(expires_at=past)
        )
    assert task_service.recover_and_expire(older_than=60) == 1
    with pytest.raises(exception.NotFound):
        task_service.get(ctx, task)


def test_the_periodic_tasks_include_the_task_recovery(
    conf: cfg.ConfigOpts, task_service: TaskService, fake_service: ImageService
) -> None:
    found = tasks.periodic_tasks(conf, ImageData(fake_service), task_service)
    assert [task.name for task in found] == ["image.recover_stale_uploads", "image.recover_tasks"]


def test_stale_after_must_exceed_the_recovery_interval(conf: cfg.ConfigOpts) -> None:
    conf.set_override("upload_recovery_interval", 90.0, group="image")
    with pytest.raises(exception.ValidationError, match="upload_recovery_interval"):
        tasks.check_options(conf)


def test_recovery_deletes_the_half_made_image_of_a_dead_import(
    task_service: TaskService,
    fake_service: ImageService,
    ctx: RequestContext,
    executor: InlineExecutor,
    database: Database,
) -> None:
    executor.hold = True
    task = task_service.create(ctx, body())["id"]
    # Its worker made the image, then its process died.
    image = fake_service.create(ctx, {"disk_format": "raw", "container_format": "bare"})
    with database.writer() as session:
        session.execute(
            sa.update(models.Task).where(models.Task.id == task).values(image_id=image["id"])
        )
    task_service._alive.clear()
    _age(database, task, 600)
    assert task_service.recover(older_than=60) == 1
    with pytest.raises(exception.NotFound):
        fake_service.get(ctx, image["id"])
