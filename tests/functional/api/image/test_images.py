"""The image API's behaviour: records, data, visibility, members, paging, notifications.

The whole app runs in-process on SQLite with the ``file`` store in the
test's state directory (see ``tests/functional/api/conftest.py``).
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import falcon.testing
import pytest

import nimbus.cmd.up
import nimbus.image.data
import nimbus.image.models
import nimbus.wsgi
from nimbus import exception
from nimbus.context import RequestContext
from nimbus.image.data import reading_into
from tests.functional.api.conftest import Identity, Member

ROOT = "/image/v2"
PATCH_TYPE = "application/openstack-images-v2.1-json-patch"


class Images:
    """The image API through the simulator, as one caller."""

    def __init__(self, client: falcon.testing.TestClient, token: str) -> None:
        self.client = client
        self.token = token

    def request(self, method: str, path: str, **kwargs: Any) -> falcon.testing.Result:
        headers = {"X-Auth-Token": self.token, **kwargs.pop("headers", {})}
        return self.client.simulate_request(method, ROOT + path, headers=headers, **kwargs)

    def create(self, **attrs: Any) -> dict[str, Any]:
        attrs.setdefault("disk_format", "raw")
        attrs.setdefault("container_format", "bare")
        result = self.request("POST", "/images", json=attrs)
        assert result.status_code == 201, result.text
        return result.json

    def upload(self, image_id: str, data: bytes, **headers: str) -> falcon.testing.Result:
        return self.request(
            "PUT",
            f"/images/{image_id}/file",
            body=data,
            headers={"Content-Type": "application/octet-stream", **headers},
        )

    def get(self, image_id: str) -> dict[str, Any]:
        result = self.request("GET", f"/images/{image_id}")
        assert result.status_code == 200, result.text
        return result.json

    def patch(self, image_id: str, *ops: dict[str, Any]) -> falcon.testing.Result:
        return self.request(
            "PATCH",
            f"/images/{image_id}",
            body=json.dumps(list(ops)),
            headers={"Content-Type": PATCH_TYPE},
        )

    def ids(self, **params: str) -> list[str]:
        result = self.request("GET", "/images", params=params)
        assert result.status_code == 200, result.text
        return [image["id"] for image in result.json["images"]]

    def all_ids(self, **params: str) -> list[str]:
        """Follow ``next`` links to the end and return every id in order."""
        found: list[str] = []
        result = self.request("GET", "/images", params=params)
        while True:
            assert result.status_code == 200, result.text
            found += [image["id"] for image in result.json["images"]]
            link = result.json.get("next")
            if not link:
                return found
            parts = urlsplit(link)
            result = self.client.simulate_get(
                "/image" + parts.path,
                query_string=parts.query,
                headers={"X-Auth-Token": self.token},
            )


@pytest.fixture
def admin(identity: Identity) -> Images:
    return Images(identity.client, identity.admin_token)


@pytest.fixture
def alice(identity: Identity, make_member: Callable[..., Member]) -> tuple[Images, Member]:
    member = make_member()
    return Images(identity.client, member.token), member


@pytest.fixture
def bob(identity: Identity, make_member: Callable[..., Member]) -> tuple[Images, Member]:
    member = make_member()
    return Images(identity.client, member.token), member


def _store_files(services: nimbus.wsgi.Services) -> list[str]:
    datadir = Path(services.conf.image_file_store.datadir)
    return sorted(os.listdir(datadir)) if datadir.exists() else []


def _stuck_in_saving(services: nimbus.wsgi.Services, image_id: str) -> None:
    """Leave an image in ``saving`` as a server that stopped mid-upload would."""
    services.database.write(
        lambda s: s.execute(
            nimbus.image.models.Image.__table__.update()
            .where(nimbus.image.models.Image.id == image_id)
            .values(status="saving", upload_id="crashed")
        )
    )


def _qcow2(virtual_size: int, *, backing: bool = False) -> bytes:
    """Return the first cluster of a qcow2 v3 image of *virtual_size* bytes."""
    header = struct.pack(
        ">4sIQIIQIIQQIIQQQQII",
        b"QFI\xfb",
        3,
        72 if backing else 0,  # backing file offset
        4 if backing else 0,  # backing file name size
        16,  # cluster bits
        virtual_size,
        0,  # crypt method
        0,  # l1 size
        0x30000,  # l1 table offset
        0x10000,  # refcount table offset
        1,  # refcount table clusters
        0,  # snapshots
        0,  # snapshots offset
        0,  # incompatible features
        0,  # compatible features
        0,  # autoclear features
        4,  # refcount order
        104,  # header length
    )
    return header.ljust(65536, b"\0")


# -- records -------------------------------------------------------------------


def test_create_shows_glance_defaults(alice: tuple[Images, Member]) -> None:
    images, member = alice
    image = images.create(name="img1", **{"hw_disk_bus": "virtio", "tags": ["a", "a", "b"]})

    assert image["status"] == "queued"
    assert image["visibility"] == "shared"
    assert image["owner"] == member.project["id"]
    assert image["protected"] is False and image["os_hidden"] is False
    assert image["min_disk"] == 0 and image["min_ram"] == 0
    assert image["size"] is None and image["checksum"] is None
    assert image["tags"] == ["a", "b"]
    assert image["hw_disk_bus"] == "virtio"
    assert image["self"] == f"/v2/images/{image['id']}"
    assert image["file"] == f"/v2/images/{image['id']}/file"
    assert image["schema"] == "/v2/schemas/image"
    assert images.get(image["id"]) == image


def test_create_with_a_chosen_id_and_a_duplicate(admin: Images) -> None:
    image_id = "7c5d4a90-0000-4000-8000-000000000001"
    assert admin.create(id=image_id, name="x")["id"] == image_id
    result = admin.request("POST", "/images", json={"id": image_id})
    assert result.status_code == 409, result.text


def test_patch_changes_core_and_custom_attributes(alice: tuple[Images, Member]) -> None:
    images, _ = alice
    image = images.create(name="before", foo="1")
    result = images.patch(
        image["id"],
        {"op": "replace", "path": "/name", "value": "after"},
        {"op": "add", "path": "/bar", "value": "2"},
        {"op": "replace", "path": "/foo", "value": "3"},
        {"op": "add", "path": "/tags", "value": ["t1", "t2"]},
        {"op": "replace", "path": "/min_ram", "value": 512},
        {"op": "add", "path": "/protected", "value": True},
    )
    assert result.status_code == 200, result.text
    assert result.json["name"] == "after"
    assert (result.json["foo"], result.json["bar"]) == ("3", "2")
    assert result.json["tags"] == ["t1", "t2"]
    assert result.json["min_ram"] == 512 and result.json["protected"] is True

    result = images.patch(image["id"], {"op": "remove", "path": "/foo"})
    assert result.status_code == 200 and "foo" not in result.json
    assert images.get(image["id"]) == result.json


def test_tags_can_be_added_and_removed(alice: tuple[Images, Member]) -> None:
    images, _ = alice
    image = images.create(name="t")
    assert images.request("PUT", f"/images/{image['id']}/tags/x1").status_code == 204
    assert images.request("PUT", f"/images/{image['id']}/tags/x1").status_code == 204
    assert images.get(image["id"])["tags"] == ["x1"]
    assert images.request("DELETE", f"/images/{image['id']}/tags/x1").status_code == 204
    assert images.request("DELETE", f"/images/{image['id']}/tags/x1").status_code == 404
    assert images.get(image["id"])["tags"] == []


def test_protected_images_cannot_be_deleted(alice: tuple[Images, Member]) -> None:
    images, _ = alice
    image = images.create(name="p", protected=True)
    assert images.request("DELETE", f"/images/{image['id']}").status_code == 403
    images.patch(image["id"], {"op": "replace", "path": "/protected", "value": False})
    assert images.request("DELETE", f"/images/{image['id']}").status_code == 204
    assert images.request("GET", f"/images/{image['id']}").status_code == 404


def test_schemas_are_served(admin: Images) -> None:
    for name in ("image", "images", "member", "members"):
        result = admin.request("GET", f"/schemas/{name}")
        assert result.status_code == 200
        assert result.json["name"] == name
    disk_formats = admin.request("GET", "/schemas/image").json["properties"]["disk_format"]
    assert "qcow2" in disk_formats["enum"]


def test_version_discovery_needs_no_token(identity: Identity) -> None:
    result = identity.client.simulate_get("/image")
    assert result.status_code == 300
    current = result.json["versions"][0]
    assert current["status"] == "CURRENT"
    assert current["links"][0]["href"].endswith("/image/v2/")
    # As Glance: /versions is a 200 (glanceclient refuses a 300 there).
    listed = identity.client.simulate_get("/image/versions")
    assert listed.status_code == 200
    assert listed.json == result.json


# -- data ------------------------------------------------------------------------


def test_upload_and_download_round_trip(
    alice: tuple[Images, Member], services: nimbus.wsgi.Services
) -> None:
    images, _ = alice
    data = os.urandom(3 * 1024 * 1024 + 17)
    image = images.create(name="data")
    assert images.request("GET", f"/images/{image['id']}/file").status_code == 204

    result = images.upload(image["id"], data)
    assert result.status_code == 204, result.text

    shown = images.get(image["id"])
    assert shown["status"] == "active"
    assert shown["size"] == len(data) == shown["virtual_size"]
    assert shown["checksum"] == hashlib.md5(data).hexdigest()
    assert shown["os_hash_algo"] == "sha512"
    assert shown["os_hash_value"] == hashlib.sha512(data).hexdigest()
    result = images.request("GET", f"/images/{image['id']}/file")
    assert result.status_code == 200
    assert result.content == data
    assert result.headers["content-md5"] == shown["checksum"]
    assert result.headers["content-type"] == "application/octet-stream"
    assert int(result.headers["content-length"]) == len(data)
    assert _store_files(services) == [image["id"]]

    assert images.request("DELETE", f"/images/{image['id']}").status_code == 204
    assert _store_files(services) == []


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-9", 0, 9),
        ("bytes=100-", 100, 999),
        ("bytes=-10", 990, 999),
        ("bytes=5-5000", 5, 999),
    ],
)
def test_range_requests(admin: Images, header: str, start: int, end: int) -> None:
    data = os.urandom(1000)
    image = admin.create(name="r")
    admin.upload(image["id"], data)
    result = admin.request("GET", f"/images/{image['id']}/file", headers={"Range": header})
    assert result.status_code == 206
    assert result.content == data[start : end + 1]
    assert result.headers["content-range"] == f"bytes {start}-{end}/1000"
    assert "content-md5" not in result.headers


@pytest.mark.parametrize("header", [None, "bytes=5000-", "bytes=100-70000", "bytes=-40000"])
def test_large_downloads_are_read_ahead_and_whole(
    admin: Images,
    services: nimbus.wsgi.Services,
    monkeypatch: pytest.MonkeyPatch,
    header: str | None,
) -> None:
    # Eight chunks or more are read ahead in a thread; with 4 KiB chunks this is one.
    services.conf.set_override("chunk_size", 4096, group="image")
    closed = []

    class Recorded(nimbus.image.data.ReadAhead):
        def close(self) -> None:
            closed.append(self)
            super().close()

    monkeypatch.setattr(nimbus.image.data, "ReadAhead", Recorded)
    data = os.urandom(100_003)
    image = admin.create(name="big")
    assert admin.upload(image["id"], data).status_code == 204
    headers = {"Range": header} if header else {}
    result = admin.request("GET", f"/images/{image['id']}/file", headers=headers)
    window = (
        slice(None)
        if header is None
        else {
            "bytes=5000-": slice(5000, None),
            "bytes=100-70000": slice(100, 70001),
            "bytes=-40000": slice(-40000, None),
        }[header]
    )
    assert result.status_code == (200 if header is None else 206)
    assert result.content == data[window]
    assert int(result.headers["content-length"]) == len(data[window])
    assert len(closed) == 1


def test_a_second_upload_conflicts(admin: Images) -> None:
    image = admin.create(name="twice")
    assert admin.upload(image["id"], b"one").status_code == 204
    result = admin.upload(image["id"], b"two")
    assert result.status_code == 409
    assert admin.request("GET", f"/images/{image['id']}/file").content == b"one"


def test_empty_upload_makes_an_empty_active_image(admin: Images) -> None:
    image = admin.create(name="empty")
    assert admin.upload(image["id"], b"").status_code == 204
    shown = admin.get(image["id"])
    assert (shown["status"], shown["size"]) == ("active", 0)
    assert shown["checksum"] == hashlib.md5(b"").hexdigest()
    result = admin.request("GET", f"/images/{image['id']}/file")
    assert result.status_code == 200 and result.content == b""


def test_qcow2_virtual_size_comes_from_the_header(admin: Images) -> None:
    image = admin.create(name="q", disk_format="qcow2")
    assert admin.upload(image["id"], _qcow2(10 * 1024**3)).status_code == 204
    shown = admin.get(image["id"])
    assert shown["virtual_size"] == 10 * 1024**3
    assert shown["size"] == 65536


def test_qcow2_with_a_backing_file_is_refused(
    admin: Images, services: nimbus.wsgi.Services
) -> None:
    image = admin.create(name="q", disk_format="qcow2")
    result = admin.upload(image["id"], _qcow2(1024**3, backing=True))
    assert result.status_code == 400, result.text
    assert admin.get(image["id"])["status"] == "queued"
    assert _store_files(services) == []


def test_declared_checksums_are_verified(admin: Images, services: nimbus.wsgi.Services) -> None:
    data = b"some image bytes"
    good = hashlib.md5(data).hexdigest()
    image = admin.create(name="md5", **{"owner_specified.openstack.sha256": "0" * 64})
    result = admin.upload(image["id"], data, **{"Content-MD5": good})
    assert result.status_code == 400, result.text
    assert "sha256" in result.json["message"]
    assert admin.get(image["id"])["status"] == "queued"
    assert _store_files(services) == []

    admin.patch(
        image["id"],
        {
            "op": "replace",
            "path": "/owner_specified.openstack.sha256",
            "value": hashlib.sha256(data).hexdigest(),
        },
    )
    assert admin.upload(image["id"], data, **{"Content-MD5": good}).status_code == 204


def test_deactivated_images_serve_admins_only(admin: Images, alice: tuple[Images, Member]) -> None:
    image = admin.create(name="d", visibility="public")
    admin.upload(image["id"], b"payload")
    assert admin.request("POST", f"/images/{image['id']}/actions/deactivate").status_code == 204
    assert admin.get(image["id"])["status"] == "deactivated"
    images, _ = alice
    assert images.request("GET", f"/images/{image['id']}/file").status_code == 403
    assert admin.request("GET", f"/images/{image['id']}/file").content == b"payload"
    assert admin.request("POST", f"/images/{image['id']}/actions/reactivate").status_code == 204
    assert images.request("GET", f"/images/{image['id']}/file").content == b"payload"


def test_deactivating_a_queued_image_is_refused(admin: Images) -> None:
    image = admin.create(name="q")
    assert admin.request("POST", f"/images/{image['id']}/actions/deactivate").status_code == 403


# -- uploads that go wrong (driven through the service, as the API does) --------


@pytest.fixture
def admin_ctx(services: nimbus.wsgi.Services, identity: Identity) -> RequestContext:
    return services.identity.context_for_token(identity.admin_token)


def test_concurrent_uploads_exactly_one_wins(
    services: nimbus.wsgi.Services, admin_ctx: RequestContext, admin: Images
) -> None:
    image = admin.create(name="race")
    started, release = threading.Event(), threading.Event()
    chunks = [b"a" * 1000, b"b" * 1000]

    def slow_read(size: int) -> bytes:
        started.set()
        release.wait(10)
        return chunks.pop(0) if chunks else b""

    errors: list[BaseException] = []

    def first() -> None:
        try:
            services.image_data.upload(
                admin_ctx, image["id"], reading_into(slow_read), content_length=None
            )
        except BaseException as ex:  # pragma: no cover - reported below
            errors.append(ex)

    thread = threading.Thread(target=first)
    thread.start()
    assert started.wait(10)
    assert admin.get(image["id"])["status"] == "saving"
    with pytest.raises(exception.Conflict):
        services.image_data.upload(
            admin_ctx, image["id"], reading_into(lambda n: b"x"), content_length=1
        )
    release.set()
    thread.join(10)
    assert errors == []
    shown = admin.get(image["id"])
    assert (shown["status"], shown["size"]) == ("active", 2000)


class _ClientWentAway(OSError):
    pass


def _body(size: int, chunk: int) -> Callable[[memoryview], int]:
    """Return a request body's readinto: *size* bytes, at most *chunk* per call, slowly."""
    left = [size]

    def read(want: int) -> bytes:
        n = min(want, chunk, left[0])
        left[0] -= n
        if n:
            threading.Event().wait(0.002)  # let the other uploads interleave
        return b"q" * n

    return reading_into(read)


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_concurrent_uploads_never_pass_the_storage_quota(
    services: nimbus.wsgi.Services, admin_ctx: RequestContext, admin: Images, declared: bool
) -> None:
    """Eight 6 MiB uploads at once under a 10 MiB quota: at most one is stored.

    With a Content-Length the first claim reserves its 6 MiB and exactly one
    upload is stored. A chunked upload's reservation grows with its data,
    so uploads growing side by side may fill the quota between them and all
    be refused: never more than the quota is stored either way.
    """
    mib = 1024**2
    services.conf.set_override("image_storage_quota", 10 * mib, group="image")
    services.conf.set_override("chunk_size", 256 * 1024, group="image")
    images = [admin.create(name=f"q{i}")["id"] for i in range(8)]
    barrier = threading.Barrier(len(images))
    outcomes: dict[str, str] = {}

    def upload(image_id: str) -> None:
        barrier.wait(10)
        try:
            services.image_data.upload(
                admin_ctx,
                image_id,
                _body(6 * mib, 64 * 1024),
                content_length=6 * mib if declared else None,
            )
            outcomes[image_id] = "stored"
        except exception.QuotaExceeded:
            outcomes[image_id] = "over quota"

    threads = [threading.Thread(target=upload, args=(i,)) for i in images]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    stored = list(outcomes.values()).count("stored")
    assert len(outcomes) == 8
    assert stored == 1 if declared else stored <= 1, outcomes
    shown = [admin.get(i) for i in images]
    assert sum(s["size"] or 0 for s in shown) == stored * 6 * mib
    assert sorted(s["status"] for s in shown) == ["active"] * stored + ["queued"] * (8 - stored)
    # The refused uploads released what they held: 4 MiB more still fits.
    refused = next(i for i, outcome in outcomes.items() if outcome == "over quota")
    services.image_data.upload(
        admin_ctx, refused, _body(4 * mib, mib), content_length=4 * mib if declared else None
    )
    assert admin.get(refused)["status"] == "active"


