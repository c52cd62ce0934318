"""Unit tests of the interoperable import: staging, ``glance-direct`` and its recovery."""

from __future__ import annotations

import datetime
import hashlib
from typing import Any

import pytest
import sqlalchemy as sa

from nimbus import exception
from nimbus.context import RequestContext
from nimbus.db import Database
from nimbus.drivers.image.fake import FakeStore
from nimbus.image import ImageService, TaskService, models, patch, schema
from tests.unit.image.conftest import InlineExecutor

DATA = b"staged bytes " * 500
GLANCE_DIRECT = {"method": {"name": "glance-direct"}, "all_stores": True}


def _reader(data: bytes) -> Any:
    offset = 0

    def readinto(view: memoryview) -> int:
        nonlocal offset
        count = min(len(view), len(data) - offset)
        view[:count] = data[offset : offset + count]
        offset += count
        return count

    return readinto


def staged(task_service: TaskService, ctx: RequestContext, data: bytes = DATA) -> str:
    images = task_service.images
    image = images.create(ctx, {"disk_format": "raw", "container_format": "bare"})
    task_service.data.upload(ctx, image["id"], _reader(data), content_length=len(data), stage=True)
    return str(image["id"])


def test_staging_leaves_the_image_uploading_and_counts_against_the_quota(
    task_service: TaskService, ctx: RequestContext
) -> None:
    image_id = staged(task_service, ctx)
    image = task_service.images.get(ctx, image_id)
    assert image["status"] == "uploading"
    assert image["size"] == len(DATA)
    assert "stores" not in image
    task_service.conf.set_override("image_storage_quota", len(DATA) + 10, group="image")
    other = task_service.images.create(ctx, {"disk_format": "raw", "container_format": "bare"})
    with pytest.raises(exception.OverLimit):
        task_service.data.upload(ctx, other["id"], _reader(DATA), content_length=len(DATA))


def test_glance_direct_activates_the_staged_image_through_a_task(
    task_service: TaskService, ctx: RequestContext
) -> None:
    image_id = staged(task_service, ctx)
    task = task_service.import_image(ctx, image_id, GLANCE_DIRECT)
    assert task["type"] == "api_image_import" and task["image_id"] == image_id
    image = task_service.images.get(ctx, image_id)
    assert image["status"] == "active"
    assert image["checksum"] == hashlib.md5(DATA, usedforsecurity=False).hexdigest()
    assert image["stores"] == "file"
    assert "os_glance_import_task" not in image
    (shown,) = task_service.list_for_image(ctx, image_id)
    assert shown["status"] == "success" and shown["result"] == {"image_id": image_id}
    assert shown["request_id"] == ctx.request_id
    assert shown["input"]["import_req"] == GLANCE_DIRECT


def test_an_import_in_progress_locks_the_image(
    task_service: TaskService, ctx: RequestContext, executor: InlineExecutor
) -> None:
    image_id = staged(task_service, ctx)
    executor.hold = True
    task = task_service.import_image(ctx, image_id, GLANCE_DIRECT)
    image = task_service.images.get(ctx, image_id)
    assert image["status"] == "importing"
    assert image["os_glance_import_task"] == task["id"]
    with pytest.raises(exception.Conflict):
        task_service.import_image(ctx, image_id, GLANCE_DIRECT)
    # Only the one task: a refused import leaves none behind.
    assert len(task_service.list_for_image(ctx, image_id)) == 1


def test_changed_staged_data_fails_the_import_and_requeues_the_image(
    task_service: TaskService, ctx: RequestContext, fake_store: FakeStore, database: Database
) -> None:
    image_id = staged(task_service, ctx)
    with database.writer() as session:
        session.execute(
            sa.update(models.Image).where(models.Image.id == image_id).values(os_hash_value="0")
        )
    task_service.import_image(ctx, image_id, GLANCE_DIRECT)
    (task,) = task_service.list_for_image(ctx, image_id)
    assert task["status"] == "failure" and "changed since it was staged" in task["message"]
    image = task_service.images.get(ctx, image_id)
    assert (image["status"], image["size"], image["checksum"]) == ("queued", None, None)


