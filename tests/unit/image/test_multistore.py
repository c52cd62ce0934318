"""Unit tests of several image stores: loading them, uploads, imports, copies, removal."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from typing import Any

import pytest
from oslo_config import cfg

from nimbus import exception
from nimbus.context import RequestContext
from nimbus.db import Database
from nimbus.drivers.image.base import ImageStore
from nimbus.drivers.image.fake import FakeStore
from nimbus.drivers.image.file import FileStore
from nimbus.drivers.image.types import Capacity, DataReader, StoredData
from nimbus.image import ImageData, ImageService, TaskService
from nimbus.image.stores import Stores, load_stores
from tests.unit.image.conftest import AllowAll, InlineExecutor

DATA = os.urandom(20_000)
COPY = {"method": {"name": "copy-image"}}


def _reader(data: bytes) -> Any:
    offset = 0

    def readinto(view: memoryview) -> int:
        nonlocal offset
        count = min(len(view), len(data) - offset)
        view[:count] = data[offset : offset + count]
        offset += count
        return count

    return readinto


class BrokenStore(FakeStore):
    """A fake store whose writes fail after some bytes (to test clean-up)."""

    def add(self, image_id: str, chunks: Iterable[bytes | memoryview]) -> StoredData:
        def failing() -> Iterable[bytes | memoryview]:
            for chunk in chunks:
                yield chunk
                raise exception.StorageFull(store=self.store_id, reason="full")

        return super().add(image_id, failing())


@pytest.fixture
def stores(conf: cfg.ConfigOpts) -> Stores:
    return Stores(
        {
            "fast": FakeStore(conf, store_id="fast"),
            "cheap": FakeStore(conf, store_id="cheap"),
            "broken": BrokenStore(conf, store_id="broken"),
        },
        "fast",
        multiple=True,
    )


@pytest.fixture
def multi(conf: cfg.ConfigOpts, database: Database, stores: Stores) -> ImageService:
    return ImageService(conf, database, stores.default_store, AllowAll(), stores=stores)


@pytest.fixture
def tasks(multi: ImageService, executor: InlineExecutor) -> TaskService:
    return TaskService(
        multi.conf, multi.db, multi.enforcer, multi, ImageData(multi), executor=executor
    )


def _image(service: ImageService, ctx: RequestContext) -> str:
    return str(service.create(ctx, {"disk_format": "raw", "container_format": "bare"})["id"])


def _uploaded(tasks: TaskService, ctx: RequestContext, store: str | None = None) -> str:
    image_id = _image(tasks.images, ctx)
    tasks.data.upload(ctx, image_id, _reader(DATA), content_length=len(DATA), store_id=store)
    return image_id


def _staged(tasks: TaskService, ctx: RequestContext, store: str | None = None) -> str:
    image_id = _image(tasks.images, ctx)
    tasks.data.upload(
        ctx, image_id, _reader(DATA), content_length=len(DATA), stage=True, store_id=store
    )
    return image_id


def _read(tasks: TaskService, ctx: RequestContext, image_id: str) -> bytes:
    download = tasks.data.download(ctx, image_id)
    assert download.body is not None
    try:
        return b"".join(iter(lambda: download.body.read(4096), b""))  # type: ignore[union-attr]
    finally:
        download.body.close()


# -- loading ------------------------------------------------------------------


def test_without_enabled_stores_the_one_store_keeps_its_name_as_id(conf: cfg.ConfigOpts) -> None:
    loaded = load_stores(conf)
    assert list(loaded) == ["file"] and loaded.default == "file" and not loaded.multiple
    assert isinstance(loaded.default_store, FileStore)


def test_enabled_stores_each_read_their_own_group(conf: cfg.ConfigOpts, tmp_path: Any) -> None:
    conf.set_override("enabled_stores", ["fast:file", "cheap:file"], group="image")
    conf.set_override("default_store", "cheap", group="image")
    loaded = load_stores(conf)
    assert list(loaded) == ["fast", "cheap"] and loaded.default == "cheap" and loaded.multiple
    fast, cheap = loaded.stores["fast"], loaded.stores["cheap"]
    assert isinstance(fast, FileStore) and isinstance(cheap, FileStore)
    assert fast.datadir != cheap.datadir
    assert fast.datadir.endswith("/image-stores/fast")
    assert (fast.store_id, fast.options_group) == ("fast", "image_store_fast")


def test_a_per_store_option_comes_from_the_stores_group(
    conf: cfg.ConfigOpts, tmp_path: Any
) -> None:
    conf.set_override("enabled_stores", ["a:file", "b:file"], group="image")
    load_stores(conf)  # registers the groups
    conf.set_override("datadir", str(tmp_path / "elsewhere"), group="image_store_b")
    loaded = load_stores(conf)
    assert loaded.stores["b"].datadir == str(tmp_path / "elsewhere")  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("entries", "default", "why"),
    [
        (["fast"], None, "<store id>:<entry-point name>"),
        (["fa/st:file"], None, "<store id>:<entry-point name>"),
        (["fast:file", "fast:file"], None, "listed twice"),
        (["fast:file"], "slow", "not one of"),
    ],
)
def test_a_malformed_store_list_is_refused_with_why(
    conf: cfg.ConfigOpts, entries: list[str], default: str | None, why: str
) -> None:
    conf.set_override("enabled_stores", entries, group="image")
    conf.set_override("default_store", default, group="image")
    with pytest.raises(exception.PluginLoadError, match=why):
        load_stores(conf)


def test_two_file_stores_in_one_directory_are_refused(conf: cfg.ConfigOpts, tmp_path: Any) -> None:
    conf.set_override("enabled_stores", ["a:file", "b:file"], group="image")
    load_stores(conf)
    for group in ("image_store_a", "image_store_b"):
        conf.set_override("datadir", str(tmp_path / "same"), group=group)
    with pytest.raises(exception.PluginLoadError, match="would share"):
        load_stores(conf)


class OldStyleStore(ImageStore):
    """A store written for the older constructor, ``__init__(conf)``."""

    def __init__(self, conf: cfg.ConfigOpts) -> None:
        super().__init__(conf)
        self.data: dict[str, bytes] = {}

    def add(self, image_id: str, chunks: Iterable[bytes | memoryview]) -> StoredData:
        self.data[image_id] = b"".join(bytes(c) for c in chunks)
        return StoredData(f"old://{image_id}", len(self.data[image_id]))

    def get(self, location: str, *, offset: int = 0, length: int | None = None) -> DataReader:
        raise exception.NotFound(kind="image data", id=location)

    def delete(self, location: str) -> None:
        return None

    def capacity(self) -> Capacity:
        return Capacity(None, None)


def test_a_store_with_the_older_constructor_still_loads_once(
    conf: cfg.ConfigOpts, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nimbus import registry

    real = registry.load_driver

    def load(namespace: str, name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "old":
            return OldStyleStore if kwargs.get("invoke") is False else OldStyleStore(*args)
        return real(namespace, name, *args, **kwargs)

    monkeypatch.setattr(registry, "load_driver", load)
    conf.set_override("enabled_stores", ["fast:file", "legacy:old"], group="image")
    loaded = load_stores(conf)
    assert loaded.stores["legacy"].store_id == "legacy"
    assert loaded.stores["legacy"].options_group is None
    conf.set_override("enabled_stores", ["one:old", "two:old"], group="image")
    with pytest.raises(exception.PluginLoadError, match="enabling it twice"):
        load_stores(conf)


# -- uploads and downloads ---------------------------------------------------------


def test_an_upload_goes_to_the_default_store_or_the_one_named(
    tasks: TaskService, ctx: RequestContext, stores: Stores
) -> None:
    first = _uploaded(tasks, ctx)
    second = _uploaded(tasks, ctx, "cheap")
    assert tasks.images.get(ctx, first)["stores"] == "fast"
    assert tasks.images.get(ctx, second)["stores"] == "cheap"
    assert _read(tasks, ctx, second) == DATA


def test_an_upload_to_an_unknown_store_is_a_bad_request_and_leaves_the_image_queued(
    tasks: TaskService, ctx: RequestContext
) -> None:
    image_id = _image(tasks.images, ctx)
    with pytest.raises(exception.BadRequest, match="Store for identifier nope not found"):
        tasks.data.upload(ctx, image_id, _reader(DATA), content_length=len(DATA), store_id="nope")
    assert tasks.images.get(ctx, image_id)["status"] == "queued"


# -- glance-direct to several stores ----------------------------------------------


def test_glance_direct_to_all_stores_writes_each_but_a_failing_one(
    tasks: TaskService, ctx: RequestContext, stores: Stores
) -> None:
    image_id = _staged(tasks, ctx)
    body = {"method": {"name": "glance-direct"}, "all_stores": True}
    body["all_stores_must_succeed"] = False
    assert tasks.import_image(ctx, image_id, body) is not None
    image = tasks.images.get(ctx, image_id)
    assert image["status"] == "active"
    assert image["stores"] == "cheap,fast"
    assert image["os_glance_importing_to_stores"] == ""
    assert image["os_glance_failed_import"] == "broken"
    assert "os_glance_import_task" not in image
    broken = stores.stores["broken"]
    assert isinstance(broken, FakeStore) and broken.ex_partial_writes() == set()


def test_glance_direct_that_must_succeed_everywhere_fails_and_removes_its_copies(
    tasks: TaskService, ctx: RequestContext, stores: Stores
) -> None:
    image_id = _staged(tasks, ctx)
    body = {"method": {"name": "glance-direct"}, "stores": ["cheap", "broken"]}
    task = tasks.import_image(ctx, image_id, body)
    assert task is not None
    image = tasks.images.get(ctx, image_id)
    assert image["status"] == "queued" and "stores" not in image
    assert tasks.images.stored_locations(image_id) == {}
    (shown,) = tasks.list_for_image(ctx, image_id)
    assert shown["status"] == "failure" and "full" in shown["message"]
    cheap = stores.stores["cheap"]
    with pytest.raises(exception.NotFound):
        cheap.get(f"fake://{image_id}")


def test_glance_direct_to_another_store_moves_the_staged_data(
    tasks: TaskService, ctx: RequestContext, stores: Stores
) -> None:
    image_id = _staged(tasks, ctx)
    tasks.import_image(ctx, image_id, {"method": {"name": "glance-direct"}, "stores": ["cheap"]})
    assert tasks.images.get(ctx, image_id)["stores"] == "cheap"
    with pytest.raises(exception.NotFound):
        stores.stores["fast"].get(f"fake://{image_id}")
    assert _read(tasks, ctx, image_id) == DATA


@pytest.mark.parametrize(
    ("body", "header", "error", "text"),
    [
        ({"stores": ["nope"]}, None, exception.Conflict, "not found"),
        ({"stores": "fast"}, None, exception.BadRequest, "list of store ids"),
        ({"stores": []}, None, exception.BadRequest, "list of store ids"),
        ({"all_stores": True, "stores": ["fast"]}, None, exception.BadRequest, "All_stores"),
        ({"all_stores": True}, "fast", exception.BadRequest, "All_stores"),
        ({"stores": ["fast"]}, "fast", exception.BadRequest, "both"),
        ({"all_stores": "yes"}, None, exception.BadRequest, "boolean"),
        ({}, "nope", exception.Conflict, "not found"),
    ],
)
def test_bad_store_requests_are_refused_before_a_task_exists(
    tasks: TaskService,
    ctx: RequestContext,
    body: dict[str, Any],
    header: str | None,
    error: type[Exception],
    text: str,
) -> None:
    image_id = _staged(tasks, ctx)
    request = {"method": {"name": "glance-direct"}, **body}
    with pytest.raises(error, match=text):
        tasks.import_image(ctx, image_id, request, store_header=header)
    assert tasks.list_for_image(ctx, image_id) == []
    assert tasks.images.get(ctx, image_id)["status"] == "uploading"


# -- copy-image -----------------------------------------------------------------


def test_copy_image_copies_an_active_image_to_the_stores_asked(
    tasks: TaskService, ctx: RequestContext, stores: Stores
) -> None:
    image_id = _uploaded(tasks, ctx)
    task = tasks.import_image(ctx, image_id, {**COPY, "stores": ["cheap"]})
    assert task is not None and task["type"] == "api_image_import"
    image = tasks.images.get(ctx, image_id)
    assert image["status"] == "active" and image["stores"] == "cheap,fast"
    assert image["os_glance_importing_to_stores"] == "" and image["os_glance_failed_import"] == ""
    reader = stores.stores["cheap"].get(f"fake://{image_id}")
    assert hashlib.sha256(reader.read()).digest() == hashlib.sha256(DATA).digest()


def test_copy_image_to_all_stores_skips_those_holding_it_and_records_failures(
    tasks: TaskService, ctx: RequestContext
) -> None:
    image_id = _uploaded(tasks, ctx, "cheap")
    body = {**COPY, "all_stores": True, "all_stores_must_succeed": False}
    tasks.import_image(ctx, image_id, body)
    (shown,) = tasks.list_for_image(ctx, image_id)
    assert shown["input"]["backend"] == ["fast", "broken"]
    image = tasks.images.get(ctx, image_id)
    assert image["stores"] == "cheap,fast" and image["os_glance_failed_import"] == "broken"
    tasks.images.remove_from_store(ctx, "cheap", image_id)
    assert _read(tasks, ctx, image_id) == DATA


def test_copy_image_to_all_stores_when_every_store_has_it_makes_no_task(
    tasks: TaskService, ctx: RequestContext
) -> None:
    image_id = _uploaded(tasks, ctx)
    tasks.import_image(ctx, image_id, {**COPY, "stores": ["cheap"]})
    tasks.images.stores = Stores(
        {k: v for k, v in tasks.images.stores.stores.items() if k != "broken"},
        "fast",
        multiple=True,
    )
    assert tasks.import_image(ctx, image_id, {**COPY, "all_stores": True}) is None
    assert len(tasks.list_for_image(ctx, image_id)) == 1


@pytest.mark.parametrize(
    ("setup", "body", "error", "text"),
    [
        ("queued", {"stores": ["cheap"]}, exception.Conflict, "Only images with status active"),
        ("active", {"stores": ["fast"]}, exception.BadRequest, "already present at store 'fast'"),
        ("active", {"stores": ["nope"]}, exception.Conflict, "not found"),
    ],
)
def test_copy_image_refuses_where_glance_does(
    tasks: TaskService,
    ctx: RequestContext,
    setup: str,
    body: dict[str, Any],
    error: type[Exception],
    text: str,
) -> None:
    image_id = _uploaded(tasks, ctx) if setup == "active" else _image(tasks.images, ctx)
    with pytest.raises(error, match=text):
        tasks.import_image(ctx, image_id, {**COPY, **body})
    assert tasks.list_for_image(ctx, image_id) == []


def test_a_copy_that_must_succeed_and_fails_removes_what_it_wrote(
    tasks: TaskService, ctx: RequestContext, stores: Stores
) -> None:
    image_id = _uploaded(tasks, ctx)
    tasks.import_image(ctx, image_id, {**COPY, "stores": ["cheap", "broken"]})
    image = tasks.images.get(ctx, image_id)
    assert image["status"] == "active" and image["stores"] == "fast"
    assert image["os_glance_failed_import"] == "broken"
    with pytest.raises(exception.NotFound):
        stores.stores["cheap"].get(f"fake://{image_id}")
    (shown,) = tasks.list_for_image(ctx, image_id)
    assert shown["status"] == "failure"


def test_copy_image_is_not_offered_with_one_store(
    task_service: TaskService, ctx: RequestContext
) -> None:
    image = task_service.images.create(ctx, {"disk_format": "raw", "container_format": "bare"})
    with pytest.raises(exception.BadRequest, match="not supported"):
        task_service.import_image(ctx, image["id"], COPY)


def test_a_copy_left_by_a_dead_process_is_ended_by_the_recovery(
    tasks: TaskService, ctx: RequestContext, executor: InlineExecutor
) -> None:
    image_id = _uploaded(tasks, ctx)
    executor.hold = True
    tasks.import_image(ctx, image_id, {**COPY, "stores": ["cheap"]})
    tasks._alive.clear()  # the process that held it died
    assert tasks.recover(older_than=0) == 1
    image = tasks.images.get(ctx, image_id)
    assert image["status"] == "active" and "os_glance_import_task" not in image
    assert image["os_glance_failed_import"] == "cheap"
    assert image["os_glance_importing_to_stores"] == ""


# -- removing from one store -----------------------------------------------------


def test_remove_from_store_answers_as_glance(tasks: TaskService, ctx: RequestContext) -> None:
    image_id = _uploaded(tasks, ctx)
    images = tasks.images
    with pytest.raises(exception.Forbidden, match="only store"):
        images.remove_from_store(ctx, "fast", image_id)
    with pytest.raises(exception.Conflict, match="not available"):
        images.remove_from_store(ctx, "nope", image_id)
    with pytest.raises(exception.NotFound, match="Failed to find image"):
        images.remove_from_store(ctx, "fast", "no-such-image")
    tasks.import_image(ctx, image_id, {**COPY, "stores": ["cheap"]})
    with pytest.raises(exception.NotFound, match="not stored in store broken"):
        images.remove_from_store(ctx, "broken", image_id)
    images.remove_from_store(ctx, "fast", image_id)
    assert images.get(ctx, image_id)["stores"] == "cheap"
    assert _read(tasks, ctx, image_id) == DATA
    queued = _image(images, ctx)
    with pytest.raises(exception.Conflict, match="not 'active'"):
        images.remove_from_store(ctx, "fast", queued)


def test_remove_from_store_is_not_found_with_one_store(
    task_service: TaskService, ctx: RequestContext
) -> None:
    with pytest.raises(exception.NotFound):
        task_service.images.remove_from_store(ctx, "file", "any")


def test_deleting_an_image_removes_its_data_from_every_store(
    tasks: TaskService, ctx: RequestContext, stores: Stores
) -> None:
    image_id = _uploaded(tasks, ctx)
    tasks.import_image(ctx, image_id, {**COPY, "stores": ["cheap"]})
    tasks.images.delete(ctx, image_id)
    for store_id in ("fast", "cheap"):
        with pytest.raises(exception.NotFound):
            stores.stores[store_id].get(f"fake://{image_id}")


def test_a_new_import_keeps_other_failures_and_clears_its_own_stores(
    tasks: TaskService, ctx: RequestContext
) -> None:
    image_id = _uploaded(tasks, ctx)
    tasks.import_image(
        ctx, image_id, {**COPY, "stores": ["broken"], "all_stores_must_succeed": False}
    )
    assert tasks.images.get(ctx, image_id)["os_glance_failed_import"] == "broken"
    tasks.import_image(ctx, image_id, {**COPY, "stores": ["cheap"]})
    image = tasks.images.get(ctx, image_id)
    assert (image["os_glance_failed_import"], image["stores"]) == ("broken", "cheap,fast")
    # Tried again, a store leaves the failed list while the import runs.
    held = tasks.executor
    assert isinstance(held, InlineExecutor)
    held.hold = True
    tasks.import_image(
        ctx, image_id, {**COPY, "stores": ["broken"], "all_stores_must_succeed": False}
    )
    image = tasks.images.get(ctx, image_id)
    assert (image["os_glance_importing_to_stores"], image["os_glance_failed_import"]) == (
        "broken",
        "",
    )


# -- nimbus up's stores --------------------------------------------------------------


def test_nimbus_up_enables_fast_and_cheap_by_default(conf: cfg.ConfigOpts) -> None:
    from nimbus.conf.image import set_embedded_store_defaults

    set_embedded_store_defaults(conf)
    loaded = load_stores(conf)
    assert (list(loaded), loaded.default) == (["fast", "cheap"], "fast")
    fast = loaded.stores["fast"]
    # Where the single store kept its data: older state directories stay readable.
    assert isinstance(fast, FileStore)
    assert fast.datadir == os.path.join(conf.state_path, "images")


@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [
        ("enabled_stores", ["one:file"], ["one"]),
        ("store", "fake", ["fake"]),
    ],
)
def test_nimbus_up_keeps_the_stores_a_configuration_names(
    conf: cfg.ConfigOpts, option: str, value: Any, expected: list[str]
) -> None:
    from nimbus.conf.image import set_embedded_store_defaults

    conf.set_override(option, value, group="image")
    set_embedded_store_defaults(conf)
    assert list(load_stores(conf)) == expected


def test_an_image_of_a_store_no_longer_enabled_is_read_from_the_default_store(
    conf: cfg.ConfigOpts, database: Database, ctx: RequestContext
) -> None:
    # A single-store cloud's image (store id "file") after nimbus up's two stores came.
    conf.set_override("fsync", False, group="image_file_store")
    single = ImageService(conf, database, FileStore(conf), AllowAll())
    data = ImageData(single)
    image_id = _image(single, ctx)
    data.upload(ctx, image_id, _reader(DATA), content_length=len(DATA))
    assert single.get(ctx, image_id)["stores"] == "file"
    from nimbus.conf.image import set_embedded_store_defaults

    set_embedded_store_defaults(conf)
    stores = load_stores(conf)
    multi = ImageService(conf, database, stores.default_store, AllowAll(), stores=stores)
    download = ImageData(multi).download(ctx, image_id)
    assert download.body is not None
    try:
        assert download.body.read() == DATA
    finally:
        download.body.close()


def test_the_single_stores_images_become_the_default_stores_that_took_its_directory(
    conf: cfg.ConfigOpts, database: Database, ctx: RequestContext
) -> None:
    """After nimbus up's two stores come, an older image is the default store's, not "file"'s.

    Left under "file", it showed a store /v2/info/stores does not list, and a
    copy to "fast" would have written over the very file it read.
    """
    from types import SimpleNamespace

    from nimbus.conf.image import set_embedded_store_defaults
    from nimbus.image.descriptor import _adopt_single_store

    conf.set_override("fsync", False, group="image_file_store")
    single = ImageService(conf, database, FileStore(conf), AllowAll())
    image_id = _image(single, ctx)
    ImageData(single).upload(ctx, image_id, _reader(DATA), content_length=len(DATA))
    location = single.stored_locations(image_id)["file"]
    set_embedded_store_defaults(conf)
    stores = load_stores(conf)
    multi = ImageService(conf, database, stores.default_store, AllowAll(), stores=stores)

    _adopt_single_store(SimpleNamespace(image=multi, conf=conf))  # type: ignore[arg-type]

    assert multi.get(ctx, image_id)["stores"] == "fast"
    assert multi.stored_locations(image_id) == {"fast": location}
    # Once only: a second start finds nothing to move.
    assert multi.adopt_locations("file") == 0