def test_an_interrupted_upload_leaves_nothing(
    services: nimbus.wsgi.Services, admin_ctx: RequestContext, admin: Images
) -> None:
    image = admin.create(name="cut")
    sent = [0]

    def read(size: int) -> bytes:
        if sent[0] >= 5:
            raise _ClientWentAway("connection reset by peer")
        sent[0] += 1
        return b"z" * size

    # What the server's input stream raises is the client's fault: a 400.
    with pytest.raises(exception.BadRequest, match="ended early") as raised:
        services.image_data.upload(
            admin_ctx, image["id"], reading_into(read), content_length=100 * 1024**2
        )
    assert isinstance(raised.value.__cause__, _ClientWentAway)
    shown = admin.get(image["id"])
    assert (shown["status"], shown["size"], shown["checksum"]) == ("queued", None, None)
    assert _store_files(services) == []
    # The image takes a new upload afterwards.
    assert admin.upload(image["id"], b"again").status_code == 204


def test_a_short_body_is_refused(
    services: nimbus.wsgi.Services, admin_ctx: RequestContext, admin: Images
) -> None:
    image = admin.create(name="short")
    body = [b"x" * 10]
    with pytest.raises(exception.BadRequest, match="10 of the 20 bytes"):
        services.image_data.upload(
            admin_ctx,
            image["id"],
            reading_into(lambda n: body.pop() if body else b""),
            content_length=20,
        )
    assert admin.get(image["id"])["status"] == "queued"
    assert _store_files(services) == []


