"""Uploads' claims, heartbeats and recovery, through the image service's SQL methods."""

from __future__ import annotations

import datetime
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from oslo_config import cfg

from nimbus import exception
from nimbus.context import RequestContext
from nimbus.db import Database
from nimbus.drivers.image.file import FileStore
from nimbus.image import ImageData, ImageService, models, tasks
from nimbus.image.data import reading_into
from nimbus.image.service import StoredImage, utcnow

TIMEOUT = 10.0


def _create(service: ImageService, ctx: RequestContext, name: str = "img") -> str:
    image = service.create(ctx, {"name": name, "disk_format": "raw", "container_format": "bare"})
    return str(image["id"])


def _row(database: Database, image_id: str) -> models.Image | None:
    with database.reader() as session:
        return session.get(models.Image, image_id)


def _age(database: Database, image_id: str, seconds: float) -> None:
    """Make the image's heartbeat *seconds* old."""
    when = utcnow() - datetime.timedelta(seconds=seconds)
    database.write(
        lambda s: s.execute(
            sa.update(models.Image).where(models.Image.id == image_id).values(updated_at=when)
        )
    )


def _status(database: Database, image_id: str) -> str:
    row = _row(database, image_id)
    assert row is not None
    return row.status


def _files(store: FileStore) -> list[str]:
    return sorted(os.listdir(store.datadir))


# -- the service's methods ---------------------------------------------------------


def test_a_claim_holds_the_image_for_one_upload(
    service: ImageService, ctx: RequestContext, database: Database
) -> None:
    image_id = _create(service, ctx)
    claim = service.claim_upload(ctx, image_id, 10)
    row = _row(database, image_id)
    assert row is not None
    assert (row.status, row.upload_id) == ("saving", claim.upload_id)
    assert claim.disk_format == "raw"
    with pytest.raises(exception.InvalidState):
        service.claim_upload(ctx, image_id, 10)


def test_a_claim_reads_the_declared_hashes_and_the_quota(
    conf: cfg.ConfigOpts, service: ImageService, ctx: RequestContext
) -> None:
    conf.set_override("image_storage_quota", 100, group="image")
    image = service.create(
        ctx,
        {
            "name": "declared",
            "disk_format": "raw",
            "container_format": "bare",
            "owner_specified.openstack.md5": "ABC",
            "other": "x",
        },
    )
    claim = service.claim_upload(ctx, image["id"], 10)
    assert claim.declared == {"md5": "ABC"}
    assert (claim.remaining, claim.used) == (100, 0)
    other = _create(service, ctx, "big")
    with pytest.raises(exception.QuotaExceeded):
        service.claim_upload(ctx, other, 101)


def test_a_heartbeat_refreshes_only_its_own_upload(
    service: ImageService, ctx: RequestContext, database: Database
) -> None:
    image_id = _create(service, ctx)
    claim = service.claim_upload(ctx, image_id, None)
    _age(database, image_id, 120)
    service.heartbeat_upload(image_id, claim.upload_id)
    row = _row(database, image_id)
    assert row is not None
    assert utcnow() - row.updated_at < datetime.timedelta(seconds=30)
    with pytest.raises(exception.InvalidState, match="went back to queued"):
        service.heartbeat_upload(image_id, "another-upload")


def test_a_heartbeat_of_a_deleted_image_says_not_found(
    service: ImageService, ctx: RequestContext
) -> None:
    image_id = _create(service, ctx)
    claim = service.claim_upload(ctx, image_id, None)
    service.delete(ctx, image_id)
    with pytest.raises(exception.NotFound):
        service.heartbeat_upload(image_id, claim.upload_id)


def test_recovery_takes_only_uploads_with_an_old_heartbeat(
    service: ImageService, ctx: RequestContext, database: Database
) -> None:
    dead, live, queued = _create(service, ctx), _create(service, ctx), _create(service, ctx)
    service.claim_upload(ctx, dead, None)
    live_claim = service.claim_upload(ctx, live, None)
    _age(database, dead, 120)
    _age(database, live, 30)
    _age(database, queued, 120)
    assert service.recover_stale_uploads(older_than=60) == 1
    dead_row, live_row = _row(database, dead), _row(database, live)
    assert dead_row is not None and live_row is not None
    assert (dead_row.status, dead_row.upload_id) == ("queued", None)
    assert (live_row.status, live_row.upload_id) == ("saving", live_claim.upload_id)
    assert _status(database, queued) == "queued"
    assert service.recover_stale_uploads(older_than=60) == 0
    # 0 takes every upload: only for a cloud where nothing can be uploading.
    assert service.recover_stale_uploads(older_than=0) == 1
    assert _status(database, live) == "queued"


