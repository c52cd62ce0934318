"""Version discovery for the identity API: v3 only."""

from __future__ import annotations

from nimbus.api.versions import Version

V3 = Version(
    "v3.14",
    "stable",
    "/v3/",
    {
        "updated": "2026-11-21T00:00:00Z",
        "media-types": [
            {"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}
        ],
    },
)