def test_deleting_during_an_upload_removes_the_data(
    services: nimbus.wsgi.Services, admin_ctx: RequestContext, admin: Images
) -> None:
    image = admin.create(name="gone")
    deleted = [False]

    def read(size: int) -> bytes:
        if not deleted[0]:
            deleted[0] = True
            assert admin.request("DELETE", f"/images/{image['id']}").status_code == 204
            return b"data"
        return b""

    with pytest.raises(exception.NotFound):
        services.image_data.upload(admin_ctx, image["id"], reading_into(read), content_length=None)
    assert _store_files(services) == []


def test_recover_puts_stuck_uploads_back_to_queued(
    services: nimbus.wsgi.Services, admin_ctx: RequestContext, admin: Images
) -> None:
    image = admin.create(name="stuck")
    _stuck_in_saving(services, image["id"])
    assert services.image_data.recover(older_than=0) == 1
    assert admin.get(image["id"])["status"] == "queued"


# -- visibility and members ----------------------------------------------------


def test_projects_do_not_see_each_others_private_images(
    alice: tuple[Images, Member], bob: tuple[Images, Member], admin: Images
) -> None:
    (a, _), (b, _) = alice, bob
    private = a.create(name="private", visibility="private")
    shared = a.create(name="shared")
    a.upload(private["id"], b"secret")
    for image in (private, shared):
        assert b.request("GET", f"/images/{image['id']}").status_code == 404
        assert b.request("GET", f"/images/{image['id']}/file").status_code == 404
        assert image["id"] not in b.ids()
        assert image["id"] in a.ids()
        assert image["id"] in admin.ids()


