"""What every image API resource shares: collaborators and image links."""

from __future__ import annotations

from typing import Any

import falcon

from nimbus.api.app import Links
from nimbus.context import RequestContext
from nimbus.image import ImageService, patch

__all__ = ["Resource", "with_links"]


def with_links(image: dict[str, Any]) -> dict[str, Any]:
    """Return *image* with Glance's relative ``self``, ``file`` and ``schema`` links."""
    path = f"/v2/images/{image['id']}"
    return {**image, "self": path, "file": f"{path}/file", "schema": "/v2/schemas/image"}


class Resource:
    """Base of the image resources.

    :param service: the image service.
    :param links: builds URLs under the image root.
    """

    #: JSON bodies come as JSON or as Glance's JSON-patch documents.
    media_types = ("application/json", *patch.MEDIA_TYPES)
    accept_patch = ", ".join(patch.MEDIA_TYPES)

    def __init__(self, service: ImageService, links: Links) -> None:
        self.service = service
        self.links = links

    @staticmethod
    def ctx(req: falcon.Request) -> RequestContext:
        """Return the caller's request context."""
        return req.context.nimbus
