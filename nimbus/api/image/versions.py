"""Version discovery for the image API."""

from __future__ import annotations

import falcon

from nimbus.api.app import Links

#: Minor versions of the v2 API this service answers as; the first is current.
_MINORS = range(16, -1, -1)


class Versions:
    """``GET /`` and ``GET /versions``: the v2 versions (300 Multiple Choices)."""

    def __init__(self, links: Links) -> None:
        self.links = links

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        href = self.links.base(req) + "/v2/"
        resp.status = falcon.HTTP_300
        resp.media = {
            "versions": [
                {
                    "id": f"v2.{minor}",
                    "status": "CURRENT" if minor == _MINORS[0] else "SUPPORTED",
                    "links": [{"rel": "self", "href": href}],
                }
                for minor in _MINORS
            ]
        }