def test_public_and_community_images(
    admin: Images, alice: tuple[Images, Member], bob: tuple[Images, Member]
) -> None:
    (a, _), (b, _) = alice, bob
    public = admin.create(name="pub", visibility="public")
    community = a.create(name="comm", visibility="community")
    assert public["id"] in b.ids()
    assert community["id"] not in b.ids()
    assert community["id"] in b.ids(visibility="community")
    assert community["id"] in b.ids(visibility="all")
    assert b.get(community["id"])["name"] == "comm"
    assert community["id"] in a.ids()  # owners list their own
    # Only admins publish.
    result = a.request("POST", "/images", json={"name": "x", "visibility": "public"})
    assert result.status_code == 403
    result = a.patch(community["id"], {"op": "replace", "path": "/visibility", "value": "public"})
    assert result.status_code == 403
    assert b.patch(public["id"], {"op": "add", "path": "/x", "value": "y"}).status_code == 403


def test_sharing_with_members(alice: tuple[Images, Member], bob: tuple[Images, Member]) -> None:
    (a, _), (b, bob_member) = alice, bob
    bob_project = bob_member.project["id"]
    image = a.create(name="to-share")
    a.upload(image["id"], b"shared bytes")

    result = a.request("POST", f"/images/{image['id']}/members", json={"member": bob_project})
    assert result.status_code == 200, result.text
    assert result.json["status"] == "pending"
    assert result.json["member_id"] == bob_project
    assert result.json["schema"] == "/v2/schemas/member"

    # Pending: reachable by id, not listed.
    assert b.get(image["id"])["name"] == "to-share"
    assert image["id"] not in b.ids()
    assert image["id"] in b.ids(member_status="pending", visibility="shared")
    assert b.request("GET", f"/images/{image['id']}/file").content == b"shared bytes"

    path = f"/images/{image['id']}/members/{bob_project}"
    assert a.request("PUT", path, json={"status": "accepted"}).status_code == 403
    result = b.request("PUT", path, json={"status": "accepted"})
    assert result.status_code == 200 and result.json["status"] == "accepted"
    assert image["id"] in b.ids()

    assert b.request("PUT", path, json={"status": "rejected"}).status_code == 200
    assert image["id"] not in b.ids()
    assert image["id"] in b.ids(member_status="all", visibility="shared")

    members = a.request("GET", f"/images/{image['id']}/members").json
    assert [m["member_id"] for m in members["members"]] == [bob_project]
    assert members["schema"] == "/v2/schemas/members"
    assert b.request("GET", f"/images/{image['id']}/members").json["members"][0]["member_id"] == (
        bob_project
    )
    assert b.request("DELETE", path).status_code == 403
    assert a.request("DELETE", path).status_code == 204
    assert b.request("GET", f"/images/{image['id']}").status_code == 404


