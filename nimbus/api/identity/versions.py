"""Version discovery for the identity API."""

from __future__ import annotations

from typing import Any

import falcon

from nimbus.api.app import Links

_UPDATED = "2026-11-21T00:00:00Z"


def version_v3(base: str) -> dict[str, Any]:
    """Return the v3 version object for a service rooted at *base*."""
    return {
        "id": "v3.14",
        "status": "stable",
        "updated": _UPDATED,
        "links": [{"rel": "self", "href": f"{base}/v3/"}],
        "media-types": [
            {"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}
        ],
    }


class Root:
    """``GET /``: the versions this identity service speaks (300 Multiple Choices)."""

    def __init__(self, links: Links) -> None:
        self.links = links

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.status = falcon.HTTP_300
        resp.media = {"versions": {"values": [version_v3(self.links.base(req))]}}


class V3:
    """``GET /v3``: the v3 version document."""

    def __init__(self, links: Links) -> None:
        self.links = links

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"version": version_v3(self.links.base(req))}
