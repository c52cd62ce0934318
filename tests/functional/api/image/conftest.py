"""Fixtures for the image API tests: Glance v2 under ``/image`` in the all-in-one app.

:class:`ImageAPI` wraps the simulator client of the identity fixtures with
the calls image tests need: requests as the admin (or anyone), creating
images, JSON-patching them with the right media type, uploading and
downloading data, looking into the store's directory and checking
Glance-shaped errors, ``{"message", "code": "404 Not Found", "title"}`` (the
JSON webob sends; these requests name no ``Accept``), or for a 401
keystonemiddleware's, Keystone's ``{"error": {...}}``.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import falcon.testing
import pytest

from tests.functional.api.conftest import assert_error, error_body

if TYPE_CHECKING:
    from tests.functional.api.conftest import Identity, Member

MOUNT = "/image"
ROOT = MOUNT + "/v2"
PATCH_TYPE = "application/openstack-images-v2.1-json-patch"
OCTET = "application/octet-stream"

#: Marks "send the admin's token" (the default of :meth:`ImageAPI.request`).
ADMIN = object()
#: Marks "send no body" (``None`` is sent as the JSON document ``null``).
NO_BODY = object()


def assert_glance_error(result: falcon.testing.Result, code: int, *, has_body: bool = True) -> str:
    """Check a Glance-shaped error response and return its message (see :func:`error_body`)."""
    if code == 401:
        # Glance's 401 comes from keystonemiddleware, before Glance sees the request.
        return assert_error(result, code, has_body=has_body)
    body = error_body(result, code, has_body=has_body)
    if body is None:
        return ""
    assert isinstance(body, dict) and set(body) == {"message", "code", "title"}, body
    assert isinstance(body["title"], str) and body["title"].strip(), body
    assert body["code"] == f"{code} {body['title']}", body
    assert body["code"] == result.status, (body, result.status)
    assert isinstance(body["message"], str) and body["message"].strip(), body
    return body["message"]


class ImageAPI:
    """The image API behind Falcon's simulator, called as the admin by default.

    :param identity: the identity helpers (the simulator client, the admin's token).
    :param datadir: the ``file`` store's directory.
    """

    def __init__(self, identity: Identity, datadir: str) -> None:
        self.identity = identity
        self.client = identity.client
        self.conf = identity.conf
        self.datadir = datadir

    assert_error = staticmethod(assert_glance_error)

    @property
    def admin_token(self) -> str:
        """The cloud admin's token (scoped to the admin project)."""
        return self.identity.admin_token

    def request(
        self,
        method: str,
        path: str,
        body: Any = NO_BODY,
        *,
        token: Any = ADMIN,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
        query_string: str | None = None,
        raw: bytes | str | None = None,
        content_type: str | None = None,
    ) -> falcon.testing.Result:
        """Send one request to ``/image/v2<path>``.

        :param body: a document sent as JSON (as ``application/json`` unless
            *content_type* says otherwise).
        :param token: the ``X-Auth-Token`` (the admin's by default, none for ``None``).
        :param raw: a body sent as is, instead of *body*.
        :param content_type: the ``Content-Type`` header, if any.
        """
        sent = dict(headers or {})
        if token is ADMIN:
            token = self.admin_token
        if token is not None:
            sent.setdefault("X-Auth-Token", token)
        data: bytes | str | None = raw
        if raw is None and body is not NO_BODY:
            data = json.dumps(body)
            sent.setdefault("Content-Type", "application/json")
        if content_type is not None:
            sent["Content-Type"] = content_type
        return self.client.simulate_request(
            method, ROOT + path, headers=sent, params=params, query_string=query_string, body=data
        )

    # -- images --------------------------------------------------------------

    def create(self, *, token: Any = ADMIN, **attrs: Any) -> dict[str, Any]:
        """Create a raw/bare image with *attrs* and return it (201 expected)."""
        document = {"name": "img", "disk_format": "raw", "container_format": "bare", **attrs}
        result = self.request("POST", "/images", document, token=token)
        assert result.status_code == 201, result.text
        return result.json

    def show(self, image_id: str) -> dict[str, Any]:
        """Return an image as the admin sees it (200 expected)."""
        result = self.request("GET", f"/images/{image_id}")
        assert result.status_code == 200, result.text
        return result.json

    def ids(self) -> set[str]:
        """Return the ids of every image the admin can list (hidden ones included)."""
        found: set[str] = set()
        for hidden in ("false", "true"):
            result = self.request("GET", "/images", params={"limit": "1000", "os_hidden": hidden})
            assert result.status_code == 200, result.text
            found.update(image["id"] for image in result.json["images"])
        return found

    def patch(
        self,
        image_id: str,
        changes: Any,
        *,
        token: Any = ADMIN,
        content_type: str = PATCH_TYPE,
    ) -> falcon.testing.Result:
        """PATCH *changes* (any JSON document) to an image with the patch media type."""
        return self.request(
            "PATCH",
            f"/images/{image_id}",
            raw=json.dumps(changes),
            token=token,
            content_type=content_type,
        )

    def upload(
        self,
        image_id: str,
        data: bytes,
        *,
        token: Any = ADMIN,
        headers: Mapping[str, str] | None = None,
        content_type: str | None = OCTET,
    ) -> falcon.testing.Result:
        """PUT *data* as an image's file (``application/octet-stream`` unless told)."""
        return self.request(
            "PUT",
            f"/images/{image_id}/file",
            raw=data,
            token=token,
            headers=headers,
            content_type=content_type,
        )

    def uploaded(self, image_id: str, data: bytes, *, token: Any = ADMIN) -> dict[str, Any]:
        """Upload *data* (204 expected) and return the now active image."""
        result = self.upload(image_id, data, token=token)
        assert result.status_code == 204, result.text
        image = self.show(image_id)
        assert image["status"] == "active", image
        return image

    def download(
        self,
        image_id: str,
        *,
        token: Any = ADMIN,
        headers: Mapping[str, str] | None = None,
    ) -> falcon.testing.Result:
        """GET an image's file."""
        return self.request("GET", f"/images/{image_id}/file", token=token, headers=headers)

    def active(self, data: bytes = b"image data", *, token: Any = ADMIN, **attrs: Any) -> str:
        """Create an image, upload *data* to it and return its id."""
        image = self.create(token=token, **attrs)
        self.uploaded(image["id"], data, token=token)
        return image["id"]

    def stored_files(self) -> list[str]:
        """Return every name in the store's directory, partial uploads included."""
        if not os.path.isdir(self.datadir):
            return []
        return sorted(os.listdir(self.datadir))

    def add_member(self, image_id: str, project_id: str, *, token: Any = ADMIN) -> None:
        """Share an image with a project (200 expected)."""
        result = self.request(
            "POST", f"/images/{image_id}/members", {"member": project_id}, token=token
        )
        assert result.status_code == 200, result.text


@pytest.fixture
def images(identity: Identity, services: Any) -> ImageAPI:
    """Helpers around the simulator for the image API, holding the admin's token."""
    return ImageAPI(identity, services.conf.image_file_store.datadir)


@pytest.fixture
def alice(make_member: Callable[..., Member]) -> Member:
    """A member of a project of her own."""
    return make_member()


@pytest.fixture
def bob(make_member: Callable[..., Member]) -> Member:
    """A member of another project."""
    return make_member()


@pytest.fixture
def domain_token(identity: Identity) -> str:
    """A token scoped to the default domain (no project) of a user with the member role there."""
    name = f"domain-user-{uuid.uuid4().hex[:8]}"
    user = identity.created("/users", "user", {"name": name, "password": "domain-secret"})
    role_id = identity.role("member")["id"]
    identity.put(f"/domains/{identity.domain_id}/users/{user['id']}/roles/{role_id}")
    return identity.issue(name, "domain-secret", domain=identity.domain_id)


@pytest.fixture
def image_of(images: ImageAPI) -> Callable[..., dict[str, Any]]:
    """Return a factory of images owned by a given member's project.

    The admin creates them (so any visibility works, ``public`` included),
    with ``owner`` set to the member's project; extra keyword arguments are
    image attributes.  ``data=b"..."`` also uploads data, leaving the image
    ``active``.
    """

    def make(member: Member, *, data: bytes | None = None, **attrs: Any) -> dict[str, Any]:
        image = images.create(owner=member.project["id"], **attrs)
        if data is not None:
            images.uploaded(image["id"], data)
            image = images.show(image["id"])
        return image

    return make
