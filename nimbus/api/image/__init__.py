"""The image API (Glance v2) as a :class:`~nimbus.api.app.ServiceAPI`."""

from __future__ import annotations

import functools

from nimbus.api import errors
from nimbus.api.app import ServiceAPI
from nimbus.api.image import routes
from nimbus.image import ImageData, ImageService, TaskService

__all__ = ["image_api"]


def image_api(service: ImageService, data: ImageData, tasks: TaskService) -> ServiceAPI:
    """Return the image API bound to *service*, *data* and *tasks*."""
    return ServiceAPI(
        name="image",
        error_format=errors.FORMATS["glance"],
        routes=functools.partial(routes.routes, service, data, tasks),
        is_public=routes.is_public,
        # Glance's routes (Routes, without minimization) match paths exactly.
        strip_trailing_slash=False,
    )
