"""Fixtures of the image API's unit tests: the real resources in Falcon's simulator.

The image service is real (SQLite under the test's state directory, the
fake store, a policy that allows everything); tokens are checked by a
stand-in validator that knows two: ``admin`` and ``member``.
"""

from __future__ import annotations

import falcon.testing
import pytest

from nimbus import exception
from nimbus.api.app import create_app
from nimbus.api.image import image_api
from nimbus.context import RequestContext
from nimbus.image import ImageService, TaskService

# The image service's own fixtures, reused (pytest finds fixtures by name here).
from tests.unit.image.conftest import (
    ctx,
    database,
    executor,
    fake_service,
    fake_store,
    member_ctx,
    service,
    store,
    task_service,
    web,
)

__all__ = [
    "client",
    "ctx",
    "database",
    "executor",
    "fake_service",
    "fake_store",
    "member_ctx",
    "service",
    "store",
    "task_service",
    "web",
]

AUTH_URI = "http://identity.test/v3"


class Tokens:
    """A token validator knowing the tokens ``admin`` and ``member``."""

    def __init__(self, admin: RequestContext, member: RequestContext) -> None:
        self.contexts = {"admin": admin, "member": member}

    def context_for_token(self, token: str) -> RequestContext:
        if token not in self.contexts:
            raise exception.Unauthorized()
        return self.contexts[token]


@pytest.fixture
def client(
    fake_service: ImageService,
    task_service: TaskService,
    ctx: RequestContext,
    member_ctx: RequestContext,
) -> falcon.testing.TestClient:
    """A simulator client of the image API served at ``/``, sending the admin's token."""
    app = create_app(
        [image_api(fake_service, task_service.data, task_service)],
        validator=Tokens(ctx, member_ctx),
        auth_uri=AUTH_URI,
        max_body_size=65536,
        mounted=False,
    )
    return falcon.testing.TestClient(app, headers={"X-Auth-Token": "admin"})