def test_an_upload_that_lost_its_image_cannot_finish_or_release_it(
    service: ImageService, ctx: RequestContext, database: Database
) -> None:
    image_id = _create(service, ctx)
    lost = service.claim_upload(ctx, image_id, None)
    assert service.recover_stale_uploads(older_than=0) == 1
    # A new upload claims the image; the old one must not touch it.
    current = service.claim_upload(ctx, image_id, None)
    with pytest.raises(exception.InvalidState):
        service.finish_upload(image_id, lost.upload_id, {"status": "active", "size": 1})
    service.release_upload(image_id, lost.upload_id)
    row = _row(database, image_id)
    assert row is not None
    assert (row.status, row.upload_id) == ("saving", current.upload_id)
    image = service.finish_upload(
        image_id, current.upload_id, {"status": "active", "size": 4, "upload_id": None}
    )
    assert (image["status"], image["size"]) == ("active", 4)


def test_release_puts_the_image_back_to_queued(
    service: ImageService, ctx: RequestContext, database: Database
) -> None:
    image_id = _create(service, ctx)
    claim = service.claim_upload(ctx, image_id, None)
    service.release_upload(image_id, claim.upload_id)
    assert _status(database, image_id) == "queued"


def test_finishing_an_upload_of_a_deleted_image_says_not_found(
    service: ImageService, ctx: RequestContext
) -> None:
    image_id = _create(service, ctx)
    claim = service.claim_upload(ctx, image_id, None)
    service.delete(ctx, image_id)
    with pytest.raises(exception.NotFound, match="deleted"):
        service.finish_upload(image_id, claim.upload_id, {"status": "active"})


def test_load_for_download_returns_what_a_download_needs(
    service: ImageService, ctx: RequestContext
) -> None:
    image_id = _create(service, ctx)
    assert service.load_for_download(ctx, image_id) == StoredImage("queued", (), None, None)
    with pytest.raises(exception.NotFound):
        service.load_for_download(ctx, "no-such-image")


# -- the data path's heartbeat -------------------------------------------------------


