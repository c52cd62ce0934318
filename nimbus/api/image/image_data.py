"""``/v2/images/{image_id}/file``: streamed upload and download of image data."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, cast

import falcon

from nimbus.api import hooks
from nimbus.api.app import Links
from nimbus.api.image.base import Resource
from nimbus.image import Download, ImageData, ImageService

if TYPE_CHECKING:
    from falcon.typing import ReadableIO

__all__ = ["ImageFile"]

_OCTET = "application/octet-stream"


def _no_body(size: int) -> bytes:
    return b""


def _body_reader(req: falcon.Request) -> Callable[[int], bytes]:
    """Return how to read an upload's body: bounded by its length, or de-chunked."""
    if req.content_length is not None:
        return req.bounded_stream.read
    if "chunked" in (req.get_header("Transfer-Encoding") or "").lower():
        # The WSGI server de-chunks the body and ends the stream at its end.
        return req.stream.read
    return _no_body


def _send(resp: falcon.Response, download: Download) -> None:
    """Set the response of a download: the data, its length, range or MD5."""
    resp.content_type = _OCTET
    resp.content_length = download.length
    if download.partial:
        resp.status = falcon.HTTP_206
        resp.set_header("Content-Range", download.content_range)
    elif download.checksum:
        resp.set_header("Content-MD5", download.checksum)
    # The WSGI server only calls read(n) or iterates: a DataReader is enough.
    resp.stream = cast("ReadableIO", download.body)


class ImageFile(Resource):
    """Image data: ``PUT`` stores it (204), ``GET`` streams it (200, or 206 for a range)."""

    #: The body is image data, read by the service as it streams.
    streamed = True

    def __init__(self, service: ImageService, data: ImageData, links: Links) -> None:
        super().__init__(service, links)
        self.data = data

    @falcon.before(hooks.content_type(_OCTET, default=_OCTET))
    def on_put(self, req: falcon.Request, resp: falcon.Response, image_id: str) -> None:
        md5 = req.get_header("Content-MD5")
        read = _body_reader(req)
        self.data.upload(
            self.ctx(req), image_id, read, content_length=req.content_length, content_md5=md5
        )
        resp.status = falcon.HTTP_204

    def on_get(self, req: falcon.Request, resp: falcon.Response, image_id: str) -> None:
        download = self.data.download(self.ctx(req), image_id, req.get_header("Range"))
        if download.body is None:
            resp.status = falcon.HTTP_204
        else:
            _send(resp, download)
