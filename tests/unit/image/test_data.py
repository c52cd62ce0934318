"""Unit tests of :mod:`nimbus.image.data` (uploads, downloads and ranges)."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import random
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest

from nimbus import exception
from nimbus.context import RequestContext
from nimbus.drivers.image import StoredData
from nimbus.drivers.image.fake import FakeStore
from nimbus.image import Download, ImageData, ImageService
from nimbus.image.data import ReadAhead, _Buffers, _Closed, parse_range

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
        ctx, image["id"], io.BytesIO(DATA).readinto, content_length=len(DATA), content_md5=md5
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
    data.upload(ctx, image["id"], io.BytesIO(large).readinto, content_length=None)
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
        ctx, image["id"], io.BytesIO(DATA).readinto, content_length=len(DATA), content_md5=md5
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
    read = io.BytesIO(DATA).readinto
    with pytest.raises(exception.BadRequest, match=message):
        data.upload(ctx, image["id"], read, content_length=length, content_md5=md5)
    after = fake_service.get(ctx, image["id"])
    assert (after["status"], after["size"], after["checksum"]) == ("queued", None, None)
    assert fake_store.ex_partial_writes() == set()


def test_bad_md5_header_is_refused(
    data: ImageData, ctx: RequestContext, image: dict[str, Any]
) -> None:
    with pytest.raises(exception.BadRequest, match="Content-MD5"):
        data.upload(ctx, image["id"], io.BytesIO(DATA).readinto, content_length=1, content_md5="x")


def test_size_cap(data: ImageData, ctx: RequestContext, image: dict[str, Any]) -> None:
    data.conf.set_override("image_size_cap", 100, group="image")
    with pytest.raises(exception.OverLimit):
        data.upload(ctx, image["id"], io.BytesIO(DATA).readinto, content_length=len(DATA))
    with pytest.raises(exception.OverLimit):
        data.upload(ctx, image["id"], io.BytesIO(DATA).readinto, content_length=None)


def test_second_upload_conflicts(
    data: ImageData, ctx: RequestContext, image: dict[str, Any]
) -> None:
    data.upload(ctx, image["id"], io.BytesIO(DATA).readinto, content_length=len(DATA))
    with pytest.raises(exception.Conflict):
        data.upload(ctx, image["id"], io.BytesIO(DATA).readinto, content_length=len(DATA))


# -- uploads into reused buffers ------------------------------------------------------


class _Recording(FakeStore):
    """A fake store that notes the size of every chunk and checks its type."""

    def __init__(self, *args: Any, fail_after: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sizes: list[int] = []
        self.fail_after = fail_after

    def add(self, image_id: str, chunks: Iterable[bytes | memoryview]) -> StoredData:
        def noted() -> Iterator[bytes | memoryview]:
            for chunk in chunks:
                assert isinstance(chunk, memoryview)
                if self.fail_after is not None and len(self.sizes) == self.fail_after:
                    raise exception.StorageFull(store="fake", reason="full")
                self.sizes.append(len(chunk))
                yield chunk

        return super().add(image_id, noted())


def _trickle(data: bytes, piece: int) -> Callable[[memoryview], int]:
    """Return a body's readinto that gives at most *piece* bytes per call."""
    source = io.BytesIO(data)
    return lambda view: source.readinto(view[:piece])


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_a_threaded_upload_fills_whole_chunks_and_hashes_every_byte(
    fake_service: ImageService, ctx: RequestContext, image: dict[str, Any], declared: bool
) -> None:
    fake_service.conf.set_override("chunk_size", 4096, group="image")
    store = _Recording(fake_service.conf)
    data = ImageData(dataclasses.replace(fake_service, store=store))
    # Forty chunks and a bit (threaded: eight or more), in reads that never
    # line up with a chunk, through six reused buffers.
    body = random.Random(1).randbytes(40 * 4096 + 123)
    active = data.upload(
        ctx,
        image["id"],
        _trickle(body, 1000),
        content_length=len(body) if declared else None,
    )
    assert store.sizes == [4096] * 40 + [123]
    assert (active["size"], active["checksum"], active["os_hash_value"]) == (
        len(body),
        hashlib.md5(body).hexdigest(),
        hashlib.sha512(body).hexdigest(),
    )
    assert read_all(data.download(ctx, image["id"])) == body


def test_a_store_failing_mid_upload_stops_the_reading_thread(
    fake_service: ImageService, ctx: RequestContext, image: dict[str, Any]
) -> None:
    fake_service.conf.set_override("chunk_size", 4096, group="image")
    store = _Recording(fake_service.conf, fail_after=3)
    data = ImageData(dataclasses.replace(fake_service, store=store))
    body = bytes(64 * 4096)
    before = set(threading.enumerate())
    with pytest.raises(exception.StorageFull):
        data.upload(ctx, image["id"], io.BytesIO(body).readinto, content_length=len(body))
    # The reading thread (it may have been waiting for a free buffer) and
    # the hash threads are gone when upload returns.
    assert set(threading.enumerate()) <= before
    after = fake_service.get(ctx, image["id"])
    assert (after["status"], after["size"]) == ("queued", None)
    assert store.ex_partial_writes() == set()


def test_a_buffer_is_given_out_again_once_every_consumer_released_it() -> None:
    buffers = _Buffers(16, 2, consumers=2)
    first, second = buffers.take(), buffers.take()
    assert first.obj is not second.obj
    taken: list[memoryview] = []
    thread = threading.Thread(target=lambda: taken.append(buffers.take()))
    thread.start()
    buffers.release(0)
    thread.join(0.2)
    assert thread.is_alive()  # consumer 1 still holds the first chunk
    buffers.release(1)
    thread.join(5)
    assert taken[0].obj is first.obj


def test_closing_the_buffers_wakes_a_waiting_reader() -> None:
    buffers = _Buffers(16, 1, consumers=1)
    buffers.take()
    raised: list[BaseException] = []

    def take() -> None:
        try:
            buffers.take()
        except _Closed as ex:
            raised.append(ex)

    thread = threading.Thread(target=take)
    thread.start()
    buffers.close()
    thread.join(5)
    assert len(raised) == 1