@pytest.mark.parametrize(
    ("body", "error", "reason"),
    [
        (None, exception.BadRequest, "Body expected"),
        ({}, exception.BadRequest, "'method'"),
        ({"method": {"name": "web-download"}}, exception.BadRequest, "not supported"),
        ({"method": {"name": "copy-image"}}, exception.BadRequest, "not supported"),
        ({**GLANCE_DIRECT, "extra": 1}, exception.BadRequest, "Additional properties"),
        ({**GLANCE_DIRECT, "all_stores_must_succeed": False}, exception.BadRequest, "several"),
    ],
)
def test_import_validates_its_body(
    task_service: TaskService, ctx: RequestContext, body: Any, error: type, reason: str
) -> None:
    image_id = staged(task_service, ctx)
    with pytest.raises(error, match=reason):
        task_service.import_image(ctx, image_id, body)
    assert task_service.images.get(ctx, image_id)["status"] == "uploading"


def test_glance_direct_needs_staged_data(task_service: TaskService, ctx: RequestContext) -> None:
    image = task_service.images.create(ctx, {"disk_format": "raw", "container_format": "bare"})
    with pytest.raises(exception.Conflict, match="staged"):
        task_service.import_image(ctx, image["id"], GLANCE_DIRECT)
    assert task_service.list_for_image(ctx, image["id"]) == []


def test_another_project_can_neither_stage_nor_import(
    task_service: TaskService, ctx: RequestContext, member_ctx: RequestContext
) -> None:
    image = task_service.images.create(
        ctx, {"disk_format": "raw", "container_format": "bare", "visibility": "private"}
    )
    with pytest.raises(exception.NotFound):
        task_service.data.upload(
            member_ctx, image["id"], _reader(DATA), content_length=10, stage=True
        )
    image_id = staged(task_service, ctx)
    with pytest.raises(exception.NotFound):
        task_service.import_image(member_ctx, image_id, GLANCE_DIRECT)
    with pytest.raises(exception.NotFound):
        task_service.list_for_image(member_ctx, image_id)


def test_a_dead_import_is_failed_and_its_image_requeued_by_the_recovery(
    task_service: TaskService, ctx: RequestContext, executor: InlineExecutor, database: Database
) -> None:
    image_id = staged(task_service, ctx)
    executor.hold = True
    task = task_service.import_image(ctx, image_id, GLANCE_DIRECT)
    # Its process died: nobody holds the task any more.
    task_service._alive.clear()
    past = datetime.datetime.now(datetime.UTC).replace(tzinfo=None) - datetime.timedelta(hours=1)
    with database.writer() as session:
        session.execute(
            sa.update(models.Task).where(models.Task.id == task["id"]).values(updated_at=past)
        )
    assert task_service.recover(older_than=60) == 1
    assert task_service.list_for_image(ctx, image_id)[0]["status"] == "failure"
    image = task_service.images.get(ctx, image_id)
    assert image["status"] == "queued"
    assert "os_glance_import_task" not in image


def test_deleting_a_staged_image_removes_its_data(
    task_service: TaskService,
    fake_service: ImageService,
    ctx: RequestContext,
    fake_store: FakeStore,
    database: Database,
) -> None:
    image_id = staged(task_service, ctx)
    (location,) = fake_service.stored_locations(image_id).values()
    fake_store.get(location).close()
    fake_service.delete(ctx, image_id)
    with pytest.raises(exception.NotFound):
        fake_store.get(location)


def test_users_may_not_set_glances_own_properties(
    fake_service: ImageService, ctx: RequestContext
) -> None:
    with pytest.raises(exception.Forbidden, match="reserved"):
        schema.create_values(fake_service.conf, {"os_glance_import_task": "x"})
    image = fake_service.create(ctx, {"disk_format": "raw", "container_format": "bare"})
    changes = patch.parse(
        [{"op": "add", "path": "/os_glance_foo", "value": "x"}], patch.MEDIA_TYPES[0]
    )
    with pytest.raises(exception.Forbidden, match="reserved"):
        fake_service.update(ctx, image["id"], changes)
