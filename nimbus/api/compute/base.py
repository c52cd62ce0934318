"""What every compute API resource shares: Nova's pages, links and query values."""

from __future__ import annotations

import datetime
from typing import Any

import falcon

from nimbus import exception
from nimbus.api import resource

__all__ = ["Resource", "VERSION_PATH", "db_time", "int_param", "links_for"]

#: The one version the API serves, under the compute root.
VERSION_PATH = "/v2.1"


def links_for(res: resource.Resource, req: falcon.Request, path: str) -> list[dict[str, str]]:
    """Return Nova's ``self`` (versioned) and ``bookmark`` (unversioned) links of *path*."""
    return [
        {"rel": "self", "href": res.url(req, VERSION_PATH + path)},
        {"rel": "bookmark", "href": res.url(req, path)},
    ]


def db_time(value: datetime.datetime | None) -> str | None:
    """Return a time as Nova shows database times (``2026-12-08T00:40:35.000000``), in UTC."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(datetime.UTC).replace(tzinfo=None)
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f")


def int_param(req: falcon.Request, name: str, *, minimum: int = 0) -> int | None:
    """Return a whole-number query parameter, ``None`` when absent.

    :raises BadRequest: it is not a whole number of at least *minimum*.
    """
    raw = req.get_param(name, default=None)
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise exception.BadRequest(reason=f"Invalid {name} filter [{raw}]")
    return value


class Resource(resource.Resource):
    """Base of the compute resources: Nova's page shape (``<key>_links``) and limit."""

    pages: resource.PageFormat = resource.NovaPages(max_limit=1000)

    def __init__(self, service: Any, links: Any) -> None:
        super().__init__(service, links)
