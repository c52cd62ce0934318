"""Version discovery of the compute API: v2.1 with its microversion range."""

from __future__ import annotations

from nimbus.api.microversion import APIVersion
from nimbus.api.versions import Version

__all__ = ["MAX_VERSION", "MIN_VERSION", "VERSION"]

MIN_VERSION = APIVersion(2, 1)
#: The newest microversion whose changes nimbus has.
MAX_VERSION = APIVersion(2, 1)

VERSION = Version(
    "v2.1",
    "CURRENT",
    "/v2.1/",
    {
        "version": str(MAX_VERSION),
        "min_version": str(MIN_VERSION),
        "updated": "2013-07-23T11:33:21Z",
        "media-types": [
            {
                "base": "application/json",
                "type": "application/vnd.openstack.compute+json;version=2.1",
            }
        ],
    },
)
