"""Unit tests of :mod:`nimbus.image.data` (uploads, downloads and ranges)."""

from __future__ import annotations

import base64
import hashlib
import io
from typing import Any

import pytest

from nimbus import exception
from nimbus.context import RequestContext
from nimbus.drivers.image.fake import FakeStore
from nimbus.image import Download, ImageData, ImageService
from nimbus.image.data import ReadAhead, parse_range

DATA = bytes(range(256)) * 40


@pytest.fixture
def data(fake_service: ImageService) -> ImageData:
    return ImageData(fake_service)


@pytest.fixture
def image(fake_service: ImageService, ctx: RequestContext) -> dict[str, Any]:
    return fake_service.create(ctx, {"disk_format": "raw", "container_format": "bare"})


def read_all(download: Download) -> bytes:
    body = download.body
    assert body is not None
    try:
        if isinstance(body, ReadAhead):
            return b"".join(body)
        return body.read()
    finally:
        body.close()


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("items=0-1", None),
        ("bytes=-", None),
        ("bytes=5-2", None),
        ("bytes=0-9", (0, 10)),
        ("bytes = 10-", (10, 90)),
        ("bytes=90-500", (90, 10)),
        ("bytes=-30", (70, 30)),
        ("bytes=-500", (0, 100)),
    ],
)
def test_parse_range(header: str | None, expected: tuple[int, int] | None) -> None:
    assert parse_range(header, 100) == expected


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=-0", "bytes=200-300"])
def test_unsatisfiable_ranges(header: str) -> None:
    with pytest.raises(exception.RangeNotSatisfiable):
        parse_range(header, 100)


def test_content_range() -> None:
    download = Download("x", None, offset=10, length=5, size=100, partial=True)
    assert download.content_range == "bytes 10-14/100"


def test_upload_then_download(
    data: ImageData,
    fake_service: ImageService,
    fake_store: FakeStore,
    ctx: RequestContext,
    image: dict[str, Any],
) -> None:
    md5 = hashlib.md5(DATA).hexdigest()
    active = data.upload(
        ctx, image["id"], io.BytesIO(DATA).read, content_length=len(DATA), content_md5=md5
    )
    assert active["status"] == "active"
    assert active["size"] == len(DATA)
    assert active["checksum"] == md5
    assert active["os_hash_value"] == hashlib.sha512(DATA).hexdigest()
    assert fake_service.get(ctx, image["id"]) == active

    whole = data.download(ctx, image["id"])
    assert (whole.partial, whole.length, whole.checksum) == (False, len(DATA), md5)
    assert read_all(whole) == DATA

    part = data.download(ctx, image["id"], "bytes=100-199")
    assert (part.partial, part.offset, part.length, part.size) == (True, 100, 100, len(DATA))
    assert read_all(part) == DATA[100:200]


def test_large_download_reads_ahead(
    data: ImageData, fake_service: ImageService, ctx: RequestContext, image: dict[str, Any]
) -> None:
    # Eight chunks or more are read ahead in a thread.
    fake_service.conf.set_override("chunk_size", 4096, group="image")
    large = DATA * 4
    data.upload(ctx, image["id"], io.BytesIO(large).read, content_length=None)
    download = data.download(ctx, image["id"])
    assert isinstance(download.body, ReadAhead)
    assert read_all(download) == large
    small = data.download(ctx, image["id"], "bytes=0-99")
    assert not isinstance(small.body, ReadAhead)
    assert read_all(small) == large[:100]


def test_base64_md5_is_accepted(
    data: ImageData, ctx: RequestContext, image: dict[str, Any]
) -> None:
    md5 = base64.b64encode(hashlib.md5(DATA).digest()).decode()
    active = data.upload(
        ctx, image["id"], io.BytesIO(DATA).read, content_length=len(DATA), content_md5=md5
    )
    assert active["checksum"] == hashlib.md5(DATA).hexdigest()


def test_queued_image_has_no_data(
    data: ImageData, ctx: RequestContext, image: dict[str, Any]
) -> None:
    download = data.download(ctx, image["id"])
    assert download.body is None
    assert download.checksum is None


@pytest.mark.parametrize(
    ("length", "md5", "message"),
    [(len(DATA), "0" * 32, "md5"), (len(DATA) + 1, None, "declared")],
)
def test_failed_upload_stores_nothing(
    data: ImageData,
    fake_service: ImageService,
    fake_store: FakeStore,
    ctx: RequestContext,
    image: dict[str, Any],
    length: int,
    md5: str | None,
    message: str,
) -> None:
    read = io.BytesIO(DATA).read
    with pytest.raises(exception.BadRequest, match=message):
        data.upload(ctx, image["id"], read, content_length=length, content_md5=md5)
    after = fake_service.get(ctx, image["id"])
    assert (after["status"], after["size"], after["checksum"]) == ("queued", None, None)
    assert fake_store.ex_partial_writes() == set()


def test_bad_md5_header_is_refused(
    data: ImageData, ctx: RequestContext, image: dict[str, Any]
) -> None:
    with pytest.raises(exception.BadRequest, match="Content-MD5"):
        data.upload(ctx, image["id"], io.BytesIO(DATA).read, content_length=1, content_md5="x")


def test_size_cap(data: ImageData, ctx: RequestContext, image: dict[str, Any]) -> None:
    data.conf.set_override("image_size_cap", 100, group="image")
    with pytest.raises(exception.OverLimit):
        data.upload(ctx, image["id"], io.BytesIO(DATA).read, content_length=len(DATA))
    with pytest.raises(exception.OverLimit):
        data.upload(ctx, image["id"], io.BytesIO(DATA).read, content_length=None)


def test_second_upload_conflicts(
    data: ImageData, ctx: RequestContext, image: dict[str, Any]
) -> None:
    data.upload(ctx, image["id"], io.BytesIO(DATA).read, content_length=len(DATA))
    with pytest.raises(exception.Conflict):
        data.upload(ctx, image["id"], io.BytesIO(DATA).read, content_length=len(DATA))