# -- listing -------------------------------------------------------------------


def test_paging_follows_next_links_to_the_end(admin: Images) -> None:
    made = [admin.create(name=f"page-{i:02d}")["id"] for i in range(7)]
    listed = admin.all_ids(limit="3")
    assert listed == list(reversed(made))  # newest first
    result = admin.request("GET", "/images", params={"limit": "3"})
    assert result.json["first"] == "/v2/images?limit=3"
    assert "marker=" in result.json["next"]
    by_name = admin.all_ids(limit="2", sort_key="name", sort_dir="asc")
    assert by_name == made
    assert admin.all_ids(limit="4", sort="name:desc") == list(reversed(made))
    assert admin.ids(marker=made[3], sort_key="name", sort_dir="asc") == made[4:]


def test_paging_with_nulls_in_the_sort_key(admin: Images) -> None:
    made = [
        admin.create(**({"name": None} if i % 2 else {"name": f"n{i}"}))["id"] for i in range(6)
    ]
    assert sorted(admin.all_ids(limit="1", sort_key="name")) == sorted(made)
    assert sorted(admin.all_ids(limit="2", sort_key="size", sort_dir="asc")) == sorted(made)


def test_list_filters(admin: Images) -> None:
    small = admin.create(name="small", tags=["linux", "tiny"], os_distro="debian")
    admin.upload(small["id"], b"x" * 10)
    big = admin.create(name="big", tags=["linux"], disk_format="qcow2")
    admin.upload(big["id"], _qcow2(2**30))
    hidden = admin.create(name="hidden", os_hidden=True)
    both = {small["id"], big["id"]}

    assert set(admin.ids(tag="linux")) == both
    assert admin.ids(tag=["linux", "tiny"]) == [small["id"]]  # type: ignore[arg-type]
    assert admin.ids(name="big") == [big["id"]]
    assert set(admin.ids(name='in:"big",small')) == both
    assert set(admin.ids(id=f"in:{small['id']},{big['id']}")) == both
    assert admin.ids(size_min="11") == [big["id"]]
    assert admin.ids(size_max="10") == [small["id"]]
    assert admin.ids(disk_format="qcow2") == [big["id"]]
    assert admin.ids(os_distro="debian") == [small["id"]]
    assert set(admin.ids(status="active")) == both
    assert hidden["id"] not in admin.ids()
    assert admin.ids(os_hidden="true") == [hidden["id"]]
    created = admin.get(small["id"])["created_at"]
    assert small["id"] in admin.ids(created_at=f"gte:{created}")
    assert admin.ids(created_at="lt:2000-01-01T00:00:00Z") == []


