"""Fixtures of the image service's unit tests: a real service on SQLite in tmp."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
from oslo_config import cfg

from nimbus.context import RequestContext
from nimbus.db import Database, migration
from nimbus.drivers.image.fake import FakeStore
from nimbus.drivers.image.file import FileStore
from nimbus.image import ImageData, ImageService, TaskService


class AllowAll:
    """A policy enforcer that allows everything."""

    def authorize(
        self, ctx: RequestContext, action: str, target: dict[str, Any] | None = None
    ) -> None:
        return None


class FakeWallClock:
    """Seconds since the epoch that move only when told (the file store's ``now``)."""

    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def database(conf: cfg.ConfigOpts) -> Iterator[Database]:
    """nimbus's schema in a SQLite file under the test's state directory."""
    database = Database(conf)
    migration.upgrade(database)
    yield database
    database.dispose()


@pytest.fixture
def store(conf: cfg.ConfigOpts) -> FileStore:
    """A ``file`` store under the test's state directory."""
    conf.set_override("fsync", False, group="image_file_store")
    return FileStore(conf)


@pytest.fixture
def service(conf: cfg.ConfigOpts, database: Database, store: FileStore) -> ImageService:
    """The image service on *database* and *store*, allowing everything."""
    return ImageService(conf, database, store, AllowAll())


@pytest.fixture
def ctx() -> RequestContext:
    """A cloud admin's context, scoped to project ``p1``."""
    return RequestContext(
        user_id="u1", project_id="p1", roles=["admin", "member"], is_admin_project=True
    )


@pytest.fixture
def fake_service(service: ImageService) -> ImageService:
    """The image service of *service*, on the in-memory ``fake`` store instead."""
    return dataclasses.replace(service, store=FakeStore(service.conf))


@pytest.fixture
def fake_store(fake_service: ImageService) -> FakeStore:
    """The fake store of *fake_service*."""
    assert isinstance(fake_service.store, FakeStore)
    return fake_service.store


@pytest.fixture
def member_ctx() -> RequestContext:
    """A plain member of project ``p2`` (not an admin)."""
    return RequestContext(user_id="u2", project_id="p2", roles=["member"])


class InlineExecutor:
    """Runs submitted work at once, in the caller's thread; or holds it with ``hold``."""

    def __init__(self) -> None:
        self.hold = False
        self.held: list[Any] = []

    def submit(self, fn: Any) -> None:
        if self.hold:
            self.held.append(fn)
        else:
            fn()


class FakeResponse:
    """What an opened URL answers: its body, by ``readinto``, and a Content-Length."""

    def __init__(self, body: bytes, *, length: bool = True) -> None:
        self.body = body
        self.offset = 0
        self.headers = {"Content-Length": str(len(body))} if length else {}
        self.closed = False

    def readinto(self, view: memoryview) -> int:
        count = min(len(view), len(self.body) - self.offset)
        view[:count] = self.body[self.offset : self.offset + count]
        self.offset += count
        return count

    def close(self) -> None:
        self.closed = True


class FakeWeb:
    """URLs and their bodies; any other URL fails as an unknown host does."""

    def __init__(self) -> None:
        self.pages: dict[str, bytes] = {}
        self.opened: list[str] = []

    def __call__(self, url: str, *, timeout: float) -> FakeResponse:
        import urllib.error

        self.opened.append(url)
        if url not in self.pages:
            raise urllib.error.URLError("[Errno -2] Name or service not known")
        return FakeResponse(self.pages[url])


@pytest.fixture
def web() -> FakeWeb:
    """The web an import task reads from."""
    return FakeWeb()


@pytest.fixture
def executor() -> InlineExecutor:
    """Runs tasks at once (or holds them)."""
    return InlineExecutor()


@pytest.fixture
def task_service(fake_service: ImageService, executor: InlineExecutor, web: FakeWeb) -> TaskService:
    """The tasks of *fake_service*, run inline, importing from *web*."""
    return TaskService(
        fake_service.conf,
        fake_service.db,
        fake_service.enforcer,
        fake_service,
        ImageData(fake_service),
        executor=executor,
        open_url=web,
    )