class Clock:
    """Monotonic seconds for ImageData, moved by the test's reader."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _reader(chunks: list[bytes], step: Callable[[], None] = lambda: None) -> Any:
    def read(size: int) -> bytes:
        step()
        return chunks.pop(0) if chunks else b""

    return reading_into(read)


def test_an_upload_beats_at_most_once_per_interval(
    conf: cfg.ConfigOpts, service: ImageService, ctx: RequestContext, monkeypatch: Any
) -> None:
    conf.set_override("upload_heartbeat_interval", 3.0, group="image")
    beats: list[float] = []
    clock = Clock()
    real = service.heartbeat_upload

    def spy(image_id: str, upload_id: str) -> None:
        beats.append(clock.now)
        real(image_id, upload_id)

    monkeypatch.setattr(service, "heartbeat_upload", spy)
    data = ImageData(service, clock=clock)

    def tick() -> None:
        clock.now += 1.0

    image_id = _create(service, ctx)
    image = data.upload(ctx, image_id, _reader([b"x" * 10] * 10, tick), content_length=None)
    assert image["status"] == "active"
    assert beats == [3.0, 6.0, 9.0]
    # Many chunks in no time: no database work per chunk.
    beats.clear()
    other = _create(service, ctx)
    data.upload(ctx, other, _reader([b"y" * 10] * 50), content_length=None)
    assert beats == []


def test_an_upload_that_lost_its_image_fails_cleanly_when_it_finishes(
    service: ImageService, ctx: RequestContext, database: Database, store: FileStore
) -> None:
    # Recovered under it, as when it stalled longer than upload_stale_after:
    # with no heartbeat due, it finds out only when it finishes.
    data = ImageData(service, clock=lambda: 0.0)
    image_id = _create(service, ctx)
    started, release = threading.Event(), threading.Event()
    chunks = [b"a" * 1000, b"b" * 1000]

    def read(size: int) -> bytes:
        if len(chunks) == 1:
            started.set()
            assert release.wait(TIMEOUT)
        return chunks.pop(0) if chunks else b""

    errors: list[BaseException] = []

    def upload() -> None:
        try:
            data.upload(ctx, image_id, reading_into(read), content_length=None)
        except BaseException as ex:
            errors.append(ex)

    thread = threading.Thread(target=upload)
    thread.start()
    assert started.wait(TIMEOUT)
    assert service.recover_stale_uploads(older_than=0) == 1
    release.set()
    thread.join(TIMEOUT)
    assert len(errors) == 1 and isinstance(errors[0], exception.InvalidState), errors
    row = _row(database, image_id)
    assert row is not None
    assert (row.status, row.size) == ("queued", None)
    assert service.stored_locations(image_id) == {}
    assert _files(store) == []
    again = data.upload(ctx, image_id, _reader([b"new data"]), content_length=None)
    assert (again["status"], again["size"]) == ("active", 8)


def test_an_upload_that_lost_its_image_stops_at_its_next_heartbeat(
    conf: cfg.ConfigOpts, service: ImageService, ctx: RequestContext, store: FileStore
) -> None:
    conf.set_override("upload_heartbeat_interval", 1.0, group="image")
    clock = Clock()
    data = ImageData(service, clock=clock)
    image_id = _create(service, ctx)
    reads = [0]

    def read(size: int) -> bytes:
        reads[0] += 1
        if reads[0] == 2:
            service.recover_stale_uploads(older_than=0)
            clock.now += 5.0
        return b"z" * 100 if reads[0] < 50 else b""

    with pytest.raises(exception.InvalidState):
        data.upload(ctx, image_id, reading_into(read), content_length=None)
    assert reads[0] == 2  # it read no more after the heartbeat failed
    assert _files(store) == []


# -- the periodic task -------------------------------------------------------------


def _partial(store: FileStore, image_id: str, age: float) -> Path:
    path = Path(store.datadir) / f".{image_id}.0123456789abcdef.partial"
    path.write_bytes(b"half an upload")
    when = time.time() - age
    os.utime(path, (when, when))
    return path


def test_the_task_recovers_dead_uploads_and_their_partial_files_only(
    conf: cfg.ConfigOpts,
    service: ImageService,
    ctx: RequestContext,
    database: Database,
    store: FileStore,
) -> None:
    conf.set_override("upload_stale_after", 60.0, group="image")
    conf.set_override("upload_recovery_interval", 15.0, group="image")
    (task,) = tasks.periodic_tasks(conf, ImageData(service))
    assert (task.name, task.interval, task.at_start) == ("image.recover_stale_uploads", 15.0, True)
    dead, live = _create(service, ctx), _create(service, ctx)
    service.claim_upload(ctx, dead, None)
    service.claim_upload(ctx, live, None)
    _age(database, dead, 90)
    _age(database, live, 20)
    dead_file, live_file = _partial(store, dead, 90), _partial(store, live, 20)
    assert task.func() == 1
    assert (_status(database, dead), _status(database, live)) == ("queued", "saving")
    assert not dead_file.exists()
    assert live_file.exists()


@pytest.mark.parametrize(("heartbeat", "stale"), [(10.0, 10.0), (30.0, 20.0)])
def test_stale_after_must_exceed_the_heartbeat_interval(
    conf: cfg.ConfigOpts, service: ImageService, heartbeat: float, stale: float
) -> None:
    conf.set_override("upload_heartbeat_interval", heartbeat, group="image")
    conf.set_override("upload_stale_after", stale, group="image")
    with pytest.raises(exception.ValidationError, match="upload_stale_after"):
        tasks.periodic_tasks(conf, ImageData(service))


def test_the_defaults_pass_the_check(conf: cfg.ConfigOpts) -> None:
    tasks.check_options(conf)
    assert conf.image.upload_stale_after > conf.image.upload_heartbeat_interval