# -- notifications ---------------------------------------------------------------


class _Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def info(self, ctx: RequestContext, event_type: str, payload: dict[str, Any]) -> None:
        self.events.append((event_type, payload))


def test_notifications_for_the_meter(services: nimbus.wsgi.Services, admin: Images) -> None:
    recorder = _Recorder()
    services.image.notifier = recorder
    image = admin.create(name="n")
    admin.upload(image["id"], b"bits")
    admin.patch(image["id"], {"op": "add", "path": "/k", "value": "v"})
    admin.request("DELETE", f"/images/{image['id']}")
    kinds = [kind for kind, _ in recorder.events]
    assert kinds == [
        "image.create",
        "image.upload",
        "image.activate",
        "image.update",
        "image.delete",
    ]
    upload = recorder.events[1][1]
    assert upload["id"] == image["id"] and upload["size"] == 4
    assert recorder.events[-1][1]["status"] == "deleted"


def test_nimbus_up_recovers_uploads_cut_by_a_stop(
    services: nimbus.wsgi.Services, admin: Images
) -> None:
    image = admin.create(name="cut-by-a-crash")
    _stuck_in_saving(services, image["id"])
    datadir = Path(services.conf.image_file_store.datadir)
    partial = datadir / f".{image['id']}.0123456789abcdef.partial"
    partial.write_bytes(b"half an upload")
    os.utime(partial, (1, 1))

    nimbus.cmd.up.prepare(services.conf, "secret")

    assert admin.get(image["id"])["status"] == "queued"
    assert not partial.exists()
