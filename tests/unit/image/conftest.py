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
from nimbus.image import ImageService


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
