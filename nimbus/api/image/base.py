"""What every image API resource shares: Glance's links, pages and media types."""

from __future__ import annotations

from typing import Any, ClassVar

import falcon

from nimbus.api import resource
from nimbus.api.app import Links
from nimbus.image import ImageService, patch

__all__ = ["Glance", "Resource", "with_links"]


def with_links(image: dict[str, Any]) -> dict[str, Any]:
    """Return *image* with Glance's relative ``self``, ``file`` and ``schema`` links."""
    path = f"/v2/images/{image['id']}"
    return {**image, "self": path, "file": f"{path}/file", "schema": "/v2/schemas/image"}


class Glance:
    """Mixed into every image resource: Glance's page shape, media types and image view."""

    pages: ClassVar[resource.PageFormat] = resource.GlancePages()
    #: JSON bodies come as JSON or as Glance's JSON-patch documents.
    media_types = ("application/json", *patch.MEDIA_TYPES)
    accept_patch = ", ".join(patch.MEDIA_TYPES)

    def render(self, req: falcon.Request, ref: dict[str, Any]) -> dict[str, Any]:
        """Return an image as Glance shows it, with its links."""
        return with_links(ref)


class Resource(Glance, resource.Resource):
    """Base of the image resources that call the image service directly.

    :param service: the image service.
    :param links: builds URLs under the image root.
    """

    service: ImageService

    def __init__(self, service: ImageService, links: Links) -> None:
        super().__init__(service, links)
