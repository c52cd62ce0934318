"""``/v2/images/{image_id}/file``: streamed upload and download of image data."""

from __future__ import annotations

import falcon

from nimbus.api.app import Links
from nimbus.api.image.base import Resource
from nimbus.image import ImageData, ImageService

_OCTET = "application/octet-stream"


class ImageFile(Resource):
    """Image data: ``PUT`` stores it (204), ``GET`` streams it (200, or 206 for a range)."""

    #: The body is image data, read by the service as it streams.
    streamed = True

    def __init__(self, service: ImageService, data: ImageData, links: Links) -> None:
        super().__init__(service, links)
        self.data = data

    def on_put(self, req: falcon.Request, resp: falcon.Response, image_id: str) -> None:
        content_type = (req.content_type or _OCTET).split(";")[0].strip().lower()
        if content_type != _OCTET:
            raise falcon.HTTPUnsupportedMediaType(
                description=f"Unsupported Content-Type {content_type!r}: send {_OCTET}."
            )
        length = req.content_length
        chunked = "chunked" in (req.get_header("Transfer-Encoding") or "").lower()
        if length is not None:
            read = req.bounded_stream.read
        elif chunked:
            # The WSGI server de-chunks the body and ends the stream at its end.
            read = req.stream.read
        else:

            def read(size: int) -> bytes:
                return b""

        self.data.upload(
            self.ctx(req),
            image_id,
            read,
            content_length=length,
            content_md5=req.get_header("Content-MD5"),
        )
        resp.status = falcon.HTTP_204

    def on_get(self, req: falcon.Request, resp: falcon.Response, image_id: str) -> None:
        download = self.data.download(self.ctx(req), image_id, req.get_header("Range"))
        if download.body is None:
            resp.status = falcon.HTTP_204
            return
        resp.content_type = _OCTET
        resp.content_length = download.length
        if download.partial:
            resp.status = falcon.HTTP_206
            last = download.offset + download.length - 1
            resp.set_header("Content-Range", f"bytes {download.offset}-{last}/{download.size}")
        elif download.checksum:
            resp.set_header("Content-MD5", download.checksum)
        resp.stream = download.body
