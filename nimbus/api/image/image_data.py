"""``/v2/images/{image_id}/file``: streamed upload and download of image data."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import falcon

from nimbus.api import hooks
from nimbus.api.app import Links
from nimbus.api.image.base import Resource
from nimbus.image import Download, ImageData, ImageService
from nimbus.image.data import reading_into

if TYPE_CHECKING:
    from falcon.typing import ReadableIO

__all__ = ["OCTET", "DataUpload", "ImageFile", "body_reader"]

OCTET = "application/octet-stream"


def _no_body(view: memoryview) -> int:
    return 0


class _Body:
    """An upload's body, read into the caller's buffers, at most *length* bytes.

    The WSGI server's ``readinto``, where it has one (``nimbus.server.Worker``
    receives straight into the buffer), else its ``read`` and a copy.

    :param stream: the WSGI input.
    :param length: the declared length; None for a body that ends itself
        (de-chunked by the server).
    """

    def __init__(self, stream: Any, length: int | None) -> None:
        self._readinto: Callable[[memoryview], int] = getattr(
            stream, "readinto", None
        ) or reading_into(stream.read)
        self._left = length

    def readinto(self, view: memoryview) -> int:
        """Read the next bytes into *view*; return how many (0 at the end)."""
        if self._left is None:
            return self._readinto(view)
        want = min(len(view), self._left)
        if want <= 0:
            return 0
        count = self._readinto(view[:want])
        self._left -= count
        return count


def body_reader(req: falcon.Request) -> Callable[[memoryview], int]:
    """Return how to read an upload's body: bounded by its length, or de-chunked."""
    if req.content_length is not None:
        return _Body(req.stream, req.content_length).readinto
    if "chunked" in (req.get_header("Transfer-Encoding") or "").lower():
        # The WSGI server de-chunks the body and ends the stream at its end.
        return _Body(req.stream, None).readinto
    return _no_body


def _send(resp: falcon.Response, download: Download) -> None:
    """Set the response of a download: the data, its length, range or MD5."""
    resp.content_type = OCTET
    resp.content_length = download.length
    if download.partial:
        resp.status = falcon.HTTP_206
        resp.set_header("Content-Range", download.content_range)
    elif download.checksum:
        resp.set_header("Content-MD5", download.checksum)
    # The WSGI server only calls read(n) or iterates: a DataReader is enough.
    resp.stream = cast("ReadableIO", download.body)


class DataUpload(Resource):
    """``PUT`` stores an image's data as it streams in (204)."""

    #: The body is image data, read by the service as it streams.
    streamed = True
    #: True for the import's staging area (``/stage``), not the image's data.
    stage = False

    def __init__(self, service: ImageService, data: ImageData, links: Links) -> None:
        super().__init__(service, links)
        self.data = data

    @falcon.before(hooks.content_type(OCTET, default=OCTET))
    def on_put(self, req: falcon.Request, resp: falcon.Response, image_id: str) -> None:
        self.data.upload(
            self.ctx(req),
            image_id,
            body_reader(req),
            content_length=req.content_length,
            content_md5=req.get_header("Content-MD5"),
            stage=self.stage,
            store_id=req.get_header("X-Image-Meta-Store"),
        )
        resp.status = falcon.HTTP_204


class ImageFile(DataUpload):
    """Image data: ``PUT`` stores it (204), ``GET`` streams it (200, or 206 for a range)."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, image_id: str) -> None:
        download = self.data.download(self.ctx(req), image_id, req.get_header("Range"))
        if download.body is None:
            resp.status = falcon.HTTP_204
        else:
            _send(resp, download)
